// tsbpf memleak: outstanding allocations, summed by stack, every interval,
// BCC's options and report. Hooks: with -p, uprobes/uretprobes on the process's
// allocator (libc's malloc, calloc, realloc, free, or -O LIBRARY's); without,
// the kmem:kmalloc/kfree/kmem_cache_alloc/kmem_cache_free tracepoints
// (BCC uses the same tracepoints for the kernel).
import { readFileSync } from "node:fs";
import type { Collection } from "../collection.ts";
import { clockTime, intervalTicks, parseIntervalArgs } from "../histogram/interval.ts";
import { readStack } from "../maps/stack.ts";
import { formatFrame, Symbolizer } from "../symbolize/index.ts";
import { startTool } from "./skeleton.ts";
import { intOption, parseToolArgs, pidOption, UsageError } from "./tool.ts";

const HELP = `usage: tsbpf memleak [-h] [-p PID] [-a] [-o OLDER] [-T TOP] [-z MIN_SIZE] [-Z MAX_SIZE] [-O OBJ] [--json] [interval [count]]

Trace outstanding memory allocations that were not freed: every interval (default 5 s),
the stacks holding the most outstanding bytes. Without -p, kernel allocations.

positional arguments:
  interval               seconds between reports (default 5)
  count                  number of reports (default: until Ctrl-C)

options:
  -p, --pid PID          the process to trace (user allocations); without it, the kernel's
  -a, --show-allocs      also list each outstanding allocation (address and size)
  -o, --older OLDER      only allocations older than this many milliseconds (default 500)
  -T, --top TOP          the number of stacks to show (default 10)
  -z, --min-size SIZE    only allocations of at least SIZE bytes
  -Z, --max-size SIZE    only allocations of at most SIZE bytes
  -O, --obj OBJ          the allocator's library for -p (default: the libc the process maps)
      --json             one JSON object per report instead of text

hooks: with -p, uprobes on OBJ's malloc, calloc, realloc, free (uretprobes for the
addresses); without, the tracepoints kmem:kmalloc, kfree, kmem_cache_alloc,
kmem_cache_free. Stacks are frame-pointer walks: code built without frame pointers
gives short stacks. Not in this port: -c COMMAND, -t, -s, --combined-only, --percpu.

examples:
  tsbpf memleak -p 181         # outstanding allocations of PID 181, every 5 s
  tsbpf memleak -p 181 -a 10 3 # with each allocation, every 10 s, 3 times
  tsbpf memleak                # the kernel's outstanding allocations
`;

const OPTIONS = {
  pid: { type: "string", short: "p" },
  "show-allocs": { type: "boolean", short: "a" },
  older: { type: "string", short: "o" },
  top: { type: "string", short: "T" },
  "min-size": { type: "string", short: "z" },
  "max-size": { type: "string", short: "Z" },
  obj: { type: "string", short: "O" },
  json: { type: "boolean" },
} as const;

interface AllocInfo {
  size: bigint;
  ts: bigint;
  stack_id: bigint;
}

/** The libc that `pid` maps (its path as the process sees it), for the uprobes. */
function libcOf(pid: number): string {
  let maps: string;
  try {
    maps = readFileSync(`/proc/${pid}/maps`, "utf8");
  } catch {
    throw new UsageError(`-p/--pid: no process ${pid}`);
  }
  const path = maps.split("\n").map((l) => l.split(/\s+/)[5] ?? "").find((p) => /\/libc(\.so|-[\d.]+\.so)/.test(p));
  return path ? `/proc/${pid}/root${path}` : "libc.so.6";
}

