// The three shapes BCC's tools come in, so that each tool's file holds its own
// logic and little else:
//   - event tools (opensnoop, biosnoop, tcpconnect...): a line per event until Ctrl-C;
//   - interval-histogram tools (runqlat, biolatency, cpudist...): `[interval [count]]`,
//     a histogram per interval, the map cleared after each;
//   - top-style tools (biotop, filetop, tcptop...): a sorted table per interval.
// Every shape starts the same way (`startTool`): options already parsed, the
// privilege check, the tool's object loaded with its constants, programs
// attached, and a ToolRun whose signal ends on Ctrl-C, SIGTERM, -d or a closed pipe.
import { readFileSync } from "node:fs";
import { Spec } from "../btf/spec.ts";
import { Collection, type CollectionOptions } from "../collection.ts";
import { ObjectSpec } from "../object/spec.ts";
import type { BpfMap } from "../maps/map.ts";
import { chooseEventTransport, keepUpOptions, openEvents, type EventTransport } from "../events/channel.ts";
import type { EventReader } from "../events/reader.ts";
import { clockTime, intervalHeader, intervalTicks, parseIntervalArgs, type IntervalArgs, type Tick } from "../histogram/interval.ts";
import { formatLinearHist, formatLog2Hist, histogramJson, type PrintOptions } from "../histogram/index.ts";
import type { ParseArgsConfig } from "node:util";
import { durationOption, finishEvents, havePrivileges, parseToolArgs, pidOption, toolObject, ToolRun, UsageError } from "./tool.ts";

export interface StartOptions extends Pick<CollectionOptions, "constants" | "programs"> {
  /** The tool's name (for messages) and, unless `object` says otherwise, its BPF object's. */
  tool: string;
  object?: string;
  /** Seconds before the run stops by itself (-d). */
  durationSec?: number;
  /** Adjusts the spec before load: choose an event transport, drop programs the kernel cannot take... */
  prepare?(spec: ObjectSpec): void;
  /** Attaches the programs (default: each where its section says). */
  attach?(coll: Collection): void;
}

export interface StartedTool extends AsyncDisposable {
  coll: Collection;
  run: ToolRun;
}

/**
 * Loads and attaches a tool's object. Returns undefined (after the one-sentence
 * message) without root; dispose of the result to detach everything.
 */
export async function startTool(opts: StartOptions): Promise<StartedTool | undefined> {
  if (!havePrivileges(opts.tool)) return undefined;
  const spec = ObjectSpec.fromBytes((await toolObject(opts.object ?? opts.tool)).bytes);
  opts.prepare?.(spec);
  const coll = Collection.load(spec, { constants: opts.constants, programs: opts.programs });
  Spec.releaseKernel(); // every relocation is done: 9 MiB less for the rest of the run
  let run: ToolRun | undefined;
  try {
    if (opts.attach) opts.attach(coll);
    else coll.attachAll();
    run = new ToolRun({ durationSec: opts.durationSec });
  } catch (err) {
    await coll.closeAsync().catch(() => {});
    throw err;
  }
  const started = run;
  return {
    coll,
    run: started,
    async [Symbol.asyncDispose]() {
      started[Symbol.dispose]();
      await coll.closeAsync();
    },
  };
}

export interface EventToolOptions<E> extends StartOptions {
  /** The TSBPF_EVENTS channel's map and its event struct (defaults "events", "event"). */
  channel?: string;
  eventType?: string;
  /** Forces a transport (--perf-buffer); default: the ring buffer where the kernel has one. */
  transport?: EventTransport;
  /** Printed once before any event (omitted with --json). */
  header?: string;
  json?: boolean;
  /** A line for an event (undefined: filtered out in user space). */
  line(e: E): string | undefined;
  /** The JSON record for an event (default: the event itself; undefined: filtered out). */
  record?(e: E): unknown;
}

/**
 * An event tool's command line: its options and no positional argument, then
 * -p/--pid (where the tool has it) and -d/--duration, checked in that order.
 * Undefined after --help.
 */
export function parseEventToolArgs<const O extends NonNullable<ParseArgsConfig["options"]>>(args: string[], options: O, help: string) {
  const parsed = parseToolArgs(args, options, help);
  if (!parsed) return undefined;
  const { values: o, positionals } = parsed;
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const v = o as { pid?: string; duration?: string };
  const pid = "pid" in options ? pidOption(v.pid, "-p/--pid") : undefined;
  return { o, pid, duration: durationOption(v.duration) };
}

/**
 * Runs an event tool until it is stopped; resolves to the exit code. Events are
 * batched (keepUpOptions: a wake-up per 256 KiB or 50 ms), and what the kernel
 * could not write is reported at exit ("N events lost", {"lost": N} in JSON).
 */
