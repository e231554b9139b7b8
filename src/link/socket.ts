// Socket filters: SO_ATTACH_BPF on a socket the caller has, and BCC's
// attach_raw_socket: an AF_PACKET raw socket bound to an interface with the
// filter on it, whose fd Node reads (fs.readSync on the fd; libuv's net.Socket
// takes only TCP, UDP and Unix sockets, so AF_PACKET is read with a poll watcher).
import { readSync } from "node:fs";
import { native, type FdWatcher } from "../internal/sys/native.ts";
import { FD } from "../internal/sys/fd.ts";
import { wrapSyscallError } from "../internal/sys/errors.ts";
import { AttachError } from "./errors.ts";
import { Link, type AttachableProgram } from "./link.ts";
import { ifindexOf, ifnameOf } from "./netdev.ts";

const SOL_SOCKET = 1;
const SO_ATTACH_BPF = 50;
const SO_DETACH_BPF = 27;
const AF_PACKET = 17;
const SOCK_RAW = 3;
const SOCK_NONBLOCK = 0o4000;
export const ETH_P_ALL = 0x0003;

function int(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, v, true);
  return b;
}

/** Puts `prog` on an open socket (SO_ATTACH_BPF); closing the link detaches it (SO_DETACH_BPF). */
export function attachSocketFilter(prog: AttachableProgram, fd: number): Link {
  try {
    native().setsockopt(fd, SOL_SOCKET, SO_ATTACH_BPF, int(prog.fd.value));
  } catch (err) {
    const e = wrapSyscallError(err, "setsockopt", `attach socket filter ${prog.name} to fd ${fd}`);
    throw new AttachError(e.message, { cause: e, hook: "socket", target: `fd ${fd}`, reason: e.code === "ENOTSOCK" ? "not a socket" : e.message });
  }
  const detach = (): void => {
    try {
      native().setsockopt(fd, SOL_SOCKET, SO_DETACH_BPF, int(0));
    } catch {
      // The socket is closed already: its filter went with it.
    }
  };
  return new Link(`socket:fd ${fd}`, undefined, [], [detach]);
}

/**
 * A raw packet socket on one interface (all protocols, non-blocking) with a socket
 * filter on it: what the filter keeps can be read from `fd`. Closing it ends the filter.
 */
export class RawSocket implements Disposable {
  readonly fd: FD;
  readonly ifindex: number;
  readonly interface: string;
  #buf = Buffer.alloc(65536);
  #watcher: FdWatcher | undefined;

  constructor(prog: AttachableProgram, dev: string | number) {
    this.ifindex = ifindexOf(dev);
    this.interface = ifnameOf(dev);
    let raw: number;
    try {
      // Protocol 0: no packet is queued until bind names ETH_P_ALL, after the filter is on.
      raw = native().socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, 0);
    } catch (err) {
      throw wrapSyscallError(err, "socket", "open an AF_PACKET raw socket");
    }
    this.fd = new FD(raw);
    try {
      // The filter goes on before bind, so no packet reaches the socket unfiltered
      // (a socket opened with ETH_P_ALL would queue packets from socket() on).
      native().setsockopt(raw, SOL_SOCKET, SO_ATTACH_BPF, int(prog.fd.value));
      const sll = new Uint8Array(20); // sockaddr_ll: family, protocol (big-endian), ifindex
      const v = new DataView(sll.buffer);
      v.setUint16(0, AF_PACKET, true);
      v.setUint16(2, ETH_P_ALL, false);
      v.setInt32(4, this.ifindex, true);
      native().bind(raw, sll);
    } catch (err) {
      this.fd.close();
      const e = wrapSyscallError(err, "setsockopt", `attach socket filter ${prog.name} to a raw socket on ${this.interface}`);
      throw new AttachError(e.message, { cause: e, hook: "socket", target: this.interface, reason: e.message });
    }
  }

  /** The next packet (from its Ethernet header on), or undefined when none is waiting. */
  read(): Buffer | undefined {
    try {
      const n = readSync(this.fd.value, this.#buf);
      return Buffer.from(this.#buf.subarray(0, n));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EAGAIN") return undefined;
      throw err;
    }
  }

  /** Packets as they come, until `signal` aborts or the socket is closed. */
  async *packets(signal?: AbortSignal): AsyncGenerator<Buffer> {
    for (;;) {
      let pkt: Buffer | undefined;
      while ((pkt = this.read())) yield pkt;
      if (signal?.aborted || this.fd.closed) return;
      await new Promise<void>((resolve) => {
        const onAbort = (): void => done();
        const done = (): void => {
          this.#watcher?.stop();
          signal?.removeEventListener("abort", onAbort);
          resolve();
        };
        this.#watcher ??= native().watch(this.fd.value, () => done());
        this.#watcher.start(true, false);
        signal?.addEventListener("abort", onAbort, { once: true });
      });
    }
  }

  close(): void {
    this.#watcher?.close();
    this.fd.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** BCC's attach_raw_socket: a raw socket on `dev` with `prog` filtering it. */
export function openRawSocket(prog: AttachableProgram, dev: string | number): RawSocket {
  return new RawSocket(prog, dev);
}
