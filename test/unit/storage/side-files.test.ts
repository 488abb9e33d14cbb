import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/common/logger.ts';
import { pruneSideFiles, sideFileBytes, TORN_KEEP_FILES } from '../../../src/storage/side-files.ts';
import { tempDir } from './helpers.ts';

describe('side files are bounded and counted', () => {
  it('torn/ keeps the newest 32 files within max(1 MiB, 1% of the filesystem), newest always; repair/ keeps the newest 4 repairs', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'torn'));
    for (let i = 0; i < 40; i++) await writeFile(join(dir, 'torn', `00000000000000000001.seg.${i * 10}.${1_700_000_000_000 + i}.bin`), Buffer.alloc(100));
    for (let i = 0; i < 6; i++) {
      await mkdir(join(dir, 'repair', `abcdef0123456789-${1_700_000_000_000 + i}`), { recursive: true });
      await writeFile(join(dir, 'repair', `abcdef0123456789-${1_700_000_000_000 + i}`, 'x.bin'), Buffer.alloc(1000));
    }
    expect(await sideFileBytes(dir)).toBe(40 * 100 + 6 * 1000);
    const removed = await pruneSideFiles(dir, 10 * 1024 * 1024, silentLogger);
    expect(removed).toEqual({ files: 40 - TORN_KEEP_FILES + 2, bytes: 8 * 100 + 2 * 1000 });
    const kept = (await readdir(join(dir, 'torn'))).map((n) => Number(/\.(\d+)\.bin$/.exec(n)![1]) - 1_700_000_000_000).sort((a, b) => a - b);
    expect(kept).toEqual(Array.from({ length: TORN_KEEP_FILES }, (_, i) => i + 8)); // the 8 oldest went
    expect((await readdir(join(dir, 'repair'))).sort()).toEqual([2, 3, 4, 5].map((i) => `abcdef0123456789-${1_700_000_000_000 + i}`));
    expect(await sideFileBytes(dir)).toBe(32 * 100 + 4 * 1000);
  });

  it('the byte cap drops older torn files but always keeps the newest one', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'torn'));
    const MiB = 1024 * 1024;
    await writeFile(join(dir, 'torn', 'a.seg.0.1000.bin'), Buffer.alloc(600 * 1024));
    await writeFile(join(dir, 'torn', 'a.seg.0.2000.bin'), Buffer.alloc(600 * 1024));
    await writeFile(join(dir, 'torn', 'a.seg.0.3000.bin'), Buffer.alloc(2 * MiB));
    await pruneSideFiles(dir, 64 * MiB, silentLogger); // cap 1 MiB (1% of 64 MiB is less)
    expect(await readdir(join(dir, 'torn'))).toEqual(['a.seg.0.3000.bin']);
  });
});
