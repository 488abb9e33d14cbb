#!/usr/bin/env node
/**
 * `eventlog-operator [flags]`: the image's default entrypoint, the same program as
 * `eventlog operator` (src/operator/main.ts). A bin of its own so the image can
 * put it on PATH and so pod specs can name it (`command: [eventlog-operator]`).
 *
 * Exit codes: 0 after SIGTERM/SIGINT, 1 runtime failure, 2 usage error (one line).
 */
import { main } from '../operator/main.ts';

// Exit explicitly: the operator is over when main returns, whatever handles it left open.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`eventlog-operator: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
