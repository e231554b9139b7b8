// The native addon against the real kernel: no mocks. Needs root (CAP_BPF,
// CAP_PERFMON) and a built addon (npm install / node-gyp rebuild).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, writeSync, constants } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { fileURLToPath } from "node:url";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { native } from "../../src/internal/sys/native.ts";
import { openFds } from "../support/kernel.ts";

const n = native();
const NATIVE_TS = new URL("../../src/internal/sys/native.ts", import.meta.url).href;

const BPF_MAP_CREATE = 0, BPF_MAP_LOOKUP_ELEM = 1, BPF_MAP_UPDATE_ELEM = 2, BPF_OBJ_GET_INFO_BY_FD = 15;
const BPF_MAP_TYPE_ARRAY = 2, BPF_F_MMAPABLE = 1 << 10;
const PROT_READ = 1, PROT_WRITE = 2;
const PERF_EVENT_IOC_ENABLE = 0x2400, PERF_EVENT_IOC_DISABLE = 0x2401;

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

function fdCount(): number {
  return readdirSync("/proc/self/fd").length;
}

function bpfMapMappings(): number {
  return readFileSync("/proc/self/maps", "utf8").split("\n").filter((l) => l.includes("bpf-map")).length;
}

async function collect(): Promise<void> {
  // Node runs N-API finalizers after GC, from the event loop.
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
}

function createArrayMap(maxEntries = 4): number {
  const attr = new Uint8Array(128);
  const dv = new DataView(attr.buffer);
  dv.setUint32(0, BPF_MAP_TYPE_ARRAY, true);
  dv.setUint32(4, 4, true); // key_size
  dv.setUint32(8, 8, true); // value_size
  dv.setUint32(12, maxEntries, true);
  dv.setUint32(16, BPF_F_MMAPABLE, true);
  return n.bpf(BPF_MAP_CREATE, attr);
}

function elemAttr(fd: number, key: Uint8Array, value: Uint8Array): Uint8Array {
  const attr = new Uint8Array(128);
  const dv = new DataView(attr.buffer);
  dv.setUint32(0, fd, true);
  dv.setBigUint64(8, n.addressOf(key), true);
  dv.setBigUint64(16, n.addressOf(value), true);
  return attr;
}

function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v, true);
  return b;
}

function u64(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  return b;
}

function lookup(fd: number, index: number): bigint {
  const key = u32(index), value = new Uint8Array(8);
  n.bpf(BPF_MAP_LOOKUP_ELEM, elemAttr(fd, key, value));
  return new DataView(value.buffer).getBigUint64(0, true);
}

function update(fd: number, index: number, v: bigint): void {
  const key = u32(index), value = u64(v);
  n.bpf(BPF_MAP_UPDATE_ELEM, elemAttr(fd, key, value));
}

function runChild(code: string, timeoutMs = 10_000, extraArgs: string[] = []) {
  const r = spawnSync(process.execPath, ["--import", "tsx", ...extraArgs, "--input-type=module", "-e", code], {
    encoding: "utf8",
    timeout: timeoutMs,
    killSignal: "SIGKILL",
  });
  return r;
}

test("array map: create, update, lookup; the kernel writes back into the attr", () => {
  const before = openFds();
  const fd = createArrayMap();
  try {
    assert.ok(fd > 2);
    update(fd, 1, 0x1122334455667788n);
    assert.equal(lookup(fd, 1), 0x1122334455667788n);
    assert.equal(lookup(fd, 0), 0n);

    // BPF_OBJ_GET_INFO_BY_FD fills struct bpf_map_info and rewrites info_len in the attr.
    const info = new Uint8Array(256);
    const attr = new Uint8Array(16);
    const dv = new DataView(attr.buffer);
    dv.setUint32(0, fd, true);
    dv.setUint32(4, info.byteLength, true);
    dv.setBigUint64(8, n.addressOf(info), true);
    assert.equal(n.bpf(BPF_OBJ_GET_INFO_BY_FD, attr), 0);
    const written = dv.getUint32(4, true);
    assert.ok(written > 0 && written < info.byteLength, `info_len written back: ${written}`);
    const iv = new DataView(info.buffer);
    assert.equal(iv.getUint32(0, true), BPF_MAP_TYPE_ARRAY);
    assert.equal(iv.getUint32(8, true), 4);
    assert.equal(iv.getUint32(12, true), 8);
    assert.equal(iv.getUint32(16, true), 4);
    assert.equal(iv.getUint32(20, true), BPF_F_MMAPABLE);
  } finally {
    n.close(fd);
  }
  assert.equal(openFds(), before); // kernel objects only: node opens and closes its own fds on its own schedule
});

