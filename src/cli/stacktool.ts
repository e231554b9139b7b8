// What the stack tools (profile, offcputime, stackcount) share: stack ids read
// back from a stack map and symbolized into BCC's StackSamples, and the report
// at the end of a run in the form asked for (multi-line, folded, JSON, flame graph).
import { writeFileSync } from "node:fs";
import type { BpfMap } from "../maps/map.ts";
import { readStack } from "../maps/stack.ts";
import { flameGraphHtml, flameGraphSvg } from "../report/flamegraph.ts";
import { formatFolded, formatStacks, type StackSample } from "../report/stacks.ts";
import { basename } from "node:path";
import { Symbolizer, UNKNOWN, type Frame } from "../symbolize/index.ts";
import type { ParseArgsConfig } from "node:util";
import { intOption, parseToolArgs, UsageError, type Output } from "./tool.ts";

/**
 * The command line of a stack tool that runs for `[duration]` seconds (profile,
 * offcputime): its options and at most that one positional. Undefined after --help.
 */
export function parseDurationToolArgs<const O extends NonNullable<ParseArgsConfig["options"]>>(args: string[], options: O, help: string) {
  const parsed = parseToolArgs(args, options, help);
  if (!parsed) return undefined;
  const { values: o, positionals } = parsed;
  if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
  return { o, duration: intOption(positionals[0], "duration", 1, 0xffffffff, "a number of seconds") };
}

const EFAULT = 14;
const EEXIST = 17;

/** BCC's stack_id_err: a negative id other than -EFAULT (EFAULT only means "no such stack": user mode, kernel thread). */
export function stackIdErr(id: number): boolean {
  return id < 0 && id !== -EFAULT;
}

export interface RawStack {
  pid: number;
  /** The process whose mappings name the user frames (default `pid`; offcputime shows thread ids). */
  symPid?: number;
  comm: string;
  /** Stack ids as bpf_get_stackid gave them (negative: an error, or -1 when not collected). */
  kernelId: number;
  userId: number;
  count: number | bigint;
}

export interface SymbolizeOptions {
  /** Which parts were collected (BCC's -K and -U leave the other out, and never call it missed). */
  kernel: boolean;
  user: boolean;
  /** "_[k]" after kernel frames (BCC's -a, --annotations). */
  annotate?: boolean;
  /** Each frame prefixed by its address (BCC's --address). */
  address?: boolean;
  /** "+0x.." after names (-s), and " [module]" (the file's base name, "kernel" for the kernel's frames) as BCC's profile prints them. */
  offset?: boolean;
  module?: boolean;
  /** Leading kernel frames that are the tracing machinery, not the traced code (offcputime's tp_btf frames). */
  skipKernel?: (name: string) => boolean;
}

/** The frames a tracepoint's BPF program adds on top of a kernel stack: bpf_prog_*, bpf_trace_run*, __traceiter_*, __bpf_trace_*. */
export const tracepointFrame = (name: string): boolean => /^(bpf_prog_|bpf_trace_run|__traceiter_|__bpf_trace_|trace_call_bpf|perf_trace_)/.test(name);

export interface SymbolizedStacks {
  samples: StackSample[];
  /** Stacks that could not be read (BCC's "N stack traces could not be displayed"). */
  missing: number;
  /** Some were hash collisions (EEXIST): a bigger --stack-storage-size helps. */
  collision: boolean;
  /** Milliseconds spent symbolizing. */
  symbolizeMs: number;
}

/** Reads each stack of `raw` from `stacks` and names its frames. */
export function symbolizeStacks(stacks: BpfMap, raw: Iterable<RawStack>, opts: SymbolizeOptions, symbolizer = new Symbolizer()): SymbolizedStacks {
  const samples: StackSample[] = [];
  let missing = 0;
  let collision = false;
  let symbolizeMs = 0;
  const cache = new Map<number, bigint[]>(); // one stack id is shared by many keys
  const read = (id: number) => {
    let s = cache.get(id);
    if (!s) cache.set(id, (s = readStack(stacks, id)));
    return s;
  };
  for (const r of raw) {
    const sample: StackSample = { count: r.count, comm: r.comm, pid: r.pid };
    if (opts.kernel) {
      if (stackIdErr(r.kernelId)) {
        missing++;
        collision ||= r.kernelId === -EEXIST;
        sample.kernel = "missed";
      } else if (r.kernelId >= 0) {
        let addrs = read(r.kernelId);
        const t = performance.now();
        if (opts.skipKernel) {
          const skip = opts.skipKernel;
          let i = 0;
          while (i < addrs.length && skip(symbolizer.kernelFrame(addrs[i]!).name)) i++;
          addrs = addrs.slice(i);
        }
        sample.kernel = addrs.map((a) => {
          const name = frameText(symbolizer.kernelFrame(a), opts) + (opts.annotate ? "_[k]" : "");
          return opts.address ? `0x${a.toString(16).padEnd(16)} ${name}` : name;
        });
        symbolizeMs += performance.now() - t;
      }
    }
    if (opts.user) {
      if (stackIdErr(r.userId)) {
        missing++;
        collision ||= r.userId === -EEXIST;
        sample.user = "missed";
      } else if (r.userId >= 0) {
        const addrs = read(r.userId);
        const t = performance.now();
        sample.user = addrs.map((a) => {
          const name = frameText(symbolizer.userFrame(r.symPid ?? r.pid, a), opts, r.symPid ?? r.pid);
          return opts.address ? `0x${a.toString(16).padStart(16, "0")} ${name}` : name;
        });
        symbolizeMs += performance.now() - t;
      }
    }
    samples.push(sample);
  }
  return { samples, missing, collision, symbolizeMs };
}

