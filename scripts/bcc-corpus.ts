// The C text that BCC's own tools pass to BPF() at their default options, and
// loaded through tsbpf's BCC front end: does each compile, and does every
// program function pass the verifier?
//
// The tools' Python comes from one of two sources (corpusSource()): a mirror of
// BCC's repository (tools/NAME.py; $TSBPF_BCC_MIRROR), preferred when present,
// else Debian's bpfcc-tools (/usr/sbin/NAME-bpfcc, BCC 0.26 in bookworm), which
// is all a CI machine can get. Extraction runs each tool under Debian's
// python3-bpfcc with BPF.__init__ replaced by a function that records text= and
// cflags= and stops the tool: every placeholder substitution, feature check
// (tracepoint_exists, kernel_struct_has_field...) and container filter is the
// tool's own, at the options given here. Nothing fetched is committed: the
// tools' text lives in the cache dir ($TSBPF_CACHE_DIR/bcc-corpus/<commit or
// debian-VERSION>/).
//
//   node --import tsx scripts/bcc-corpus.ts [TOOL...]   # prints a table and the fraction that loads
//   node --import tsx scripts/bcc-corpus.ts --guest DIR 6.1 6.12   # compiles it for guest kernels into DIR
//   node --import tsx scripts/bcc-corpus.ts --load DIR/bcc-corpus/RELEASE   # loads those objects (in the guest)
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { release as hostRelease } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { defaultCacheDir } from "../src/compile/cache.ts";
import { compile } from "../src/compile/compile.ts";
import { translate, translateBcc, type FunctionInfo } from "../src/bcc/dialect.ts";
import { PRELUDE_HEADERS } from "../src/bcc/prelude.ts";
import { readFormat } from "../src/bcc/tracepoint.ts";
import { syscallPrefix } from "../src/link/syscall.ts";
import { probesAvailable } from "../src/link/probe.ts";
import { ObjectSpec } from "../src/object/spec.ts";
import { Collection } from "../src/collection.ts";
import { Spec } from "../src/btf/spec.ts";

export type Area = "cpu" | "disk" | "file" | "network" | "process" | "memory";

export interface CorpusTool {
  tool: string;
  area: Area;
  /** Command-line arguments (only where the tool requires some). */
  args?: string[];
}

/** The tools tried: every tool that runs without arguments, across areas, and a few with the argument they require. */
export const CORPUS: CorpusTool[] = [
  // CPU and scheduler
  ...["cpudist", "runqlat", "runqlen", "runqslower", "offcputime", "offwaketime", "wakeuptime", "profile", "softirqs", "hardirqs",
    "cpuunclaimed", "criticalstat", "llcstat", "wqlat", "klockstat", "numasched"].map((tool) => ({ tool, area: "cpu" as Area })),
  // disk and block I/O
  ...["biolatency", "biosnoop", "biotop", "bitesize", "biopattern", "mdflush"].map((tool) => ({ tool, area: "disk" as Area })),
  { tool: "biolatpcts", area: "disk", args: ["vda"] },
  // files and file systems
  ...["opensnoop", "filelife", "filetop", "fileslower", "vfscount", "vfsstat", "dcsnoop", "dcstat", "cachestat",
    "ext4slower", "ext4dist", "syncsnoop", "statsnoop", "mountsnoop", "filegone", "readahead"].map((tool) => ({ tool, area: "file" as Area })),
  { tool: "dirtop", area: "file", args: ["-d", "/tmp"] },
  // network
  ...["tcpconnect", "tcpaccept", "tcplife", "tcpretrans", "tcpstates", "tcpconnlat", "tcptop", "tcpdrop", "tcprtt", "tcpsynbl",
    "tcptracer", "solisten", "bindsnoop", "gethostlatency", "sofdsnoop", "tcpcong"].map((tool) => ({ tool, area: "network" as Area })),
  // processes, signals, syscalls
  ...["execsnoop", "exitsnoop", "killsnoop", "pidpersec", "threadsnoop", "oomkill", "capable", "syscount", "shmsnoop",
    "bashreadline", "swapin", "compactsnoop", "drsnoop"].map((tool) => ({ tool, area: "process" as Area })),
  { tool: "ttysnoop", area: "process", args: ["/dev/console"] },
  // memory
  ...["memleak", "slabratetop"].map((tool) => ({ tool, area: "memory" as Area })),
];

