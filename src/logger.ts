/**
 * The service's structured JSON logs (pino).
 */
import pino from 'pino';

/** Structured JSON logs. Nothing logs request headers, so bearer tokens never reach a log line. */
export function createLogger(level = process.env.LOG_LEVEL ?? 'info', name = 'stockhold') {
  return pino({
    name,
    level,
    redact: { paths: ['*.authorization', '*.headers.authorization', 'token', '*.token'], censor: '[redacted]' },
  });
}

export type Logger = ReturnType<typeof createLogger>;
