// npm run bench:memory: resident memory of `tsbpf opensnoop` (pre-compiled objects),
// read from /proc/PID/status: VmRSS once the header is out and the tool idles for a
// second, then VmHWM (the peak) after the shared flood (../shared/bench/flood.c:
// N failing openat() calls, every one traced and printed) has run under it.
//   node bench/memory.mjs [--runs N] [--opens N] [--objects DIR] [--bin PATH] [--node-flags "--flag ..."]
// Plain JavaScript, so that the driver needs no build and no tsx.
import { execFileSync, spawn } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";

const root = join(import.meta.dirname, "..");
const { values: opts } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    opens: { type: "string", default: "1000000" },
    objects: { type: "string" },
    bin: { type: "string", default: join(root, "bin", "tsbpf.js") },
    "node-flags": { type: "string", default: "" },
  },
});
const scratch = mkdtempSync(join(tmpdir(), "tsbpf-memory-"));
const floodSrc = join(root, "..", "shared", "bench", "flood.c");
const floodC = existsSync(floodSrc) ? floodSrc : "/work/shared/bench/flood.c";
const flood = join(scratch, "flood");
execFileSync("cc", ["-O2", "-o", flood, floodC]);
const objects = opts.objects ?? join(root, "dist", "bpf");
if (!existsSync(join(objects, "opensnoop.bpf.o"))) throw new Error(`no ${objects}/opensnoop.bpf.o: run "npm run build" (or give --objects DIR)`);

const status = (pid) => {
  const text = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(text)[1]);
  return { rss: kib("VmRSS"), hwm: kib("VmHWM") };
};
const mib = (kib) => Math.round(kib / 102.4) / 10;

async function once(i) {
  const f = spawn(flood, [opts.opens], { stdio: ["pipe", "pipe", "inherit"] });
  const out = join(scratch, `out-${i}`);
  const fd = openSync(out, "w");
  const tool = spawn(process.execPath, [...opts["node-flags"].split(" ").filter(Boolean), opts.bin, "opensnoop", "-p", String(f.pid)], {
    stdio: ["ignore", fd, "inherit"],
    env: { ...process.env, TSBPF_TOOL_OBJECTS: objects, TSBPF_CLANG: "/nonexistent" },
  });
  closeSync(fd);
  const exited = new Promise((resolve) => tool.on("exit", (code, sig) => resolve(code ?? sig)));
  // The header is the file's first line: written once the programs are attached.
  while (statSync(out).size === 0) await sleep(20);
  await sleep(1000);
  const idle = status(tool.pid);
  const floodDone = new Promise((resolve) => f.on("exit", resolve));
  f.stdin.end("x");
  await floodDone;
  // Lines still in the ring are drained within a few ms; wait until the output stops growing.
  for (let size = -1; size !== statSync(out).size; ) {
    size = statSync(out).size;
    await sleep(300);
  }
  const loaded = status(tool.pid);
  tool.kill("SIGINT");
  const code = await exited;
  const lines = readFileSync(out, "utf8").split("\n").length - 2; // header, last newline
  rmSync(out);
  return { idleRss: mib(idle.rss), idleHwm: mib(idle.hwm), peak: mib(loaded.hwm), lines, code };
}

const runs = [];
try {
  for (let i = 0; i < Number(opts.runs); i++) {
    const r = await once(i);
    runs.push(r);
    console.log(`run ${i + 1}: idle ${r.idleRss} MiB (peak so far ${r.idleHwm}), peak under the flood ${r.peak} MiB, ${r.lines} lines, exit ${r.code}`);
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log(`median: idle ${median(runs.map((r) => r.idleRss))} MiB, peak ${median(runs.map((r) => r.peak))} MiB (${opts.opens} opens)`);
