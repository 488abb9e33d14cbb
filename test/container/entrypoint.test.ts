/**
 * The image as an artifact: its entrypoint and both programs answer `--help`, a
 * bad flag exits non-zero with one clear line on stderr, it runs as a non-root
 * numeric user, and the final stage holds no dev dependencies.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultImages } from '../../dev/agent/images.ts';
import { FIELDS } from '../../src/operator/config.ts';
import { docker, image, IMAGE_UID, runOnce } from './helpers.ts';

// What `npm ci --omit=dev` installs at the top level, from the lockfile: packages
// flagged dev-only must be absent, the rest (not optional) present.
const lock = JSON.parse(await readFile(resolve(import.meta.dirname, '../../package-lock.json'), 'utf8')) as {
  packages: Record<string, { dev?: boolean; devOptional?: boolean; optional?: boolean }>;
};
const topLevel = Object.entries(lock.packages)
  .filter(([path]) => path.startsWith('node_modules/') && !path.slice('node_modules/'.length).includes('/node_modules/'))
  .map(([path, meta]) => ({ name: path.slice('node_modules/'.length), ...meta }));
const devOnly = topLevel.filter((p) => p.dev === true).map((p) => p.name);
const production = topLevel.filter((p) => !p.dev && !p.devOptional && !p.optional).map((p) => p.name);

describe('the image', () => {
  it("is built under the operator's default log server image name, which the local node agent runs", () => {
    expect(FIELDS.defaultImage.default).toBe('eventlog:dev');
    expect(defaultImages).toContain(FIELDS.defaultImage.default);
    expect(image()).toBe(process.env.EVENTLOG_IMAGE ?? FIELDS.defaultImage.default);
  });

  it('is configured to run eventlog-operator as a numeric non-root user', async () => {
    const r = await docker(['image', 'inspect', '-f', '{{json .Config}}', image()]);
    expect(r.code, r.stderr).toBe(0);
    const config = JSON.parse(r.stdout) as { User: string; Entrypoint: string[] };
    expect(config.Entrypoint).toEqual(['eventlog-operator']);
    // Numeric (uid:gid), so Kubernetes runAsNonRoot can check it without /etc/passwd.
    expect(config.User).toMatch(/^[1-9]\d*:\d+$/);
    expect(Number(config.User.split(':')[0])).toBe(IMAGE_UID);
  });

  it('the default entrypoint (eventlog-operator) answers --help with exit 0 and its usage', async () => {
    const r = await runOnce({ command: ['--help'] });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^usage: eventlog operator \[flags\]/);
    expect(r.stdout).toContain('--leader-elect');
  });

  it('the operator exits non-zero with one clear line on stderr on a bad flag value', async () => {
    const r = await runOnce({ command: ['--workers', 'abc'] });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.split('\n').filter((l) => l.length > 0);
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^eventlog operator: --workers: .*"abc"$/);
  });

  it('the operator exits non-zero with one line on an unknown flag', async () => {
    const r = await runOnce({ command: ['--no-such-flag'] });
    expect(r.code).toBe(2);
    const lines = r.stderr.split('\n').filter((l) => l.length > 0);
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toContain('--no-such-flag');
  });

  it('eventlog-server and eventlog are on PATH and answer --help', async () => {
    const server = await runOnce({ entrypoint: ['eventlog-server'], command: ['--help'] });
    expect(server.code, server.stderr).toBe(0);
    expect(server.stdout).toContain('eventlog-server [serve] --data-dir DIR');
    const cli = await runOnce({ entrypoint: ['eventlog'], command: ['--help'] });
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toMatch(/^usage: eventlog <command>/);
  });

  it('eventlog-server exits 2 with one line on a bad flag value', async () => {
    const r = await runOnce({ entrypoint: ['eventlog-server'], command: ['--data-dir', '/data', '--port', 'abc'] });
    expect(r.code).toBe(2);
    const lines = r.stderr.split('\n').filter((l) => l.length > 0);
    expect(lines, r.stderr).toEqual(['eventlog-server: --port: expected an integer between 1 and 65535, got "abc"']);
  });

  it('runs as uid 65532 and its /app holds dist, package.json and the production dependencies only', async () => {
    const script = `
      const fs = require('node:fs');
      console.log(JSON.stringify({
        uid: process.getuid(), gid: process.getgid(), node: process.versions.node,
        app: fs.readdirSync('/app').sort(),
        modules: fs.readdirSync('/app/node_modules').flatMap((n) => n.startsWith('@') ? fs.readdirSync('/app/node_modules/' + n).map((m) => n + '/' + m) : [n]),
      }));`;
    const r = await runOnce({ entrypoint: ['node', '-e', script] });
    expect(r.code, r.stderr).toBe(0);
    const seen = JSON.parse(r.stdout) as { uid: number; gid: number; node: string; app: string[]; modules: string[] };
    expect(seen.uid).toBe(IMAGE_UID);
    expect(seen.gid).toBe(IMAGE_UID);
    expect(seen.node).toMatch(/^24\./);
    expect(seen.app).toEqual(['dist', 'node_modules', 'package.json']);
    expect(production).toEqual(expect.arrayContaining(['fastify', 'zod', '@kubernetes/client-node']));
    expect(devOnly).toEqual(expect.arrayContaining(['node', 'typescript', 'vitest', 'testcontainers']));
    expect(seen.modules.sort()).toEqual(expect.arrayContaining(production));
    // No dev-only package (the `node` package, typescript, vitest, testcontainers...) in the final stage.
    for (const dev of devOnly) expect(seen.modules, `dev-only package ${dev}`).not.toContain(dev);
  });
});
