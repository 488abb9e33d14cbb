/**
 * README.md keeps its promise: "every command in it is run by a test or by `.ci/run`",
 * and its reference parts cannot fall behind the API.
 *
 * The rule for commands (pure functions below, with cases of their own):
 *
 * 1. Every fenced block whose info string is `sh` must be immediately preceded (blank
 *    lines aside) by `<!-- tested-by: PATH[, PATH...] -->`. Each PATH is a repository
 *    file that runs commands: a `.ts` file under `test/`, `.ci/run`, or `scripts/*.sh`;
 *    it must exist. (Output and manifests go in `text`/`yaml` blocks: not checked.)
 * 2. Lines of the block: blank lines and `#` comment lines are skipped, a trailing
 *    ` # comment` is stripped, `\` continuations are joined. A line is split into
 *    commands: every `$(...)` is a command of its own, and `|`, `||`, `&&`, `;` separate
 *    commands. In each command, leading `NAME=value` assignments, `export`, and one
 *    interpreter word (`bash`, `sh`, `node`, `npx`) are dropped; quotes are removed from
 *    words.
 * 3. Each command must be found in the named files (all of them together):
 *    - its key: the first two words (`kubectl apply`, `npm test`, `src/cli.ts operator`;
 *      a one-word command is its own key), three for `npm run` (`npm run dev`), either
 *      as written or as consecutive quoted argv items (`'src/cli.ts', 'operator'`);
 *    - every flag word (starting with `--`, checked as written, `=value` included);
 *    - every path-like word (containing `/`, or ending in .yaml, .yml, .sh, .ts, .json).
 *    Other words (names, short flags, flag values that are not path-like) are not
 *    checked.
 * 4. Fenced blocks are `sh`, `text`, `yaml` or `ts` only (no `bash`/untagged blocks
 *    slipping past rule 1).
 *
 * The reference checks: every (condition type, reason) pair exported from
 * src/api/eventlog.ts (`ConditionReasons`) is a row of README's conditions table and the
 * table has no other row; every top-level spec field and every `kubectl get` printer
 * column is named; every `yaml` block holding an EventLog parses with the operator's
 * schema.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { PRINTER_COLUMNS } from '../../src/api/crd.ts';
import { ConditionReasons, EventLogSpecSchema, KIND, parseEventLog } from '../../src/api/eventlog.ts';

const repo = join(import.meta.dirname, '..', '..');

// ---------------------------------------------------------------------------
// Pure functions
// ---------------------------------------------------------------------------

export interface FencedBlock {
  /** First word of the info string (`sh`, `yaml`, `text`, ...; '' when none). */
  lang: string;
  /** 1-based line of the opening fence. */
  line: number;
  body: string[];
  /** Paths of the `<!-- tested-by: ... -->` comment right before the block, if any. */
  testedBy?: string[];
}

const TESTED_BY = /^<!--\s*tested-by:\s*(.*?)\s*-->$/;

/** The fenced code blocks of a Markdown text, each with its tested-by annotation. */
export function fencedBlocks(markdown: string): FencedBlock[] {
  const lines = markdown.split('\n');
  const blocks: FencedBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)/.exec(lines[i]!);
    if (!open) continue;
    const fence = open[2]!;
    const body: string[] = [];
    let j = i + 1;
    const close = new RegExp(`^\\s*${fence[0] === '`' ? '`' : '~'}{${fence.length},}\\s*$`);
    while (j < lines.length && !close.test(lines[j]!)) body.push(lines[j++]!);
    let k = i - 1;
    while (k >= 0 && lines[k]!.trim() === '') k--;
    const annotation = k >= 0 ? TESTED_BY.exec(lines[k]!.trim()) : null;
    const block: FencedBlock = { lang: open[3] ?? '', line: i + 1, body };
    if (annotation) block.testedBy = annotation[1]!.split(',').map((p) => p.trim()).filter((p) => p !== '');
    blocks.push(block);
    i = j;
  }
  return blocks;
}

/** The command lines of an `sh` block: comments and blank lines dropped, continuations joined. */
export function commandLines(body: string[]): string[] {
  const out: string[] = [];
  let pending = '';
  for (const raw of body) {
    let line = stripTrailingComment(raw).trimEnd();
    const continued = line.endsWith('\\');
    if (continued) line = line.slice(0, -1);
    pending = pending === '' ? line.trim() : `${pending} ${line.trim()}`;
    if (continued) continue;
    if (pending !== '' && !pending.startsWith('#')) out.push(pending);
    pending = '';
  }
  if (pending !== '' && !pending.startsWith('#')) out.push(pending);
  return out;
}

/** Drop a ` # comment` that is outside quotes (a `#` at the start is a comment line). */
function stripTrailingComment(line: string): string {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]!))) return line.slice(0, i);
  }
  return line;
}

