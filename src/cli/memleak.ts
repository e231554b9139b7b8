// tsbpf memleak: outstanding allocations, summed by stack, every interval,
// BCC's options and report. Hooks: with -p or -c, uprobes/uretprobes on the
// process's allocator (libc's malloc, calloc, realloc, free, mmap, munmap,
// posix_memalign, aligned_alloc, valloc, memalign, pvalloc, or -O LIBRARY's);
// without, the kmem tracepoints kmalloc, kfree, kmem_cache_alloc,
// kmem_cache_free, mm_page_alloc and mm_page_free (and kmalloc_node,
// kmem_cache_alloc_node before 6.1), or with --percpu the percpu ones: BCC uses
// the same tracepoints for the kernel.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { ElfError } from "../elf/error.ts";
import { ElfFile } from "../elf/index.ts";
import { resolveBinary } from "../link/uprobe.ts";
import type { Collection } from "../collection.ts";
import type { BpfMap } from "../maps/map.ts";
import { clockTime, intervalTicks, parseIntervalArgs } from "../histogram/interval.ts";
import { tracepointExists } from "../link/tracepoint.ts";
import { readStack } from "../maps/stack.ts";
import { formatFrame, Symbolizer, type Frame } from "../symbolize/index.ts";
import { runEventTool, startTool } from "./skeleton.ts";
import { intOption, parseToolArgs, pidOption, UsageError } from "./tool.ts";

const HELP = `usage: tsbpf memleak [-h] [-p PID] [-t] [-a] [-o OLDER] [-c COMMAND] [--combined-only] [--wa-missing-free]
                     [-s SAMPLE_RATE] [-T TOP] [-z MIN_SIZE] [-Z MAX_SIZE] [-O OBJ] [--percpu]
                     [--sort KEY] [--symbols-prefix PREFIX] [--json] [interval [count]]

Trace outstanding memory allocations that were not freed: every interval (default 5 s),
the stacks holding the most outstanding bytes. Without -p or -c, kernel allocations.

positional arguments:
  interval                 seconds between reports (default 5)
  count                    number of reports (default: until Ctrl-C)

options:
  -p, --pid PID            the process to trace (user allocations); without it, the kernel's
  -t, --trace              print a line for each alloc and free call (no reports)
  -a, --show-allocs        also list each outstanding allocation (address and size)
  -o, --older OLDER        prune allocations younger than this many milliseconds (default 500)
  -c, --command COMMAND    run COMMAND (split at spaces, as BCC) and trace its allocations;
                           it starts once the probes are attached
      --combined-only      report the per-stack totals kept as allocations happen (cheaper
                           to read; -o and -a do not apply)
      --wa-missing-free    kernel: treat a new allocation at an address still outstanding as
                           freed first (for allocations whose free the tracepoints miss)
  -s, --sample-rate N      keep every N-th allocation only (default 1: all)
  -T, --top TOP            the number of stacks to show (default 10)
  -z, --min-size SIZE      only allocations of at least SIZE bytes
  -Z, --max-size SIZE      only allocations of at most SIZE bytes
  -O, --obj OBJ            the allocator's library for -p/-c (default: the libc the process maps)
      --percpu             kernel: trace the per-CPU allocator (percpu tracepoints) instead
      --sort KEY           order stacks by size (default) or count
      --symbols-prefix P   the allocator's symbols have this prefix (e.g. je_ for jemalloc)
      --json               one JSON object per report (or per call with -t)

hooks: with -p/-c, uprobes on OBJ's malloc, calloc, realloc, free, and where OBJ has
them mmap, munmap, posix_memalign, aligned_alloc, valloc, memalign, pvalloc
(uretprobes for the addresses); without, the tracepoints kmem:kmalloc, kfree, kmem_cache_alloc,
kmem_cache_free, mm_page_alloc, mm_page_free (pages by pfn), and kmalloc_node,
kmem_cache_alloc_node where the kernel has them (before 6.1); with --percpu,
percpu:percpu_alloc_percpu and percpu_free_percpu. Kernel sizes are bytes_alloc (the
slab object's size). Stacks are frame-pointer walks: code built without frame pointers
gives short stacks. Not in this port: mmap/munmap, posix_memalign, valloc, memalign,
pvalloc and aligned_alloc probes.

examples:
  tsbpf memleak -p 181         # outstanding allocations of PID 181, every 5 s
  tsbpf memleak -p 181 -a 10 3 # with each allocation, every 10 s, 3 times
  tsbpf memleak -c "./leaky -x" # run and trace a command
  tsbpf memleak                # the kernel's outstanding allocations
  tsbpf memleak -s 5           # every 5th allocation, for less overhead
  tsbpf memleak --percpu       # the kernel's per-CPU allocations
`;

