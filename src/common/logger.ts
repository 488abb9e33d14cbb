/**
 * The one way to get a logger. Structured JSON (pino) to stderr so stdout stays
 * free for a command's real output (reports, NDJSON). Level from LOG_LEVEL.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(name: string, level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({ name, level, base: { name } }, pino.destination({ fd: 2, sync: true }));
}

/** A logger that discards everything, for tests and library callers that pass none. */
export const silentLogger: Logger = pino({ level: 'silent' });
