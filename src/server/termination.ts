/** Kubernetes termination message: one line of JSON. Never throws (an unwritable path is logged). */
import { writeFileSync } from 'node:fs';
import type { Logger } from '../common/logger.ts';

export function writeTerminationMessage(path: string, message: unknown, log: Logger): boolean {
  try {
    writeFileSync(path, JSON.stringify(message) + '\n');
    return true;
  } catch (err) {
    log.warn({ err, path }, 'could not write the termination message');
    return false;
  }
}
