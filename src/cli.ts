#!/usr/bin/env node
/**
 * `eventlog <command> [flags]`: the one entry point the image and developers use.
 * Each command lives in its own module and is loaded only when asked for, so
 * `eventlog server` never loads the Kubernetes client and vice versa.
 *
 * Exit codes: 0 success, 1 runtime failure, 2 usage error (one line on stderr).
 */
type Command = { summary: string; run: (args: string[]) => Promise<number> };

const commands: Record<string, Command> = {
  server: {
    summary: 'run the log server on a data directory (same as `eventlog-server`; `server --help`)',
    run: async (args) => (await import('./server/main.ts')).main(args),
  },
  operator: {
    summary: 'run the EventLog operator against the cluster of the kubeconfig or in-cluster (`operator --help`)',
    run: async (args) => (await import('./operator/main.ts')).main(args),
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: eventlog <command> [flags]\n\ncommands:\n${lines.join('\n')}\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (command === undefined) {
    process.stderr.write(`eventlog: unknown command "${name}" (known: ${Object.keys(commands).join(', ')})\n`);
    return 2;
  }
  return command.run(rest);
}

// Exit explicitly: a command is over when it returns, whatever handles it left open.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`eventlog: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
