/** The IPC protocol between the benchmark and its forked children (load generators, reference servers). */
export type ChildMessage<R> =
  | { type: 'progress'; text: string }
  | { type: 'result'; result: R }
  | { type: 'ready'; info: R }
  | { type: 'error'; message: string };

function send(message: ChildMessage<unknown>, then?: () => void): void {
  if (process.send) process.send(message, undefined, {}, () => then?.());
  else then?.();
}

/** Exits when the parent goes away, so a load generator never outlives the benchmark. */
function exitWithParent(): void {
  process.on('disconnect', () => process.exit(2));
}

/** A one-shot child: receives one job, may report progress, answers one result, exits. */
export function serveJob<J, R>(handler: (job: J, progress: (text: string) => void) => Promise<R>): void {
  exitWithParent();
  process.once('message', (job: J) => {
    handler(job, (text) => send({ type: 'progress', text })).then(
      (result) => send({ type: 'result', result }, () => process.exit(0)),
      (err: unknown) =>
        send({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) }, () =>
          process.exit(1),
        ),
    );
  });
}

/** A long-running child: receives its config, starts, reports `ready` with `info`; stops on SIGTERM. */
export function serveService<C, I>(start: (config: C) => Promise<{ info: I; stop(): Promise<void> }>): void {
  exitWithParent();
  process.once('message', (config: C) => {
    start(config).then(
      ({ info, stop }) => {
        let stopping = false;
        const shutdown = () => {
          if (stopping) return;
          stopping = true;
          stop().then(
            () => process.exit(0),
            () => process.exit(1),
          );
        };
        process.on('SIGTERM', shutdown);
        process.on('SIGINT', shutdown);
        process.on('disconnect', shutdown);
        send({ type: 'ready', info });
      },
      (err: unknown) =>
        send({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) }, () =>
          process.exit(1),
        ),
    );
  });
}
