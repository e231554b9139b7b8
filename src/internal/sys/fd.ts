import { close as closeOnThreadPool } from "node:fs";
import { native } from "./native.ts";

// Closes descriptors whose owner was garbage-collected without being disposed:
// a safety net, not the mechanism (dispose is).
const leaked = new FinalizationRegistry<number>((fd) => {
  try {
    native().close(fd);
  } catch {
    // Nothing useful to do with an error from a finalizer.
  }
});

/** An owned file descriptor: closed once, by `close()`, `closeAsync()` or `Symbol.dispose`. */
export class FD implements Disposable {
  #fd: number;

  constructor(fd: number) {
    if (!Number.isInteger(fd) || fd < 0) throw new Error(`invalid file descriptor ${fd}`);
    this.#fd = fd;
    leaked.register(this, fd, this);
  }

  /** The descriptor number; throws once closed so a stale number is never reused. */
  get value(): number {
    if (this.#fd < 0) throw new Error("file descriptor used after close");
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    leaked.unregister(this);
    native().close(fd);
  }

  /**
   * Closes on libuv's thread pool. For descriptors whose close blocks in the kernel: a
   * tracepoint's perf event waits for RCU grace periods (about 50 ms), and several closed
   * at once share the wait instead of queueing for one each.
   */
  closeAsync(): Promise<void> {
    if (this.#fd < 0) return Promise.resolve();
    const fd = this.#fd;
    this.#fd = -1;
    leaked.unregister(this);
    return new Promise((resolve, reject) => closeOnThreadPool(fd, (err) => (err ? reject(err) : resolve())));
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
