/**
 * vitest globalSetup for the `container` project: builds the project image with
 * scripts/build-image.sh (starts the Docker daemon when root and it is down, makes
 * the local base image when the official one is absent, rebuilds only when the
 * inputs changed) and provides its tag to the tests.
 *
 * No Docker, no container tests: this throws and the run fails loudly. There is
 * no skip.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import type { TestProject } from 'vitest/node';
import { FIELDS } from '../../src/operator/config.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Tag of the image built from the Dockerfile (the operator's default log server image). */
    image: string;
  }
}

const ROOT = resolve(import.meta.dirname, '../..');
/** The operator's default log server image (eventlog:dev) unless EVENTLOG_IMAGE says otherwise. */
const IMAGE = process.env.EVENTLOG_IMAGE ?? FIELDS.defaultImage.default!;

function buildImage(): Promise<void> {
  return new Promise((res, rej) => {
    // Progress goes to our stderr as it happens: a cold build takes minutes.
    const child = spawn('bash', [resolve(ROOT, 'scripts/build-image.sh')], {
      cwd: ROOT,
      env: { ...process.env, EVENTLOG_IMAGE: IMAGE },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.once('error', rej);
    child.once('exit', (code, signal) =>
      code === 0 ? res() : rej(new Error(`scripts/build-image.sh exited with ${code ?? signal} (see its output above)`)),
    );
  });
}

export default async function setup(project: TestProject): Promise<void> {
  try {
    await buildImage();
  } catch (err) {
    throw new Error(`container tests need Docker and the project image ${IMAGE}, and building it failed: ${(err as Error).message}`, { cause: err });
  }
  project.provide('image', IMAGE);
}
