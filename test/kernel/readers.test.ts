// The event readers against the real kernel: ring buffers and perf buffers fed
// by a program on a tracepoint, driven by a child process pinned to CPU 0 that
// makes getppid() calls in bursts on request. Every record carries a sequence
// number from a counter in the program, so order, gaps and duplicates show.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Collection, ObjectSpec, PerfReader, RingBufReader } from "../../src/index.ts";
import { possibleCpus } from "../../src/internal/sys/system.ts";
import { HEADERS, specOf } from "../support/kernel.ts";

const MAX_REC = 8192; // the scratch record; sizes are masked with MAX_REC - 1 for the verifier
const RB_SIZE = 4096 * 2; // the small ring buffer: wraps every few dozen records

const PROGRAM = `${HEADERS}
#include <tsbpf.h>

const volatile u32 target_tgid = 0;
/* record size for sequence number s: min_size + (s * 24) % span, and every
   big_every-th record big_size + (s % 7) * 128 (all multiples of 8) */
const volatile u32 min_size = 16;
const volatile u32 span = 8;
const volatile u32 big_every = 0;
const volatile u32 big_size = 5000;
const volatile u64 wakeup_bytes = 1 << 20;

u64 seq = 0;      /* records produced (the next sequence number) */
u64 failed = 0;   /* outputs or reservations the kernel refused */
s64 last_err = 0; /* the last refusal's error */

#define MAX_REC ${MAX_REC}
struct rec { u64 seq; u32 size; u32 pad; u8 data[MAX_REC - 16]; };
struct small { u64 seq; u32 size; u32 pad; u64 tag; u8 fill[40]; };
struct event { u64 seq; u32 pid; u32 size; char comm[16]; u64 tag; };
const struct event *unused_event __attribute__((unused));

struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, ${RB_SIZE}); } rb SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); } rb_a SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); } rb_b SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 1 << 16); } rb_big SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY); __uint(key_size, 4); __uint(value_size, 4); } pb SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 1); __type(key, u32); __type(value, struct rec); } scratch SEC(".maps");

static __always_inline int mine(void) {
  return (bpf_get_current_pid_tgid() >> 32) == target_tgid;
}

static __always_inline void refused(long err) {
  if (err) { __sync_fetch_and_add(&failed, 1); last_err = err; }
}

/* The next record in the per-CPU scratch value (its data bytes are filled by
   user space with a pattern): sequence number and size set, size returned. */
static __always_inline u32 next(struct rec **out) {
  u32 zero = 0;
  struct rec *r = bpf_map_lookup_elem(&scratch, &zero);
  if (!r) return 0;
  u64 s = seq++;
  u32 size = min_size + (u32)((s * 24) % span);
  if (big_every && s % big_every == big_every - 1) size = big_size + (u32)((s % 7) * 128);
  r->seq = s;
  r->size = size;
  *out = r;
  return size;
}

SEC("tp/syscalls/sys_enter_getppid")
int rb_out(void *ctx) {
  struct rec *r = 0;
  if (!mine()) return 0;
  u32 size = next(&r);
  if (!r) return 0;
  refused(bpf_ringbuf_output(&rb, r, size & (MAX_REC - 1), 0));
  return 0;
}

SEC("tp/syscalls/sys_enter_getppid")
int pb_out(void *ctx) {
  struct rec *r = 0;
  if (!mine()) return 0;
  u32 size = next(&r);
  if (!r) return 0;
  refused(bpf_perf_event_output(ctx, &pb, BPF_F_CURRENT_CPU, r, size & (MAX_REC - 1)));
  return 0;
}

/* Reserves every record, discards every third one (seq % 3 == 2). */
SEC("tp/syscalls/sys_enter_getppid")
int rb_discard(void *ctx) {
  if (!mine()) return 0;
  u64 s = seq++;
  struct small *r = bpf_ringbuf_reserve(&rb, sizeof(*r), 0);
  if (!r) { refused(-1); return 0; }
  r->seq = s;
  r->size = sizeof(*r);
  r->pad = 0;
  r->tag = ~s;
  if (s % 3 == 2) bpf_ringbuf_discard(r, 0);
  else bpf_ringbuf_submit(r, 0);
  return 0;
}

/* Even sequence numbers to rb_a, odd ones to rb_b. */
SEC("tp/syscalls/sys_enter_getppid")
int rb_two(void *ctx) {
  if (!mine()) return 0;
  u64 s = seq++;
  struct small *r = bpf_ringbuf_reserve(s % 2 ? (void *)&rb_b : (void *)&rb_a, sizeof(*r), 0);
  if (!r) { refused(-1); return 0; }
  r->seq = s;
  r->size = sizeof(*r);
  r->pad = 0;
  r->tag = ~s;
  bpf_ringbuf_submit(r, 0);
  return 0;
}

SEC("tp/syscalls/sys_enter_getppid")
int rb_event(void *ctx) {
  if (!mine()) return 0;
  u64 s = seq++;
  struct event *e = bpf_ringbuf_reserve(&rb_big, sizeof(*e), 0);
  if (!e) { refused(-1); return 0; }
  e->seq = s;
  e->pid = target_tgid;
  e->size = sizeof(*e);
  bpf_get_current_comm(e->comm, sizeof(e->comm));
  e->tag = ~s;
  bpf_ringbuf_submit(e, 0);
  return 0;
}

/* Batched wake-ups: below wakeup_bytes the reader is never woken. */
SEC("tp/syscalls/sys_enter_getppid")
int rb_batched(void *ctx) {
  struct event e = {};
  if (!mine()) return 0;
  e.seq = seq++;
  e.pid = target_tgid;
  e.size = sizeof(e);
  bpf_get_current_comm(e.comm, sizeof(e.comm));
  e.tag = ~e.seq;
  refused(tsbpf_ringbuf_output_batched(&rb_big, &e, sizeof(e), wakeup_bytes));
  return 0;
}
/* tsbpf.h's counting helpers: what they refuse is also counted in tsbpf_lost. */
SEC("tp/syscalls/sys_enter_getppid")
int rb_counted(void *ctx) {
  struct rec *r = 0;
  if (!mine()) return 0;
  u32 size = next(&r);
  if (!r) return 0;
  refused(tsbpf_ringbuf_output(&rb, r, size & (MAX_REC - 1), 0));
  return 0;
}

SEC("tp/syscalls/sys_enter_getppid")
int rb_reserve_counted(void *ctx) {
  if (!mine()) return 0;
  u64 s = seq++;
  struct small *r = tsbpf_ringbuf_reserve(&rb, sizeof(*r), 0);
  if (!r) { refused(-1); return 0; }
  r->seq = s;
  r->size = sizeof(*r);
  r->pad = 0;
  r->tag = ~s;
  bpf_ringbuf_submit(r, 0);
  return 0;
}
`;

