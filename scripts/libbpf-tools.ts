// Builds BCC's libbpf-tools (*.bpf.c) from the local mirror of iovisor/bcc, the
// way their Makefile does (-g -O2 -target bpf -D__TARGET_ARCH_x86, the tool's
// own headers), but against this kernel's vmlinux.h and libbpf-dev's headers,
// through tsbpf's compile driver. Sources and objects go to a cache directory
// (never into the repository): $TSBPF_CACHE_DIR (or ~/.cache/tsbpf)/libbpf-tools/<commit>/.
//
//   node --import tsx scripts/libbpf-tools.ts              # build the default set, print what built
//   node --import tsx scripts/libbpf-tools.ts --all        # every *.bpf.c
//   node --import tsx scripts/libbpf-tools.ts biosnoop ... # these
//   ... --load                                             # and load each program (root), as the test does
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const BCC_MIRROR = process.env.TSBPF_BCC_MIRROR ?? "/work/.mirror/iovisor+bcc/repo";

/** The tools that use libbpf externs (.kconfig, __ksym, bpf_ksym_exists), then others the issue names, then a spread. */
export const DEFAULT_TOOLS = [
  "biolatency", "biosnoop", "bitesize", "capable", "sigsnoop",
  "runqslower", "klockstat", "cpudist", "offcputime", "tcpconnect",
  "execsnoop", "opensnoop", "runqlat", "exitsnoop", "oomkill", "tcplife", "syscount", "hardirqs", "softirqs",
  "filelife", "vfsstat", "mountsnoop", "biotop", "biopattern", "drsnoop", "tcpstates", "tcprtt", "tcpconnlat",
  "wakeuptime", "statsnoop", "bindsnoop", "solisten", "runqlen", "cachestat", "readahead", "fsslower",
];

/** Tools whose programs are SEC("usdt"): loaded once the usdt branch adds that section. */
export const USDT_TOOLS = ["javagc"];

/**
 * A shim, included first, for what the tools expect from newer tools than Debian's:
 * bpf_ksym_exists() (libbpf 1.2's bpf_helpers.h; libbpf-dev is 1.1), and the kfunc
 * prototypes that bpftool >= 7.4 writes into vmlinux.h (`__weak __ksym`; bpftool here is 7.1).
 */
const COMPAT_H = `/* tsbpf: what libbpf >= 1.2 and bpftool >= 7.4's vmlinux.h give and Debian's do not. */
#ifndef bpf_ksym_exists
#define bpf_ksym_exists(sym) ({ _Static_assert(!__builtin_constant_p(!!sym), #sym " should be marked as __weak"); !!sym; })
#endif
struct task_struct;
extern struct task_struct *bpf_task_from_pid(int pid) __attribute__((weak, section(".ksyms")));
extern void bpf_task_release(struct task_struct *p) __attribute__((weak, section(".ksyms")));
`;

export interface ToolSources {
  /** The mirror's commit the sources come from. */
  commit: string;
  /** Directory holding libbpf-tools/*.bpf.c and *.h (flat). */
  dir: string;
  /** Cache directory for this commit (sources and objects under it). */
  root: string;
}

export function mirrorAvailable(): boolean {
  return existsSync(BCC_MIRROR);
}

function git(...args: string[]): Buffer {
  return execFileSync("git", ["-C", BCC_MIRROR, ...args], { maxBuffer: 64 << 20 });
}

/** Writes the tools' BPF C and headers out of the bare mirror (once per commit). */
export async function toolSources(): Promise<ToolSources> {
  const { defaultCacheDir } = await import("../src/compile/index.ts");
  const commit = git("rev-parse", "HEAD").toString().trim();
  const root = join(defaultCacheDir(), "libbpf-tools", commit.slice(0, 12));
  const dir = join(root, "src");
  if (!existsSync(join(dir, ".complete")) || readFileSync(join(dir, "tsbpf_compat.h"), "utf8") !== COMPAT_H) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const files = git("ls-tree", "--name-only", "HEAD", "libbpf-tools/").toString().split("\n");
    for (const f of files.filter((x) => /\.(bpf\.c|h)$/.test(x))) {
      writeFileSync(join(dir, f.slice("libbpf-tools/".length)), git("show", `HEAD:${f}`));
    }
    writeFileSync(join(dir, "tsbpf_compat.h"), COMPAT_H);
    writeFileSync(join(dir, ".complete"), commit);
  }
  return { commit, dir, root };
}

export type BuildResult = { tool: string; object: Uint8Array; cached: boolean } | { tool: string; error: string };

