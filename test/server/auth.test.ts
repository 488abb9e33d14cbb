import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { challenge, checkBearer, presentedCredentials, readTokenFile, routeNeedsToken, sha256, TokenFileError } from '../../src/server/auth.ts';
import { postJson, readAllLines, runCli, startServer, tempDir, waitState } from './helpers.ts';

/** The human-facing error lines (JSON log lines on stderr are ignored). */
function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l !== '' && !l.startsWith('{'));
}

async function expect401(r: Response, challengeRe: RegExp): Promise<void> {
  expect(r.status).toBe(401);
  expect(r.headers.get('content-type')).toMatch(/^application\/json/);
  expect(r.headers.get('www-authenticate')).toMatch(challengeRe);
  const body = (await r.json()) as Record<string, unknown>;
  expect(body.error).toBe('unauthorized');
  expect(typeof body.message).toBe('string');
}

describe('auth (pure)', () => {
  const hash = sha256('t0ken');
  it('checkBearer: right token ok; missing, wrong scheme, wrong or extra token refused', () => {
    expect(checkBearer('Bearer t0ken', hash)).toEqual({ ok: true });
    expect(checkBearer('bearer   t0ken', hash)).toEqual({ ok: true });
    expect(checkBearer(undefined, hash)).toEqual({ ok: false, reason: 'missing' });
    expect(checkBearer('', hash)).toEqual({ ok: false, reason: 'missing' });
    for (const h of ['Basic dDBrZW4=', 'Bearer t0ke', 'Bearer t0ken2', 'Bearer', 'Bearer t0ken x', 't0ken']) {
      expect(checkBearer(h, hash)).toEqual({ ok: false, reason: 'invalid' });
    }
  });
  it('presentedCredentials: Authorization wins; X-EventLog-Token is the fallback', () => {
    expect(presentedCredentials('Bearer a', 'b')).toBe('Bearer a');
    expect(presentedCredentials(undefined, 'b')).toBe('Bearer b');
    expect(presentedCredentials('', ['c', 'd'])).toBe('Bearer c');
    expect(presentedCredentials(undefined, undefined)).toBeUndefined();
    expect(checkBearer(presentedCredentials(undefined, 't0ken'), hash)).toEqual({ ok: true });
  });
  it('only /healthz, /readyz and /metrics are open; unknown routes need the token', () => {
    for (const open of ['/healthz', '/readyz', '/metrics']) expect(routeNeedsToken(open)).toBe(false);
    for (const guarded of ['/events', '/events/:id', '/stats', '/status', '/v1/status', '/admin/repair', undefined]) expect(routeNeedsToken(guarded)).toBe(true);
    expect(challenge('missing')).toBe('Bearer realm="eventlog"');
    expect(challenge('invalid')).toContain('error="invalid_token"');
  });
  it('readTokenFile trims a trailing newline and refuses empty, spaced or missing files', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'ok'), 'abc-123_XYZ\n');
    expect(await readTokenFile(join(dir, 'ok'))).toBe('abc-123_XYZ');
    await writeFile(join(dir, 'empty'), '\n');
    await expect(readTokenFile(join(dir, 'empty'))).rejects.toThrow(TokenFileError);
    await writeFile(join(dir, 'spaced'), 'two words');
    await expect(readTokenFile(join(dir, 'spaced'))).rejects.toThrow(/does not hold a token/);
    await expect(readTokenFile(join(dir, 'missing'))).rejects.toThrow(/cannot read .*ENOENT/);
  });
});

