// What the supervisor can be waiting for before it starts the model, and how the status line names it.
import type { WaitReason } from '../model/diagnosis.js';

const LABELS: Record<WaitReason, string> = {
  docker: 'docker',
  image: 'image',
  encodings: 'encodings',
  huggingface: 'the model cache folder',
  'hf-token': 'a valid HF token',
  model: 'a model the token can read',
  port: 'the port',
  'gpu-memory': 'GPU memory',
  'gpu-release': 'memory to be released',
  'gpu-runtime': 'a GPU runtime in Docker',
  mounts: 'mount paths that lead to folders of their own',
  'stuck-memory': 'memory',
  config: 'a config change',
};

export function waitLabel(w: WaitReason): string {
  return LABELS[w];
}

/** Waits that only a change of the HF token or of model.id can end (Hugging Face refused them). */
export const CREDENTIAL_WAITS: ReadonlySet<WaitReason> = new Set(['hf-token', 'model']);