const OPTIONS = {
  pid: { type: "string", short: "p" },
  trace: { type: "boolean", short: "t" },
  "show-allocs": { type: "boolean", short: "a" },
  older: { type: "string", short: "o" },
  command: { type: "string", short: "c" },
  "combined-only": { type: "boolean" },
  "wa-missing-free": { type: "boolean" },
  "sample-rate": { type: "string", short: "s" },
  top: { type: "string", short: "T" },
  "min-size": { type: "string", short: "z" },
  "max-size": { type: "string", short: "Z" },
  obj: { type: "string", short: "O" },
  percpu: { type: "boolean" },
  sort: { type: "string" },
  "symbols-prefix": { type: "string" },
  json: { type: "boolean" },
} as const;

interface AllocInfo {
  size: bigint;
  ts: bigint;
  stack_id: bigint;
}

interface CombinedInfo {
  total_size: bigint;
  number_of_allocs: bigint;
}

interface TraceEvent {
  ts: bigint;
  size: bigint;
  addr: bigint;
  pid: number;
  tid: number;
  kind: number;
  comm: string;
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

/**
 * The allocator's probes, in attach order: frees first (an allocation seen before its free's
 * probe is attached would count as a leak), malloc's return last. [program, symbol, return, optional]:
 * an optional symbol the allocator lacks (jemalloc has no mmap; a libc may drop pvalloc) is skipped.
 */
const USER_PROBES: [program: string, symbol: string, ret: boolean, optional: boolean][] = [
  ["free_enter_u", "free", false, false], ["munmap_enter", "munmap", false, true],
  ["realloc_enter", "realloc", false, false], ["realloc_exit", "realloc", true, false],
  ["mmap_enter", "mmap", false, true], ["mmap_exit", "mmap", true, true],
  ["posix_memalign_enter", "posix_memalign", false, true], ["posix_memalign_exit", "posix_memalign", true, true],
  ...["aligned_alloc", "valloc", "memalign", "pvalloc"].flatMap((f): [string, string, boolean, boolean][] => [[`${f}_enter`, f, false, true], ["aligned_exit", f, true, true]]),
  ["calloc_enter", "calloc", false, false], ["calloc_exit", "calloc", true, false],
  ["malloc_enter", "malloc", false, false], ["malloc_exit", "malloc", true, false],
];
const USER_PROGRAMS = [...new Set(USER_PROBES.map(([p]) => p))];

function kernelPrograms(percpu: boolean): string[] {
  if (percpu) return ["percpu_alloc", "percpu_free"];
  const programs = ["kmalloc", "kfree", "kmem_cache_alloc", "kmem_cache_free", "mm_page_alloc", "mm_page_free"];
  // Merged into kmalloc/kmem_cache_alloc in 6.1.
  if (tracepointExists("kmem", "kmalloc_node")) programs.push("kmalloc_node");
  if (tracepointExists("kmem", "kmem_cache_alloc_node")) programs.push("kmem_cache_alloc_node");
  return programs;
}

/**
 * `sh -c 'read <&3; exec COMMAND'` with fd 3 a pipe: the process exists (its pid
 * known, its libc mapped) but runs COMMAND only when `go()` writes to the pipe.
 */
function startStopped(command: string): { child: ChildProcess; go(): void } {
  const argv = command.split(" ").filter((a) => a !== "");
  if (argv.length === 0) throw new UsageError("-c/--command is empty");
  const child = spawn("/bin/sh", ["-c", 'read x <&3; exec 3<&-; exec "$0" "$@"', ...argv], { stdio: ["inherit", "inherit", "inherit", "pipe"] });
  child.on("error", () => {});
  const pipe = child.stdio[3] as NodeJS.WritableStream;
  return { child, go: () => pipe.end("go\n") };
}

/**
 * Every entry of the allocs map: in batches of 4096 (BPF_MAP_LOOKUP_BATCH, 5.6+),
 * else key by key. Kernel mode fills it fast (a million entries in seconds):
 * key-by-key reading costs two syscalls per allocation.
 */
function outstanding(map: BpfMap<bigint, AllocInfo>): [bigint, AllocInfo][] {
  try {
    return [...map.lookupBatch(4096)];
  } catch {
    return [...map.entries()];
  }
}

const TRACE_TEXT = ["alloc entered, size = %s", "alloc exited, size = %s, result = %x", "free entered, address = %x, size = %s"];

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { values: o, positionals } = parsed;
  const intervals = parseIntervalArgs(positionals);
  const interval = intervals.periodic ? intervals.interval : 5;
  let pid = pidOption(o.pid, "-p/--pid");
  if (pid !== undefined && o.command !== undefined) throw new UsageError("-p/--pid and -c/--command cannot go together");
  const olderNs = BigInt(intOption(o.older, "-o/--older", 0, 86_400_000) ?? 500) * 1_000_000n;
  const top = intOption(o.top, "-T/--top", 1, 10_000) ?? 10;
  const minSize = intOption(o["min-size"], "-z/--min-size") ?? 0;
  const maxSize = intOption(o["max-size"], "-Z/--max-size");
  const sampleRate = intOption(o["sample-rate"], "-s/--sample-rate", 1, 1_000_000_000) ?? 1;
  if (maxSize !== undefined && maxSize < minSize) throw new UsageError("-Z/--max-size is below -z/--min-size");
  const sort = o.sort ?? "size";
  if (sort !== "size" && sort !== "count") throw new UsageError(`--sort expects size or count, got "${sort}"`);
  const user = pid !== undefined || o.command !== undefined;
  if (!user && o.obj !== undefined) throw new UsageError("-O/--obj needs -p/--pid or -c/--command");
  if (user && o.percpu) throw new UsageError("--percpu traces the kernel's per-CPU allocator: it takes no -p/--pid or -c/--command");
  if (!user && o["symbols-prefix"] !== undefined) throw new UsageError("--symbols-prefix needs -p/--pid or -c/--command");

