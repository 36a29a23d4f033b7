/** What every scenario gets and gives back. */
import type { Experiment } from '../harness/results';
import type { Target } from '../harness/stack';

export interface Context {
  target: Target;
  /** Short unique id of this run: SKUs and reservation ids carry it. */
  run: string;
  /** Scales every measured duration (1 normally; --quick for a smoke run). */
  seconds(nominal: number): number;
  /** True for a --quick smoke run (fewer rounds as well as shorter ones). */
  quick: boolean;
  /** The bare Express reference server (started on first use), e.g. http://127.0.0.1:41234. */
  referenceServer(): Promise<string>;
  /** The reference server's process id once started (its CPU is measured beside the API's). */
  referenceServerPid(): number | undefined;
  /** Waits until the stack is quiet again (the Temporal server drained what the last load left). */
  settle(label: string): Promise<void>;
  /** True when before/after experiments run (own stack only, unless --no-experiments). */
  experiments: boolean;
  /** Another revision to measure side by side (--baseline): its lib/, built beside this one. */
  baseline?: { rev: string; commit: string; lib: string };
  /** Records one before/after measurement of a proposed change. */
  experiment(group: string, e: Omit<Experiment, 'measuredAt'>): void;
}

/** One line of the final table. */
export interface Row {
  scenario: string;
  measure: string;
  value: string;
  reference?: string;
  ratio?: string;
  goal?: string;
  /** undefined: no goal on this line. */
  met?: boolean;
  note?: string;
}

export interface Outcome<T> {
  data: T;
  rows: Row[];
  /** Set when the scenario must fail loudly (e.g. winners differ from the stock). */
  failure?: string;
}

export const fmt = {
  int: (n: number) => Math.round(n).toLocaleString('en-US'),
  ms: (n: number) =>
    Number.isFinite(n)
      ? `${n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : Math.round(n).toLocaleString('en-US')} ms`
      : 'n/a',
  s: (n: number) => `${n.toFixed(2)} s`,
  ratio: (n: number) => (Number.isFinite(n) ? `${n.toFixed(2)}×` : 'n/a'),
  mb: (n: number) => `${n.toFixed(1)} MB`,
};
