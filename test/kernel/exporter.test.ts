// tsbpf exporter: config mistakes (file:line:field, nothing left loaded), the
// series limit, OTLP push, and the whole thing under Debian's Prometheus with
// the default config, a workload, SIGHUP and SIGTERM.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { createServer as netServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compile } from "../../src/compile/index.ts";
import { ConfigError, parseConfig } from "../../src/exporter/config.ts";
import { DROP, inetIp, makeDecoder, syscallName } from "../../src/exporter/decoders.ts";
import { defaultConfig } from "../../src/exporter/defaults.ts";
import { Exporter } from "../../src/exporter/exporter.ts";
import { builtinObject } from "../../src/exporter/programs.ts";
import { startOtlp } from "../../src/exporter/otlp.ts";
import { histogramLayout } from "../../src/exporter/reader.ts";
import { listIds } from "../../src/internal/sys/bpf.ts";
import { BpfCmd } from "../../src/internal/sys/constants.ts";
import { BpfMap } from "../../src/maps/map.ts";
import { ObjectSpec } from "../../src/object/spec.ts";
import { programsNamed } from "../support/kernel.ts";
import { root, tsbpf } from "../support/tools.ts";

const dir = mkdtempSync(join(tmpdir(), "tsbpf-exporter-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const OBJECT_C = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
struct pid_comm { u32 pid; char comm[16]; };
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1024); __type(key, struct pid_comm); __type(value, u64); } by_pid_comm SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 100000); __type(key, u32); __type(value, u64); } card_test SEC(".maps");
SEC("tp/syscalls/sys_enter_getppid")
int exptest_getppid(void *ctx) {
  struct pid_comm k = { .pid = bpf_get_current_pid_tgid() >> 32 };
  u64 one = 1, *n;
  bpf_get_current_comm(k.comm, sizeof(k.comm));
  n = bpf_map_lookup_elem(&by_pid_comm, &k);
  if (n) __sync_fetch_and_add(n, 1); else bpf_map_update_elem(&by_pid_comm, &k, &one, BPF_NOEXIST);
  return 0;
}
char LICENSE[] SEC("license") = "GPL";
`;
const objectPath = join(dir, "exptest.bpf.o");

function writeConfig(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function load(path: string): Promise<Exporter> {
  return Exporter.start(parseConfig(readFileSync(path, "utf8"), path), { processMetrics: false, warn: () => {} });
}

/** Asserts `fn` throws a ConfigError naming `path`, `line` and a field matching `field`. */
async function assertConfigError(fn: () => unknown, path: string, line: number, field: RegExp): Promise<ConfigError> {
  let caught: unknown;
  try {
    await fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${caught}`);
  assert.equal(caught.file, path);
  assert.equal(caught.line, line, caught.message);
  assert.match(caught.field, field, caught.message);
  assert.ok(caught.message.startsWith(`${path}:${line}: `), caught.message);
  return caught;
}

