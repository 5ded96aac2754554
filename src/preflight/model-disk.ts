// The model's folder in the Hugging Face cache, measured: bytes so far, blobs still downloading, complete or not.
//
// The cache is the model container's to write (read-write, and its root is root here too): what is
// there may be a FIFO, or a link out of the cache. So every folder is opened beneath the cache's
// root without following a link (`openDirBeneath`), blobs are measured with lstat, and `refs/main`
// is read as a regular file only, never through a link, at most a few bytes, without blocking.
import { lstat, opendir, readdir } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import type { DiskSample } from '../core/model/events.js';
import { inDir, readCapped, withDirBeneath } from '../util/read-capped.js';
import { modelCacheParts } from './facts.js';

/** More blobs than a model has: a folder that is not what it seems is not read without end. */
const MAX_BLOBS = 10_000;
/** `refs/main` holds a 40-character revision. */
const MAX_REF_BYTES = 256;

const NOTHING: DiskSample = { bytes: 0, incomplete: 0, complete: false };

/**
 * huggingface_hub's layout: `blobs/<hash>` (`<hash>.incomplete` while it downloads), `refs/main` (the
 * revision), `snapshots/<revision>/<file>` (links into blobs). Complete: the revision's snapshot has
 * files and no blob is still incomplete.
 */
export function modelDisk(hfDir: string, modelId: string): Promise<DiskSample> {
  return withDirBeneath(hfDir, modelCacheParts(modelId), NOTHING, async (model) => {
    const blobs = await withDirBeneath(model, ['blobs'], undefined, async (dir) => {
      const names: string[] = [];
      for await (const e of await opendir(inDir(dir))) if (names.push(e.name) >= MAX_BLOBS) break;
      const sizes = await Promise.all(
        names.map((n) =>
          lstat(inDir(dir, n)).then(
            (st) => (st.isFile() ? st.size : 0),
            () => 0,
          ),
        ),
      );
      return { names, bytes: sizes.reduce((a, b) => a + b, 0) };
    });
    if (!blobs) return NOTHING;
    const incomplete = blobs.names.filter((n) => n.endsWith('.incomplete')).length;
    return { bytes: blobs.bytes, incomplete, complete: incomplete === 0 && (await snapshotHasFiles(model)) };
  });
}

async function snapshotHasFiles(model: FileHandle): Promise<boolean> {
  const ref = await withDirBeneath(model, ['refs'], undefined, (refs) =>
    readCapped(inDir(refs, 'main'), MAX_REF_BYTES, { noFollow: true }),
  );
  const rev = ref?.ok ? ref.data.toString('utf8').trim() : '';
  if (!/^[0-9a-f]{40}$/.test(rev)) return false;
  return withDirBeneath(model, ['snapshots', rev], false, async (snap) => (await readdir(inDir(snap))).length > 0);
}