/** Compiles one tool's .bpf.c (cached by content in tsbpf's compile cache). */
export async function buildTool(src: ToolSources, tool: string): Promise<BuildResult> {
  const { compile } = await import("../src/compile/index.ts");
  const file = join(src.dir, `${tool}.bpf.c`);
  if (!existsSync(file)) return { tool, error: `no ${tool}.bpf.c in libbpf-tools at ${src.commit.slice(0, 12)}` };
  try {
    const out = await compile({ file }, { includeDirs: [src.dir], cflags: ["-include", join(src.dir, "tsbpf_compat.h")] });
    return { tool, object: out.bytes, cached: out.cached };
  } catch (err) {
    return { tool, error: (err as Error).message.split("\n").slice(0, 6).join("\n") };
  }
}

/** Every *.bpf.c in the sources, by tool name. */
export function allTools(src: ToolSources): string[] {
  return git("ls-tree", "--name-only", "HEAD", "libbpf-tools/").toString().split("\n")
    .filter((f) => f.endsWith(".bpf.c")).map((f) => f.slice("libbpf-tools/".length, -".bpf.c".length));
}

export interface ProgramOutcome {
  program: string;
  section: string;
  loaded: boolean;
  /** Why it did not load, first line. */
  error?: string;
  attached?: boolean;
  attachError?: string;
}

/** Loads every program of a tool object as libbpf would (maps created once, each program on its own), and attaches those that load. */
export async function loadTool(object: Uint8Array, tool: string, attach = true): Promise<ProgramOutcome[]> {
  const { ObjectSpec } = await import("../src/object/spec.ts");
  const { Collection } = await import("../src/collection.ts");
  const { MapType } = await import("../src/internal/sys/constants.ts");
  const spec = ObjectSpec.fromBytes(object, `${tool}.bpf.o`);
  // What the tools' user space sets before bpf_object__load when the object leaves it
  // open: max_entries (pid_max for cpudist's start) and a stack map's value size.
  for (const m of spec.maps.values()) {
    if (m.maxEntries === 0 && !m.dataSection && m.type !== MapType.RINGBUF && m.type !== MapType.PERF_EVENT_ARRAY) m.maxEntries = 10240;
    if (m.type === MapType.STACK_TRACE && m.valueSize === 0) m.valueSize = 127 * 8; // PERF_MAX_STACK_DEPTH
  }
  using coll = Collection.load(spec, { programs: [] });
  const out: ProgramOutcome[] = [];
  for (const [name, p] of spec.programs) {
    const o: ProgramOutcome = { program: name, section: p.section, loaded: false };
    out.push(o);
    let prog;
    try {
      prog = coll.loadProgram(name);
      o.loaded = true;
    } catch (err) {
      o.error = firstLine(err);
      continue;
    }
    if (!attach || p.attach === "none") continue;
    try {
      prog.attach().close();
      o.attached = true;
    } catch (err) {
      o.attached = false;
      o.attachError = firstLine(err);
    }
  }
  return out;
}

function firstLine(err: unknown): string {
  const msg = (err as Error).message ?? String(err);
  // A verifier log: keep its headline and the last line, which says why.
  const lines = msg.split("\n").filter((l) => l.trim());
  return lines.length > 2 ? `${lines[0]} ... ${lines[lines.length - 1]}` : lines.join(" ");
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const load = args.includes("--load");
  if (!mirrorAvailable()) {
    console.error(`no BCC mirror at ${BCC_MIRROR} (set TSBPF_BCC_MIRROR)`);
    process.exit(1);
  }
  const src = await toolSources();
  const names = args.includes("--all") ? allTools(src) : args.filter((a) => !a.startsWith("--")).length ? args.filter((a) => !a.startsWith("--")) : DEFAULT_TOOLS;
  console.log(`libbpf-tools at ${src.commit.slice(0, 12)}: sources in ${src.dir}`);
  for (const tool of names) {
    const t0 = performance.now();
    const r = await buildTool(src, tool);
    const ms = Math.round(performance.now() - t0);
    if ("error" in r) {
      console.log(`${tool}: BUILD FAILED (${ms} ms): ${r.error.replace(/\n/g, " | ")}`);
      continue;
    }
    if (!load) {
      console.log(`${tool}: built ${r.object.length} bytes${r.cached ? " (cached)" : ""} in ${ms} ms`);
      continue;
    }
    try {
      const outcomes = await loadTool(r.object, tool);
      const ok = outcomes.filter((o) => o.loaded).length;
      console.log(`${tool}: ${ok}/${outcomes.length} programs load`);
      for (const o of outcomes) {
        const state = o.loaded ? (o.attached === false ? `loads, attach: ${o.attachError}` : o.attached ? "loads, attached" : "loads") : `FAILS: ${o.error}`;
        console.log(`  ${o.program} (${o.section}): ${state}`);
      }
    } catch (err) {
      console.log(`${tool}: OBJECT FAILS: ${firstLine(err)}`);
    }
  }
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