describe("decoders and histogram layout (no kernel)", () => {
  const dec = (conf: object) => makeDecoder({ at: { file: "x", line: 1 }, ...conf } as never);
  test("uint, string, inet_ip, syscall, static_map, regexp", () => {
    assert.equal(dec({ name: "uint" })(new Uint8Array([0x10, 0x27, 0, 0])), "10000");
    assert.equal(dec({ name: "string" })(new TextEncoder().encode("bash\0\0junk")), "bash");
    assert.equal(inetIp(new Uint8Array([127, 0, 0, 1])), "127.0.0.1");
    assert.equal(inetIp(new Uint8Array([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])), "2001:db8::1");
    assert.equal(syscallName(257), "openat");
    const sm = dec({ name: "static_map", staticMap: new Map([["1", "write"]]) });
    assert.equal(sm("1"), "write");
    assert.equal(sm("7"), "unknown:7");
    const re = dec({ name: "regexp", regexps: [/^(kworker)\/.*$/, /^bash$/] });
    assert.equal(re("kworker/0:1"), "kworker");
    assert.equal(re("bash"), "bash");
    assert.equal(re("sshd"), DROP);
  });

  test("exp2 histograms: bounds 2^i times the multiplier; the key past bucket_max is the sum", () => {
    const cfg = parseConfig(readFileSync(join(root, "src/exporter/default.yaml"), "utf8"), "default.yaml");
    const bio = cfg.metrics.find((m) => m.name === "bio_latency_seconds")!;
    const { bounds, index } = histogramLayout(bio);
    assert.equal(bounds.length, 28);
    assert.equal(bounds[10], 1024e-6);
    assert.equal(index(10), 10);
    assert.equal(index(28), -2);
    assert.equal(index(40), -1);
  });

  test("syntax-level mistakes name file, line and field", async () => {
    const dup = writeConfig("dup.yaml", `programs:
  - name: p
    builtin: execsnoop
metrics:
  counters:
    - name: same_total
      map: comm_counts
      labels: [{ name: comm, size: 16, decoders: [{ name: string }] }]
    - name: same_total
      map: comm_counts
      labels: [{ name: comm, size: 16, decoders: [{ name: string }] }]
`);
    const e = await assertConfigError(() => parseConfig(readFileSync(dup, "utf8"), dup), dup, 9, /^name$/);
    assert.match(e.message, /already defined at line 6/);
    const bad = writeConfig("bad-decoder.yaml", `programs: [{ name: p, builtin: execsnoop }]
metrics:
  counters:
    - name: x_total
      map: comm_counts
      labels:
        - name: comm
          size: 16
          decoders:
            - name: strnig
`);
    await assertConfigError(() => parseConfig(readFileSync(bad, "utf8"), bad), bad, 10, /decoders\[0\]\.name$/);
    const typo = writeConfig("typo.yaml", `programs: [{ name: p, builtin: execsnoop }]
metrics:
  counters:
    - name: x_total
      mapp: execs_total
`);
    await assertConfigError(() => parseConfig(readFileSync(typo, "utf8"), typo), typo, 5, /\.mapp$/);
  });
});

