// Benchmarks of tsbpf exporter (as root; `npm run build:cli` first, or the CLI runs through tsx):
//   flock /tmp/tsbpf-kernel.lock node --import tsx bench/exporter.ts [scrape|flood|all]
// scrape: the CLI serving one counter of 10,000 series (a hash map filled from
//         here): CPU of the exporter process per scrape (/proc/PID/stat over 50
//         scrapes) and its RSS after them and after 200 more. NODE_OPTIONS
//         passes to the exporter.
// flood:  /work/shared/bench/flood.c's openat() loop, throughput without and
//         with the exporter running its default config, alternating, for
//         BENCH_ROUNDS rounds (default 7); medians, the cost and the median of
//         each pair's cost; then one round with BPF statistics on for the time
//         inside each of the exporter's programs that ran. BENCH_EXPORTER_ARGS
//         passes to the exporter (--config FILE: a variant). BENCH_PEER="CMD ARGS"
//         runs a peer tracer in the exporter's place (bench/empty-sys-enter.ts:
//         what the hook itself costs; or bpftrace counting syscalls at the
//         raw_syscalls:sys_enter trace event), ready when a new BPF program appears. Take the lock: a kernel test beside it
//         skews both sides.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compile } from "../src/compile/index.ts";
import { listIds } from "../src/internal/sys/bpf.ts";
import { BpfCmd } from "../src/internal/sys/constants.ts";
import { BpfMap } from "../src/maps/map.ts";

const root = join(import.meta.dirname, "..");
const tsbpf = join(root, "bin", "tsbpf.js");
const dir = mkdtempSync(join(tmpdir(), "tsbpf-exporter-bench-"));
const TICKS = 100; // USER_HZ
const what = process.argv[2] ?? "all";

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]); // utime + stime
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m![1]) / 1024;
}

async function startExporter(args: string[]): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const child = spawn(process.execPath, [tsbpf, "exporter", "--listen", `127.0.0.1:${port}`, ...args], { stdio: ["ignore", "ignore", "inherit"] });
  for (let i = 0; i < 600; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false);
    if (ok) return { child, port };
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill("SIGKILL");
  throw new Error("the exporter did not start");
}

