/**
 * Image mapping: which container images this node can run, and what local
 * command a container of such an image becomes. Only the project's own image
 * runs here (as the TypeScript entry points, under this Node.js); any other
 * image is "not runnable on this node".
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const defaultImages: readonly string[] = ['eventlog:dev'];

/**
 * Where the entry points live: the agent is development tooling (dev/agent/, never
 * built into dist/), so the programs are the repository's `src/` entry points.
 */
const src = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');

export interface ProgramPaths {
  /** Node.js binary that runs the entry points. */
  node: string;
  /** `.../bin/eventlog-server.(ts|js)` */
  server: string;
  /** `.../cli.(ts|js)` */
  cli: string;
}

export const defaultPrograms: ProgramPaths = {
  node: process.execPath,
  server: resolve(src, 'bin', 'eventlog-server.ts'),
  cli: resolve(src, 'cli.ts'),
};

/** The repository part of an image reference: no tag, no digest ("reg:5000/a/eventlog:1" -> "reg:5000/a/eventlog"). */
export function imageRepository(image: string): string {
  let ref = image.trim();
  const at = ref.indexOf('@');
  if (at >= 0) ref = ref.slice(0, at);
  const lastSlash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  if (colon > lastSlash) ref = ref.slice(0, colon);
  return ref;
}

/**
 * Whether `image` is the project's image: listed in `images` exactly, or its
 * repository is `eventlog` or ends in `/eventlog` (any registry, tag or digest).
 */
export function isOurImage(image: string | undefined, images: readonly string[] = defaultImages): boolean {
  if (!image) return false;
  if (images.includes(image.trim())) return true;
  const repo = imageRepository(image);
  if (images.some((listed) => imageRepository(listed) === repo && !listed.includes(':') && !listed.includes('@'))) return true;
  return repo === 'eventlog' || repo.endsWith('/eventlog');
}

export type CommandMapping =
  | { ok: true; file: string; args: string[] }
  | { ok: false; reason: string; message: string };

/**
 * The local process for a container of our image. `command`/`args` are already
 * `$(VAR)`-expanded. As in the image: no command = the default entrypoint
 * (`eventlog-operator`); `args` alone are passed to the default entrypoint.
 */
export function mapCommand(command: readonly string[] | undefined, args: readonly string[] | undefined, programs: ProgramPaths = defaultPrograms): CommandMapping {
  const extra = [...(args ?? [])];
  if (!command || command.length === 0) {
    return { ok: true, file: programs.node, args: [programs.cli, 'operator', ...extra] };
  }
  const [entry, ...rest] = command as [string, ...string[]];
  const name = entry.split('/').pop() ?? entry;
  switch (name) {
    case 'eventlog-server':
      return { ok: true, file: programs.node, args: [programs.server, ...rest, ...extra] };
    case 'eventlog-operator':
      return { ok: true, file: programs.node, args: [programs.cli, 'operator', ...rest, ...extra] };
    case 'eventlog':
      return { ok: true, file: programs.node, args: [programs.cli, ...rest, ...extra] };
    default:
      return {
        ok: false,
        reason: 'StartError',
        message: `command ${JSON.stringify(entry)} is not a program of the eventlog image (expected eventlog-server, eventlog-operator or eventlog)`,
      };
  }
}

/** The waiting message for a container whose image this node will not run. */
export function foreignImageMessage(image: string | undefined, images: readonly string[] = defaultImages): string {
  return (
    `image ${JSON.stringify(image ?? '')} cannot run on this node: the eventlog local node agent runs only the project's own image ` +
    `(${images.join(', ')}, or any image whose repository is "eventlog" or ends in "/eventlog") as local processes`
  );
}
