// One pass of the benchmark: tsbpf reading the flood's events in one mode.
//   node bench/consumer.mjs MODE N FLOOD_BINARY
// Plain JavaScript over the build (dist/js, `npm run build:lib`), without tsx: the
// process's memory and CPU are tsbpf's own, as a user's program would have them.
// Prints the reference's line: mode=... opens=N received=R lost=L flood_s=S
// opens_per_s=X consumer_cpu_s=C consumer_ns_per_event=E max_rss_kib=M (the process's peak resident memory)
import { spawn } from "node:child_process";
import { join } from "node:path";
import { compile, Collection, ObjectSpec, PerfReader, RingBufReader } from "../dist/js/index.js";

export const PERF_PAGES = 1024; // per CPU, as the C reference
export const LATENCY_MS = 10;
export const WAKEUP_BYTES = 1 << 20;
export const PERF_WAKEUP_BYTES = 64 << 10; // 1/64 of a CPU's 4 MiB ring: room for scheduling delays

const [mode, count, floodPath] = process.argv.slice(2);
const n = Number(count);
const programs = {
  "rb-raw": "on_open_rb",
  "rb-decoded": "on_open_rb",
  "rb-batched": "on_open_rb_batched",
  "pb-raw": "on_open_pb",
  "pb-decoded": "on_open_pb",
  "pb-batched": "on_open_pb",
};
if (!programs[mode] || !n || !floodPath) {
  console.error(`usage: consumer.mjs ${Object.keys(programs).join("|")} N FLOOD_BINARY`);
  process.exit(2);
}

const flood = spawn(floodPath, [String(n)], { stdio: ["pipe", "ignore", "inherit"] });
const exited = new Promise((resolve) => flood.on("exit", () => resolve()));

const object = await compile({ file: join(import.meta.dirname, "flood.bpf.c") });
const spec = ObjectSpec.fromBytes(object.bytes, "flood.bpf.c");
spec.variable("target_tgid").set(flood.pid);
spec.variable("wakeup_bytes").set(BigInt(WAKEUP_BYTES));
const coll = Collection.load(spec, { programs: [programs[mode]] });
const event = coll.type("event");

let received = 0;
let check = 0; // decoded fields are used, so the decoding cannot be skipped
let reader;
if (mode.startsWith("rb")) {
  reader = new RingBufReader(coll.map("rb"), {
    decode: mode === "rb-decoded" ? event : undefined,
    latencyMs: mode === "rb-batched" ? LATENCY_MS : undefined,
  });
} else {
  reader = new PerfReader(coll.map("pb"), {
    pageCount: PERF_PAGES,
    decode: mode === "pb-decoded" ? event : undefined,
    // Batched: the kernel wakes the reader per WAKEUP_BYTES of records (wakeup_watermark), the timer bounds latency.
    wakeupBytes: mode === "pb-batched" ? PERF_WAKEUP_BYTES : undefined,
    latencyMs: mode === "pb-batched" ? LATENCY_MS : undefined,
  });
}
if (mode.endsWith("decoded")) {
  reader.onEvent((e) => {
    received++;
    check += e.fname.length + e.pid;
  });
} else {
  reader.onRaw(() => received++);
}
coll.program(programs[mode]).attach();

const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
flood.stdin.end("x");
await exited;
const floodSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
reader.consume(); // the final drain, as the reference does
const used = process.cpuUsage(cpu0);
const cpuSeconds = (used.user + used.system) / 1e6;
const failed = coll.map("failed").lookup(0).reduce((a, b) => a + b, 0n);
// Counted in the program: every output the kernel refused (a full buffer). For the perf
// buffer the reader's LOST records count the same drops, so they are not added again.
const lost = Number(failed);
if (mode.startsWith("pb") && reader.lost !== lost) console.error(`note: ${reader.lost} records reported LOST, ${lost} outputs failed`);
reader.close();
coll.close();
if (mode.endsWith("decoded") && check === 0 && received > 0) throw new Error("decoded nothing");
console.log(
  `mode=${mode} opens=${n} received=${received} lost=${lost} flood_s=${floodSeconds.toFixed(3)} ` +
    `opens_per_s=${(n / floodSeconds).toFixed(0)} consumer_cpu_s=${cpuSeconds.toFixed(3)} ` +
    `consumer_ns_per_event=${received ? ((cpuSeconds * 1e9) / received).toFixed(0) : 0} ` +
    `max_rss_kib=${process.resourceUsage().maxRSS}`,
);