export async function runEventTool<E>(opts: EventToolOptions<E>): Promise<number> {
  const channel = opts.channel ?? "events";
  const keepUp = keepUpOptions();
  await using tool = await startTool({
    ...opts,
    prepare: (spec) => {
      chooseEventTransport(spec, channel, opts.transport, keepUp);
      opts.prepare?.(spec);
    },
    attach: () => {}, // after the reader is open: a perf buffer drops what comes before
  });
  if (!tool) return 1;
  const { coll, run } = tool;
  // No `signal: run.signal` here: an aborted signal closes the reader at once, and
  // finishEvents' last drain would find it closed, dropping what the last batch
  // (up to the 50 ms drain timer's worth) still held. finishEvents closes it.
  using reader: EventReader<E> = openEvents<E>(coll, channel, { ...keepUp, decode: coll.type(opts.eventType ?? "event") });
  const missed = programMisses(coll);
  if (opts.attach) opts.attach(coll);
  else coll.attachAll();
  if (!opts.json && opts.header !== undefined) run.out.line(opts.header);
  reader.onEvent((e) => {
    if (opts.json) {
      const record = opts.record ? opts.record(e) : e;
      if (record !== undefined) run.out.json(record);
      return;
    }
    const text = opts.line(e);
    if (text !== undefined) run.out.line(text);
  });
  await run.stopped;
  finishEvents(opts.tool, run, reader, { json: opts.json, missed });
  return 0;
}

/** A function that says how many runs of the collection's programs the kernel skipped since this call. */
export function programMisses(coll: Collection): () => number {
  const misses = () => [...coll.programs.values()].reduce((n, p) => n + p.info().recursionMisses, 0n);
  const start = misses();
  return () => Number(misses() - start);
}

export interface HistogramSpec {
  /** The histogram map: log2 or linear slot -> count, or {section, slot} -> count. */
  map: string;
  kind?: "log2" | "linear";
  /** The unit label BCC prints ("usecs", "msecs", "kbytes"). */
  valType: string;
  print?: Omit<PrintOptions, "valType">;
}

export interface HistogramToolOptions extends StartOptions {
  intervals: IntervalArgs;
  /** -T: a HH:MM:SS line before each output. */
  timestamp?: boolean;
  json?: boolean;
  /** "Tracing run queue latency... Hit Ctrl-C to end." */
  banner?: string;
  histograms: HistogramSpec[];
  /** Keep counting across intervals instead of clearing the maps (BCC's tools that have no -c clear). */
  cumulative?: boolean;
  /** Extra output after the histograms of an interval (e.g. averages). */
  after?(coll: Collection, tick: Tick): string | undefined;
}

/**
 * An interval tool's command line: its options, `[interval [count]]` (`defaults`
 * when none is given), then -p/--pid where the tool has it. Undefined after --help.
 */
export function parseIntervalToolArgs<const O extends NonNullable<ParseArgsConfig["options"]>>(args: string[], options: O, help: string, defaults: string[] = []) {
  const parsed = parseToolArgs(args, options, help);
  if (!parsed) return undefined;
  const { values: o, positionals } = parsed;
  const intervals = parseIntervalArgs(positionals.length ? positionals : defaults);
  const pid = "pid" in options ? pidOption((o as { pid?: string }).pid, "-p/--pid") : undefined;
  return { o, intervals, pid };
}

/**
 * Runs an interval-histogram tool: one output per interval, and one at Ctrl-C.
 * Each interval drains its maps (drainMap), so that a count the kernel adds
 * between the read and the clear lands in the next interval instead of nowhere.
 */
export async function runHistogramTool(opts: HistogramToolOptions): Promise<number> {
  return runIntervalTool({
    ...opts,
    report(coll, tick) {
      let text = "";
      const json: unknown[] = [];
      for (const h of opts.histograms) {
        const map = coll.map(h.map);
        const entries = (opts.cumulative ? [...map.entries()] : drainMap(map)) as never;
        const print = { valType: h.valType, ...h.print };
        if (opts.json) for (const record of histogramJson(h.kind ?? "log2", entries, print)) json.push({ map: h.map, ...record });
        else text += (h.kind === "linear" ? formatLinearHist : formatLog2Hist)(entries, print);
      }
      if (!opts.json) text += opts.after?.(coll, tick) ?? "";
      return { text, json };
    },
  });
}

export interface TopToolOptions<R> extends StartOptions {
  intervals: IntervalArgs;
  /** -C/--noclear: do not clear the screen between intervals. */
  noclear?: boolean;
  /** -r/--maxrows. */
  maxRows?: number;
  /**
   * The "HH:MM:SS loadavg: ..." line and the blank line after it (BCC's biotop,
   * filetop; tcptop unless -S/--nosummary). Default true.
   */
  summary?: boolean;
  json?: boolean;
  banner?: string;
  /** The column header line. */
  header: string;
  /**
   * Rows of one interval, read from the maps (the tool sorts them). A tool drains
   * its hash maps here (drainMap): read and cleared in one pass, nothing falls between.
   */
  rows(coll: Collection): R[];
  line(row: R): string;
}

