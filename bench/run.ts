// npm run bench: every tsbpf reader mode and the C + libbpf reference on the
// same flood load, one pass each, in one run; then the ratios the targets use.
//   npm run bench [-- N]        (N opens per pass; default 1,000,000)
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const n = Number(process.argv[2] ?? 1_000_000);
const here = import.meta.dirname;
const refBench = join(here, "..", "..", "shared", "bench", "ref-bench.sh");

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
}

const flood = run("bash", [refBench, "flood-path"]);
const lines = new Map<string, Record<string, number>>();
function record(line: string, rename?: string): void {
  const fields = Object.fromEntries(line.split(" ").map((kv) => kv.split("="))) as Record<string, string>;
  const mode = rename ?? fields.mode;
  const printed = rename ? line.replace(/^mode=\S+/, `mode=${rename}`) : line;
  console.log(printed);
  lines.set(mode, Object.fromEntries(Object.entries(fields).filter(([k]) => k !== "mode").map(([k, v]) => [k, Number(v)])));
}

for (const mode of ["rb-raw", "rb-decoded", "rb-batched", "pb-raw", "pb-decoded", "pb-batched"]) {
  record(run(process.execPath, [join(here, "consumer.mjs"), mode, String(n), flood]));
}
// The C reference prints no memory figure: GNU time's %M is the peak resident memory of the
// largest process it waited for (the consumer, whose rings outweigh the flood and the shell).
if (!existsSync("/usr/bin/time")) execFileSync("apt-get", ["install", "-y", "-qq", "time"], { stdio: "inherit" });
function runMeasured(args: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), "tsbpf-bench-"));
  try {
    const line = run("/usr/bin/time", ["-f", "%M", "-o", join(dir, "rss"), "bash", ...args]);
    return `${line} max_rss_kib=${readFileSync(join(dir, "rss"), "utf8").trim()}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
record(runMeasured([refBench, "rb", String(n)]), "c-rb");
record(runMeasured([refBench, "pb", String(n)]), "c-pb");

const ns = (mode: string) => lines.get(mode)?.consumer_ns_per_event ?? NaN;
const ratios: [string, string, number][] = [
  ["rb-raw", "c-rb", 1.3],
  ["rb-decoded", "c-rb", 3],
  ["rb-batched", "c-rb", 0.2],
  ["pb-raw", "c-pb", 1.5],
  ["pb-decoded", "c-pb", 3],
  ["pb-batched", "c-pb", 0.2],
];
for (const [mode, ref, target] of ratios) {
  const r = ns(mode) / ns(ref);
  const m = lines.get(mode)!;
  const complete = m.received === n && m.lost === 0;
  console.log(
    `ratio ${mode}/${ref}=${r.toFixed(2)} target<=${target} ${r <= target ? "met" : "MISSED"}` +
      `${complete ? "" : ` (received ${m.received} of ${n}, lost ${m.lost})`}`,
  );
}
