// BCC's own tools (the C that tools/*.py pass to BPF() at their default options) in the
// guest kernels, where kprobes exist and the BCC front end keeps them (no tracepoint
// fallback). test/vm/vm.test.ts compiles them on the host for each guest kernel
// (scripts/bcc-corpus.ts prepareGuestCorpus: kprobes, the guest's LINUX_VERSION_CODE and
// tracepoint formats) and passes the objects in; here every program of every tool goes
// through this kernel's verifier. The tools' Python is the host's corpus source: BCC's
// repository when the host has a mirror, else Debian's bpfcc-tools 0.26 (as on CI). The text
// is never committed: without either, or without python3-bpfcc on the host, there are no
// objects and this says why.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { release } from "node:os";
import { join } from "node:path";
import { GUEST_FAILED_FILE, GUEST_SKIP_FILE, loadGuestCorpus, type GuestManifest } from "../../scripts/bcc-corpus.ts";
import { GUEST_OBJECTS } from "./programs.ts";

// Measured with the text extracted on the 6.18 host (src/bcc/README.md), per source:
// - mirror: every tool that compiled loads. 6.12: 68/72 (4 tools exit before BPF() on the host);
//   6.1: 66/72, the same 4, and biosnoop/biotop whose text, chosen by the host's feature check,
//   uses block:block_io_start, which 6.1 lacks (in the 6.1 guest the tools pick their kprobes:
//   bench/bcc-corpus-guest.ts).
// - Debian's bpfcc-tools 0.26 (69 of the 72; wqlat, numasched, swapin are newer than 0.26: listed,
//   not counted): 66/69 in both 6.1 and 6.12. criticalstat, ext4slower and drsnoop exit before BPF()
//   on the host; 0.26's biosnoop/biotop predate block_io_start, so they load in 6.1 too, and its
//   slabratetop runs on the host.
const FLOORS: Record<"mirror" | "debian", Record<string, number>> = { mirror: { "6.1": 66, "6.12": 68 }, debian: { "6.1": 66, "6.12": 66 } };

const base = join(process.env.TSBPF_GUEST_OBJECTS ?? GUEST_OBJECTS, "bcc-corpus");
const series = /^\d+\.\d+/.exec(release())?.[0] ?? release();

/** This kernel's directory: its exact release, else the one prepared for the same series. */
function corpusDir(): string | undefined {
  if (existsSync(join(base, release(), "manifest.json"))) return join(base, release());
  const other = existsSync(base) ? readdirSync(base).find((d) => d.startsWith(`${series}.`) && existsSync(join(base, d, "manifest.json"))) : undefined;
  return other && join(base, other);
}

const dir = corpusDir();
const skip = (dir || existsSync(join(base, GUEST_FAILED_FILE)))
  ? false
  : existsSync(join(base, GUEST_SKIP_FILE))
    ? `BCC's tools were not compiled on the host: ${readFileSync(join(base, GUEST_SKIP_FILE), "utf8").trim()}`
    : `no compiled BCC tools for ${release()} in ${base} (test/vm/vm.test.ts prepares them with prepareGuestCorpus)`;

// Manifests from before there were two sources came from the mirror.
const kind = dir ? ((JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as GuestManifest).source?.kind ?? "mirror") : "mirror";

test(`BCC's tools load in ${series} (every program of each, pre-compiled with kprobes): at least ${FLOORS[kind][series] ?? "?"}`, { skip }, (t) => {
  const started = Date.now();
  const failure = join(base, GUEST_FAILED_FILE);
  if (existsSync(failure)) assert.fail(`compiling BCC's tools on the host failed: ${readFileSync(failure, "utf8")}`);
  const { manifest, results } = loadGuestCorpus(dir!);
  const ok = results.filter((r) => r.ok);
  const missing = results.filter((r) => r.missing).map((r) => r.tool);
  const failed = results.filter((r) => !r.ok && !r.missing).map((r) => `${r.tool} [${r.stage}] ${r.loaded}/${r.programs} ${r.reason ?? ""}`);
  const line = `${ok.length}/${results.length - missing.length} of BCC's tools load in ${release()} ` +
    `(the tools' Python: ${manifest.source?.label ?? "BCC's repository"}; text extracted on ${manifest.extractedOn}; ${Date.now() - started} ms)`;
  t.diagnostic(line);
  if (missing.length) t.diagnostic(`not in this source: ${missing.join(", ")}`);
  for (const f of failed) t.diagnostic(`  ${f}`);
  if (process.env.TSBPF_BCC_CORPUS_VERBOSE) console.error([line, ...failed].join("\n  "));
  const floor = FLOORS[kind][series];
  assert.ok(floor !== undefined, `no floor measured for ${series}: ${line}`);
  assert.ok(ok.length >= floor, `${line}; failing:\n  ${failed.join("\n  ")}`);
  // kprobe programs are kept (not the tracepoint fallback the host needs): the kprobe tools load as kprobes.
  assert.ok(manifest.tools.some((tl) => tl.functions.some((f) => f.kind === "kprobe")), "no kprobe functions in the corpus");
});
