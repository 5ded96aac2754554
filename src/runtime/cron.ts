// The scheduled jobs' timers: they only say "it is time"; the state machine decides. node-cron works
// out the run times in the reader process (reader/isolated.ts), a day's worth at a time, so that it
// and the ICU time-zone data it needs stay out of the daemon's memory; here they are plain timers.
import { planRuns } from '../reader/isolated.js';
import type { Job } from '../core/model/events.js';

/** Run times planned at a time: a day's worth, and never more than this many. */
const PLAN_COUNT = 1440;
const DAY_MS = 24 * 60 * 60 * 1000;

export class Jobs {
  private timers = new Map<Job, NodeJS.Timeout>();
  private key = '';
  private generation = 0;

  constructor(
    private readonly fire: (job: Job) => void,
    private readonly onError: (message: string) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {}

  /** (Re)arms the timers for this schedule; an unchanged schedule keeps its timers. */
  set(schedule: Record<Job, string | null>): void {
    const wanted: Array<[Job, string | null]> = [
      ['deepProbe', schedule.deepProbe],
      ['maintenanceRestart', schedule.maintenanceRestart],
    ];
    const key = JSON.stringify(wanted);
    if (key === this.key) return;
    this.stop();
    this.key = key;
    for (const [job, expr] of wanted) if (expr) void this.plan(job, expr, this.generation);
  }

  stop(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.key = '';
    this.generation++;
  }

  /** Plans the next runs of `job`, then arms a timer for each in turn; when they run out, plans again. */
  private async plan(job: Job, expr: string, generation: number): Promise<void> {
    const from = this.now();
    let runs: number[] = [];
    // Until when the plan holds: a day, or the last run planned when a day has more than PLAN_COUNT.
    let until = from + 60_000;
    try {
      const all = (await planRuns([expr], from, PLAN_COUNT))[0] ?? [];
      runs = all.filter((t) => t < from + DAY_MS);
      until = all.length >= PLAN_COUNT ? (runs.at(-1) ?? from) : from + DAY_MS;
    } catch (err) {
      this.onError(`${job}: ${(err as Error).message}; trying again in a minute`);
    }
    if (generation !== this.generation) return;
    this.next(job, expr, runs, generation, until);
  }

  private next(job: Job, expr: string, runs: number[], generation: number, until: number): void {
    const now = this.now();
    // Runs whose time has passed while planning or while the process slept are not made up.
    while (runs.length && (runs[0] ?? 0) <= now) runs.shift();
    const at = runs.shift();
    // Out of planned runs: plan again when the plan's window ends.
    const wait = at === undefined ? Math.max(0, until - now) : at - now;
    const timer = setTimeout(() => {
      if (generation !== this.generation) return;
      if (at === undefined) return void this.plan(job, expr, generation);
      this.fire(job);
      this.next(job, expr, runs, generation, until);
    }, wait);
    timer.unref();
    this.timers.set(job, timer);
  }
}