test("attr passed from a view with a byteOffset uses that view's bytes", () => {
  const fd = createArrayMap();
  try {
    const backing = new Uint8Array(64 + 128);
    const attr = backing.subarray(64);
    const dv = new DataView(attr.buffer, attr.byteOffset);
    const key = u32(2), value = u64(42n);
    dv.setUint32(0, fd, true);
    dv.setBigUint64(8, n.addressOf(key), true);
    dv.setBigUint64(16, n.addressOf(value), true);
    n.bpf(BPF_MAP_UPDATE_ELEM, attr);
    assert.equal(lookup(fd, 2), 42n);
  } finally {
    n.close(fd);
  }
});

test("addressOf: ArrayBuffer, TypedArray and DataView include the byteOffset", () => {
  const ab = new ArrayBuffer(64);
  const base = n.addressOf(ab);
  assert.equal(typeof base, "bigint");
  assert.ok(base > 0n);
  assert.equal(n.addressOf(new Uint8Array(ab)), base);
  assert.equal(n.addressOf(new Uint8Array(ab, 8)), base + 8n);
  assert.equal(n.addressOf(new Uint32Array(ab, 16)), base + 16n);
  assert.equal(n.addressOf(new DataView(ab, 24)), base + 24n);
  const buf = Buffer.alloc(32);
  assert.equal(n.addressOf(buf.subarray(5)), n.addressOf(buf) + 5n);
  assert.throws(() => n.addressOf({} as Uint8Array), TypeError);
});

test("mmap of an mmapable array map shares memory with the kernel; munmap detaches", () => {
  const before = openFds();
  const fd = createArrayMap();
  try {
    update(fd, 1, 0xdeadbeefn);
    const ab = n.mmap(fd, 4096, PROT_READ | PROT_WRITE, 0);
    assert.ok(ab instanceof ArrayBuffer);
    assert.equal(ab.byteLength, 4096);
    const view = new DataView(ab);
    assert.equal(view.getBigUint64(8, true), 0xdeadbeefn);
    view.setBigUint64(24, 77n, true);
    assert.equal(lookup(fd, 3), 77n);

    const bytes = new Uint8Array(ab);
    n.munmap(ab);
    assert.equal(ab.byteLength, 0);
    assert.equal(bytes.byteLength, 0);
    assert.equal(bytes[8], undefined);
    n.munmap(ab); // idempotent
    assert.throws(() => n.munmap(new ArrayBuffer(8)), TypeError);
  } finally {
    n.close(fd);
  }
  assert.equal(openFds(), before); // kernel objects only: node opens and closes its own fds on its own schedule
});

test("mmap errors carry errno and code", () => {
  const fd = createArrayMap();
  try {
    // Offset beyond the map's pages.
    assert.throws(
      () => n.mmap(fd, 4096, PROT_READ, 1 << 20),
      (e: NodeJS.ErrnoException) => e.syscall === "mmap" && typeof e.errno === "number" && /^E/.test(e.code!),
    );
  } finally {
    n.close(fd);
  }
  assert.throws(() => n.mmap(-1, 4096, PROT_READ, 0), { code: "EBADF", errno: 9, syscall: "mmap" });
});

test("10000 mmap/munmap cycles leave no mappings behind", () => {
  const fd = createArrayMap();
  try {
    const before = bpfMapMappings();
    for (let i = 0; i < 10000; i++) {
      const ab = n.mmap(fd, 4096, PROT_READ | PROT_WRITE, 0);
      new Uint8Array(ab)[0] = i & 0xff;
      n.munmap(ab);
    }
    assert.equal(bpfMapMappings(), before);
    assert.equal(lookup(fd, 0), BigInt(9999 & 0xff));
  } finally {
    n.close(fd);
  }
});