export const DEFAULT_MIRROR = "/work/.mirror/iovisor+bcc/repo";

/** The mirror (a bare git dir) from $TSBPF_BCC_MIRROR or the default place, if it exists. */
export function bccMirror(): string | undefined {
  const dir = process.env.TSBPF_BCC_MIRROR ?? DEFAULT_MIRROR;
  return existsSync(dir) ? dir : undefined;
}

/** Debian's python3 with python3-bpfcc (BCC's Python package), needed to run the tools' Python. */
export function bccPython(): string | undefined {
  for (const python of ["/usr/bin/python3"]) {
    if (spawnSync(python, ["-c", "import bcc"], { stdio: "ignore" }).status === 0) return python;
  }
  return undefined;
}

/** Where the tools' Python comes from. */
export interface ToolSource {
  kind: "mirror" | "debian";
  /** Which source and version, for the tests' output. */
  label: string;
  /** The cache directory's name: the mirror's commit, or debian-VERSION. */
  key: string;
  /** A tool's Python, or undefined when this source has no such tool. */
  read(tool: string): Buffer | undefined;
  /** A module of BCC's Python that newer tools import and python3-bpfcc 0.26 lacks (bcc/exec.py), when the source has it. */
  module(name: string): Buffer | undefined;
  /** Where a tool would be, for "not in ..." lines. */
  where(tool: string): string;
}

export function mirrorSource(mirror: string): ToolSource {
  const commit = execFileSync("git", ["-C", mirror, "rev-parse", "HEAD"], { encoding: "utf8" }).trim();
  const show = (path: string): Buffer | undefined => {
    const r = spawnSync("git", ["-C", mirror, "show", `HEAD:${path}`], { maxBuffer: 16 << 20 });
    return r.status === 0 ? r.stdout : undefined;
  };
  return {
    kind: "mirror",
    label: `BCC's repository at ${commit.slice(0, 12)} (${mirror})`,
    key: commit,
    read: (tool) => show(`tools/${tool}.py`),
    module: (name) => show(`src/python/bcc/${name}`),
    where: (tool) => `tools/${tool}.py in the mirror`,
  };
}

/** Where Debian's bpfcc-tools puts the tools ($TSBPF_BCC_DEBIAN_TOOLS for another place). */
export const DEBIAN_TOOLS = "/usr/sbin";

/** Debian's bpfcc-tools, if installed: /usr/sbin/NAME-bpfcc is tools/NAME.py of the packaged release. */
export function debianSource(): ToolSource | undefined {
  const dir = process.env.TSBPF_BCC_DEBIAN_TOOLS ?? DEBIAN_TOOLS;
  if (!existsSync(join(dir, "execsnoop-bpfcc"))) return undefined;
  const q = spawnSync("dpkg-query", ["-W", "-f", "${Version}", "bpfcc-tools"], { encoding: "utf8" });
  const version = q.status === 0 && q.stdout.trim() ? q.stdout.trim() : "unknown";
  const path = (tool: string): string => join(dir, `${tool}-bpfcc`);
  return {
    kind: "debian",
    label: `Debian's bpfcc-tools ${version} (${dir}/NAME-bpfcc)`,
    key: `debian-${version.replace(/[^\w.+-]/g, "_")}`,
    read: (tool) => (existsSync(path(tool)) ? readFileSync(path(tool)) : undefined),
    module: () => undefined,
    where: (tool) => `${path(tool)} (bpfcc-tools ${version})`,
  };
}

/** The mirror when present (today's figures on dev machines), else Debian's scripts (CI). */
export function corpusSource(): ToolSource | undefined {
  const mirror = bccMirror();
  return mirror ? mirrorSource(mirror) : debianSource();
}