/** BENCH_PEER: the peer's command, started, once a BPF program of its own is in the kernel. */
async function startPeer(command: string[]): Promise<{ child: ChildProcess }> {
  const others = new Set(progList().map((p) => p.id));
  const child = spawn(command[0]!, command.slice(1), { stdio: ["ignore", "ignore", "inherit"] });
  for (let i = 0; i < 600; i++) {
    if (progList().some((p) => !others.has(p.id))) return { child };
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill("SIGKILL");
  throw new Error(`the peer (${command.join(" ")}) loaded no program`);
}

async function stop(child: ChildProcess): Promise<void> {
  const done = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await done;
}

async function scrapeBench(): Promise<void> {
  const object = join(dir, "bench.bpf.o");
  writeFileSync(object, (await compile({ text: `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
struct bench_key { u32 id; u32 kind; };
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 20000); __type(key, struct bench_key); __type(value, u64); } bench_series SEC(".maps");
char LICENSE[] SEC("license") = "GPL";
`, name: "bench.bpf.c" })).bytes);
  const config = join(dir, "bench.yaml");
  writeFileSync(config, `programs: [{ name: bench, object: ./bench.bpf.o }]
metrics:
  counters:
    - name: bench_events_total
      map: bench_series
      labels:
        - { name: id, size: 4, decoders: [{ name: uint }] }
        - { name: kind, size: 4, decoders: [{ name: uint }, { name: static_map, static_map: { 0: even, 1: odd } }] }
`);
  const { child, port } = await startExporter(["--config", config]);
  try {
    const id = listIds(BpfCmd.MAP_GET_NEXT_ID).find((i) => {
      using m = BpfMap.fromId(i);
      return m.name === "bench_series";
    })!;
    using map = BpfMap.fromId(id);
    const idle = rssMiB(child.pid!);
    const entries: [{ id: number; kind: number }, bigint][] = [];
    for (let i = 0; i < 10_000; i++) entries.push([{ id: i, kind: i & 1 }, BigInt(i * 7 + 1)]);
    map.updateBatch(entries);
    const url = `http://127.0.0.1:${port}/metrics`;
    let text = "";
    for (let i = 0; i < 5; i++) text = await (await fetch(url)).text(); // warm-up: decoders, JIT
    const series = text.split("\n").filter((l) => l.startsWith("bench_events_total{")).length;
    const n = 50;
    const t0 = cpuTicks(child.pid!);
    const w0 = performance.now();
    for (let i = 0; i < n; i++) await (await fetch(url)).text();
    const wall = (performance.now() - w0) / n;
    const cpuMs = ((cpuTicks(child.pid!) - t0) / TICKS / n) * 1000;
    const rss50 = rssMiB(child.pid!);
    for (let i = 0; i < 200; i++) await (await fetch(url)).text();
    console.log(`scrape: RSS after 250 more scrapes ${rssMiB(child.pid!).toFixed(1)} MiB`);
    console.log(`scrape: ${series} series, ${cpuMs.toFixed(1)} ms CPU per scrape (exporter process, ${n} scrapes), ${wall.toFixed(1)} ms wall, RSS ${rss50.toFixed(1)} MiB after them (${idle.toFixed(1)} MiB before the first scrape; NODE_OPTIONS=${process.env.NODE_OPTIONS ?? ""}), ${(text.length / 1024).toFixed(0)} KiB of text`);
  } finally {
    await stop(child);
  }
}

function floodBinary(): string {
  const r = spawnSync("bash", ["/work/shared/bench/ref-bench.sh", "flood-path"], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`cannot build flood: ${r.stderr}`);
  return r.stdout.trim();
}

function flood(bin: string, n: number): number {
  const r = spawnSync(bin, [String(n)], { input: "g", encoding: "utf8" });
  const m = /opens_per_s=(\d+)/.exec(r.stdout);
  if (!m) throw new Error(`flood: ${r.stdout}${r.stderr}`);
  return Number(m[1]);
}

interface ProgStat { id: number; name?: string; run_time_ns?: number; run_cnt?: number }
const progList = (): ProgStat[] => JSON.parse(spawnSync("bpftool", ["prog", "show", "-j"], { encoding: "utf8" }).stdout) as ProgStat[];

/** Run time and count, by name, of the programs in `ids` (the exporter's). */
function progStats(ids: Set<number>): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>();
  for (const p of progList()) {
    if (!ids.has(p.id)) continue;
    const name = p.name ?? String(p.id);
    const [ns, cnt] = out.get(name) ?? [0, 0];
    out.set(name, [ns + (p.run_time_ns ?? 0), cnt + (p.run_cnt ?? 0)]);
  }
  return out;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function floodBench(): Promise<void> {
  const bin = floodBinary();
  const n = 2_000_000;
  const rounds = Number(process.env.BENCH_ROUNDS ?? 7);
  flood(bin, n / 4); // warm-up
  const base: number[] = [];
  const traced: number[] = [];
  const args = process.env.BENCH_EXPORTER_ARGS ? process.env.BENCH_EXPORTER_ARGS.split(" ") : [];
  const peer = process.env.BENCH_PEER ? process.env.BENCH_PEER.split(" ") : undefined;
  // Throughput rounds run with the kernel's BPF statistics off (they add two clock reads per
  // program run); one more round with them on measures the time inside the exporter's
  // programs, a figure the machine's load does not blur, unlike the throughputs.
  const inProgs = new Map<string, [number, number]>();
  const statsPath = "/proc/sys/kernel/bpf_stats_enabled";
  const statsWas = readFileSync(statsPath, "utf8").trim();
  writeFileSync(statsPath, "0");
  try {
    for (let i = 0; i <= rounds; i++) {
      const measureProgs = i === rounds;
      // Without, then with: each pair close in time, so drifts in the machine's load hit both.
      if (!measureProgs) base.push(flood(bin, n));
      const others = new Set(progList().map((p) => p.id));
      const { child } = peer ? await startPeer(peer) : await startExporter(args);
      try {
        await new Promise((r) => setTimeout(r, 500)); // start-up work done
        const ids = new Set(progList().map((p) => p.id).filter((id) => !others.has(id)));
        if (measureProgs) writeFileSync(statsPath, "1");
        const before = progStats(ids);
        const rate = flood(bin, n);
        const after = progStats(ids);
        if (!measureProgs) traced.push(rate);
        for (const [name, [ns, cnt]] of after) {
          const [ns0, cnt0] = before.get(name) ?? [0, 0];
          const acc = inProgs.get(name) ?? [0, 0];
          inProgs.set(name, [acc[0] + ns - ns0, acc[1] + cnt - cnt0]);
        }
      } finally {
        writeFileSync(statsPath, "0");
        await stop(child);
      }
    }
  } finally {
    writeFileSync(statsPath, statsWas);
  }
  const b = median(base), t = median(traced);
  const perOpen = [...inProgs].filter(([, [, cnt]]) => cnt > 0).map(([name, [ns, cnt]]) => `${name} ${(ns / n).toFixed(0)} ns (${(cnt / n).toFixed(2)} runs)`).join(", ") || "none ran";
  console.log(`flood: time in the exporter's programs that ran per openat(): ${perOpen}; a flood open takes ${(1e9 / b).toFixed(0)} ns without the exporter (median)`);
  console.log(`flood: ${n} openat() x ${rounds} rounds: without the exporter ${b} opens/s (median), with ${peer ? peer[0] : args.length ? args.join(" ") : "the default config"} ${t} opens/s: ${(((b - t) / b) * 100).toFixed(1)}% cost`);
  // Each pair's cost, then their median: a drift in the machine's load moves both runs of a pair.
  const pairs = base.map((x, i) => ((x - traced[i]) / x) * 100);
  console.log(`  cost per pair, median: ${median(pairs).toFixed(1)}%; ns added per open (medians): ${(1e9 / t - 1e9 / b).toFixed(0)}`);
  console.log(`  runs without: ${base.join(" ")}; with: ${traced.join(" ")}`);
}

try {
  if (what === "scrape" || what === "all") await scrapeBench();
  if (what === "flood" || what === "all") await floodBench();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