test("mappings that are never munmapped are unmapped when collected", async () => {
  const fd = createArrayMap();
  try {
    const before = bpfMapMappings();
    const f = () => {
      for (let i = 0; i < 200; i++) n.mmap(fd, 4096, PROT_READ, 0);
    };
    f();
    // Munmapped, then collected: the finalizer must not unmap again.
    let ab: ArrayBuffer | undefined = n.mmap(fd, 4096, PROT_READ, 0);
    n.munmap(ab);
    ab = undefined;
    await collect();
    assert.equal(bpfMapMappings(), before);
  } finally {
    n.close(fd);
  }
});

test("a transferred mapping is copied or, if moved, stays valid until collected", async () => {
  const fd = createArrayMap();
  try {
    update(fd, 0, 5n);
    const before = bpfMapMappings();
    const ab = n.mmap(fd, 4096, PROT_READ, 0);
    let moved: ArrayBuffer | undefined = structuredClone(ab, { transfer: [ab] });
    assert.equal(new DataView(moved).getBigUint64(0, true), 5n);
    if (ab.byteLength === 0) {
      // Moved (Node did not mark the buffer untransferable): the memory belongs to `moved` now.
      n.munmap(ab);
      assert.equal(new DataView(moved).getBigUint64(0, true), 5n);
      assert.equal(bpfMapMappings(), before + 1);
      moved = undefined;
      await collect();
    } else {
      // Node 20 marks external buffers untransferable, so the clone is a copy.
      assert.notEqual(n.addressOf(moved), n.addressOf(ab));
      n.munmap(ab);
    }
    assert.equal(bpfMapMappings(), before);
  } finally {
    n.close(fd);
  }
});

test("bpf errors: bad fd, bad command, bad arguments", () => {
  const fd = createArrayMap();
  n.close(fd);
  assert.throws(() => lookup(fd, 0), (e: NodeJS.ErrnoException) => {
    assert.equal(e.code, "EBADF");
    assert.equal(e.errno, 9);
    assert.equal(e.syscall, "bpf");
    assert.match(e.message, /^bpf: .+ \(EBADF\)$/);
    return true;
  });
  assert.throws(() => n.bpf(9999, new Uint8Array(128)), { code: "EINVAL", errno: 22, syscall: "bpf" });
  // A too-small value size is refused by the kernel.
  const attr = new Uint8Array(128);
  new DataView(attr.buffer).setUint32(0, BPF_MAP_TYPE_ARRAY, true);
  assert.throws(() => n.bpf(BPF_MAP_CREATE, attr), { code: "EINVAL" });
  assert.throws(() => n.bpf(0, new Uint32Array(32) as unknown as Uint8Array), TypeError);
  assert.throws(() => n.close(fd), { code: "EBADF", errno: 9, syscall: "close" });
  assert.throws(() => n.close(-1), { code: "EBADF" });
  assert.throws(() => n.ioctl(-1, PERF_EVENT_IOC_ENABLE, 0), { code: "EBADF", syscall: "ioctl" });
});

function perfAttr(config: number, size = 128): Uint8Array {
  const attr = new Uint8Array(Math.max(size, 128));
  const dv = new DataView(attr.buffer);
  dv.setUint32(0, 1, true); // PERF_TYPE_SOFTWARE
  dv.setUint32(4, size, true);
  dv.setBigUint64(8, BigInt(config), true);
  dv.setBigUint64(16, 1n, true); // sample_period
  dv.setBigUint64(24, 1n << 10n, true); // PERF_SAMPLE_RAW
  dv.setBigUint64(40, 1n, true); // flags: disabled
  dv.setUint32(48, 1, true); // wakeup_events
  return attr;
}

test("perf_event_open of a software event, mmap of its ring, enable/disable", () => {
  const before = openFds();
  const fd = n.perfEventOpen(perfAttr(10 /* PERF_COUNT_SW_BPF_OUTPUT */), -1, 0, -1, 0);
  try {
    assert.ok(fd > 2);
    const ring = n.mmap(fd, 4096 * (1 + 2), PROT_READ | PROT_WRITE, 0);
    assert.equal(ring.byteLength, 3 * 4096);
    const page = new DataView(ring);
    assert.equal(page.getBigUint64(1024, true), 0n); // data_head
    assert.equal(page.getBigUint64(1040, true), 4096n); // data_offset
    assert.equal(page.getBigUint64(1048, true), 8192n); // data_size
    assert.equal(n.ioctl(fd, PERF_EVENT_IOC_ENABLE, 0), 0);
    assert.equal(n.ioctl(fd, PERF_EVENT_IOC_DISABLE, 0), 0);
    // PERF_EVENT_IOC_SET_BPF (0x40042408, above int32) with a non-program fd.
    assert.throws(() => n.ioctl(fd, 0x40042408, fd), { syscall: "ioctl", code: "EINVAL" });
    n.munmap(ring);
  } finally {
    n.close(fd);
  }
  assert.equal(openFds(), before); // kernel objects only: node opens and closes its own fds on its own schedule
});