/** A frame as BCC's tools print it: "name", "name+0x1f", "name+0x1f [module]", "[unknown] [module]". */
export function frameText(f: Frame, opts: { offset?: boolean; module?: boolean }, pid?: number): string {
  let s = f.name;
  if (opts.offset && f.name !== UNKNOWN) s += `+0x${f.offset.toString(16)}`;
  if (opts.module && f.module) s += ` [${f.module === "[perf-map]" ? `perf-${pid}.map` : basename(f.module)}]`;
  return s;
}

export interface ReportOptions {
  tool: string;
  folded?: boolean;
  delimited?: boolean;
  json?: boolean;
  svg?: string;
  html?: string;
  /** The flame graph's title ("profile -F 99"). */
  title?: string;
  /** What a count is, for the flame graph ("samples", "us"). */
  countName?: string;
  /** The same stacks with plain frame names, for the flame graph (default: those printed). */
  graphStacks?: SymbolizedStacks;
}

/** The end-of-run report: stacks on stdout in the form asked, a flame graph file when asked. */
export function writeStackReport(out: Output, s: SymbolizedStacks, opts: ReportOptions): void {
  const byCount = [...s.samples].sort((a, b) => (BigInt(a.count) < BigInt(b.count) ? -1 : BigInt(a.count) > BigInt(b.count) ? 1 : 0));
  if (opts.json) {
    for (const x of byCount) {
      out.json({
        comm: x.comm, pid: x.pid, count: x.count,
        ...(x.kernel !== undefined ? { kernel: x.kernel === "missed" ? null : x.kernel } : {}),
        ...(x.user !== undefined ? { user: x.user === "missed" ? null : x.user } : {}),
        ...(x.frames !== undefined ? { frames: x.frames } : {}),
      });
    }
  } else if (opts.folded) {
    const text = formatFolded(byCount, { delimited: opts.delimited, sort: "none" });
    if (text) out.line(text.replace(/\n$/, ""));
  } else {
    const text = formatStacks(byCount, { delimited: opts.delimited, sort: "none" });
    if (text) out.line(text.replace(/\n$/, ""));
  }
  out.flush();
  const graph = { title: opts.title, countName: opts.countName, stackFormat: { delimited: opts.delimited } };
  // The flame graph takes plain names (as folded output has them) when the text had offsets and modules.
  const plain = opts.graphStacks ? [...opts.graphStacks.samples] : byCount;
  if (opts.svg) writeFileSync(opts.svg, flameGraphSvg(plain, graph));
  if (opts.html) writeFileSync(opts.html, flameGraphHtml(plain, graph));
  if (s.missing) {
    process.stderr.write(`WARNING: ${s.missing} stack traces could not be displayed.${s.collision ? " Consider increasing --stack-storage-size." : ""}\n`);
  }
}

/**
 * The entries of a stack-count map: tsbpf_stack.h's struct tsbpf_stack_key (pid,
 * kernel_stack_id, user_stack_id, name) -> count, or a key that adds the tgid whose
 * mappings name the user frames (offcputime counts threads).
 */
export function stackCounts(entries: Iterable<[unknown, unknown]>): RawStack[] {
  const raw: RawStack[] = [];
  for (const [k, v] of entries as Iterable<[StackKey, bigint]>) {
    raw.push({ pid: k.pid, symPid: k.tgid, comm: commOf(k.name), kernelId: k.kernel_stack_id, userId: k.user_stack_id, count: v });
  }
  return raw;
}

interface StackKey {
  pid: number;
  tgid?: number;
  kernel_stack_id: number;
  user_stack_id: number;
  name: unknown;
}

/** Decodes a comm field (char[16]) that the map codec may give as a string or bytes. */
export function commOf(v: unknown): string {
  if (typeof v === "string") return v;
  if (v instanceof Uint8Array) {
    const end = v.indexOf(0);
    return new TextDecoder().decode(end < 0 ? v : v.subarray(0, end));
  }
  return String(v);
}
