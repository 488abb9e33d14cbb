#!/usr/bin/env node
import { main } from '../server/main.ts';

main(process.argv.slice(2)).then(
  (code) => {
    process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`eventlog-server: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