/** The child: reads a u32 count from stdin, makes that many getppid() calls, answers one byte. */
const CHILD = `#include <unistd.h>
#include <sys/syscall.h>
int main(void) {
  unsigned n;
  while (read(0, &n, sizeof n) == sizeof n) {
    for (unsigned i = 0; i < n; i++) syscall(SYS_getppid);
    if (write(1, "k", 1) != 1) return 1;
  }
  return 0;
}
`;
const COMM = "tsbpf-burst";

let dir: string;
let childBin: string;
let spec: ObjectSpec;

before(async () => {
  assert.ok(existsSync("/usr/bin/taskset") || existsSync("/bin/taskset"), "taskset (util-linux) is needed");
  dir = mkdtempSync(join(tmpdir(), "tsbpf-readers-"));
  writeFileSync(join(dir, "child.c"), CHILD);
  childBin = join(dir, COMM);
  execFileSync("cc", ["-O1", "-o", childBin, join(dir, "child.c")]);
  spec = await specOf(PROGRAM, "readers.bpf.c");
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The child process on CPU 0: `burst(n)` resolves after its n getppid() calls. */
class Burster implements AsyncDisposable {
  readonly child: ChildProcessWithoutNullStreams;
  readonly #acks: (() => void)[] = [];
  readonly #exited: Promise<void>;

  constructor() {
    this.child = spawn("taskset", ["-c", "0", childBin], { stdio: ["pipe", "pipe", "pipe"] });
    this.#exited = new Promise((resolve) => this.child.once("exit", () => resolve()));
    this.child.stdout.on("data", (chunk: Buffer) => {
      for (let i = 0; i < chunk.length; i++) this.#acks.shift()?.();
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Waits until taskset has exec'd the child (so its pid is the one we filter on). */
  async ready(): Promise<void> {
    await this.burst(0);
    const status = readFileSync(`/proc/${this.pid}/status`, "utf8");
    assert.match(status, /^Name:\s+tsbpf-burst$/m);
    assert.match(status, /^Cpus_allowed_list:\s+0$/m);
  }

  burst(n: number): Promise<void> {
    const request = Buffer.alloc(4);
    request.writeUInt32LE(n);
    return new Promise((resolve, reject) => {
      this.#acks.push(resolve);
      this.child.stdin.write(request, (err) => err && reject(err));
    });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.child.stdin.end();
    await this.#exited;
  }
}

async function startChild(): Promise<Burster> {
  const b = new Burster();
  await b.ready();
  return b;
}

interface Sizes {
  min_size: number;
  span: number;
  big_every?: number;
  big_size?: number;
}

/** The size the program gives record `s` (mirrors next() in the program). */
function sizeOf(s: number, z: Sizes): number {
  if (z.big_every && s % z.big_every === z.big_every - 1) return (z.big_size ?? 5000) + (s % 7) * 128;
  return z.min_size + ((s * 24) % z.span);
}

const pattern = (i: number) => (i * 7 + 3) & 0xff;

/** Loads the program(s) for `child`, fills the scratch record's data with the pattern, attaches them. */
function load(child: Burster, program: string | string[], sizes: Sizes = { min_size: 16, span: 8 }): Collection {
  const coll = Collection.load(spec, {
    programs: [program].flat(),
    constants: { target_tgid: child.pid, big_every: 0, big_size: 5000, wakeup_bytes: 1n << 20n, ...sizes },
  });
  try {
    const value = new Uint8Array(MAX_REC * possibleCpus());
    for (let cpu = 0; cpu < possibleCpus(); cpu++) for (let i = 16; i < MAX_REC; i++) value[cpu * MAX_REC + i] = pattern(i);
    coll.map("scratch").updateBytes(new Uint8Array(4), value);
    for (const name of [program].flat()) coll.program(name).attach();
  } catch (err) {
    coll.close();
    throw err;
  }
  return coll;
}

/** Checks records as they come: seq in order from `first`, the size the program chose, the pattern intact. */
class Checker {
  next: number;
  readonly errors: string[] = [];
  constructor(
    readonly sizes: Sizes,
    first = 0,
    readonly recordSize = (len: number) => len, // what the reader reports for `len` bytes of output
  ) {
    this.next = first;
  }
  readonly raw = (view: DataView, offset: number, size: number): void => {
    const seq = Number(view.getBigUint64(offset, true));
    const len = view.getUint32(offset + 8, true);
    if (seq !== this.next) this.errors.push(`seq ${seq}, expected ${this.next}`);
    this.next = seq + 1;
    if (len !== sizeOf(seq, this.sizes)) this.errors.push(`seq ${seq}: size field ${len}, expected ${sizeOf(seq, this.sizes)}`);
    if (size !== this.recordSize(len)) this.errors.push(`seq ${seq}: record of ${size} bytes for ${len}`);
    for (let i = 16; i < len; i++) {
      if (view.getUint8(offset + i) !== pattern(i)) {
        this.errors.push(`seq ${seq}: byte ${i} is ${view.getUint8(offset + i)}, expected ${pattern(i)}`);
        break;
      }
    }
  };
}

/** Space a record takes in the ring (header included). */
const rbFootprint = (len: number) => (len + 8 + 7) & ~7;
const perfFootprint = (len: number) => 8 + ((4 + len + 7) & ~7);
/** The kernel pads a raw sample so that its u32 size and data end on 8 bytes: the reader sees the padding too. */
const perfRaw = (len: number) => ((4 + len + 7) & ~7) - 4;

/**
 * Produces `total` records in bursts that each fit the buffer (so nothing is
 * lost), consuming between bursts; returns how many bursts and ring bytes that took.
 */
async function produceInBursts(child: Burster, consume: () => number, total: number, capacity: number, footprint: (s: number) => number) {
  let s = 0;
  let bursts = 0;
  let bytes = 0;
  while (s < total) {
    let n = 0;
    let used = 0;
    while (s + n < total && used + footprint(s + n) <= capacity - 64) used += footprint(s + n++);
    assert.ok(n > 0);
    await child.burst(n);
    consume();
    s += n;
    bytes += used;
    bursts++;
  }
  return { bursts, bytes };
}

function variable(coll: Collection, name: string): number {
  return Number(coll.variable(name).get() as bigint);
}

test("ring buffer: every record once and in order across many wrap-arounds, sizes varying", async () => {
  await using child = await startChild();
  const sizes = { min_size: 16, span: 1000 };
  using coll = load(child, "rb_out", sizes);
  const check = new Checker(sizes);
  using reader = new RingBufReader(coll.map("rb")).onRaw(check.raw);
  const total = 2000;
  const { bursts, bytes } = await produceInBursts(child, () => reader.consume(), total, RB_SIZE, (s) => rbFootprint(sizeOf(s, sizes)));
  reader.consume();
  assert.deepEqual(check.errors, []);
  assert.equal(check.next, total);
  assert.equal(reader.delivered, total);
  assert.equal(variable(coll, "seq"), total);
  assert.equal(variable(coll, "failed"), 0);
  assert.ok(bytes / RB_SIZE > 50, `only ${bytes / RB_SIZE} wrap-arounds`);
  assert.ok(bursts > 50);
  assert.equal(reader.pending(), 0);
});

test("ring buffer: discarded records are skipped, every submitted one arrives", async () => {
  await using child = await startChild();
  using coll = load(child, "rb_discard");
  const seen: number[] = [];
  using reader = new RingBufReader(coll.map("rb")).onRaw((view, offset, size) => {
    assert.equal(size, 64);
    const seq = view.getBigUint64(offset, true);
    assert.equal(view.getBigUint64(offset + 16, true), ~seq & 0xffffffffffffffffn);
    seen.push(Number(seq));
  });
  const total = 1200; // 72 bytes each in the ring, discarded or not: about 10 wrap-arounds
  await produceInBursts(child, () => reader.consume(), total, RB_SIZE, () => 72);
  reader.consume();
  const submitted = [...Array(total).keys()].filter((s) => s % 3 !== 2);
  assert.deepEqual(seen, submitted);
  assert.equal(reader.delivered, submitted.length);
  assert.equal(variable(coll, "failed"), 0);
});

test("ring buffer: with consumption paused, received + refused by the kernel == produced", async () => {
  await using child = await startChild();
  const sizes = { min_size: 64, span: 8 }; // 64-byte records: 72 bytes each in the ring
  using coll = load(child, "rb_out", sizes);
  using reader = new RingBufReader(coll.map("rb")); // no consumer yet
  await child.burst(500);
  const failed = variable(coll, "failed");
  assert.ok(reader.pending() > 0 && reader.pending() <= RB_SIZE);
  const check = new Checker(sizes);
  reader.onRaw(check.raw);
  const received = reader.consume();
  assert.ok(received > 0 && failed > 0, `received ${received}, failed ${failed}`);
  assert.equal(received + failed, 500);
  assert.equal(received, Math.floor((RB_SIZE - 1) / 72)); // as many as fit; the first ones, in order
  assert.equal(check.next, received);
  assert.equal(variable(coll, "last_err"), -11); // -EAGAIN
  assert.equal(reader.lost, 0); // plain bpf_ringbuf_output() and no lostCounter: a ring buffer reader cannot know
  // Drained, the ring takes records again (the reader now drains them as they come, or here).
  check.next = 500;
  await child.burst(10);
  reader.consume();
  assert.equal(reader.delivered, received + 10);
  assert.equal(check.next, 510);
  assert.deepEqual(check.errors, []);
  assert.equal(variable(coll, "failed"), failed);
});

for (const [pageCount, sizes, total] of [
  [1, { min_size: 16, span: 1000 }, 800],
  [2, { min_size: 16, span: 512, big_every: 5, big_size: 5000 }, 600], // every fifth record 5000..5768 bytes
] as const) {
  test(`perf buffer of ${pageCount} page(s): every record once and in order across many wrap-arounds${pageCount === 2 ? ", records larger than a page" : ""}`, async () => {
    await using child = await startChild();
    using coll = load(child, "pb_out", sizes);
    const check = new Checker(sizes, 0, perfRaw);
    let lostCalls = 0;
    using reader = new PerfReader(coll.map("pb"), { pageCount, onLost: () => lostCalls++ }).onRaw(check.raw);
    const capacity = pageCount * 4096;
    const { bursts, bytes } = await produceInBursts(child, () => reader.consume(), total, capacity, (s) => perfFootprint(sizeOf(s, sizes)));
    reader.consume();
    assert.deepEqual(check.errors, []);
    assert.equal(check.next, total);
    assert.equal(reader.delivered, total);
    assert.equal(variable(coll, "failed"), 0);
    assert.equal(reader.lost, 0);
    assert.equal(lostCalls, 0);
    assert.ok(bytes / capacity > 50, `only ${bytes / capacity} wrap-arounds`);
    assert.ok(bursts > 50);
  });
}

for (const program of ["rb_counted", "rb_reserve_counted"]) {
  test(`ring buffer: ${program} counts refused records in tsbpf_lost; the reader reports them as lost, per CPU`, async () => {
    await using child = await startChild();
    const sizes = { min_size: 64, span: 8 };
    using coll = load(child, program, sizes);
    const calls: [number, number][] = [];
    using reader = new RingBufReader(coll.map("rb"), { lostCounter: coll.map("tsbpf_lost"), onLost: (n, cpu) => calls.push([n, cpu]) });
    assert.equal(reader.lost, 0);
    await child.burst(500); // nobody consumes: the 8 KiB ring fills
    const failed = variable(coll, "failed");
    assert.ok(failed > 0, "the ring never filled");
    reader.onRaw(() => {});
    const received = reader.consume();
    assert.equal(reader.lost, failed); // read from the counter, as the program counted
    assert.equal(received + reader.lost, 500);
    assert.deepEqual(calls, [[failed, 0]]); // the child runs on CPU 0
    // Counted once: reading again reports nothing new; new refusals are added.
    assert.equal(reader.lost, failed);
    await child.burst(500);
    reader.consume();
    const failedAgain = variable(coll, "failed");
    reader.close(); // the last look at the counter
    assert.equal(reader.lost, failedAgain);
    assert.equal(reader.delivered + reader.lost, 1000);
  });
}

test("ring buffer: lostCounter must be a per-CPU array of u64", async () => {
  await using child = await startChild();
  using coll = load(child, "rb_counted");
  assert.throws(() => new RingBufReader(coll.map("rb"), { lostCounter: coll.map("scratch") }), /scratch is not a lost counter/);
  assert.throws(() => new RingBufReader(coll.map("rb"), { lostCounter: coll.map("rb_a") }), /rb_a is not a lost counter/);
});

test("perf buffer: with consumption paused, LOST records + received == produced, onLost(count, cpu)", async () => {
  await using child = await startChild();
  const sizes = { min_size: 64, span: 8 }; // 80 bytes each in the ring
  using coll = load(child, "pb_out", sizes);
  const lostCalls: [number, number][] = [];
  using reader = new PerfReader(coll.map("pb"), { pageCount: 1, onLost: (count, cpu) => lostCalls.push([count, cpu]) });
  await child.burst(300);
  const failed = variable(coll, "failed");
  assert.equal(variable(coll, "last_err"), -28); // -ENOSPC
  const check = new Checker(sizes, 0, perfRaw);
  reader.onRaw(check.raw);
  const received = reader.consume();
  assert.ok(received > 0 && failed > 0, `received ${received}, failed ${failed}`);
  assert.equal(received + failed, 300);
  assert.equal(check.next, received); // the first ones, in order
  // The kernel writes the LOST record before the next sample that finds room.
  assert.equal(reader.lost, 0);
  check.next = 300;
  await child.burst(1);
  reader.consume();
  assert.equal(reader.delivered, received + 1);
  assert.equal(check.next, 301);
  assert.deepEqual(check.errors, []);
  assert.equal(reader.lost, failed); // PERF_RECORD_LOST counts samples
  assert.deepEqual(lostCalls, [[failed, 0]]);
  assert.equal(reader.delivered + reader.lost, 301);
});

/** fds, the kinds behind them, and the mappings of bpf maps and perf events. */
function resources() {
  const links = readdirSync("/proc/self/fd").map((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return ""; // the directory's own fd, closed by now
    }
  });
  const mappings = readFileSync("/proc/self/maps", "utf8")
    .split("\n")
    .filter((l) => /bpf|anon_inode|perf_event/.test(l)).length;
  return {
    fds: links.length,
    perfEvents: links.filter((l) => l.includes("perf_event")).length,
    bpfMaps: links.filter((l) => l.includes("bpf-map")).length,
    mappings,
  };
}

test("readers release every mapping and fd: using scope, close(), abort of for await", async () => {
  await using child = await startChild();
  using coll = load(child, ["rb_event", "pb_out"]); // each getppid(): a record in rb_big and one in pb
  const base = resources();
  const cpus = readFileSync("/sys/devices/system/cpu/online", "utf8").trim() === "0" ? 1 : 2;

  {
    using reader = new RingBufReader(coll.map("rb_big")).onEvent(() => {});
    const open = resources();
    assert.equal(open.bpfMaps, base.bpfMaps + 1); // the reader's own fd for the map
    assert.ok(open.mappings >= base.mappings + 2, `${open.mappings} mappings, ${base.mappings} before`);
    assert.ok(!reader.closed);
  }
  assert.deepEqual(resources(), base);

  const perf = new PerfReader(coll.map("pb"), { pageCount: 1 });
  const open = resources();
  assert.equal(open.perfEvents, base.perfEvents + cpus);
  assert.ok(open.mappings >= base.mappings + cpus);
  perf.close();
  assert.ok(perf.closed);
  assert.deepEqual(resources(), base);
  perf.close(); // twice is fine

  {
    using _perf = new PerfReader(coll.map("pb"), { pageCount: 2 });
    using _ring = new RingBufReader([coll.map("rb"), coll.map("rb_big")]);
    assert.equal(resources().perfEvents, base.perfEvents + cpus);
    assert.equal(resources().bpfMaps, base.bpfMaps + 2);
  }
  assert.deepEqual(resources(), base);

  // Abort ends a for await that is waiting for records, then everything is released.
  for (const make of [
    (signal: AbortSignal) => new RingBufReader(coll.map("rb_big"), { signal, decode: coll.type("event") }),
    (signal: AbortSignal) => new PerfReader(coll.map("pb"), { signal, pageCount: 1 }),
  ]) {
    const ac = new AbortController();
    const reader = make(ac.signal);
    assert.notDeepEqual(resources(), base);
    let n = 0;
    const loop = (async () => {
      for await (const _ of reader) n++;
      return "ended";
    })();
    await child.burst(3);
    for (let i = 0; i < 200 && n < 3; i++) await sleep(10);
    assert.equal(n, 3);
    ac.abort(); // while the loop waits for more
    assert.equal(await Promise.race([loop, sleep(2000, "still running", { ref: false })]), "ended");
    assert.ok(reader.closed);
    assert.deepEqual(resources(), base);
  }

  // An already aborted signal: closed at once, even with records waiting in the ring
  // (the perf iteration's three getppid() calls above left three in rb_big).
  {
    using peek = new RingBufReader(coll.map("rb_big"));
    assert.equal(peek.pending(), 3 * 48);
  }
  const reader = new RingBufReader(coll.map("rb_big"), { signal: AbortSignal.abort() });
  const events: unknown[] = [];
  for await (const e of reader) events.push(e);
  assert.deepEqual(events, []);
  assert.ok(reader.closed);
  assert.deepEqual(resources(), base);
});

test("perf reader: closing takes its events out of the perf event array", async () => {
  await using child = await startChild();
  using coll = load(child, "pb_out");
  const check = new Checker({ min_size: 16, span: 8 }, 0, perfRaw);
  const reader = new PerfReader(coll.map("pb"), { pageCount: 1 }).onRaw(check.raw);
  await child.burst(5);
  reader.consume();
  assert.equal(reader.delivered, 5);
  reader.close();
  // User space cannot look up a PERF_EVENT_ARRAY; the program can: its output now finds no event.
  await child.burst(4);
  assert.equal(variable(coll, "failed"), 4);
  assert.equal(variable(coll, "last_err"), -2); // -ENOENT: the slot is empty
  assert.equal(reader.consume(), 0);
  assert.deepEqual(check.errors, []);
});

test("poll() resolves 0 after the timeout when idle, the count when records wait or arrive", async () => {
  await using child = await startChild();
  using coll = load(child, "rb_out");
  const check = new Checker({ min_size: 16, span: 8 });
  using reader = new RingBufReader(coll.map("rb"));
  await child.burst(5); // waiting before anyone reads
  reader.onRaw(check.raw);
  assert.equal(await reader.poll(1000), 5);
  const t0 = Date.now();
  assert.equal(await reader.poll(100), 0);
  assert.ok(Date.now() - t0 >= 50, "poll(100) returned early with nothing");
  assert.equal(await reader.poll(0), 0);
  // Records arriving during the wait.
  const polled = reader.poll(5000);
  await child.burst(3);
  assert.equal(await polled, 3);
  assert.equal(reader.delivered, 8);
  assert.deepEqual(check.errors, []);
  assert.equal(check.next, 8);

  using pbColl = load(child, "pb_out");
  using perf = new PerfReader(pbColl.map("pb"), { pageCount: 1 });
  const check2 = new Checker({ min_size: 16, span: 8 }, 0, perfRaw);
  perf.onRaw(check2.raw);
  assert.equal(await perf.poll(50), 0);
  const p = perf.poll(5000);
  await child.burst(4);
  assert.ok((await p) > 0);
  await child.burst(0);
  perf.consume();
  assert.equal(perf.delivered, 4);
  assert.deepEqual(check2.errors, []);
});

test("for await with decode yields plain objects: strings for char arrays, bigint for u64", async () => {
  await using child = await startChild();
  using coll = load(child, "rb_event");
  const ac = new AbortController();
  const reader = new RingBufReader(coll.map("rb_big"), { decode: coll.type("event"), signal: ac.signal });
  const burst = child.burst(5);
  const got: any[] = [];
  for await (const e of reader) {
    got.push(e);
    if (got.length === 5) ac.abort();
  }
  await burst;
  assert.equal(got.length, 5);
  got.forEach((e, i) => {
    assert.equal(Object.getPrototypeOf(e), Object.prototype);
    assert.deepEqual(e, { seq: BigInt(i), pid: child.pid, size: 40, comm: COMM, tag: ~BigInt(i) & 0xffffffffffffffffn });
  });
  assert.ok(reader.closed);

  // Without decode: byte copies that outlive the ring's memory.
  using raw = new RingBufReader(coll.map("rb_big"));
  await child.burst(2);
  const copies: Uint8Array[] = [];
  for await (const bytes of raw) {
    copies.push(bytes);
    if (copies.length === 2) break;
  }
  raw.close();
  assert.ok(copies.every((b) => b instanceof Uint8Array && b.length === 40));
  assert.deepEqual(
    copies.map((b) => new DataView(b.buffer, b.byteOffset).getBigUint64(0, true)),
    [5n, 6n],
  );
  assert.equal(Buffer.from(copies[1].subarray(16, 16 + COMM.length)).toString(), COMM);
});

test("perf buffer: for await and poll() see records written just as they start waiting", async () => {
  // A perf event fd reports each wake-up once, and the poll epoll makes when the
  // fd is added consumes it: records written before the reader's fd is in epoll
  // must still be found.
  await using child = await startChild();
  using coll = load(child, "pb_out");
  let next = 0;
  for (let round = 0; round < 10; round++) {
    const ac = new AbortController();
    const reader = new PerfReader(coll.map("pb"), { pageCount: 1, signal: ac.signal });
    const seqs: number[] = [];
    const loop = (async () => {
      for await (const bytes of reader) seqs.push(Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true)));
    })();
    await child.burst(3); // while the loop waits
    for (let i = 0; i < 200 && seqs.length < 3; i++) await sleep(10);
    ac.abort();
    await loop;
    assert.deepEqual(seqs, [next, next + 1, next + 2], `round ${round}`);
    next += 3;
  }
  for (let round = 0; round < 10; round++) {
    using reader = new PerfReader(coll.map("pb"), { pageCount: 1 });
    const seqs: number[] = [];
    reader.onRaw((view, offset) => seqs.push(Number(view.getBigUint64(offset, true))));
    const polled = reader.poll(10_000);
    await child.burst(2);
    const result = await Promise.race([polled, sleep(3000, "still waiting", { ref: false })]);
    assert.ok(typeof result === "number" && result > 0, `round ${round}: poll() gave ${result}`);
    for (let i = 0; i < 200 && seqs.length < 2; i++) await sleep(10);
    assert.deepEqual(seqs, [next, next + 1], `round ${round}`);
    next += 2;
  }
});

test("onEvent without decode gives copies; onRaw gives the bytes in place", async () => {
  await using child = await startChild();
  using coll = load(child, "rb_out", { min_size: 40, span: 8 });
  const copies: Uint8Array[] = [];
  using reader = new RingBufReader(coll.map("rb")).onEvent((b) => copies.push(b));
  await child.burst(3);
  reader.consume();
  assert.deepEqual(
    copies.map((b) => [b.length, Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true)), b[39]]),
    [
      [40, 0, pattern(39)],
      [40, 1, pattern(39)],
      [40, 2, pattern(39)],
    ],
  );
});