/**
 * Split one command line into simple commands: each `$(...)` becomes a command of its
 * own (and the word `$SUB` in its place), then `|`, `||`, `&&` and `;` separate commands.
 */
export function splitCommands(line: string): string[] {
  const inner: string[] = [];
  let outer = '';
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote === "'") {
      if (c === "'") quote = undefined;
      outer += c;
      continue;
    }
    if (c === '$' && line[i + 1] === '(') {
      let depth = 1;
      let j = i + 2;
      let q: string | undefined;
      for (; j < line.length && depth > 0; j++) {
        const d = line[j]!;
        if (q) {
          if (d === q) q = undefined;
        } else if (d === "'" || d === '"') q = d;
        else if (d === '(') depth++;
        else if (d === ')') depth--;
      }
      inner.push(...splitCommands(line.slice(i + 2, j - 1)));
      outer += '$SUB';
      i = j - 1;
      continue;
    }
    if (quote === '"') {
      if (c === '"') quote = undefined;
    } else if (c === "'" || c === '"') quote = c;
    outer += c;
  }
  const parts: string[] = [];
  let current = '';
  quote = undefined;
  for (let i = 0; i < outer.length; i++) {
    const c = outer[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      current += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      current += c;
    } else if (c === ';' || c === '|' || (c === '&' && outer[i + 1] === '&')) {
      if ((c === '|' || c === '&') && outer[i + 1] === c) i++;
      parts.push(current);
      current = '';
    } else current += c;
  }
  parts.push(current);
  return [...parts.map((p) => p.trim()).filter((p) => p !== ''), ...inner];
}

/** Words of a simple command, shell-like: whitespace outside quotes splits, quotes are removed. */
export function shellWords(command: string): string[] {
  const words: string[] = [];
  let current: string | undefined;
  let quote: string | undefined;
  for (const c of command) {
    if (quote) {
      if (c === quote) quote = undefined;
      else current = (current ?? '') + c;
    } else if (c === "'" || c === '"') {
      quote = c;
      current = current ?? '';
    } else if (/\s/.test(c)) {
      if (current !== undefined) words.push(current);
      current = undefined;
    } else current = (current ?? '') + c;
  }
  if (current !== undefined) words.push(current);
  return words;
}

const INTERPRETERS = new Set(['bash', 'sh', 'node', 'npx']);
const PATH_LIKE = /\/|\.(ya?ml|sh|ts|json)$/;

export interface CommandEvidence {
  /** The words that must appear together: `kubectl apply`, `npm run dev`. */
  key: string[];
  flags: string[];
  paths: string[];
}

/** What a simple command must show in the files that claim to run it (undefined: nothing to check). */
export function evidenceFor(command: string): CommandEvidence | undefined {
  let words = shellWords(command);
  if (words[0] === 'export') words = words.slice(1);
  while (words.length > 0 && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[0]!)) words = words.slice(1);
  if (words.length > 0 && INTERPRETERS.has(words[0]!)) words = words.slice(1);
  if (words.length === 0) return undefined;
  const keyLength = words[0] === 'npm' && words[1] === 'run' ? 3 : 2;
  const key = words.slice(0, keyLength);
  const rest = words.filter((w) => w !== '--' && w !== '$SUB');
  return {
    key,
    flags: rest.filter((w) => w.startsWith('--')),
    paths: rest.filter((w) => !w.startsWith('-') && PATH_LIKE.test(w)),
  };
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The key as written (`a b`), or as consecutive quoted argv items (`'a', 'b'`). */
export function keyFound(key: string[], text: string): boolean {
  if (text.includes(key.join(' '))) return true;
  const argv = new RegExp(key.map((w) => `['"\`]${escapeRegExp(w)}['"\`]`).join(',\\s*'));
  return argv.test(text);
}

const RUNNER = /^(test\/.+\.ts|\.ci\/run|scripts\/[^/]+\.sh)$/;

/**
 * Problems of one `sh` block (empty: it keeps the rule). `files` maps a repository path
 * to its text (undefined: no such file).
 */
export function checkShBlock(block: FencedBlock, files: (path: string) => string | undefined): string[] {
  const where = `block at line ${block.line}`;
  if (!block.testedBy || block.testedBy.length === 0) return [`${where}: no <!-- tested-by: ... --> comment right before it`];
  const problems: string[] = [];
  const texts: string[] = [];
  for (const path of block.testedBy) {
    if (!RUNNER.test(path)) problems.push(`${where}: tested-by ${path}: not a test under test/, .ci/run or scripts/*.sh`);
    const text = files(path);
    if (text === undefined) problems.push(`${where}: tested-by ${path}: no such file`);
    else texts.push(text);
  }
  const lines = commandLines(block.body);
  if (lines.length === 0) problems.push(`${where}: no command in it`);
  for (const line of lines) {
    for (const command of splitCommands(line)) {
      const ev = evidenceFor(command);
      if (!ev) continue;
      if (!texts.some((t) => keyFound(ev.key, t))) problems.push(`${where}: "${ev.key.join(' ')}" (from \`${line}\`) appears in none of ${block.testedBy.join(', ')}`);
      for (const word of [...ev.flags, ...ev.paths]) {
        if (!texts.some((t) => t.includes(word))) problems.push(`${where}: ${word} (from \`${line}\`) appears in none of ${block.testedBy.join(', ')}`);
      }
    }
  }
  return problems;
}