// Runs a tool until it calls BPF(): records text= and cflags=, then stops it.
// get_kprobe_functions reads available_filter_functions in BCC, which this
// kind of host refuses: kallsyms' text symbols stand in.
export const DRIVER = String.raw`
import sys, os, json, runpy, re
out, tool = sys.argv[1], sys.argv[2]
import bcc
class Captured(BaseException): pass
def fake_init(self, src_file=b"", hdr_file=b"", text=None, debug=0, cflags=[], usdt_contexts=[], allow_rlimit=True, device=None, attach_usdt_ignore_pid=False):
    if isinstance(text, bytes): text = text.decode()
    if text == "" and not src_file:
        return  # BPF(text='') only to ask get_syscall_fnname()
    if text is None and src_file:
        text = open(src_file if isinstance(src_file, str) else src_file.decode()).read()
    json.dump({"text": text, "cflags": [c.decode() if isinstance(c, bytes) else c for c in cflags], "usdt": len(usdt_contexts)}, open(out, "w"))
    raise Captured()
bcc.BPF.__init__ = fake_init
bcc.__path__.append(sys.argv[3])  # modules newer tools import that this python3-bpfcc lacks (bcc.exec)
# TSBPF_BCC_NATIVE=1 (in a guest that has kprobes, fentry and available_filter_functions): BCC's own answers.
native = os.environ.get("TSBPF_BCC_NATIVE") == "1"
_ksyms = None
def get_kprobe_functions(event_re):
    global _ksyms
    if _ksyms is None:
        _ksyms = [p[2].encode() for p in (l.split() for l in open("/proc/kallsyms")) if len(p) >= 3 and p[1] in ("t", "T")]
    r = re.compile(event_re if isinstance(event_re, bytes) else event_re.encode())
    return [s for s in _ksyms if r.match(s)]
if not native:
    bcc.BPF.get_kprobe_functions = staticmethod(get_kprobe_functions)
    # fentry/LSM are refused on lockdown hosts: the tools' kprobe variants
    bcc.BPF.support_kfunc = staticmethod(lambda: False)
    bcc.BPF.support_lsm = staticmethod(lambda: False)
sys.argv = [tool] + sys.argv[4:]
try:
    runpy.run_path(tool, run_name="__main__")
except Captured:
    sys.exit(0)
except SystemExit as e:
    print("the tool exited before BPF():", e.code, file=sys.stderr); sys.exit(3)
print("the tool never called BPF()", file=sys.stderr); sys.exit(4)
`;

export interface Extracted {
  tool: string;
  text?: string;
  cflags: string[];
  /** Why the text could not be extracted. */
  error?: string;
  /** The source has no such tool (BCC 0.26 predates wqlat, numasched, swapin): listed, not a failure. */
  missing?: boolean;
}

/** A source, or a mirror's path (what callers passed before there were two sources). */
type SourceArg = ToolSource | string;
const asSource = (s: SourceArg): ToolSource => (typeof s === "string" ? mirrorSource(s) : s);

/** Where extractCorpus keeps the tools' Python, its driver and their text for the source's version. */
export function extractionDir(source: SourceArg, cacheDir = defaultCacheDir()): string {
  return join(cacheDir, "bcc-corpus", asSource(source).key);
}

