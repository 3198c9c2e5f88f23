// What every process tells of itself in its load report and `xfarm status`
// row (protocol §1.6): its PID, host, memory, CPU and event-loop delay.
import os from "node:os";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";

export interface ProcessFigures {
  pid: number;
  host: string;
  /** Resident set size, bytes. */
  rss: number;
  /** V8 heap used, bytes. */
  heap: number;
  /** CPU time over the period since the last sample, as a fraction of one core (1.5: one and a half cores busy). */
  cpu: number;
  /** When the process started, ms since the epoch. */
  started: number;
  /** Event-loop delay, 99th percentile over the period, ms. */
  lag: number;
}

/** Samples this process: each sample's CPU and lag cover the period since the one before. */
export class ProcessSampler {
  private readonly delay = monitorEventLoopDelay({ resolution: 10 });
  private lastCpu = process.cpuUsage();
  private lastAt = performance.now();

  constructor(readonly started = Date.now()) {
    this.delay.enable();
  }

  sample(): ProcessFigures {
    const now = performance.now();
    const cpu = process.cpuUsage(this.lastCpu);
    const elapsedUs = (now - this.lastAt) * 1000;
    this.lastCpu = process.cpuUsage();
    this.lastAt = now;
    const lag = Math.round(this.delay.percentile(99) / 1e6);
    this.delay.reset();
    const memory = process.memoryUsage();
    return {
      pid: process.pid,
      host: os.hostname(),
      rss: memory.rss,
      heap: memory.heapUsed,
      // Two decimals: a report says "37 %", not a float's noise.
      cpu: elapsedUs > 0 ? Math.round(((cpu.user + cpu.system) / elapsedUs) * 100) / 100 : 0,
      started: this.started,
      lag,
    };
  }

  stop(): void {
    this.delay.disable();
  }
}
