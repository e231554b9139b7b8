// Reading trace_pipe (bpf_printk output, trace_marker writes, trace events)
// without blocking the event loop or a threadpool thread: the fd is
// non-blocking and readiness comes from a libuv poll watcher.
import { closeSync, constants, openSync, readdirSync, readFileSync, readlinkSync, readSync } from "node:fs";
import { join } from "node:path";
import { native, type FdWatcher } from "../internal/sys/native.ts";
import { parseTraceLine, type TraceLine } from "./trace-line.ts";
import { tracefsDir } from "./tracefs.ts";

export interface TracePipeOptions {
  /** Aborting ends the iteration cleanly (no AbortError) and closes the pipe. */
  signal?: AbortSignal;
}

/** Reads per readiness callback, so a flood of trace output cannot starve the event loop. */
const MAX_READS_PER_WAKEUP = 64;

type Waiter = { resolve: (result: IteratorResult<TraceLine>) => void; reject: (error: unknown) => void };

const DONE: IteratorResult<TraceLine> = { value: undefined, done: true };

class TracePipe implements AsyncIterableIterator<TraceLine> {
  #fd = -1;
  #watcher: FdWatcher | undefined;
  #watching = false;
  #closed = false;
  #error: { error: unknown } | undefined;
  #lines: TraceLine[] = [];
  #waiters: Waiter[] = [];
  #partial = "";
  #decoder = new TextDecoder();
  #buffer = Buffer.alloc(64 * 1024);
  #signal: AbortSignal | undefined;
  #onAbort = (): void => this.#close();

  constructor(options: TracePipeOptions) {
    this.#signal = options.signal;
    if (this.#signal?.aborted) {
      this.#closed = true;
      return;
    }
    const path = join(tracefsDir(), "trace_pipe");
    try {
      this.#fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      let hint = "";
      if (code === "EACCES" || code === "EPERM") hint = " (reading trace_pipe needs root)";
      else if (code === "EBUSY") {
        const holders = tracePipeHolders();
        hint =
          " (since Linux 6.6 trace_pipe has one reader at a time; it is open in " +
          (holders.length > 0 ? holders.join(", ") : "another process") +
          ")";
      }
      throw Object.assign(new Error(`tsbpf: cannot open ${path}: ${code ?? String(error)}${hint}`, { cause: error }), {
        code,
      });
    }
    try {
      this.#watcher = native().watch(this.#fd, (status) => this.#onReady(status));
    } catch (error) {
      closeSync(this.#fd);
      this.#fd = -1;
      throw error;
    }
    this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<TraceLine>> {
    const line = this.#lines.shift();
    if (line !== undefined) return Promise.resolve({ value: line, done: false });
    if (this.#error) {
      const { error } = this.#error;
      this.#error = undefined;
      return Promise.reject(error);
    }
    if (this.#closed) return Promise.resolve(DONE);
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      this.#watch(true);
    });
  }

  /** Ends the iteration (`break` in `for await` calls this) and closes the pipe. */
  return(): Promise<IteratorResult<TraceLine>> {
    this.#close();
    return Promise.resolve(DONE);
  }

  #watch(on: boolean): void {
    if (on === this.#watching || this.#closed) return;
    if (on) this.#watcher!.start(true, false);
    else this.#watcher!.stop();
    this.#watching = on;
  }

  #onReady(status: number): void {
    if (this.#closed) return;
    if (status < 0) {
      const error = Object.assign(new Error(`tsbpf: polling trace_pipe failed (errno ${-status})`), {
        errno: -status,
        syscall: "poll",
      });
      return this.#fail(error);
    }
    try {
      this.#read();
    } catch (error) {
      return this.#fail(error);
    }
    while (this.#waiters.length > 0 && this.#lines.length > 0) {
      this.#waiters.shift()!.resolve({ value: this.#lines.shift()!, done: false });
    }
    // Backpressure: with no one waiting, leave the data in the kernel's buffer.
    if (this.#waiters.length === 0) this.#watch(false);
  }

  /** Read until EAGAIN (or the per-wakeup limit), turning whole lines into TraceLines. */
  #read(): void {
    for (let i = 0; i < MAX_READS_PER_WAKEUP; i++) {
      let n: number;
      try {
        n = readSync(this.#fd, this.#buffer, 0, this.#buffer.length, null);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "EAGAIN" || code === "EWOULDBLOCK") return;
        if (code === "EINTR") continue;
        throw error;
      }
      if (n === 0) return;
      const lines = (this.#partial + this.#decoder.decode(this.#buffer.subarray(0, n), { stream: true })).split("\n");
      this.#partial = lines.pop()!;
      for (const text of lines) {
        const parsed = parseTraceLine(text);
        if (parsed) this.#lines.push(parsed);
      }
    }
  }

  #fail(error: unknown): void {
    const waiter = this.#waiters.shift();
    if (waiter) waiter.reject(error);
    else this.#error = { error };
    this.#close();
  }

  /** Stop watching, close the fd, settle pending next() calls as done. Idempotent. */
  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watching = false;
    this.#signal?.removeEventListener("abort", this.#onAbort);
    // The watcher must let go of the fd before it is closed.
    this.#watcher?.close();
    this.#watcher = undefined;
    if (this.#fd >= 0) {
      closeSync(this.#fd);
      this.#fd = -1;
    }
    this.#lines = [];
    this.#partial = "";
    for (const waiter of this.#waiters.splice(0)) waiter.resolve(DONE);
  }
}

/** Best effort, for the EBUSY message: "pid N (comm)" of processes with a trace_pipe open. */
function tracePipeHolders(): string[] {
  const holders: string[] = [];
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((name) => /^\d+$/.test(name));
  } catch {
    return holders;
  }
  for (const pid of pids) {
    try {
      const open = readdirSync(`/proc/${pid}/fd`).some((fd) => {
        try {
          return /\/trace_pipe$/.test(readlinkSync(`/proc/${pid}/fd/${fd}`));
        } catch {
          return false;
        }
      });
      if (open) holders.push(`pid ${pid} (${readFileSync(`/proc/${pid}/comm`, "utf8").trim()})`);
    } catch {
      // gone, or not ours to look at
    }
  }
  return holders;
}

/**
 * The lines of tracefs's trace_pipe as they arrive, parsed (lines that are not
 * events, such as `CPU:3 [LOST 12 EVENTS]`, are skipped).
 *
 * trace_pipe is opened when this is called (so errors such as missing
 * permissions throw here) and closed when the iteration ends: on `break` /
 * `return()`, on an error, or when `signal` aborts — an abort ends the
 * iteration cleanly (pending and later `next()` calls return done) rather than
 * throwing an AbortError, since stopping is the normal way to finish tracing.
 *
 * Reading trace_pipe consumes what it reads, system-wide, and since Linux 6.6
 * only one reader may have it open (others get EBUSY, which the error explains,
 * naming the holder): filter for your own lines. The pipe is only read while a `next()`
 * is pending; meanwhile output waits in the kernel's trace buffer.
 */
export function tracePipe(options: TracePipeOptions = {}): AsyncIterableIterator<TraceLine> {
  return new TracePipe(options);
}
