// The loop of BCC's interval-histogram tools (runqlat, biolatency, cpudist...):
// `tool [interval [count]]`, print every `interval` seconds, `count` times, or
// once at Ctrl-C; `-T` puts an "HH:MM:SS" line before each output. Clearing the
// maps between intervals is the tool's job; this module owns only the timing
// and the text around each output, so that every tool prints the same.
import { setTimeout as sleep } from "node:timers/promises";
import { UsageError } from "../errors.ts";

/** BCC's default for an interval or a count that is not given ("forever"). */
export const FOREVER = 99999999;

export interface IntervalArgs {
  /** Seconds between outputs. */
  interval: number;
  /** How many outputs before exiting. */
  count: number;
  /** Whether an interval was given at all (BCC: without one, output only at Ctrl-C). */
  periodic: boolean;
}

function positiveInt(text: string, what: string): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1) throw new UsageError(`${what} must be a positive whole number, got "${text}"`);
  return Number(text);
}

/** BCC's two optional positionals: `[interval [count]]`. */
export function parseIntervalArgs(positionals: readonly string[]): IntervalArgs {
  if (positionals.length > 2) throw new UsageError(`expected at most two arguments, [interval [count]], got ${positionals.length}: ${positionals.join(" ")}`);
  const [i, c] = positionals;
  return {
    interval: i === undefined ? FOREVER : positiveInt(i, "interval"),
    count: c === undefined ? FOREVER : positiveInt(c, "count"),
    periodic: i !== undefined,
  };
}

const two = (n: number) => String(n).padStart(2, "0");

/** strftime("%H:%M:%S") in local time. */
export function clockTime(d: Date = new Date()): string {
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/**
 * What BCC's interval tools print before each histogram: an empty line, then
 * with -T the time ("%-8s\n" of HH:MM:SS).
 */
export function intervalHeader(timestamp: boolean, now: Date = new Date()): string {
  return "\n" + (timestamp ? `${clockTime(now).padEnd(8)}\n` : "");
}

export interface Tick {
  /** 1 for the first output. */
  index: number;
  /** The last output: the count is reached or the run was stopped. */
  last: boolean;
  /** When the interval ended. */
  time: Date;
}

export interface TickOptions {
  /** Seconds between ticks. */
  interval: number;
  /** Ticks before the end (FOREVER: until the signal). */
  count: number;
  /** Ends the wait at once with a last tick (Ctrl-C, -d, a closed pipe). */
  signal?: AbortSignal;
}

/**
 * Yields once per interval, and once more (with last: true) when the signal
 * aborts, as BCC prints what it has at Ctrl-C. Ticks are kept on a fixed
 * schedule from the start, so a slow output does not shift the next one.
 */
export async function* intervalTicks(opts: TickOptions): AsyncGenerator<Tick> {
  const start = Date.now();
  for (let index = 1; index <= opts.count; index++) {
    let stopped = opts.signal?.aborted ?? false;
    if (!stopped) {
      const due = start + index * opts.interval * 1000;
      try {
        // Node's timers hold at most 2^31 - 1 ms (24.8 days): FOREVER takes several.
        for (let wait = due - Date.now(); wait > 0; wait = due - Date.now()) {
          await sleep(Math.min(wait, 2 ** 31 - 1), undefined, { signal: opts.signal });
        }
      } catch (err) {
        if (!opts.signal?.aborted) throw err;
        stopped = true;
      }
    }
    yield { index, last: stopped || index === opts.count, time: new Date() };
    if (stopped) return;
  }
}