test("perf_event_open errors; E2BIG writes the kernel's attr size back", () => {
  const attr = perfAttr(0, 512);
  attr[500] = 1; // a non-zero byte past the kernel's struct
  assert.throws(() => n.perfEventOpen(attr, -1, 0, -1, 0), { code: "E2BIG", syscall: "perf_event_open" });
  const written = new DataView(attr.buffer).getUint32(4, true);
  assert.ok(written >= 128 && written < 512, `size written back: ${written}`);
  assert.throws(() => n.perfEventOpen(perfAttr(0), -1, 0, 123456, 0), { code: "EBADF" });
  // attr.size larger than the buffer is refused before the kernel reads past it.
  assert.throws(() => n.perfEventOpen(perfAttr(0, 4096).subarray(0, 128), -1, 0, -1, 0), RangeError);
});

function fifo(): { fd: number; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "tsbpf-native-"));
  const path = join(dir, "fifo");
  const r = spawnSync("mkfifo", [path]);
  assert.equal(r.status, 0);
  const fd = openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
  return {
    fd,
    cleanup() {
      closeSync(fd);
      rmSync(dir, { recursive: true });
    },
  };
}

test("watch: a FIFO becomes readable after a write", async () => {
  const before = fdCount();
  const { fd, cleanup } = fifo();
  try {
    const events: [number, boolean, boolean][] = [];
    let wake!: () => void;
    const fired = new Promise<void>((r) => (wake = r));
    const w = n.watch(fd, (status, readable, writable) => {
      events.push([status, readable, writable]);
      wake();
    });
    w.start(true, false);
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(events, [], "nothing to read yet");
    writeSync(fd, Buffer.from("x"));
    await fired;
    assert.deepEqual(events[0], [0, true, false]);
    readSync(fd, Buffer.alloc(1));
    w.stop();
    w.stop();
    // Writable readiness, restart after stop.
    const again = new Promise<[number, boolean, boolean]>((r) => {
      const w2 = n.watch(fd, (s, rd, wr) => {
        w2.close();
        r([s, rd, wr]);
      });
      w2.start(false, true);
    });
    assert.deepEqual(await again, [0, false, true]);
    w.close();
    w.close();
    w.ref();
    w.unref();
    w.stop();
    assert.throws(() => w.start(true, false), { code: "EBADF" });
  } finally {
    cleanup();
  }
  await collect();
  assert.ok(fdCount() <= before, `${fdCount()} fds open, ${before} before`); // node may close one of its own meanwhile
});

test("watch: bad arguments and bad fds", () => {
  assert.throws(() => n.watch(0, 42 as never), TypeError);
  assert.throws(() => n.watch(-1, () => {}), (e: NodeJS.ErrnoException) => typeof e.errno === "number" && !!e.code);
  const w = n.watch(0, () => {});
  const start = Object.getPrototypeOf(w).start as (r: boolean, w: boolean) => void;
  assert.throws(() => start.call({}, true, false), TypeError);
  w.close();
  // libuv: one poll handle per fd while one is started.
  const { fd, cleanup } = fifo();
  try {
    const first = n.watch(fd, () => {});
    first.start(true, false);
    assert.throws(() => n.watch(fd, () => {}), { code: "EEXIST", syscall: "uv_poll_init" });
    first.close();
  } finally {
    cleanup();
  }
});

test("watch: watchers dropped without close() are collected safely", async () => {
  const { fd, cleanup } = fifo();
  try {
    for (let i = 0; i < 100; i++) n.watch(fd, () => {});
    const stopped = n.watch(fd, () => {});
    stopped.start(true, false);
    stopped.stop();
    await collect();
  } finally {
    cleanup();
  }
});

