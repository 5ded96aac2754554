// The kernel's account of a death the container's log cannot give: the OOM killer, the NVIDIA driver's Xid errors.
import type { FailureInput, Found } from '../model/diagnosis.js';
import { capLine, quoteLine } from './log-lines.js';

/**
 * NVIDIA's Xid catalogue (docs.nvidia.com/deploy/xid-errors), the ones a model server meets: what
 * each means, and whether the GPU needs a reset (or the host a reboot) before it works again.
 */
export const XIDS: Readonly<Record<number, { meaning: string; reset?: boolean }>> = {
  13: { meaning: 'graphics engine exception (an out-of-range access by the program)' },
  31: { meaning: 'GPU memory page fault (an invalid address used by the program or the driver)' },
  32: { meaning: 'invalid or corrupted push buffer stream' },
  38: { meaning: 'driver firmware error', reset: true },
  43: { meaning: 'GPU stopped processing (the program hit a fault; other programs go on)' },
  44: { meaning: 'graphics engine fault during context switch', reset: true },
  45: { meaning: 'preemptive cleanup after an earlier error (the processes using the GPU were ended)' },
  48: { meaning: 'double-bit ECC error', reset: true },
  61: { meaning: 'internal micro-controller breakpoint/warning', reset: true },
  62: { meaning: 'internal micro-controller halt', reset: true },
  63: { meaning: 'ECC page retirement or row remapping recorded' },
  64: { meaning: 'ECC page retirement or row remapping failure', reset: true },
  68: { meaning: 'video processor exception' },
  69: { meaning: 'graphics engine class error' },
  74: { meaning: 'NVLink error', reset: true },
  79: { meaning: 'GPU has fallen off the bus', reset: true },
  92: { meaning: 'high single-bit ECC error rate' },
  94: { meaning: 'contained ECC error (the affected program must restart)' },
  95: { meaning: 'uncontained ECC error', reset: true },
  109: { meaning: 'context switch timeout' },
  119: { meaning: 'GSP RPC timeout (the GPU firmware stopped answering)', reset: true },
  120: { meaning: 'GSP firmware error', reset: true },
  121: { meaning: 'C2C link error (the CPU-GPU link of a Grace system)', reset: true },
  140: { meaning: 'unrecovered ECC error', reset: true },
  154: { meaning: 'GPU recovery action changed: the GPU needs a reset or the host a reboot', reset: true },
};

// Bounded parts between literals only, like the diagnosis table's (a kernel line is at most 1 KiB,
// but a container can write /dev/kmsg where it is given): timed by test/unit/hostile.test.ts.

/** `NVRM: Xid (PCI:0000:01:00): 79, pid=1234, name=python3, GPU has fallen off the bus.` */
const XID = /NVRM: Xid \(([^)]{0,64})\): (\d{1,4}),/;
/** `python3 invoked oom-killer: ...`, `Out of memory: Killed process 1234 (python3) ...`, a cgroup's. */
const OOM = /invoked oom-killer|Out of memory: Killed process|Memory cgroup out of memory: Killed process|oom-kill:/;
/**
 * The driver refusing an allocation: `NVRM: ... Out of memory [NV_ERR_NO_MEMORY]`. Only the driver
 * says NV_ERR_NO_MEMORY; what stands between its tag and the code is not read (`NVRM: .*` would be).
 */
const NV_NOMEM = /\bNV_ERR_NO_MEMORY\b/;
/** The OOM killer's victim: `Killed process 1234 (python3)`. */
const VICTIM = /Killed process (\d{1,10}) \(([^)]{1,64})\)/;
/** A memory cgroup's limit (oom_memcg= names a cgroup other than the root), not the host running out. */
const CGROUP = /Memory cgroup out of memory|oom_memcg=\/(?!,)\S/;

function last(lines: readonly string[], re: RegExp): { line: string; m: RegExpMatchArray } | undefined {
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = (lines[i] ?? '').match(re);
    if (m) return { line: lines[i] ?? '', m };
  }
  return undefined;
}

/** What the kernel's messages around an exit say, if they explain it. */
export function kernelFinding(lines: readonly string[], f: FailureInput): Found | undefined {
  const kernel = lines.map(capLine);
  const xid = last(kernel, XID);
  if (xid) {
    const n = Number(xid.m[2]);
    const known = XIDS[n];
    const meaning = known?.meaning ?? 'see docs.nvidia.com/deploy/xid-errors';
    return {
      code: 'gpu-xid',
      summary: `the NVIDIA driver reported Xid ${n} on ${xid.m[1]}: ${meaning}`,
      remedy: known?.reset
        ? `the GPU needs a reset before it works again: stop GPU work and run \`nvidia-smi -r\`, or reboot the host; ` +
          `if Xid ${n} repeats, the hardware may be at fault (nvidia-bug-report.sh)`
        : `restarted automatically; if Xid ${n} repeats, update the driver and the image, and collect ` +
          'nvidia-bug-report.sh',
      evidence: quoteLine(xid.line),
    };
  }
  const oom = last(kernel, OOM);
  if (oom) {
    const all = kernel.join('\n');
    const victim = VICTIM.exec(all);
    const who = victim ? `${victim[2]} (pid ${victim[1]})` : 'the model';
    const cgroup = CGROUP.test(all);
    return {
      code: 'host-oom',
      summary: cgroup
        ? `a memory limit (cgroup) was reached and the kernel's OOM killer ended ${who}`
        : `the host ran out of memory and the kernel's OOM killer ended ${who}: on unified memory (the GB10) ` +
          "the GPU's memory is the host's",
      remedy:
        `lower model.gpuMemoryUtilization (now ${f.utilization}) or model.maxModelLen (now ${f.maxModelLen}), and ` +
        'stop other large processes; the restart waits for the memory to come back',
      evidence: quoteLine(oom.line),
    };
  }
  const nomem = last(kernel, NV_NOMEM);
  if (nomem) {
    return {
      code: 'host-oom',
      summary: 'the NVIDIA driver could not allocate memory (NV_ERR_NO_MEMORY)',
      remedy: `lower model.gpuMemoryUtilization (now ${f.utilization}) and stop other large processes`,
      evidence: quoteLine(nomem.line),
    };
  }
  return undefined;
}
