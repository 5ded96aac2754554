// What a pre-start check says: pass, warn or fail, what was found, the fix, and what a start waits for.
import type { WaitReason } from '../model/diagnosis.js';

export type CheckId =
  | 'engine'
  | 'image'
  | 'gpu-runtime'
  | 'encodings'
  | 'huggingface'
  | 'hf-token'
  | 'port'
  | 'gpu-release'
  | 'gpu-memory'
  | 'symlinks'
  | 'last-good'
  | 'exposure';

export interface CheckResult {
  id: CheckId;
  status: 'pass' | 'warn' | 'fail';
  /** One line: what was found. */
  detail: string;
  /** The command or edit that fixes a failure or warning. */
  fix?: string;
  /** What the daemon waits for when this fails before a start. */
  waitFor?: WaitReason;
}