  let command: ReturnType<typeof startStopped> | undefined;
  if (o.command !== undefined) {
    if (!o.json) process.stdout.write(`Executing '${o.command}' and tracing the resulting process.\n`);
    command = startStopped(o.command);
    pid = command.child.pid;
    if (pid === undefined) throw new UsageError(`-c/--command: cannot run "${o.command}"`);
  }
  const obj = pid === undefined ? undefined : (o.obj ?? libcOf(pid));
  const prefix = o["symbols-prefix"] ?? "";
  const constants = {
    min_size: BigInt(minSize),
    max_size: maxSize === undefined ? 0xffffffffffffffffn : BigInt(maxSize),
    user_stacks: user,
    sample_every_n: BigInt(sampleRate),
    trace_all: o.trace ?? false,
    wa_missing_free: o["wa-missing-free"] ?? false,
  };
  const programs = user ? USER_PROGRAMS : kernelPrograms(o.percpu ?? false);
  const attaching = user ? `Attaching to pid ${pid}, Ctrl+C to quit.` : "Attaching to kernel allocators, Ctrl+C to quit.";
  const attach = (coll: Collection) => {
    if (!user || obj === undefined) coll.attachAll();
    else {
      // One probe per function: glibc's memalign and aligned_alloc are one address, and two
      // probes there would count each block twice.
      const path = resolveBinary(obj);
      const elf = new ElfFile(new Uint8Array(readFileSync(path)), path);
      const offsets = new Map<string, number | undefined>();
      const probed = new Set<number>();
      for (const [prog, symbol, ret, optional] of USER_PROBES) {
        if (!offsets.has(symbol)) {
          let offset: number | undefined;
          try {
            offset = elf.symbolFileOffset(prefix + symbol);
          } catch (e) {
            if (!optional || !(e instanceof ElfError)) throw e;
          }
          offsets.set(symbol, offset !== undefined && probed.has(offset) ? undefined : offset);
          if (offset !== undefined) probed.add(offset);
        }
        const offset = offsets.get(symbol);
        if (offset !== undefined) coll.program(prog).attachUprobe({ path, offset, pid, retprobe: ret });
      }
    }
    // Said before the command runs: its own output comes after.
    if (!o.json) process.stdout.write(`${attaching}\n`);
    command?.go();
  };

  try {
    if (o.trace) {
      return await runEventTool<TraceEvent>({
        tool: "memleak",
        programs,
        constants,
        attach,
        eventType: "call_event",
        json: o.json,
        line: (e) => {
          const vals = e.kind === 2 ? [e.addr.toString(16), String(e.size)] : [String(e.size), e.addr.toString(16)];
          let i = 0;
          const text = TRACE_TEXT[e.kind]!.replace(/%[sx]/g, () => vals[i++]!);
          return `${e.comm.padStart(16)}-${String(e.tid).padEnd(7)} ${(Number(e.ts) / 1e9).toFixed(6)}: ${text}`;
        },
        record: (e) => ({
          time: Number(e.ts) / 1e9, pid: e.pid, tid: e.tid, comm: e.comm, call: ["alloc_enter", "alloc_exit", "free"][e.kind],
          size: Number(e.size), ...(e.kind === 0 ? {} : { address: `0x${e.addr.toString(16)}` }),
        }),
      });
    }
    return await report();
  } finally {
    command?.child.kill("SIGTERM");
  }