/** Extracts the C text of `tools` into the cache (reused while the source's version is the same). */
export function extractCorpus(tools: CorpusTool[], from: SourceArg, python: string, cacheDir = defaultCacheDir()): Extracted[] {
  const source = asSource(from);
  const dir = extractionDir(source, cacheDir);
  mkdirSync(dir, { recursive: true });
  const driver = join(dir, "driver.py");
  writeFileSync(driver, DRIVER);
  const overlay = join(dir, "bcc-overlay");
  mkdirSync(overlay, { recursive: true });
  for (const mod of ["exec.py"]) {
    const path = join(overlay, mod);
    const text = existsSync(path) ? undefined : source.module(mod);
    if (text) writeFileSync(path, text);
  }
  return tools.map(({ tool, args = [] }) => {
    const out = join(dir, `${tool}${args.length ? "-" + args.join("_").replace(/\W/g, "") : ""}.json`);
    if (!existsSync(out)) {
      const py = join(dir, `${tool}.py`);
      if (!existsSync(py)) {
        const text = source.read(tool);
        if (!text) return { tool, cflags: [], missing: true, error: `${source.where(tool)} does not exist` };
        writeFileSync(py, text);
      }
      const r = spawnSync(python, [driver, out, py, overlay, ...args], { cwd: dir, encoding: "utf8", timeout: 60_000 });
      // Some tools catch every exception around BPF() (exitsnoop): the record is what counts.
      if (!existsSync(out)) {
        const lines = (r.stderr || "").trim().split("\n");
        const why = lines.find((l) => /^(ERROR|.*not supported|.*error:)/.test(l)) ?? lines.slice(-1)[0] ?? `exit ${r.status}`;
        return { tool, cflags: [], error: `extraction failed: ${why}` };
      }
    }
    const { text, cflags } = JSON.parse(readFileSync(out, "utf8")) as { text: string; cflags: string[] };
    return { tool, text, cflags };
  });
}

export interface LoadResult {
  tool: string;
  ok: boolean;
  /** Programs that loaded / all programs in the object. */
  loaded: number;
  programs: number;
  /** The first failure, one line. */
  reason?: string;
  stage?: "extract" | "translate" | "compile" | "load";
  /** The source has no such tool: listed, not counted. */
  missing?: boolean;
}

function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  const lines = msg.split("\n").map((l) => l.trim()).filter(Boolean);
  // A compile error: its first listed diagnostic; a verifier error: the line that says why.
  const diag = lines.find((l) => / error: /.test(l));
  const verifier = lines.find((l) => /invalid|unknown func|not allowed|R\d+ |expected|unbounded|too many|back-edge|misaligned/i.test(l) && !/^\d+:/.test(l));
  return (diag ?? verifier ?? lines[0] ?? msg).slice(0, 240);
}

/** What a tool's text is compiled for: this kernel (the default) or another one (a guest). */
export interface CompileTarget {
  kprobes: boolean;
  /** LINUX_VERSION_CODE of the target (default: this kernel's). */
  kernelVersion?: number;
  /** The target's tracepoint formats (default: this kernel's tracefs). */
  tracepointFormat?: (category: string, event: string) => string | undefined;
  /** The target's BTF (vmlinux.h is made from it, and the tools' own structs are checked against it). Default: this kernel's. */
  btfPath?: string;
  /** The target's kernel config file (its CONFIG_* decide #ifs), or null when unknown. Default: this kernel's when kernelVersion is. */
  kconfig?: string | null;
}

export interface CompiledTool {
  tool: string;
  bytes?: Uint8Array;
  /** Program functions as BCC names them, and how BCC would load each (BPF.load_func's type). */
  functions: { name: string; kind: FunctionInfo["kind"] }[];
  stage?: "extract" | "translate" | "compile";
  reason?: string;
  missing?: boolean;
}

/** Whether a BTF file has `struct name` (or a union), as the dialect asks of vmlinux.h. */
function btfHasStruct(path: string): (name: string) => boolean {
  return (name) => Spec.kernel(path).typesByName(name).some((t) => t.kind === "struct" || t.kind === "union");
}

function translateOptions(e: Extracted, target: CompileTarget) {
  const prefix = syscallPrefix();
  return {
    file: `${e.tool}.c`,
    kprobes: target.kprobes,
    syscallWrappers: prefix !== "sys_",
    syscallPrefix: prefix,
    tracepointFormat: target.tracepointFormat ?? readFormat,
    cflags: e.cflags,
    ...(target.kernelVersion !== undefined ? { kernelVersion: target.kernelVersion } : {}),
    ...(target.btfPath !== undefined ? { btfPath: target.btfPath, kernelHasStruct: btfHasStruct(target.btfPath) } : {}),
    ...(target.kconfig !== undefined ? { kconfig: target.kconfig } : {}),
  };
}

