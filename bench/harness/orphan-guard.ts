/**
 * Preloaded (`node -r`) into the service processes the benchmark spawns: when the benchmark's
 * process goes away without stopping them (killed, crashed), the IPC channel closes and the
 * service gets the SIGTERM its own shutdown handler expects. The channel does not keep it alive.
 */
if (process.channel) {
  process.on('disconnect', () => process.kill(process.pid, 'SIGTERM'));
  process.channel.unref();
}