const USER_PROGRAMS = ["malloc_enter", "malloc_exit", "calloc_enter", "calloc_exit", "realloc_enter", "realloc_exit", "free_enter_u"];
const KERNEL_PROGRAMS = ["kmalloc", "kfree", "kmem_cache_alloc", "kmem_cache_free"];

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { values: o, positionals } = parsed;
  const intervals = parseIntervalArgs(positionals);
  const interval = intervals.periodic ? intervals.interval : 5;
  const pid = pidOption(o.pid, "-p/--pid");
  const olderNs = BigInt(intOption(o.older, "-o/--older", 0, 86_400_000) ?? 500) * 1_000_000n;
  const top = intOption(o.top, "-T/--top", 1, 10_000) ?? 10;
  const minSize = intOption(o["min-size"], "-z/--min-size") ?? 0;
  const maxSize = intOption(o["max-size"], "-Z/--max-size");
  if (maxSize !== undefined && maxSize < minSize) throw new UsageError("-Z/--max-size is below -z/--min-size");
  if (o.obj !== undefined && pid === undefined) throw new UsageError("-O/--obj needs -p/--pid");
  const obj = pid === undefined ? undefined : (o.obj ?? libcOf(pid));

  await using tool = await startTool({
    tool: "memleak",
    programs: pid === undefined ? KERNEL_PROGRAMS : USER_PROGRAMS,
    constants: { min_size: BigInt(minSize), max_size: maxSize === undefined ? 0xffffffffffffffffn : BigInt(maxSize), user_stacks: pid !== undefined },
    attach: (coll: Collection) => {
      if (pid === undefined || obj === undefined) return void coll.attachAll();
      // free first: an allocation seen before its free's probe is attached would count as a leak.
      for (const [prog, symbol, ret] of [
        ["free_enter_u", "free", false], ["realloc_enter", "realloc", false], ["realloc_exit", "realloc", true],
        ["calloc_enter", "calloc", false], ["calloc_exit", "calloc", true], ["malloc_enter", "malloc", false], ["malloc_exit", "malloc", true],
      ] as const) {
        coll.program(prog).attachUprobe({ path: obj, symbol, pid, retprobe: ret });
      }
    },
  });
  if (!tool) return 1;
  const { coll, run } = tool;
  if (!o.json) run.out.line(pid === undefined ? "Attaching to kernel allocators, Ctrl+C to quit." : `Attaching to pid ${pid}, Ctrl+C to quit.`);
  run.out.flush();
  const symbolizer = new Symbolizer();
  const stacks = coll.map("stack_traces");
  for await (const tick of intervalTicks({ interval, count: intervals.count, signal: run.signal })) {
    if (run.out.closed) break;
    const now = process.hrtime.bigint(); // CLOCK_MONOTONIC, as bpf_ktime_get_ns
    const byStack = new Map<number, { size: bigint; count: number }>();
    const old: [bigint, AllocInfo][] = [];
    for (const [addr, info] of coll.map("allocs").entries() as Iterable<[bigint, AllocInfo]>) {
      if (now - info.ts < olderNs) continue;
      old.push([addr, info]);
      const id = Number(info.stack_id);
      const s = byStack.get(id) ?? { size: 0n, count: 0 };
      s.size += info.size;
      s.count++;
      byStack.set(id, s);
    }
    const rows = [...byStack.entries()].sort((a, b) => (a[1].size < b[1].size ? 1 : a[1].size > b[1].size ? -1 : 0)).slice(0, top);
    const frames = (id: number) => {
      const addrs = readStack(stacks, id);
      const f = pid === undefined ? symbolizer.kernelStack(addrs) : symbolizer.userStack(pid, addrs);
      return f.map((x) => formatFrame(x, { offset: true, module: true }));
    };
    if (o.json) {
      run.out.json({
        time: clockTime(tick.time),
        stacks: rows.map(([id, s]) => ({ bytes: Number(s.size), allocations: s.count, stack: id < 0 ? [] : frames(id) })),
        ...(o["show-allocs"] ? { allocations: old.map(([a, i]) => ({ address: `0x${a.toString(16)}`, size: Number(i.size) })) } : {}),
      });
    } else {
      const lines: string[] = [];
      if (o["show-allocs"]) {
        lines.push(`[${clockTime(tick.time)}] Outstanding allocations:`);
        for (const [a, i] of old) lines.push(`\taddr = ${a.toString(16)} size = ${i.size}`);
      }
      lines.push(`[${clockTime(tick.time)}] Top ${top} stacks with outstanding allocations:`);
      for (const [id, s] of rows) {
        const f = id < 0 ? ["[lost stack]"] : frames(id);
        lines.push(`\t${s.size} bytes in ${s.count} allocations from stack\n\t\t${f.join("\n\t\t")}`);
      }
      run.out.line(lines.join("\n"));
    }
    run.out.flush();
    if (tick.last) break;
  }
  return 0;
}
