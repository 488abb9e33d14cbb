#!/usr/bin/env node
/**
 * `kubectl-eventlog`: on PATH, kubectl runs it as `kubectl eventlog ...` (kubectl's
 * plugin mechanism). See src/plugin/main.ts for the commands.
 */
import { main } from '../plugin/main.ts';

const interrupted = new Promise<void>((resolve) => {
  process.once('SIGINT', () => resolve());
  process.once('SIGTERM', () => resolve());
});

main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, interrupted }).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`kubectl eventlog: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