function procLoadavg(): string {
  try {
    return readFileSync("/proc/loadavg", "utf8").trim();
  } catch {
    return "";
  }
}

/** Runs a top-style tool: a table per interval, sorted by the tool, the screen cleared unless -C. */
export async function runTopTool<R>(opts: TopToolOptions<R>): Promise<number> {
  await using tool = await startTool(opts);
  if (!tool) return 1;
  const { coll, run } = tool;
  if (!opts.json && opts.banner) run.out.line(opts.banner);
  run.out.flush();
  for await (const tick of intervalTicks({ interval: opts.intervals.interval, count: opts.intervals.count, signal: run.signal })) {
    if (run.out.closed) break;
    const rows = opts.rows(coll).slice(0, opts.maxRows ?? 20);
    if (opts.json) {
      run.out.json({ time: clockTime(tick.time), rows });
    } else {
      // BCC prints /proc/loadavg whole (with its run queue and last pid) and its newline: a blank line follows.
      const summary = opts.summary ?? true ? [`${clockTime(tick.time).padEnd(8)} loadavg: ${procLoadavg()}`, ""] : [];
      const lines = [...summary, opts.header, ...rows.map(opts.line)];
      run.out.line((opts.noclear ? "\n" : "\x1b[H\x1b[2J") + lines.join("\n"));
    }
    run.out.flush();
    if (tick.last) break;
  }
  return 0;
}

export interface IntervalToolOptions extends StartOptions {
  intervals: IntervalArgs;
  /** -T: a HH:MM:SS line before each output (BCC's "%-8s\n"). */
  timestamp?: boolean;
  json?: boolean;
  banner?: string;
  /**
   * One interval's output, read from the maps: `text` (without the blank line and
   * timestamp that every output starts with) and `json` (one line each). The tool
   * clears its maps here too, after reading them.
   */
  report(coll: Collection, tick: Tick): { text: string; json: unknown[] };
  /** Printed once after the last output (syscount's "Detaching..."). */
  footer?: string;
  /** Leave out the blank line and -T time before each output (syscount prints its own "[HH:MM:SS]"). */
  bare?: boolean;
}

/**
 * Runs an interval tool: one output per interval (`report`), and one at Ctrl-C.
 * runHistogramTool is this with histograms for the report; hardirqs' and
 * softirqs' totals and syscount's table report their own.
 */
export async function runIntervalTool(opts: IntervalToolOptions): Promise<number> {
  await using tool = await startTool(opts);
  if (!tool) return 1;
  const { coll, run } = tool;
  if (!opts.json && opts.banner) run.out.line(opts.banner);
  run.out.flush();
  for await (const tick of intervalTicks({ interval: opts.intervals.interval, count: opts.intervals.count, signal: run.signal })) {
    if (run.out.closed) break;
    const { text, json } = opts.report(coll, tick);
    if (opts.json) {
      for (const record of json) run.out.json({ time: clockTime(tick.time), ...(record as object) });
    } else {
      const head = opts.bare ? "" : intervalHeader(opts.timestamp ?? false, tick.time).slice(opts.intervals.periodic ? 0 : 1);
      run.out.line((head + text).replace(/\n$/, ""));
    }
    run.out.flush();
    if (tick.last) break;
  }
  if (!opts.json && opts.footer) run.out.line(opts.footer);
  return 0;
}

/**
 * Counters in an array map (per-CPU or not) that programs only add to: the returned
 * function gives what slot `i` gained since its previous call for that slot. The map
 * is never cleared, so nothing added between a read and a clear is lost.
 */
export function counterDeltas(map: BpfMap): (i: number) => bigint {
  const last = new Map<number, bigint>();
  return (i) => {
    const v = map.lookup(i) as bigint[] | bigint | undefined;
    const total = Array.isArray(v) ? v.reduce((a, b) => a + b, 0n) : (v ?? 0n);
    const gained = total - (last.get(i) ?? 0n);
    last.set(i, total);
    return gained;
  };
}

/**
 * Reads a hash map's entries and deletes them in one pass (BPF_MAP_LOOKUP_AND_DELETE_BATCH,
 * 5.6+), so that a count added between reading and clearing is kept for the next
 * interval instead of lost; before 5.6, reads then clears.
 */
export function drainMap<K, V>(map: BpfMap<K, V>): [K, V][] {
  const out: [K, V][] = [];
  try {
    for (const entry of map.lookupBatch(256, { andDelete: true })) out.push(entry);
  } catch {
    // No batch operations (or a failure part way): what was read is gone from the map; read the rest.
    out.push(...map.entries());
    map.clear();
  }
  return out;
}