describe("with the kernel", () => {
  before(async () => {
    writeFileSync(objectPath, (await compile({ text: OBJECT_C, name: "exptest.bpf.c" })).bytes);
  });

  test("a missing program, an unknown map, a wrong decoder: file:line:field, and nothing stays loaded", async () => {
    const missing = writeConfig("missing.yaml", `programs:
  - name: gone
    object: ./nope.bpf.o
metrics:
  counters:
    - name: x_total
      map: by_pid_comm
      labels: [{ name: pid, size: 4, decoders: [{ name: uint }] }, { name: comm, size: 16, decoders: [{ name: string }] }]
`);
    await assertConfigError(() => load(missing), missing, 2, /^programs\[0\]\.object$/);

    // A tool's object in an exporter mode, with a program name it does not have.
    const noProgram = writeConfig("no-program.yaml", `programs:
  - name: bio
    builtin: biolatency
    constants: { targ_max_slot: 27 }
    attach: [block_rq_issue, block_rq_done]
metrics:
  counters: []
`);
    const a = await assertConfigError(() => load(noProgram), noProgram, 5, /^programs\[0\]\.attach\[1\]$/);
    assert.match(a.message, /no program "block_rq_done".*block_rq_complete/);

    const unknownMap = writeConfig("unknown-map.yaml", `programs:
  - name: t
    object: ./exptest.bpf.o
metrics:
  counters:
    - name: x_total
      map: by_pid
      labels: [{ name: pid, size: 4, decoders: [{ name: uint }] }]
`);
    const e = await assertConfigError(() => load(unknownMap), unknownMap, 7, /^map$/);
    assert.match(e.message, /no map "by_pid" \(maps: by_pid_comm, card_test\)/);

    const wrongDecoder = writeConfig("wrong-decoder.yaml", `programs:
  - name: t
    object: ./exptest.bpf.o
metrics:
  counters:
    - name: x_total
      map: by_pid_comm
      labels:
        - name: pid
          size: 4
          decoders: [{ name: string }]
        - name: comm
          size: 16
          decoders: [{ name: string }]
`);
    const w = await assertConfigError(() => load(wrongDecoder), wrongDecoder, 11, /^labels\[0\]\.decoders\[0\]$/);
    assert.match(w.message, /field pid\): a 4-byte integer is not a string/);

    // The first program loads and attaches; the BCC one's map is checked only once it
    // is loaded, and is wrong: the exporter must not start with the first one alone.
    const half = writeConfig("half.yaml", `programs:
  - name: t
    object: ./exptest.bpf.o
  - name: b
    bcc: |
      BPF_HASH(counts, u32, u64);
      TRACEPOINT_PROBE(syscalls, sys_enter_getppid) { counts.increment(bpf_get_current_pid_tgid() >> 32); return 0; }
metrics:
  counters:
    - name: ok_total
      program: t
      map: card_test
      labels: [{ name: id, size: 4, decoders: [{ name: uint }] }]
    - name: bad_total
      program: b
      map: countz
      labels: [{ name: pid, size: 4, decoders: [{ name: uint }] }]
`);
    const h = await assertConfigError(() => load(half), half, 16, /^map$/);
    assert.match(h.message, /no map "countz" \(maps: counts/);
    assert.deepEqual(programsNamed("exptest_getppid"), [], "the first program was left loaded");
  });

  test("a config making 100,000 series is cut at the limit, and the self metric counts the drops", async (t) => {
    const card = writeConfig("card.yaml", `series_limit: 10000
programs:
  - name: t
    object: ./exptest.bpf.o
metrics:
  counters:
    - name: card_total
      map: card_test
      labels: [{ name: id, size: 4, decoders: [{ name: uint }] }]
`);
    await using exporter = await load(card);
    const mapId = listIds(BpfCmd.MAP_GET_NEXT_ID).find((id) => {
      // A map listed here may be freed before we open it (an earlier test's, after RCU).
      let m: BpfMap;
      try {
        m = BpfMap.fromId(id);
      } catch {
        return false;
      }
      using _ = m;
      return m.name === "card_test";
    });
    assert.ok(mapId !== undefined);
    using map = BpfMap.fromId(mapId);
    const entries: [number, bigint][] = [];
    for (let i = 0; i < 100_000; i++) entries.push([i, BigInt(i + 1)]);
    assert.equal(map.updateBatch(entries), 100_000);
    let text = "";
    const cpu0 = process.cpuUsage();
    const rounds = 5;
    for (let i = 0; i < rounds; i++) text = (await exporter.scrape()).toString();
    const cpu = process.cpuUsage(cpu0);
    const series = text.split("\n").filter((l) => l.startsWith("card_total{"));
    assert.equal(series.length, 10_000);
    assert.match(text, new RegExp(`tsbpf_exporter_series_dropped_total\\{metric="card_total"\\} ${90_000 * rounds}\\n`));
    assert.match(text, /tsbpf_exporter_series\{metric="card_total"\} 10000\n/);
    // The same 10,000 series every time: the ones first admitted stay.
    const again = (await exporter.scrape()).toString().split("\n").filter((l) => l.startsWith("card_total{"));
    assert.deepEqual(again.map((l) => l.split(" ")[0]).sort(), series.map((l) => l.split(" ")[0]).sort());
    t.diagnostic(`100,000 keys read, 10,000 series out: ${((cpu.user + cpu.system) / rounds / 1000).toFixed(1)} ms CPU per scrape`);
  });

  test("default config: syscalls and opens by one raw_tp sys_enter program, execs at sched_process_exec, no syscalls:* event", async () => {
    const config = defaultConfig();
    // What the syscall path pays (the flood's cost): one program on raw sys_enter, none on
    // a syscalls:* trace event (one puts a probe on every syscall's entry or exit).
    const sections: string[] = [];
    for (const p of config.programs) {
      if (p.source.kind !== "builtin") continue;
      const spec = ObjectSpec.fromBytes(await builtinObject(p.source.name));
      for (const name of p.attach ?? spec.programs.keys()) sections.push(spec.program(name).section);
    }
    assert.deepEqual(sections.filter((s) => /^(raw_tp|raw_tracepoint|tp_btf)\/sys_(enter|exit)$/.test(s)), ["raw_tp/sys_enter"]);
    assert.deepEqual(sections.filter((s) => /^(tp|tracepoint)\/(syscalls|raw_syscalls)\//.test(s)), []);

    config.programs = config.programs.filter((p) => p.name === "syscalls" || p.name === "execs");
    config.metrics = config.metrics.filter((m) => m.program === "syscalls" || m.program === "execs");
    await using exporter = await Exporter.start(config, { processMetrics: false });
    assert.equal(programsNamed("count_enter").length, 1);
    // A command of a known name (the name of the link it is run by) execs once and opens 300 times.
    const link = join(dir, "exptest-opens");
    spawnSync("ln", ["-sf", "/bin/bash", link]);
    const value = async (series: string) => {
      const line = (await exporter.scrape()).toString().split("\n").find((l) => l.startsWith(`${series} `));
      return line ? Number(line.slice(series.length + 1)) : 0;
    };
    const opens = 'opens_total{comm="exptest-opens"}', execs = 'execs_total{comm="exptest-opens"}', openat = 'syscalls_total{syscall="openat"}';
    const before = { opens: await value(opens), execs: await value(execs), openat: await value(openat) };
    const r = spawnSync(link, ["-c", "exec 2>/dev/null; for i in $(seq 300); do : < /nonexistent/exptest; done; exit 0"], { timeout: 30_000 });
    assert.equal(r.status, 0);
    const opensGrew = (await value(opens)) - before.opens;
    assert.ok(opensGrew >= 300 && opensGrew < 400, `opens of exptest-opens grew by ${opensGrew}, expected 300 and a few`);
    assert.equal((await value(execs)) - before.execs, 1);
    assert.ok((await value(openat)) - before.openat >= 300);
  });

  test("OTLP: a push reaches a collector on loopback with counters and histograms", async () => {
    const bodies: { type: string; body: string }[] = [];
    const receiver: Server = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        bodies.push({ type: String(req.headers["content-type"]), body });
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      });
    });
    await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
    const port = (receiver.address() as { port: number }).port;
    const config = defaultConfig();
    config.programs = config.programs.filter((p) => p.name === "runqlat" || p.name === "execs");
    config.metrics = config.metrics.filter((m) => m.program === "runqlat" || m.program === "execs");
    try {
      await using exporter = await Exporter.start(config, { processMetrics: false });
      spawnSync("/bin/true");
      const push = startOtlp(exporter, `http://127.0.0.1:${port}/v1/metrics`, 60_000);
      await push.push();
      await push.close();
    } finally {
      await new Promise((r) => receiver.close(r));
    }
    assert.equal(bodies.length, 1);
    assert.match(bodies[0].type, /application\/json/);
    const doc = JSON.parse(bodies[0].body);
    const metrics = doc.resourceMetrics[0].scopeMetrics[0].metrics as { name: string; histogram?: { dataPoints: { bucketCounts: string[]; explicitBounds: number[] }[] }; sum?: { isMonotonic: boolean; dataPoints: { attributes: { key: string; value: { stringValue: string } }[] }[] } }[];
    const hist = metrics.find((m) => m.name === "run_queue_latency_seconds");
    assert.ok(hist?.histogram?.dataPoints.length, "no run-queue histogram point");
    assert.equal(hist.histogram.dataPoints[0].bucketCounts.length, hist.histogram.dataPoints[0].explicitBounds.length + 1);
    const execs = metrics.find((m) => m.name === "execs_total");
    assert.equal(execs?.sum?.isMonotonic, true);
    assert.ok(execs.sum.dataPoints.some((p) => p.attributes.some((a) => a.key === "comm" && a.value.stringValue === "true")), "no exec of true");
  });
});