/**
 * The (type, reason) rows of the Markdown table whose header starts with
 * `| Type | Status | Reason |`; an empty Type cell continues the type above.
 */
export function conditionRows(markdown: string): { type: string; reason: string }[] {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => /^\|\s*Type\s*\|\s*Status\s*\|\s*Reason\s*\|/.test(l));
  if (start < 0) return [];
  const rows: { type: string; reason: string }[] = [];
  let type = '';
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    const cells = line.split('|').slice(1, -1).map((c) => c.trim().replace(/^`|`$/g, ''));
    if (cells[0]) type = cells[0];
    rows.push({ type, reason: cells[2] ?? '' });
  }
  return rows;
}

// ---------------------------------------------------------------------------
// The rule, on its own cases
// ---------------------------------------------------------------------------

describe('the README command rule', () => {
  const runner = `
    // deploy/ as users meet it: \`kubectl apply -k deploy/\`
    await kubectl('apply', '-k', 'deploy/samples/', '-n', ns, '--server-side');
    spawn(process.execPath, ['src/cli.ts', 'operator', '--kubeconfig', path, '--leader-elect', 'false']);
    spawn('bash', [resolve(ROOT, 'scripts/build-image.sh')]);
  `;
  const files = (path: string) => (path === 'test/integration/x.test.ts' ? runner : undefined);
  /** An sh block; `testedBy` null: without the comment. */
  const block = (body: string, testedBy: string | null = 'test/integration/x.test.ts') =>
    fencedBlocks(`${testedBy === null ? '' : `<!-- tested-by: ${testedBy} -->\n`}\n\`\`\`sh\n${body}\n\`\`\`\n`)[0]!;

  it('finds fenced blocks, their language and the tested-by comment before them (blank lines aside)', () => {
    const md = '<!-- tested-by: a.ts, .ci/run -->\n\n```sh\nnpm test\n```\n\ntext\n```yaml\nx: 1\n```\n';
    expect(fencedBlocks(md)).toEqual([
      { lang: 'sh', line: 3, body: ['npm test'], testedBy: ['a.ts', '.ci/run'] },
      { lang: 'yaml', line: 8, body: ['x: 1'] },
    ]);
  });

  it('reads command lines: comments, blank lines, trailing comments, continuations', () => {
    expect(commandLines(['# a comment', '', 'npm test   # every tier', 'node src/cli.ts operator \\', '  --kubeconfig "$KUBECONFIG"', "echo '#not a comment'"])).toEqual([
      'npm test',
      'node src/cli.ts operator --kubeconfig "$KUBECONFIG"',
      "echo '#not a comment'",
    ]);
  });

  it('splits substitutions and pipelines into commands', () => {
    expect(splitCommands("TOKEN=$(kubectl get secret x -o jsonpath='{.data.token}' | base64 -d)")).toEqual(['TOKEN=$SUB', "kubectl get secret x -o jsonpath='{.data.token}'", 'base64 -d']);
    expect(splitCommands('a && b; c || d')).toEqual(['a', 'b', 'c', 'd']);
    expect(splitCommands("echo '$(not run)' | x")).toEqual(["echo '$(not run)'", 'x']);
  });

  it('derives the evidence: key, flags, paths; assignments, export and interpreters dropped', () => {
    expect(evidenceFor('kubectl apply -k deploy/samples/ -n default --server-side')).toEqual({ key: ['kubectl', 'apply'], flags: ['--server-side'], paths: ['deploy/samples/'] });
    expect(evidenceFor('npm run dev')).toEqual({ key: ['npm', 'run', 'dev'], flags: [], paths: [] });
    expect(evidenceFor('npm test -- --project unit')).toEqual({ key: ['npm', 'test'], flags: ['--project'], paths: [] });
    expect(evidenceFor('BASE_IMAGE=x bash scripts/build-image.sh')).toEqual({ key: ['scripts/build-image.sh'], flags: [], paths: ['scripts/build-image.sh'] });
    expect(evidenceFor('export KUBECONFIG=$PWD/.dev/cluster/kubeconfig')).toBeUndefined();
    expect(evidenceFor('TOKEN=$SUB')).toBeUndefined();
  });

  it('finds a key as written or as quoted argv items', () => {
    expect(keyFound(['kubectl', 'apply'], runner)).toBe(true);
    expect(keyFound(['src/cli.ts', 'operator'], runner)).toBe(true);
    expect(keyFound(['kubectl', 'delete'], runner)).toBe(false);
  });

  it('passes a correctly annotated block', () => {
    const ok = block(
      [
        'kubectl apply -k deploy/                  # the operator',
        'kubectl apply -k deploy/samples/ -n default --server-side',
        'node src/cli.ts operator --kubeconfig "$KUBECONFIG" \\',
        '  --leader-elect false',
        'bash scripts/build-image.sh',
      ].join('\n'),
    );
    expect(checkShBlock(ok, files)).toEqual([]);
  });

  it('fails a made-up command, a made-up flag or path, a missing or wrong annotation', () => {
    expect(checkShBlock(block('kubectl frobnicate evl'), files)).toEqual([
      'block at line 3: "kubectl frobnicate" (from `kubectl frobnicate evl`) appears in none of test/integration/x.test.ts',
    ]);
    expect(checkShBlock(block('kubectl apply -k deploy/ --prune'), files)).toHaveLength(1);
    expect(checkShBlock(block('kubectl apply -f deploy/other.yaml'), files)).toHaveLength(1);
    expect(checkShBlock(block('TOKEN=$(kubectl get secret t)'), files)).toHaveLength(1);
    expect(checkShBlock(block('kubectl apply -k deploy/', null), files)).toEqual(['block at line 2: no <!-- tested-by: ... --> comment right before it']);
    expect(checkShBlock(block('kubectl apply -k deploy/', 'test/integration/missing.test.ts'), files)).toEqual([
      'block at line 3: tested-by test/integration/missing.test.ts: no such file',
      'block at line 3: "kubectl apply" (from `kubectl apply -k deploy/`) appears in none of test/integration/missing.test.ts',
      'block at line 3: deploy/ (from `kubectl apply -k deploy/`) appears in none of test/integration/missing.test.ts',
    ]);
    expect(checkShBlock(block('npm test', 'docs/api.md'), files)[0]).toMatch(/not a test under test\//);
  });

  it('reads the conditions table, continuing the type over empty cells', () => {
    const md = 'x\n| Type | Status | Reason | Meaning |\n|---|---|---|---|\n| `Ready` | True | `LogAvailable` | up |\n| | False | `PodPending` | no pod |\n\nafter';
    expect(conditionRows(md)).toEqual([
      { type: 'Ready', reason: 'LogAvailable' },
      { type: 'Ready', reason: 'PodPending' },
    ]);
  });
});

// ---------------------------------------------------------------------------
// README.md itself
// ---------------------------------------------------------------------------

describe('README.md', () => {
  const readme = readFileSync(join(repo, 'README.md'), 'utf8');
  const blocks = fencedBlocks(readme);
  const read = (path: string) => (existsSync(join(repo, path)) ? readFileSync(join(repo, path), 'utf8') : undefined);

  it('has runnable sh blocks, each one run by the files its tested-by comment names', () => {
    const sh = blocks.filter((b) => b.lang === 'sh');
    expect(sh.length).toBeGreaterThan(0);
    expect(sh.flatMap((b) => checkShBlock(b, read))).toEqual([]);
  });

  it('uses only sh, text, yaml and ts blocks (runnable commands go in sh)', () => {
    const langs = new Set(blocks.map((b) => b.lang));
    expect([...langs].filter((l) => !['sh', 'text', 'yaml', 'ts'].includes(l))).toEqual([]);
  });

  it('lists every condition type and reason exported from src/api/eventlog.ts, and no other', () => {
    const expected = Object.entries(ConditionReasons).flatMap(([type, reasons]) => Object.values(reasons).map((reason) => ({ type, reason })));
    const key = (r: { type: string; reason: string }) => `${r.type}/${r.reason}`;
    expect(conditionRows(readme).map(key).sort()).toEqual(expected.map(key).sort());
  });

  it('names every spec field and every kubectl get column', () => {
    for (const field of Object.keys(EventLogSpecSchema.shape)) expect(readme, `spec.${field}`).toContain(`\`${field}`);
    for (const column of PRINTER_COLUMNS) expect(readme, `column ${column.name}`).toContain(column.name);
  });

  it('shows only EventLog manifests the operator accepts', () => {
    const manifests = blocks
      .filter((b) => b.lang === 'yaml')
      .flatMap((b) => parseAllDocuments(b.body.join('\n')).map((d) => d.toJSON() as { kind?: string } | null))
      .filter((m) => m?.kind === KIND);
    expect(manifests.length).toBeGreaterThan(0);
    for (const m of manifests) {
      const r = parseEventLog(m);
      expect(r.success, r.success ? '' : r.error).toBe(true);
    }
  });
});