/** Translates and compiles one tool's text, as BPF.load would. */
export async function compileTool(e: Extracted, target: CompileTarget = { kprobes: probesAvailable("kprobe") }): Promise<CompiledTool> {
  if (e.text === undefined) return { tool: e.tool, functions: [], reason: e.error, stage: "extract", ...(e.missing ? { missing: true } : {}) };
  let code: string;
  let functions: CompiledTool["functions"];
  try {
    const t = await translateBcc(e.text, translateOptions(e, target));
    code = t.code;
    functions = [...t.functions.values()].map((f) => ({ name: f.name, kind: f.kind }));
  } catch (err) {
    return { tool: e.tool, functions: [], reason: firstLine(err), stage: "translate" };
  }
  try {
    const { bytes } = await compile({ text: code, name: `${e.tool}.bcc.c` }, { cflags: e.cflags, prefixHeaders: PRELUDE_HEADERS, btfPath: target.btfPath });
    return { tool: e.tool, bytes, functions };
  } catch (err) {
    return { tool: e.tool, functions, reason: firstLine(err), stage: "compile" };
  }
}

/** Loads every program of a compiled tool, one at a time (without attaching). */
export function loadObject(tool: string, bytes: Uint8Array): { loaded: number; programs: number; reason?: string } {
  const names = [...ObjectSpec.fromBytes(bytes, tool).programs.keys()];
  let loaded = 0;
  let reason: string | undefined;
  for (const name of names) {
    try {
      Collection.load(ObjectSpec.fromBytes(bytes, tool), { programs: [name] }).close();
      loaded++;
    } catch (err) {
      reason ??= `${name}: ${firstLine(err)}`;
    }
  }
  return { loaded, programs: names.length, reason: names.length === 0 ? "no programs" : reason };
}

/** Translates, compiles, and loads every program of one tool's text, as BPF.load would (without attaching). */
export async function loadTool(e: Extracted, opts: { kprobes?: boolean } = {}): Promise<LoadResult> {
  const c = await compileTool(e, { kprobes: opts.kprobes ?? probesAvailable("kprobe") });
  if (!c.bytes) return { tool: e.tool, ok: false, loaded: 0, programs: 0, reason: c.reason, stage: c.stage, ...(c.missing ? { missing: true } : {}) };
  const r = loadObject(e.tool, c.bytes);
  const ok = r.loaded === r.programs && r.programs > 0;
  return { tool: e.tool, ok, ...r, stage: ok ? undefined : "load" };
}

// ---- the corpus in the guests (test/guest/bcc-corpus.guest.ts, bench/bcc-corpus-guest.ts) ----
//
// The guests have no clang: each tool's text (extracted here) is compiled here for each
// guest kernel, with kprobes (which the guests have), the guest's LINUX_VERSION_CODE and the
// guest's own tracepoint formats (read once from a booted guest and cached), and the objects
// go in with the guest suite's other objects. Compiled objects are cached per guest release,
// keyed by the text and the front end's sources, so a warm preparation takes seconds.

/** The guest's view of the corpus: `${dir}/bcc-corpus/${release}/manifest.json` beside `${tool}.o`. */
export interface GuestManifest {
  release: string;
  /** The host the text was extracted on (its kernel answered the tools' feature checks). */
  extractedOn: string;
  /** Where the tools' Python came from (absent in manifests from before there were two sources: the mirror). */
  source?: { kind: ToolSource["kind"]; label: string };
  tools: { tool: string; area: Area; object?: string; functions: CompiledTool["functions"]; stage?: CompiledTool["stage"]; reason?: string; missing?: boolean }[];
}

const GUEST_CACHE_FORMAT = 2;

/** Written when the preparation failed: the guest check fails with its text. */
export const GUEST_FAILED_FILE = "failed.txt";

/** Written instead of the manifests when the host cannot prepare the corpus (no tools' Python, no python3-bpfcc). */
export const GUEST_SKIP_FILE = "skip.txt";

