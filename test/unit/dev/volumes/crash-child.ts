/**
 * Helper process for loopfs.test.ts: creates and mounts a volume, writes a file,
 * prints "ready <device>" and waits to be killed (a crashed run's leftovers).
 * Usage: node crash-child.ts <image> <mountPoint> <registryDir>
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LoopVolume } from '../../../../dev/volumes/loopfs.ts';

const [image, mountPoint, registryDir] = process.argv.slice(2);
if (!image || !mountPoint || !registryDir) throw new Error('usage: crash-child.ts <image> <mountPoint> <registryDir>');
const vol = await LoopVolume.create({ image, mountPoint, bytes: 8n * 1024n * 1024n, registryDir });
await writeFile(join(mountPoint, 'data.txt'), 'before the crash\n');
process.stdout.write(`ready ${vol.device}\n`);
setInterval(() => undefined, 60_000);