describe('auth (server process)', () => {
  it('--auth-token-file: every guarded route is 401 without or with a wrong token, 2xx with it; probes and metrics stay open', async () => {
    const dir = await tempDir();
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, 'file-token-0123456789\n');
    const s = await startServer(join(dir, 'data'), ['--auth-token-file', tokenFile]);
    const auth = { authorization: 'Bearer file-token-0123456789' };
    await waitState(s.url, ['ready'], auth);
    const guarded: Array<[string, RequestInit]> = [
      ['/events', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' }],
      ['/events?after=0&limit=10', {}],
      ['/events/some-id', {}],
      ['/stats', {}],
      ['/status', {}],
      ['/status/', {}],
      ['/v1/status', {}],
      ['/admin/repair', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"corruptionId":"x"}' }],
      ['/no-such-route', {}],
      ['/%65vents', {}],
    ];
    for (const [path, init] of guarded) {
      await expect401(await fetch(`${s.url}${path}`, init), /^Bearer realm="eventlog"$/);
      const wrong = { ...init, headers: { ...(init.headers as Record<string, string> | undefined), authorization: 'Bearer file-token-012345678' } };
      await expect401(await fetch(`${s.url}${path}`, wrong), /error="invalid_token"/);
    }
    // Nothing was appended by the refused POSTs.
    const stats = (await (await fetch(`${s.url}/stats`, { headers: auth })).json()) as { total: number };
    expect(stats.total).toBe(0);
    expect((await postJson(s.url, { hello: 'world' }, auth)).status).toBe(201);
    expect(await readAllLines(s.url, auth)).toHaveLength(1);
    expect((await fetch(`${s.url}/status`, { headers: { authorization: 'bearer file-token-0123456789' } })).status).toBe(200);
    // X-EventLog-Token: what a request through the API server's pod proxy can carry.
    expect((await fetch(`${s.url}/status`, { headers: { 'x-eventlog-token': 'file-token-0123456789' } })).status).toBe(200);
    await expect401(await fetch(`${s.url}/status`, { headers: { 'x-eventlog-token': 'file-token-012345678' } }), /error="invalid_token"/);
    expect((await fetch(`${s.url}/no-such-route`, { headers: auth })).status).toBe(404);
    for (const open of ['/healthz', '/readyz', '/metrics', '/healthz?x=1']) expect((await fetch(`${s.url}${open}`)).status).toBe(200);
    // The 401s are counted like any other response.
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    expect(metrics).toMatch(/status="401"/);
    expect((await s.kill('SIGTERM')).code).toBe(0);
  });

  it('EVENTLOG_AUTH_TOKEN_FILE works from the environment; without any token the server is open', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'token'), 'env-token');
    const guarded = await startServer(join(dir, 'a'), [], { EVENTLOG_AUTH_TOKEN_FILE: join(dir, 'token') });
    expect((await fetch(`${guarded.url}/stats`)).status).toBe(401);
    expect((await fetch(`${guarded.url}/stats`, { headers: { authorization: 'Bearer env-token' } })).status).toBe(200);
    expect((await guarded.kill('SIGTERM')).code).toBe(0);
    const open = await startServer(join(dir, 'b'));
    await waitState(open.url, ['ready']);
    expect((await fetch(`${open.url}/stats`)).status).toBe(200);
    expect((await postJson(open.url, { open: true })).status).toBe(201);
    expect((await open.kill('SIGTERM')).code).toBe(0);
  });

  it('bad token configuration exits 2 with one line and never starts an open server', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'empty'), '');
    await writeFile(join(dir, 't'), 'x');
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [['--auth-token-file', join(dir, 'missing')], {}, /^eventlog-server: --auth-token-file: cannot read .*missing: ENOENT$/],
      [['--auth-token-file', join(dir, 'empty')], {}, /^eventlog-server: --auth-token-file: .*empty is empty$/],
      [[], { EVENTLOG_AUTH_TOKEN_FILE: join(dir, 'missing') }, /^eventlog-server: EVENTLOG_AUTH_TOKEN_FILE: cannot read/],
      [['--auth-token', 'has space'], {}, /^eventlog-server: --auth-token: expected a token/],
      [['--auth-token', 'x', '--auth-token-file', join(dir, 't')], {}, /mutually exclusive/],
      [['--auth-token-file', join(dir, 't')], { EVENTLOG_AUTH_TOKEN: 'y' }, /mutually exclusive/],
    ];
    for (const [args, env, re] of cases) {
      const r = await runCli(['--data-dir', join(dir, 'data'), '--host', '127.0.0.1', '--port', '1', ...args], env);
      expect(r.code, `${args.join(' ')} ${JSON.stringify(env)}: ${r.stderr}`).toBe(2);
      const lines = errorLines(r.stderr);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(re);
    }
  });
});