export function corpusSkipReason(): string | undefined {
  if (!corpusSource()) {
    return `neither BCC's repository (${process.env.TSBPF_BCC_MIRROR ?? DEFAULT_MIRROR}; set TSBPF_BCC_MIRROR) nor Debian's bpfcc-tools ` +
      `(${process.env.TSBPF_BCC_DEBIAN_TOOLS ?? DEBIAN_TOOLS}/NAME-bpfcc; apt-get install bpfcc-tools) is on this machine: they hold the tools' Python`;
  }
  if (!bccPython()) return "Debian's python3-bpfcc is not installed (apt-get install python3-bpfcc): it runs the tools' Python to get their C";
  return undefined;
}

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** A digest of what the translation and compilation depend on in this tree (the front end, the compiler driver, the headers). */
function frontEndDigest(): string {
  const h = createHash("sha256");
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (/\.(ts|h)$/.test(name)) h.update(path.slice(ROOT.length)).update(readFileSync(path));
    }
  };
  for (const dir of ["src/bcc", "src/compile", "include"]) walk(join(ROOT, dir));
  return h.digest("hex");
}

/** The tracepoints a tool's translation asks about (a dry translation; no clang). */
function tracepointsAsked(e: Extracted, kernelVersion: number): string[] {
  if (e.text === undefined) return [];
  const asked = new Set<string>();
  try {
    // This kernel's formats stand in, so that the translation goes on to the next tracepoint.
    translate(e.text, { ...translateOptions(e, { kprobes: true, kernelVersion }), tracepointFormat: (c, ev) => (asked.add(`${c}/${ev}`), readFormat(c, ev)) });
  } catch {
    // a translation error: compileTool reports it
  }
  return [...asked].sort();
}

/**
 * The format files of `tracepoints` in a guest kernel (null: no such tracepoint there), from a
 * cache, or from one boot of the guest that prints them (about 10 s under TCG).
 */
async function guestFormats(kernel: string, release: string, tracepoints: string[], log: (m: string) => void): Promise<Map<string, string | null>> {
  const file = join(defaultCacheDir(), "bcc-corpus-guest", release, "formats.json");
  const known = new Map<string, string | null>(existsSync(file) ? Object.entries(JSON.parse(readFileSync(file, "utf8")) as Record<string, string | null>) : []);
  const missing = tracepoints.filter((tp) => !known.has(tp));
  if (missing.length === 0) return known;
  const { runVm } = await import("../src/vm/run.ts");
  const { Writable } = await import("node:stream");
  let out = "";
  const stdout = new Writable({ write: (chunk: Buffer, _enc, done) => ((out += chunk.toString()), done()) });
  const script = `cd /sys/kernel/tracing/events && for tp in ${missing.join(" ")}; do echo "@@@ $tp"; cat "$tp/format" 2>/dev/null; done; echo "@@@ end"`;
  const started = Date.now();
  const r = await runVm({ kernel, timeout: 120, command: ["sh", "-c", script], stdout });
  if (r.exitCode !== 0 || !out.includes("@@@ end")) throw new Error(`reading ${missing.length} tracepoint formats in the ${kernel} guest failed (exit ${r.exitCode})`);
  for (const part of out.split(/^@@@ /m).slice(1)) {
    const nl = part.indexOf("\n");
    const tp = part.slice(0, nl).trim();
    if (tp !== "end") known.set(tp, part.slice(nl + 1).trim() === "" ? null : part.slice(nl + 1));
  }
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(Object.fromEntries(known)));
  log(`bcc-corpus: ${missing.length} tracepoint formats read in ${release} (${Date.now() - started} ms)`);
  return known;
}

/**
 * Compiles the corpus for each guest kernel into `${outDir}/bcc-corpus/${release}/`; with
 * `withText`, each tool's text beside its object (`${tool}.json`, for BCC in the bench; it
 * stays in that directory, never in the tree). Without the mirror or python3-bpfcc it writes
 * `${outDir}/bcc-corpus/skip.txt` with the reason instead.
 */
