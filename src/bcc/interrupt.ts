// Ctrl-C as BCC's Python programs see it. Python turns SIGINT into a
// KeyboardInterrupt raised where the program is waiting (trace_print,
// perf_buffer_poll, sleep), and BCC's tools catch it to print their summary
// or exit. Here, while a BPF object is alive, SIGINT rejects the pending
// blocking call (or the next one) with KeyboardInterrupt; a second SIGINT
// that nobody took exits the process (everything is detached on exit).
import { KeyboardInterrupt } from "./errors.ts";

const waiters = new Set<(err: KeyboardInterrupt) => void>();
let pending = false;
let holders = 0;

function onSigint(): void {
  if (waiters.size > 0) {
    pending = false;
    for (const wake of [...waiters]) wake(new KeyboardInterrupt());
    return;
  }
  if (pending) process.exit(130); // the second Ctrl-C that nothing waited for
  pending = true;
}

/** Keeps the SIGINT handler installed until the returned function is called. */
export function holdInterrupts(): () => void {
  if (holders++ === 0) process.on("SIGINT", onSigint);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--holders === 0) {
      process.off("SIGINT", onSigint);
      pending = false;
    }
  };
}

/**
 * Runs `work`, rejecting with KeyboardInterrupt when SIGINT arrives before it
 * finishes (its signal is then aborted so it can stop), or at once when a
 * SIGINT arrived since the last blocking call.
 */
export async function interruptible<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  if (pending) {
    pending = false;
    throw new KeyboardInterrupt();
  }
  const release = holdInterrupts();
  const controller = new AbortController();
  let interrupt!: (err: KeyboardInterrupt) => void;
  const interrupted = new Promise<never>((_, reject) => {
    interrupt = (err) => {
      reject(err); // first: the race must settle with the interrupt, not with work the abort ends
      controller.abort();
    };
  });
  waiters.add(interrupt);
  const running = work(controller.signal);
  running.catch(() => {}); // once interrupted, how the work ends is of no interest
  try {
    return await Promise.race([running, interrupted]);
  } finally {
    waiters.delete(interrupt);
    release();
  }
}

/**
 * Python's time.sleep(seconds) for ported BCC tools: resolves after `seconds`,
 * or rejects with KeyboardInterrupt on Ctrl-C (`sleep(99999999)` then printing
 * a histogram is the usual pattern).
 */
export function sleep(seconds: number): Promise<void> {
  return interruptible(
    (signal) =>
      new Promise<void>((resolve) => {
        // setTimeout takes at most 2^31-1 ms; longer sleeps are chained.
        const until = Date.now() + Math.max(0, seconds * 1000);
        let timer: NodeJS.Timeout;
        const arm = () => {
          const left = until - Date.now();
          if (left <= 0) return resolve();
          timer = setTimeout(arm, Math.min(left, 2 ** 31 - 1));
        };
        arm();
        signal.addEventListener("abort", () => {
          clearTimeout(timer);
          resolve();
        });
      }),
  );
}
