// A stand-in for nvidia-smi that answers from files (recorded real answers), swapped while a test runs.
import { chmod, copyFile, mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const SMI_FIXTURES = new URL('../../../test/fixtures/nvidia-smi/', import.meta.url).pathname;

export interface FakeSmi {
  /** The executable, for gpu.nvidiaSmi. */
  bin: string;
  /** Answers from now on with these recorded files (paths under test/fixtures/nvidia-smi). */
  answer(gpuFixture: string, appsFixture: string): Promise<void>;
  /** Answers the compute-apps query with this text from now on. */
  apps(text: string): Promise<void>;
}

export async function fakeSmi(root: string): Promise<FakeSmi> {
  const dir = join(root, 'smi');
  await mkdir(dir, { recursive: true });
  const bin = join(dir, 'nvidia-smi');
  await writeFile(
    bin,
    `#!/bin/sh\ncase "$1" in\n  --query-gpu=*) cat ${dir}/gpu.txt ;;\n  --query-compute-apps=*) cat ` +
      `${dir}/apps.txt ;;\n  *) exit 2 ;;\nesac\n`,
  );
  await chmod(bin, 0o755);
  return {
    bin,
    async answer(gpu, apps) {
      await copyFile(join(SMI_FIXTURES, gpu), join(dir, 'gpu.txt'));
      await copyFile(join(SMI_FIXTURES, apps), join(dir, 'apps.txt'));
    },
    async apps(text) {
      // Renamed into place: the fake never answers half a file.
      await writeFile(join(dir, 'apps.txt.new'), text);
      await rename(join(dir, 'apps.txt.new'), join(dir, 'apps.txt'));
    },
  };
}
