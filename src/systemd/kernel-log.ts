// The kernel's messages around a container's death, from the journal (journalctl -k): OOM killer, NVIDIA driver.
import { execFile } from 'node:child_process';

/** Kernel lines that can explain a death; the rest (USB, network, drop_caches, ...) is left out. */
const RELEVANT = /NVRM|Xid|oom-kill|invoked oom-killer|Out of memory|Killed process|NV_ERR_NO_MEMORY/;
/** At most this many lines are kept (quoted in the journal and the state record). */
const KEEP = 20;

interface JournalRecord {
  MESSAGE?: string | number[];
  SYSLOG_IDENTIFIER?: string;
}

function messageOf(r: JournalRecord): string {
  const m = Array.isArray(r.MESSAGE) ? Buffer.from(r.MESSAGE).toString('utf8') : (r.MESSAGE ?? '');
  // A line written through /dev/kmsg has its "NVRM:" taken as the identifier by journald: put it back.
  const id = r.SYSLOG_IDENTIFIER;
  return id && id !== 'kernel' && !m.startsWith(`${id}:`) ? `${id}: ${m}` : m;
}

/** Parses `journalctl -o json` output into the relevant lines, last KEEP of them. */
export function relevantKernelLines(json: string): string[] {
  const out: string[] = [];
  for (const line of json.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const m = messageOf(JSON.parse(line) as JournalRecord);
      if (RELEVANT.test(m)) out.push(m);
    } catch {
      // a cut line: skipped
    }
  }
  return out.slice(-KEEP);
}

/**
 * The kernel's relevant messages between `sinceMs` and `untilMs` (this boot), or [] when the
 * journal cannot be read (no journalctl, no permission): the diagnosis then goes on without them.
 */
export function kernelMessages(sinceMs: number, untilMs: number, bin = 'journalctl'): Promise<string[]> {
  const at = (ms: number) => `@${Math.floor(ms / 1000)}`;
  const args = ['-k', '-q', '-o', 'json', '--no-pager', '--since', at(sinceMs), '--until', at(untilMs + 999)];
  return new Promise((resolve) => {
    execFile(bin, args, { timeout: 5000, maxBuffer: 8 << 20 }, (err, stdout) => {
      resolve(err && !stdout ? [] : relevantKernelLines(stdout));
    });
  });
}

/** Whether an exit calls for the kernel's account: killed (137), OOM-killed, or a CUDA error in the log. */
export function wantsKernel(code: number | null, oom: boolean, tail: string): boolean {
  return code === 137 || oom || /CUDA error|cudaError|CUDA_ERROR|Xid/.test(tail);
}