export async function prepareGuestCorpus(outDir: string, kernels: string[], opts: PrepareOptions = {}): Promise<string[]> {
  const base = join(outDir, "bcc-corpus");
  mkdirSync(base, { recursive: true });
  const skip = corpusSkipReason();
  if (skip) {
    writeFileSync(join(base, GUEST_SKIP_FILE), skip);
    return [];
  }
  if (!opts.recordFailure) return prepare(base, kernels, opts);
  try {
    return await prepare(base, kernels, opts);
  } catch (err) {
    writeFileSync(join(base, GUEST_FAILED_FILE), (err as Error).message);
    return [];
  }
}

interface PrepareOptions {
  withText?: boolean;
  log?: (m: string) => void;
  /** Text extracted elsewhere (in a guest) instead of here, and where. */
  extracted?: Extracted[];
  extractedOn?: string;
  /** Where the tools' Python came from (default: corpusSource()). */
  source?: ToolSource;
  /** On an error, write it to GUEST_FAILED_FILE (the guest check fails with it) instead of throwing (failing the whole guest suite's preparation). */
  recordFailure?: boolean;
}

async function prepare(base: string, kernels: string[], opts: PrepareOptions): Promise<string[]> {
  const log = opts.log ?? (() => {});
  const started = Date.now();
  const source = opts.source ?? corpusSource()!;
  const extracted = opts.extracted ?? extractCorpus(CORPUS, source, bccPython()!);
  const digest = frontEndDigest();
  const { resolveKernel } = await import("../src/vm/kernels.ts");
  const { kernelVersionCode } = await import("../src/bcc/dialect.ts");
  const { kernelBtfFile } = await import("../src/vm/btf.ts");
  const releases: string[] = [];
  let compiled = 0;
  for (const kernel of kernels) {
    const resolved = resolveKernel(kernel, () => {});
    const { release, name } = resolved;
    if (!release) throw new Error(`kernel ${kernel} (${name}): its release is not known`);
    releases.push(release);
    const kernelVersion = kernelVersionCode(release);
    const btfPath = kernelBtfFile(resolved);
    const asked = new Map(extracted.map((e) => [e.tool, tracepointsAsked(e, kernelVersion)]));
    const formats = await guestFormats(kernel, release, [...new Set([...asked.values()].flat())].sort(), log);
    const cache = join(defaultCacheDir(), "bcc-corpus-guest", release);
    const dir = join(base, release);
    mkdirSync(dir, { recursive: true });
    const manifest: GuestManifest = { release, extractedOn: opts.extractedOn ?? hostRelease(), source: { kind: source.kind, label: source.label }, tools: [] };
    for (const e of extracted) {
      const area = CORPUS.find((t) => t.tool === e.tool)!.area;
      const used = asked.get(e.tool)!.map((tp) => [tp, formats.get(tp) ?? null]);
      const key = createHash("sha256").update(JSON.stringify([GUEST_CACHE_FORMAT, e.text, e.cflags, e.error, release, used, digest])).digest("hex").slice(0, 24);
      const meta = join(cache, `${e.tool}-${key}.json`);
      const obj = join(cache, `${e.tool}-${key}.o`);
      let c: Omit<CompiledTool, "bytes">;
      if (existsSync(meta)) {
        c = JSON.parse(readFileSync(meta, "utf8")) as Omit<CompiledTool, "bytes">;
      } else {
        const full = await compileTool(e, {
          kprobes: true,
          kernelVersion,
          btfPath,
          // The Debian package's boot/config-*: CONFIG_* as the guest kernel's headers would define them.
          kconfig: resolved.config ?? null,
          tracepointFormat: (category, event) => formats.get(`${category}/${event}`) ?? undefined,
        });
        compiled++;
        mkdirSync(cache, { recursive: true });
        if (full.bytes) {
          writeFileSync(obj, full.bytes);
          // DWARF is nine tenths of an object and the loader reads BTF only: the guest's initramfs carries less.
          spawnSync("llvm-strip", ["--strip-debug", obj], { stdio: "ignore" });
        }
        const { bytes, ...rest } = full;
        c = rest;
        writeFileSync(meta, JSON.stringify({ ...rest, object: bytes !== undefined }));
      }
      const hasObject = existsSync(obj) && (c as { object?: boolean }).object !== false;
      if (hasObject) copyFileSync(obj, join(dir, `${e.tool}.o`));
      if (opts.withText && e.text !== undefined) writeFileSync(join(dir, `${e.tool}.json`), JSON.stringify({ text: e.text, cflags: e.cflags }));
      manifest.tools.push({ tool: e.tool, area, ...(hasObject ? { object: `${e.tool}.o` } : {}), functions: c.functions, stage: c.stage, reason: c.reason, ...(e.missing ? { missing: true } : {}) });
    }
    writeFileSync(join(dir, "manifest.json"), JSON.stringify(manifest, null, 1));
  }
  log(`bcc-corpus: ${extracted.length} tools from ${source.label} for ${releases.join(", ")} (${compiled} compiled, the rest cached) in ${Date.now() - started} ms`);
  return releases;
}

