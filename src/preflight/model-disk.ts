// The model's folder in the Hugging Face cache, measured: bytes so far, blobs still downloading, complete or not.
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DiskSample } from '../core/model/events.js';
import { modelCacheDir } from './facts.js';

/** More blobs than a model has: a folder that is not what it seems is not read without end. */
const MAX_BLOBS = 10_000;

/**
 * huggingface_hub's layout: `blobs/<hash>` (`<hash>.incomplete` while it downloads), `refs/main` (the
 * revision), `snapshots/<revision>/<file>` (links into blobs). Complete: the revision's snapshot has
 * files and no blob is still incomplete.
 */
export async function modelDisk(hfDir: string, modelId: string): Promise<DiskSample> {
  const dir = modelCacheDir(hfDir, modelId);
  let names: string[];
  try {
    names = (await readdir(join(dir, 'blobs'))).slice(0, MAX_BLOBS);
  } catch {
    return { bytes: 0, incomplete: 0, complete: false };
  }
  const sizes = await Promise.all(
    names.map((n) =>
      lstat(join(dir, 'blobs', n)).then(
        (st) => (st.isFile() ? st.size : 0),
        () => 0,
      ),
    ),
  );
  const bytes = sizes.reduce((a, b) => a + b, 0);
  const incomplete = names.filter((n) => n.endsWith('.incomplete')).length;
  return { bytes, incomplete, complete: incomplete === 0 && (await snapshotHasFiles(dir)) };
}

async function snapshotHasFiles(dir: string): Promise<boolean> {
  try {
    const rev = (await readFile(join(dir, 'refs', 'main'), 'utf8')).trim();
    if (!/^[0-9a-f]{40}$/.test(rev)) return false;
    return (await readdir(join(dir, 'snapshots', rev))).length > 0;
  } catch {
    return false;
  }
}
