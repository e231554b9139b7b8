// The C text that BCC's own tools (tools/*.py in BCC's repository) pass to
// BPF() at their default options, extracted from a mirror of the repository,
// and loaded through tsbpf's BCC front end: does each compile, and does every
// program function pass the verifier?
//
// Extraction runs each tool under Debian's python3-bpfcc with BPF.__init__
// replaced by a function that records text= and cflags= and stops the tool:
// every placeholder substitution, feature check (tracepoint_exists,
// kernel_struct_has_field...) and container filter is the tool's own, at the
// options given here. Nothing fetched is committed: the tools' text lives in
// the cache dir ($TSBPF_CACHE_DIR/bcc-corpus/<commit>/).
//
//   node --import tsx scripts/bcc-corpus.ts [TOOL...]   # prints a table and the fraction that loads
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { defaultCacheDir } from "../src/compile/cache.ts";
import { compile } from "../src/compile/compile.ts";
import { translateBcc } from "../src/bcc/dialect.ts";
import { PRELUDE_HEADERS } from "../src/bcc/prelude.ts";
import { readFormat } from "../src/bcc/tracepoint.ts";
import { syscallPrefix } from "../src/link/syscall.ts";
import { probesAvailable } from "../src/link/probe.ts";
import { ObjectSpec } from "../src/object/spec.ts";
import { Collection } from "../src/collection.ts";

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

// Runs a tool until it calls BPF(): records text= and cflags=, then stops it.
// get_kprobe_functions reads available_filter_functions in BCC, which this
// kind of host refuses: kallsyms' text symbols stand in.
const DRIVER = String.raw`
import sys, json, runpy, re
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
_ksyms = None
def get_kprobe_functions(event_re):
    global _ksyms
    if _ksyms is None:
        _ksyms = [p[2].encode() for p in (l.split() for l in open("/proc/kallsyms")) if len(p) >= 3 and p[1] in ("t", "T")]
    r = re.compile(event_re if isinstance(event_re, bytes) else event_re.encode())
    return [s for s in _ksyms if r.match(s)]
bcc.BPF.get_kprobe_functions = staticmethod(get_kprobe_functions)
# fentry/LSM are refused on lockdown hosts, and KFUNC_PROBE is not translated yet: the tools' kprobe variants
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
}

/** Extracts the C text of `tools` into the cache (reused while the mirror's commit is the same). */
export function extractCorpus(tools: CorpusTool[], mirror: string, python: string, cacheDir = defaultCacheDir()): Extracted[] {
  const commit = execFileSync("git", ["-C", mirror, "rev-parse", "HEAD"], { encoding: "utf8" }).trim();
  const dir = join(cacheDir, "bcc-corpus", commit);
  mkdirSync(dir, { recursive: true });
  const driver = join(dir, "driver.py");
  writeFileSync(driver, DRIVER);
  const overlay = join(dir, "bcc-overlay");
  mkdirSync(overlay, { recursive: true });
  for (const mod of ["exec.py"]) {
    const path = join(overlay, mod);
    if (!existsSync(path)) writeFileSync(path, execFileSync("git", ["-C", mirror, "show", `HEAD:src/python/bcc/${mod}`]));
  }
  return tools.map(({ tool, args = [] }) => {
    const out = join(dir, `${tool}${args.length ? "-" + args.join("_").replace(/\W/g, "") : ""}.json`);
    if (!existsSync(out)) {
      const py = join(dir, `${tool}.py`);
      if (!existsSync(py)) {
        try {
          writeFileSync(py, execFileSync("git", ["-C", mirror, "show", `HEAD:tools/${tool}.py`]));
        } catch {
          return { tool, cflags: [], error: `tools/${tool}.py is not in the mirror` };
        }
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
}

function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  const lines = msg.split("\n").map((l) => l.trim()).filter(Boolean);
  // A compile error: its first listed diagnostic; a verifier error: the line that says why.
  const diag = lines.find((l) => / error: /.test(l));
  const verifier = lines.find((l) => /invalid|unknown func|not allowed|R\d+ |expected|unbounded|too many|back-edge|misaligned/i.test(l) && !/^\d+:/.test(l));
  return (diag ?? verifier ?? lines[0] ?? msg).slice(0, 240);
}

/** Translates, compiles, and loads every program of one tool's text, as BPF.load would (without attaching). */
export async function loadTool(e: Extracted, opts: { kprobes?: boolean } = {}): Promise<LoadResult> {
  if (e.text === undefined) return { tool: e.tool, ok: false, loaded: 0, programs: 0, reason: e.error, stage: "extract" };
  const kprobes = opts.kprobes ?? probesAvailable("kprobe");
  const prefix = syscallPrefix();
  let code: string;
  try {
    const t = await translateBcc(e.text, {
      file: `${e.tool}.c`,
      kprobes,
      syscallWrappers: prefix !== "sys_",
      syscallPrefix: prefix,
      tracepointFormat: readFormat,
      cflags: e.cflags,
    });
    code = t.code;
  } catch (err) {
    return { tool: e.tool, ok: false, loaded: 0, programs: 0, reason: firstLine(err), stage: "translate" };
  }
  let bytes: Uint8Array;
  try {
    bytes = (await compile({ text: code, name: `${e.tool}.bcc.c` }, { cflags: e.cflags, prefixHeaders: PRELUDE_HEADERS })).bytes;
  } catch (err) {
    return { tool: e.tool, ok: false, loaded: 0, programs: 0, reason: firstLine(err), stage: "compile" };
  }
  const spec = ObjectSpec.fromBytes(bytes, e.tool);
  const names = [...spec.programs.keys()];
  let loaded = 0;
  let reason: string | undefined;
  for (const name of names) {
    try {
      Collection.load(ObjectSpec.fromBytes(bytes, e.tool), { programs: [name] }).close();
      loaded++;
    } catch (err) {
      reason ??= `${name}: ${firstLine(err)}`;
    }
  }
  const ok = loaded === names.length && names.length > 0;
  return { tool: e.tool, ok, loaded, programs: names.length, reason: names.length === 0 ? "no programs" : reason, stage: ok ? undefined : "load" };
}

async function main(): Promise<void> {
  const mirror = bccMirror();
  const python = bccPython();
  if (!mirror || !python) {
    console.error(`needs BCC's repository (${process.env.TSBPF_BCC_MIRROR ?? DEFAULT_MIRROR}) and python3-bpfcc`);
    process.exit(1);
  }
  const only = process.argv.slice(2);
  const tools = only.length ? CORPUS.filter((t) => only.includes(t.tool)) : CORPUS;
  const extracted = extractCorpus(tools, mirror, python);
  let ok = 0;
  for (const e of extracted) {
    const r = await loadTool(e);
    if (r.ok) ok++;
    const area = tools.find((t) => t.tool === e.tool)!.area;
    console.log(`${r.ok ? "ok  " : "FAIL"} ${area.padEnd(8)} ${e.tool.padEnd(16)} ${r.loaded}/${r.programs}${r.ok ? "" : ` [${r.stage}] ${r.reason}`}`);
  }
  console.log(`${ok}/${extracted.length} tools load (${((100 * ok) / extracted.length).toFixed(0)}%)`);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