test("one reader over two ring buffers delivers from both", async () => {
  await using child = await startChild();
  using coll = load(child, "rb_two");
  const seen: number[] = [];
  using reader = new RingBufReader(coll.map("rb_a")).add(coll.map("rb_b")).onRaw((view, offset) => seen.push(Number(view.getBigUint64(offset, true))));
  for (let i = 0; i < 10; i++) {
    await child.burst(40); // 20 per ring of 4096 bytes: 72 each
    reader.consume();
  }
  assert.equal(seen.length, 400);
  assert.deepEqual([...seen].sort((a, b) => a - b), [...Array(400).keys()]);
  // Each ring in order.
  const even = seen.filter((s) => s % 2 === 0);
  const odd = seen.filter((s) => s % 2 === 1);
  assert.deepEqual(even, [...even].sort((a, b) => a - b));
  assert.deepEqual(odd, [...odd].sort((a, b) => a - b));
  assert.equal(even.length, 200);
  assert.equal(variable(coll, "failed"), 0);

  using both = new RingBufReader([coll.map("rb_a"), coll.map("rb_b")]);
  both.onRaw(() => {});
  await child.burst(6);
  both.consume();
  assert.equal(both.delivered, 6);
});

test("latencyMs: batched wake-ups below the threshold still arrive", async () => {
  await using child = await startChild();
  using coll = load(child, "rb_batched");
  // Without a timer nothing wakes the reader: the records wait in the ring.
  {
    const got: bigint[] = [];
    using reader = new RingBufReader(coll.map("rb_big"), { decode: coll.type("event") }).onEvent((e: any) => got.push(e.seq));
    await sleep(20); // the first drain of records already there
    await child.burst(3);
    await sleep(200);
    assert.deepEqual(got, []);
    assert.equal(reader.pending(), 3 * 48);
  }
  // With one, they arrive (the three above at once, the next three on the timer).
  const got: bigint[] = [];
  using reader = new RingBufReader(coll.map("rb_big"), { decode: coll.type("event"), latencyMs: 50 }).onEvent((e: any) => got.push(e.seq));
  for (let i = 0; i < 100 && got.length < 3; i++) await sleep(10);
  await child.burst(3);
  for (let i = 0; i < 200 && got.length < 6; i++) await sleep(10);
  assert.deepEqual(got, [0n, 1n, 2n, 3n, 4n, 5n]);
  assert.equal(variable(coll, "failed"), 0);
});

test("close() from inside a handler stops delivery without touching the unmapped ring", async () => {
  await using child = await startChild();
  using rbColl = load(child, "rb_out");
  using pbColl = load(child, "pb_out");
  for (const reader of [new RingBufReader(rbColl.map("rb")), new PerfReader(pbColl.map("pb"), { pageCount: 1 })]) {
    const seen: number[] = [];
    reader.onRaw((view, offset) => {
      seen.push(Number(view.getBigUint64(offset, true)));
      if (seen.length === 2) reader.close();
    });
    await child.burst(5);
    assert.doesNotThrow(() => reader.consume());
    assert.deepEqual(seen, [0, 1]);
    assert.ok(reader.closed);
    assert.equal(reader.consume(), 0);
  }
});