/** Loads the objects of a guest manifest in the running kernel; one result per tool, in order. */
export function loadGuestCorpus(dir: string): { manifest: GuestManifest; results: LoadResult[] } {
  const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as GuestManifest;
  const results = manifest.tools.map((t): LoadResult => {
    if (!t.object) return { tool: t.tool, ok: false, loaded: 0, programs: 0, reason: t.reason, stage: t.stage, ...(t.missing ? { missing: true } : {}) };
    const r = loadObject(t.tool, new Uint8Array(readFileSync(join(dir, t.object))));
    const ok = r.loaded === r.programs && r.programs > 0;
    return { tool: t.tool, ok, ...r, stage: ok ? undefined : "load" };
  });
  return { manifest, results };
}

async function main(): Promise<void> {
  // --guest DIR KERNEL...: compile the corpus for guest kernels into DIR (what test/vm/vm.test.ts does).
  if (process.argv[2] === "--guest") {
    const [dir, ...kernels] = process.argv.slice(3);
    if (!dir || kernels.length === 0) throw new Error("usage: scripts/bcc-corpus.ts --guest DIR KERNEL...");
    await prepareGuestCorpus(dir, kernels, { withText: process.env.TSBPF_BCC_CORPUS_TEXT === "1", log: console.error });
    return;
  }
  // --load DIR: load a guest manifest's objects in this kernel (inside a guest).
  if (process.argv[2] === "--load") {
    const { results } = loadGuestCorpus(process.argv[3]!);
    for (const r of results) console.log(`${r.ok ? "ok  " : "FAIL"} ${r.tool.padEnd(16)} ${r.loaded}/${r.programs}${r.ok ? "" : ` [${r.stage}] ${r.reason}`}`);
    console.log(`${results.filter((r) => r.ok).length}/${results.length} tools load`);
    return;
  }
  const skip = corpusSkipReason();
  if (skip) {
    console.error(skip);
    process.exit(1);
  }
  const source = corpusSource()!;
  const only = process.argv.slice(2);
  const tools = only.length ? CORPUS.filter((t) => only.includes(t.tool)) : CORPUS;
  console.log(`the tools' Python: ${source.label}`);
  const extracted = extractCorpus(tools, source, bccPython()!);
  let ok = 0;
  for (const e of extracted) {
    const area = tools.find((t) => t.tool === e.tool)!.area;
    if (e.missing) {
      console.log(`--   ${area.padEnd(8)} ${e.tool.padEnd(16)} not in this source (${e.error})`);
      continue;
    }
    const r = await loadTool(e);
    if (r.ok) ok++;
    console.log(`${r.ok ? "ok  " : "FAIL"} ${area.padEnd(8)} ${e.tool.padEnd(16)} ${r.loaded}/${r.programs}${r.ok ? "" : ` [${r.stage}] ${r.reason}`}`);
  }
  const tried = extracted.filter((e) => !e.missing).length;
  console.log(`${ok}/${tried} tools load (${((100 * ok) / tried).toFixed(0)}%)${tried < extracted.length ? `; ${extracted.length - tried} not in ${source.kind === "debian" ? "the package" : "the mirror"}` : ""}`);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
