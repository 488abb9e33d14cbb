/**
 * Write crds/eventlog.dev_eventlogs.yaml from the zod schemas (src/api/eventlog.ts).
 *
 *   node scripts/generate-crd.ts           # write the file
 *   node scripts/generate-crd.ts --check   # exit 1 if the committed file is stale
 */
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CRD_FILE, renderCrdYaml } from '../src/api/crd.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const target = resolve(root, CRD_FILE);
const yaml = renderCrdYaml();

if (process.argv.includes('--check')) {
  const current = await readFile(target, 'utf8').catch(() => '');
  if (current !== yaml) {
    process.stderr.write(`${CRD_FILE} is stale; run: npm run generate:crd\n`);
    process.exit(1);
  }
  process.stdout.write(`${CRD_FILE} is up to date\n`);
} else {
  await mkdir(dirname(target), { recursive: true });
  await writeFile(target, yaml);
  process.stdout.write(`wrote ${CRD_FILE}\n`);
}