// ---- Prometheus, the default config, a workload ----

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = netServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function promQuery(port: number, expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const res = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = (await res.json()) as { status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
  assert.equal(body.status, "success");
  return body.data.result;
}

async function promValue(port: number, expr: string): Promise<number | undefined> {
  const r = await promQuery(port, expr);
  return r.length ? Number(r[0].value[1]) : undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` up to `tries` times, `ms` apart; returns its last value. */
async function poll<T>(check: () => Promise<T>, ok: (v: T) => boolean, tries = 40, ms = 500): Promise<T> {
  let v = await check();
  for (let i = 0; i < tries && !ok(v); i++) {
    await sleep(ms);
    v = await check();
  }
  return v;
}

function exited(child: ChildProcess): Promise<number | null> {
  return child.exitCode !== null ? Promise.resolve(child.exitCode) : new Promise((r) => child.once("exit", (code) => r(code)));
}

describe("under Prometheus, with the default config", () => {
  let prom: ChildProcess | undefined;
  let exporter: ChildProcess | undefined;
  let promPort = 0;
  let exporterPort = 0;
  let exporterErr = "";
  const work = mkdtempSync("/var/tmp/tsbpf-exporter-io-"); // the root fs: /tmp may be tmpfs

  before(async () => {
    if (!existsSync("/usr/bin/prometheus")) {
      const r = spawnSync("apt-get", ["install", "-y", "-qq", "prometheus"], { env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }, stdio: "ignore" });
      assert.equal(r.status, 0, "apt-get install prometheus failed");
    }
    exporterPort = await freePort();
    exporter = spawn(process.execPath, [tsbpf, "exporter", "--listen", `127.0.0.1:${exporterPort}`], { stdio: ["ignore", "ignore", "pipe"] });
    exporter.stderr!.on("data", (c) => (exporterErr += c));
    const up = await poll(
      () => fetch(`http://127.0.0.1:${exporterPort}/healthz`).then((r) => r.status, () => 0),
      (s) => s === 200 || exporter!.exitCode !== null,
      120,
    );
    assert.equal(up, 200, `the exporter did not come up: ${exporterErr}`);
    promPort = await freePort();
    const cfg = join(dir, "prometheus.yml");
    writeFileSync(cfg, `global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: tsbpf
    static_configs:
      - targets: ["127.0.0.1:${exporterPort}"]
`);
    prom = spawn("/usr/bin/prometheus", [
      `--config.file=${cfg}`, `--storage.tsdb.path=${join(dir, "prom-data")}`, `--web.listen-address=127.0.0.1:${promPort}`,
    ], { stdio: "ignore" });
  });

  after(async () => {
    prom?.kill("SIGTERM");
    if (exporter && exporter.exitCode === null) exporter.kill("SIGKILL");
    if (prom) await exited(prom);
    rmSync(work, { recursive: true, force: true });
  });

  const workload = () => {
    // Direct I/O writes reach the block layer now, not at writeback.
    spawnSync("dd", ["if=/dev/zero", `of=${join(work, "dio")}`, "bs=64k", "count=64", "oflag=direct"], { stdio: "ignore" });
    for (let i = 0; i < 20; i++) spawnSync("/bin/true");
    for (let i = 0; i < 50; i++) existsSync(join(work, "dio")) && readFileSync("/etc/hostname");
  };

  test("up is 1; execs, opens and syscalls counters grow; block I/O histogram buckets grow", async () => {
    const upv = await poll(() => promValue(promPort, 'up{job="tsbpf"}').catch(() => undefined), (v) => v === 1, 60);
    assert.equal(upv, 1, "Prometheus never scraped the exporter successfully");
    workload();
    const q = {
      execs: 'sum(execs_total{comm="true"})',
      opens: "sum(opens_total)",
      syscalls: 'sum(syscalls_total{syscall="openat"})',
      bio: 'sum(bio_latency_seconds_count{operation="write"})',
      buckets: 'sum(bio_latency_seconds_bucket{operation="write", le="+Inf"})',
    };
    const first = await poll(() => promValue(promPort, q.bio), (v) => v !== undefined && v > 0);
    assert.ok(first && first > 0, "no block I/O writes in Prometheus");
    const before = Object.fromEntries(await Promise.all(Object.entries(q).map(async ([k, e]) => [k, (await promValue(promPort, e)) ?? 0]))) as Record<string, number>;
    workload();
    const grew = await poll(
      async () => Object.fromEntries(await Promise.all(Object.entries(q).map(async ([k, e]) => [k, (await promValue(promPort, e)) ?? 0]))) as Record<string, number>,
      (now) => Object.keys(q).every((k) => now[k] > before[k]),
    );
    for (const k of Object.keys(q)) assert.ok(grew[k] > before[k], `${k} did not grow: ${before[k]} -> ${grew[k]}`);
    assert.ok(grew.execs - before.execs >= 20, `execs of true grew by ${grew.execs - before.execs}, expected 20`);
    const buckets = await promQuery(promPort, 'bio_latency_seconds_bucket{operation="write"}');
    assert.ok(buckets.some((b) => b.metric.le !== "+Inf" && Number(b.value[1]) > 0), "every finite write bucket is empty");
    assert.equal(await promValue(promPort, "sum(tsbpf_exporter_scrape_errors_total)"), undefined, "scrape errors were counted");
  });

  test("every query of the Grafana dashboard names metrics Prometheus holds", async () => {
    const dash = JSON.parse(readFileSync(join(root, "examples/exporter/grafana-dashboard.json"), "utf8"));
    const exprs: string[] = [];
    for (const p of dash.panels) for (const t of p.targets) exprs.push(t.expr);
    for (const v of dash.templating.list) if (typeof v.query === "object") exprs.push(v.query.query);
    // Names with samples, and the families whose HELP/TYPE Prometheus scraped
    // (a counter with no series yet, tcp_retransmits_total on a quiet host).
    const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/label/__name__/values`);
    const names = new Set(((await res.json()) as { data: string[] }).data);
    const meta = (await (await fetch(`http://127.0.0.1:${promPort}/api/v1/metadata`)).json()) as { data: Record<string, { type: string }[]> };
    for (const [family, entries] of Object.entries(meta.data)) {
      names.add(family);
      if (entries.some((e) => e.type === "histogram")) for (const suffix of ["_bucket", "_sum", "_count"]) names.add(family + suffix);
    }
    const FUNCS = new Set(["sum", "by", "rate", "topk", "histogram_quantile", "or", "label_values", "le", "instance", "device", "operation"]);
    let checked = 0;
    for (const e of exprs) {
      const stripped = e.replace(/\{[^}]*\}/g, "").replace(/\[[^\]]*\]/g, "").replace(/\([a-z_, ]*\)\s*\(/g, "(");
      for (const [name] of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
        if (FUNCS.has(name) || !name.includes("_")) continue;
        assert.ok(names.has(name), `the dashboard queries ${name}, which Prometheus does not hold`);
        checked++;
      }
    }
    assert.ok(checked >= 12, `only ${checked} metric names found in the dashboard`);
    for (const p of dash.panels.filter((p: { type: string }) => p.type === "heatmap")) assert.match(p.targets[0].expr, /_bucket/);
  });

  test("SIGHUP reloads without losing counts; SIGTERM detaches everything and exits 0", async () => {
    const q = 'sum(execs_total{comm="true"})';
    const before = await poll(() => promValue(promPort, q), (v) => v !== undefined);
    exporter!.kill("SIGHUP");
    await poll(async () => exporterErr, (e) => e.includes("reloaded"), 60);
    assert.match(exporterErr, /reloaded/);
    for (let i = 0; i < 5; i++) spawnSync("/bin/true");
    const after = await poll(() => promValue(promPort, q), (v) => v !== undefined && v >= before! + 5);
    assert.ok(after! >= before! + 5, `execs_total went ${before} -> ${after} across a reload`);
    assert.ok(programsNamed("block_rq_issue").length > 0);
    exporter!.kill("SIGTERM");
    assert.equal(await exited(exporter!), 0, exporterErr);
    assert.match(exporterErr, /SIGTERM: detached/);
    for (const name of ["block_rq_issue", "btf_switch", "count_enter", "flush_opens", "set_state", "retransmit", "count_execs"]) {
      assert.deepEqual(programsNamed(name), [], `${name} is still loaded`);
    }
  });
});
