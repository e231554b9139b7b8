// Symbolization speed: 10,000 distinct stacks (user frames in a running Node
// process: node's 100 MB binary, libc, libstdc++...; kernel frames from kallsyms),
// symbolized by tsbpf's Symbolizer and, when python3-bpfcc is installed, by BCC's
// BPF.sym/BPF.ksym (libbcc's symbol cache) over the very same addresses.
//
//   node --import tsx bench/symbolize.ts [--stacks N] [--depth N] [--no-bcc]
//
// Two sets of stacks with different addresses: the first pass loads and caches the
// binaries' symbols (cold), the second measures lookups once they are cached (warm).
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { kallsyms } from "../src/internal/kallsyms.ts";
import { ElfImage } from "../src/elf/symtab.ts";
import { binarySymbols, clearBinaryCache, ProcessMaps, Symbolizer, UNKNOWN } from "../src/symbolize/index.ts";

const { values } = parseArgs({ options: { stacks: { type: "string", default: "10000" }, depth: { type: "string", default: "12" }, "no-bcc": { type: "boolean", default: false } } });
const STACKS = Number(values.stacks);
const DEPTH = Number(values.depth);

// A deterministic generator, so runs compare.
let seed = 12345;
const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) % n);

const target = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
await new Promise((r) => setTimeout(r, 300));
const pid = target.pid!;

// Candidate user addresses: function starts + a small offset, in every executable file mapping.
const maps = ProcessMaps.read(pid)!;
const candidates: bigint[] = [];
for (const m of maps.mappings) {
  if (!m.path.startsWith("/")) continue;
  const image = ElfImage.open(m.hostPath);
  const table = image.functions();
  const seg = image.loads.find((s) => s.flags & 1)!;
  image.close();
  for (let i = 0; i < table.length; i++) {
    const fo = table.addrs[i]! - seg.vaddr + seg.offset;
    const addr = m.start + fo - m.pgoff;
    if (addr >= m.start && addr < m.end) candidates.push(BigInt(addr + Math.min(3, Math.max(0, table.sizes[i]! - 1))));
  }
}
const ktext = [...kallsyms().symbols("tw")].map((s) => s.address);

function makeStacks(): { user: bigint[]; kernel: bigint[] }[] {
  const out = [];
  for (let s = 0; s < STACKS; s++) {
    const user = Array.from({ length: DEPTH }, () => candidates[rand(candidates.length)]!);
    const kernel = Array.from({ length: DEPTH }, () => ktext[rand(ktext.length)]! + BigInt(rand(16)));
    out.push({ user, kernel });
  }
  return out;
}
const cold = makeStacks();
const warm = makeStacks();
const frames = STACKS * DEPTH * 2;

function runTsbpf(stacks: { user: bigint[]; kernel: bigint[] }[]): { ms: number; unknown: number; sample: string[] } {
  const sym = new Symbolizer();
  let unknown = 0;
  const t = performance.now();
  let sample: string[] = [];
  for (const st of stacks) {
    const k = sym.kernelStack(st.kernel);
    const u = sym.userStack(pid, st.user);
    for (const f of k) if (f.name === UNKNOWN) unknown++;
    for (const f of u) if (f.name === UNKNOWN) unknown++;
    if (!sample.length) sample = [...u.slice(0, 3).map((f) => f.name), ...k.slice(0, 2).map((f) => f.name)];
  }
  return { ms: performance.now() - t, unknown, sample };
}

clearBinaryCache();
const c = runTsbpf(cold);
const w = runTsbpf(warm);
const nodeSyms = binarySymbols(process.execPath)!;
console.log(`target: pid ${pid}, ${maps.mappings.length} executable mappings, ${candidates.length} candidate user addresses; node's table ${nodeSyms.table.length} functions (${nodeSyms.origin}); kallsyms ${kallsyms().size} symbols`);
console.log(`tsbpf  cold (loads symbols): ${STACKS} stacks, ${frames} frames in ${c.ms.toFixed(0)} ms (${c.unknown} [unknown])`);
console.log(`tsbpf  warm (cached):        ${STACKS} stacks, ${frames} frames in ${w.ms.toFixed(0)} ms (${w.unknown} [unknown]); e.g. ${w.sample.join(", ")}`);

if (!values["no-bcc"]) {
  const dir = mkdtempSync(join(tmpdir(), "tsbpf-symbench-"));
  const hex = (set: { user: bigint[]; kernel: bigint[] }[]) => set.map((s) => [s.user.map(String), s.kernel.map(String)]);
  writeFileSync(join(dir, "stacks.json"), JSON.stringify({ pid, cold: hex(cold), warm: hex(warm) }));
  writeFileSync(
    join(dir, "bcc_bench.py"),
    `import json, sys, time
from bcc import BPF
d = json.load(open(sys.argv[1]))
pid = d["pid"]
def run(stacks):
    unknown = 0
    t = time.perf_counter()
    for user, kernel in stacks:
        for a in kernel:
            if BPF.ksym(int(a)) == b"[unknown]": unknown += 1
        for a in user:
            if BPF.sym(int(a), pid) == b"[unknown]": unknown += 1
    return (time.perf_counter() - t) * 1000, unknown
c = run(d["cold"]); w = run(d["warm"])
print(json.dumps({"cold": c, "warm": w}))
`,
  );
  try {
    const out = JSON.parse(execFileSync(existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3", [join(dir, "bcc_bench.py"), join(dir, "stacks.json")], { encoding: "utf8" }));
    console.log(`BCC    cold (loads symbols): ${out.cold[0].toFixed(0)} ms (${out.cold[1]} [unknown])`);
    console.log(`BCC    warm (cached):        ${out.warm[0].toFixed(0)} ms (${out.warm[1]} [unknown])`);
  } catch (err) {
    console.log(`BCC: not run (${(err as Error).message.split("\n")[0]})`);
  }
  rmSync(dir, { recursive: true, force: true });
}
target.kill("SIGKILL");