  async function report(): Promise<number> {
    await using tool = await startTool({ tool: "memleak", programs, constants, attach });
    if (!tool) return 1;
    const { coll, run } = tool;
    const symbolizer = new Symbolizer();
    const stacks = coll.map("stack_traces");
    const frames = (id: number): Frame[] => {
      const addrs = readStack(stacks, id);
      return pid === undefined ? symbolizer.kernelStack(addrs) : symbolizer.userStack(pid, addrs);
    };
    const name = (f: Frame) => formatFrame(f, { offset: true, module: true });
    const key = (s: { size: bigint; count: number }) => (sort === "size" ? s.size : BigInt(s.count));
    for await (const tick of intervalTicks({ interval, count: intervals.count, signal: run.signal })) {
      if (run.out.closed) break;
      const time = clockTime(tick.time);
      if (o["combined-only"]) {
        const rows = ([...coll.map("combined_allocs").entries()] as [bigint, CombinedInfo][])
          .map(([id, c]) => ({ id: Number(BigInt.asIntN(64, id)), size: c.total_size, count: Number(c.number_of_allocs) }))
          .sort((a, b) => (key(a) < key(b) ? 1 : key(a) > key(b) ? -1 : 0))
          .slice(0, top);
        const stackOf = (id: number) => {
          try {
            return id < 0 ? undefined : frames(id);
          } catch {
            return undefined; // the stack map lost it
          }
        };
        if (o.json) {
          run.out.json({ time, stacks: rows.map((r) => ({ bytes: Number(r.size), allocations: r.count, stack: stackOf(r.id)?.map(name) ?? null })) });
        } else {
          const entries = rows.map((r) => {
            const f = stackOf(r.id);
            return `\t${r.size} bytes in ${r.count} allocations from stack\n\t\t${f ? f.map(name).join("\n\t\t") : "stack information lost"}`;
          });
          run.out.line([`[${time}] Top ${top} stacks with outstanding allocations:`, ...entries.reverse()].join("\n"));
        }
      } else {
        const now = process.hrtime.bigint(); // CLOCK_MONOTONIC, as bpf_ktime_get_ns
        const byStack = new Map<number, { size: bigint; count: number }>();
        const old = outstanding(coll.map("allocs") as BpfMap<bigint, AllocInfo>)
          .filter(([, info]) => now - info.ts >= olderNs && info.stack_id >= 0n)
          .sort((a, b) => (a[1].size < b[1].size ? -1 : a[1].size > b[1].size ? 1 : 0));
        for (const [, info] of old) {
          const id = Number(info.stack_id);
          const s = byStack.get(id) ?? { size: 0n, count: 0 };
          s.size += info.size;
          s.count++;
          byStack.set(id, s);
        }
        // BCC: ascending, the last TOP (the biggest printed last).
        const rows = [...byStack.entries()].sort((a, b) => (key(a[1]) < key(b[1]) ? -1 : key(a[1]) > key(b[1]) ? 1 : 0)).slice(-top);
        if (o.json) {
          run.out.json({
            time,
            stacks: rows.reverse().map(([id, s]) => ({ bytes: Number(s.size), allocations: s.count, stack: frames(id).map(name) })),
            ...(o["show-allocs"] ? { allocations: old.map(([a, i]) => ({ address: `0x${a.toString(16)}`, size: Number(i.size) })) } : {}),
          });
        } else {
          const lines = [`[${time}] Top ${top} stacks with outstanding allocations:`];
          if (o["show-allocs"]) for (const [a, i] of old) lines.push(`\taddr = ${a.toString(16)} size = ${i.size}`);
          for (const [id, s] of rows) {
            const f = frames(id).map((x) => `0x${x.address.toString(16).padStart(16, "0")}\t${name(x)}`);
            lines.push(`\t${s.size} bytes in ${s.count} allocations from stack\n\t\t${f.join("\n\t\t")}`);
          }
          run.out.line(lines.join("\n"));
        }
      }
      run.out.flush();
      if (tick.last) break;
    }
    return 0;
  }
}