const childPrelude = `
import { native } from ${JSON.stringify(NATIVE_TS)};
import { openSync } from "node:fs";
import { execFileSync } from "node:child_process";
const path = process.env.FIFO_DIR + "/fifo" + process.pid;
execFileSync("mkfifo", [path]);
const fd = openSync(path, "r+");
const n = native();
`;

function withTmp<T>(f: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), "tsbpf-native-"));
  try {
    process.env.FIFO_DIR = dir;
    return f(dir);
  } finally {
    delete process.env.FIFO_DIR;
    rmSync(dir, { recursive: true });
  }
}

test("watch: a started watcher keeps the loop alive until unref()", () => {
  withTmp(() => {
    const r = runChild(
      childPrelude +
        `
const w = n.watch(fd, () => {});
w.start(true, false);
// An unref'd timer can only fire if the watcher keeps the loop alive.
setTimeout(() => { console.log("alive"); w.unref(); }, 100).unref();
`,
    );
    assert.equal(r.signal, null, "child exited by itself");
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), "alive");
  });
});

test("watch: an exception thrown by the callback is an uncaught exception", () => {
  withTmp(() => {
    const handled = runChild(
      childPrelude +
        `
const w = n.watch(fd, () => { throw new Error("boom"); });
process.on("uncaughtException", (e) => { console.log("caught", e.message); w.close(); });
process.nextTick(() => {}); // callbacks run with nextTick/microtask processing
w.start(false, true);
`,
    );
    assert.equal(handled.signal, null);
    assert.equal(handled.status, 0, handled.stderr);
    assert.equal(handled.stdout.trim(), "caught boom");

    const unhandled = runChild(childPrelude + `n.watch(fd, () => { throw new Error("boom"); }).start(false, true);`);
    assert.equal(unhandled.signal, null);
    assert.equal(unhandled.status, 1);
    assert.match(unhandled.stderr, /boom/);
  });
});

test("watch: microtasks queued by the callback run right after it", () => {
  withTmp(() => {
    const r = runChild(
      childPrelude +
        `
const w = n.watch(fd, () => {
  w.close();
  Promise.resolve().then(() => console.log("microtask"));
  process.nextTick(() => console.log("tick"));
});
w.start(false, true);
`,
    );
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), ["tick", "microtask"]);
  });
});

test("watch: a Worker that exits with open watchers does not abort the process", () => {
  withTmp(() => {
    // The worker loads the addon directly (tsx's hooks do not reach eval'd workers).
    const addon = fileURLToPath(new URL("../../build/Release/tsbpf_native.node", import.meta.url));
    const workerCode = `
      const n = require(${JSON.stringify(addon)});
      const fs = require("node:fs");
      const path = process.env.FIFO_DIR + "/fifo-worker" + require("node:worker_threads").threadId;
      require("node:child_process").execFileSync("mkfifo", [path]);
      const fd = () => fs.openSync(path, "r+"); // libuv: one poll handle per fd
      const attr = new Uint8Array(128), dv = new DataView(attr.buffer);
      [2, 4, 8, 4, 1 << 10].forEach((v, i) => dv.setUint32(i * 4, v, true));
      globalThis.mapping = n.mmap(n.bpf(0, attr), 4096, 3, 0);
      n.watch(fd(), () => {});
      const w = n.watch(fd(), () => {});
      w.start(true, false);
      if (process.env.UNREF) w.unref();
      else n.watch(fd(), () => {}).start(false, true); // fires on every loop turn
    `;
    const r = runChild(
      `
import { Worker } from "node:worker_threads";
import { once } from "node:events";
const code = ${JSON.stringify(workerCode)};
// Terminated while its watchers are active.
const a = new Worker(code, { eval: true, execArgv: [] });
a.on("error", (e) => { console.error(e); process.exitCode = 2; });
await once(a, "online");
await new Promise((r) => setTimeout(r, 100));
a.terminate();
console.log("terminated", (await once(a, "exit"))[0]);
// Exits by itself: its only started watcher is unref'd.
const b = new Worker(code, { eval: true, execArgv: [], env: { ...process.env, UNREF: "1" } });
b.on("error", (e) => { console.error(e); process.exitCode = 2; });
console.log("exited", (await once(b, "exit"))[0]);
`,
    );
    assert.equal(r.signal, null, r.stderr);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), ["terminated 1", "exited 0"]);
  });
});
