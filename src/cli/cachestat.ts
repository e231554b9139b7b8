// tsbpf cachestat: page cache hit ratio (BCC's cachestat), from filemap and writeback tracepoints.
import { readFileSync } from "node:fs";
import { tracepointExists } from "../link/tracepoint.ts";
import { NotSupportedError } from "../errors.ts";
import { clockTime, intervalTicks, parseIntervalArgs } from "../histogram/index.ts";
import { counterDeltas, startTool } from "./skeleton.ts";
import { havePrivileges, parseToolArgs } from "./tool.ts";

const HELP = `usage: tsbpf cachestat [-h] [-T] [--json] [interval] [count]

Count cache kernel function calls: page cache hits, misses and dirtied pages, a line
every interval (default 1 s).

positional arguments:
  interval         output interval, in seconds (default 1)
  count            number of outputs

options:
  -T, --timestamp  include a timestamp column
      --json       one JSON object per interval

columns: HITS, MISSES, DIRTIES, HITRATIO, BUFFERS_MB, CACHED_MB (the last two from
/proc/meminfo), computed as BCC does: misses = pages added - pages dirtied,
hits = accesses - misses.

hooks: BCC counts add_to_page_cache_lru, mark_page_accessed, account_page_dirtied
and mark_buffer_dirty with kprobes. Without kprobes: filemap:mm_filemap_add_to_page_cache
(pages added), tp_btf/mm_filemap_get_pages (pages a read asks of the cache, 6.x) and
filemap:mm_filemap_fault (accesses), writeback:writeback_dirty_folio (dirtied). The
accesses so count reads and mmap faults, not the other callers of mark_page_accessed.

examples:
  tsbpf cachestat         # show hits and misses every second
  tsbpf cachestat -T 5    # every 5 seconds, with timestamps
`;

const OPTIONS = {
  timestamp: { type: "boolean", short: "T" },
  json: { type: "boolean" },
} as const;

/** BCC's arithmetic: accesses less what writes touched, misses less what was dirtied. */
export function cacheRatio(adds: number, accesses: number, dirties: number): { hits: number; misses: number; ratio: number } {
  const total = Math.max(0, accesses);
  let misses = Math.max(0, adds - dirties);
  let hits = total - misses;
  if (hits < 0) {
    misses = total;
    hits = 0;
  }
  return { hits, misses, ratio: total > 0 ? hits / total : 0 };
}

function meminfo(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of readFileSync("/proc/meminfo", "utf8").split("\n")) {
    const m = /^(\w+):\s+(\d+)/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { values: o, positionals } = parsed;
  const intervals = parseIntervalArgs(positionals.length ? positionals : ["1"]);
  // Before the kernel checks: without root, tracefs cannot be read and every hook looks missing.
  if (!havePrivileges("cachestat")) return 1;
  const missing = [
    ["filemap", "mm_filemap_add_to_page_cache"],
    ["filemap", "mm_filemap_get_pages"],
    ["writeback", "writeback_dirty_folio"],
  ].filter(([g, n]) => !tracepointExists(g!, n!));
  if (missing.length) {
    const names = missing.map(([g, n]) => `${g}:${n}`).join(", ");
    throw new NotSupportedError(names, `this tool needs the tracepoints ${names} on a kernel without kprobes (BCC's kprobes on mark_page_accessed and the rest are not built yet in tsbpf)`);
  }
  const programs = ["add_to_page_cache", "get_pages", "dirty_folio", ...(tracepointExists("filemap", "mm_filemap_fault") ? ["filemap_fault"] : [])];
  await using tool = await startTool({ tool: "cachestat", programs });
  if (!tool) return 1;
  const { coll, run } = tool;
  const gained = counterDeltas(coll.map("counts"));
  const read = (i: number) => Number(gained(i));
  if (!o.json) {
    run.out.line((o.timestamp ? `${"TIME".padEnd(8)} ` : "") + `${"HITS".padStart(8)} ${"MISSES".padStart(8)} ${"DIRTIES".padStart(8)} ${"HITRATIO".padStart(8)} ${"BUFFERS_MB".padStart(12)} ${"CACHED_MB".padStart(10)}`);
  }
  run.out.flush();
  for await (const tick of intervalTicks({ interval: intervals.interval, count: intervals.count, signal: run.signal })) {
    if (run.out.closed) break;
    const adds = read(0), accesses = read(1), dirties = read(2);
    const { hits, misses, ratio } = cacheRatio(adds, accesses, dirties);
    const mem = meminfo();
    const buffers = (mem.Buffers ?? 0) / 1024, cached = (mem.Cached ?? 0) / 1024;
    if (o.json) {
      run.out.json({ time: clockTime(tick.time), hits, misses, dirties, hitratio: ratio * 100, buffers_mb: Math.round(buffers), cached_mb: Math.round(cached), pages_added: adds, accesses });
    } else {
      run.out.line(
        (o.timestamp ? `${clockTime(tick.time).padEnd(8)} ` : "") +
          `${String(hits).padStart(8)} ${String(misses).padStart(8)} ${String(dirties).padStart(8)} ${(ratio * 100).toFixed(2).padStart(7)}% ` +
          `${buffers.toFixed(0).padStart(12)} ${cached.toFixed(0).padStart(10)}`,
      );
    }
    run.out.flush();
    if (tick.last) break;
  }
  return 0;
}
