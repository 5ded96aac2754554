// The scheduled jobs' timers (node-cron): they only say "it is time"; the state machine decides.
import cron, { type ScheduledTask } from 'node-cron';
import type { Config } from '../config/schema.js';
import type { Job } from '../core/state.js';

export class Jobs {
  private tasks: ScheduledTask[] = [];
  private key = '';

  constructor(private readonly fire: (job: Job) => void) {}

  /** (Re)arms the timers for this schedule; an unchanged schedule keeps its timers. */
  set(schedule: Config['schedule']): void {
    const wanted: Array<[Job, string | null]> = [
      ['deepProbe', schedule.deepProbe.cron],
      ['maintenanceRestart', schedule.maintenanceRestart.cron],
    ];
    const key = JSON.stringify(wanted);
    if (key === this.key) return;
    this.stop();
    this.key = key;
    for (const [job, expr] of wanted) {
      if (!expr) continue;
      // noOverlap: a slow job is never started twice; the machine also refuses overlapping jobs.
      this.tasks.push(cron.schedule(expr, () => this.fire(job), { name: job, noOverlap: true }));
    }
  }

  stop(): void {
    for (const t of this.tasks) void t.destroy();
    this.tasks = [];
    this.key = '';
  }
}
