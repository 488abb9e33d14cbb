import { describe, expect, it } from 'vitest';
import { foreignImageMessage, imageRepository, isOurImage, mapCommand, type ProgramPaths } from '../../../../dev/agent/images.ts';

const programs: ProgramPaths = { node: '/bin/node', server: '/repo/src/bin/eventlog-server.ts', cli: '/repo/src/cli.ts' };

describe('image mapping', () => {
  it('parses repositories without tag or digest', () => {
    expect(imageRepository('eventlog:dev')).toBe('eventlog');
    expect(imageRepository('localhost:5000/team/eventlog:1.2')).toBe('localhost:5000/team/eventlog');
    expect(imageRepository('ghcr.io/x/eventlog@sha256:abc')).toBe('ghcr.io/x/eventlog');
    expect(imageRepository('localhost:5000/eventlog')).toBe('localhost:5000/eventlog');
  });

  it('accepts the project image by list, bare name or /eventlog repository', () => {
    expect(isOurImage('eventlog:dev')).toBe(true);
    expect(isOurImage('eventlog')).toBe(true);
    expect(isOurImage('eventlog:0.1.0')).toBe(true);
    expect(isOurImage('ghcr.io/acme/eventlog:v1')).toBe(true);
    expect(isOurImage('registry:5000/eventlog@sha256:00')).toBe(true);
    expect(isOurImage('my-app:dev', ['my-app:dev'])).toBe(true);
    expect(isOurImage('nginx:1.27')).toBe(false);
    expect(isOurImage('ghcr.io/acme/eventlog-ui:v1')).toBe(false);
    expect(isOurImage('eventlogger')).toBe(false);
    expect(isOurImage(undefined)).toBe(false);
  });

  it('maps the image commands to the TypeScript entry points', () => {
    expect(mapCommand(['eventlog-server'], ['--port', '8080'], programs)).toEqual({ ok: true, file: '/bin/node', args: ['/repo/src/bin/eventlog-server.ts', '--port', '8080'] });
    expect(mapCommand(['/usr/local/bin/eventlog-server', '--data-dir', '/d'], undefined, programs)).toEqual({
      ok: true,
      file: '/bin/node',
      args: ['/repo/src/bin/eventlog-server.ts', '--data-dir', '/d'],
    });
    expect(mapCommand(undefined, ['--leader-elect'], programs)).toEqual({ ok: true, file: '/bin/node', args: ['/repo/src/cli.ts', 'operator', '--leader-elect'] });
    expect(mapCommand(['eventlog-operator'], [], programs)).toEqual({ ok: true, file: '/bin/node', args: ['/repo/src/cli.ts', 'operator'] });
    expect(mapCommand(['eventlog', 'verify'], ['x'], programs)).toEqual({ ok: true, file: '/bin/node', args: ['/repo/src/cli.ts', 'verify', 'x'] });
    const bad = mapCommand(['sh', '-c', 'echo'], undefined, programs);
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.message).toContain('"sh"');
  });

  it('explains foreign images', () => {
    const m = foreignImageMessage('nginx:1.27');
    expect(m).toContain('"nginx:1.27"');
    expect(m).toContain("only the project's own image");
    expect(m).toContain('eventlog:dev');
  });
});
