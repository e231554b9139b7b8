// The long fuzz run: `node --import tsx scripts/fuzz.ts [N] [SEED] [OUTDIR]`
// (default 100,000 inputs, seed 1). Prints the rate and every distinct failure
// (grouped by the error's first line and the frame that threw); with OUTDIR,
// writes one failing input per group there to reproduce with.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fuzz, type Failure } from "../test/support/fuzz.ts";

const count = Number(process.argv[2] ?? 100_000);
const seed = Number(process.argv[3] ?? 1);
const outDir = process.argv[4];
if (!Number.isSafeInteger(count) || count <= 0 || !Number.isSafeInteger(seed)) {
  console.error("usage: scripts/fuzz.ts [N] [SEED] [OUTDIR]");
  process.exit(2);
}

const result = fuzz(count, seed, (done, r) => {
  if (done % 10_000 === 0) console.error(`${done} inputs, ${r.failures.length} failures`);
});
const groups = new Map<string, Failure[]>();
for (const f of result.failures) {
  const lines = f.error.split("\n");
  const key = `${lines[0]} | ${lines.find((l) => l.includes(" at ")) ?? ""}`.replace(/\d{3,}/g, "N");
  groups.set(key, [...(groups.get(key) ?? []), f]);
}
console.log(
  `${result.inputs} inputs in ${(result.ms / 1000).toFixed(1)} s (${Math.round(result.inputs / (result.ms / 1000))}/s), ` +
    `${result.accepted} accepted whole, ${result.failures.length} failures in ${groups.size} groups; ` +
    `slowest ${result.slowest.ms.toFixed(1)} ms (${result.slowest.seed}: ${result.slowest.mutations.join("; ")})`,
);
let n = 0;
for (const [key, list] of groups) {
  console.log(`\n[${list.length}x] ${key}\n  e.g. ${list[0]!.seed}: ${list[0]!.mutations.join("; ")}\n  ${list[0]!.error.split("\n").slice(0, 6).join("\n  ")}`);
  if (outDir) {
    mkdirSync(outDir, { recursive: true });
    writeFileSync(join(outDir, `failure-${n++}-${list[0]!.seed.replace(/[^\w.-]/g, "_")}.bin`), list[0]!.input);
  }
}
process.exit(result.failures.length ? 1 : 0);
