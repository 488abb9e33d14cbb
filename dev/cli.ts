#!/usr/bin/env node
/**
 * `npm run dev`: the local playground (dev/playground.ts). Development tooling lives
 * under dev/ and is never compiled into the image; src/ holds only what ships.
 *
 * Exit codes: 0 after Ctrl-C/SIGTERM, 1 runtime failure, 2 usage error (one line).
 */
import { main } from './playground.ts';

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`eventlog dev: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
