// The exporter: a configuration's programs loaded and attached, one reader per
// metric. The map-backed metrics are written in the text format here, from the
// readers' live series (prom-client's label objects and formatting of 10,000
// series cost tens of MiB of garbage per scrape); prom-client keeps the self
// metrics. OTLP reads the same snapshots (otlp.ts).
// Everything is checked and loaded before it serves; a reload builds the new set
// beside the old one and swaps only when all of it loaded.
import client from "prom-client";
import { Spec } from "../btf/spec.ts";
import type { ExporterConfig, MetricConfig } from "./config.ts";
import { checkMetricMap, loadProgram, prepareProgram, type LoadedProgram, type PreparedProgram } from "./programs.ts";
import { MetricReader, type Snapshot } from "./reader.ts";
import { TextWriter, writeMetric } from "./text.ts";

export interface ExporterOptions {
  /** Where warnings go (default: stderr). */
  warn?: (message: string) => void;
  /** Node's process metrics (CPU, RSS, heap, event loop) in the registry too (default true). */
  processMetrics?: boolean;
}

interface Loaded {
  config: ExporterConfig;
  programs: Map<string, LoadedProgram>;
  readers: MetricReader[];
}

export class Exporter implements AsyncDisposable {
  readonly registry = new client.Registry();
  #state: Loaded | undefined;
  #snapshots = new Map<string, Snapshot>();
  #closed = false;
  readonly #text = new TextWriter();
  readonly #warn: (message: string) => void;
  readonly #self: {
    programs: client.Gauge;
    mapRead: client.Gauge;
    series: client.Gauge;
    dropped: client.Counter;
    scrapeDuration: client.Histogram;
    scrapeErrors: client.Counter;
    reloads: client.Counter;
  };

  private constructor(opts: ExporterOptions) {
    this.#warn = opts.warn ?? ((m) => process.stderr.write(`tsbpf exporter: ${m}\n`));
    const r = [this.registry];
    this.#self = {
      programs: new client.Gauge({ name: "tsbpf_exporter_programs_loaded", help: "BPF programs loaded in the kernel, by config program", labelNames: ["program"], registers: r }),
      mapRead: new client.Gauge({ name: "tsbpf_exporter_map_read_seconds", help: "Time the last read of a metric's map took", labelNames: ["metric"], registers: r }),
      series: new client.Gauge({ name: "tsbpf_exporter_series", help: "Series a metric exposed at the last read", labelNames: ["metric"], registers: r }),
      dropped: new client.Counter({ name: "tsbpf_exporter_series_dropped_total", help: "Series left out because a metric reached its series limit, summed over reads", labelNames: ["metric"], registers: r }),
      scrapeDuration: new client.Histogram({
        name: "tsbpf_exporter_scrape_duration_seconds",
        help: "Time to read every map at a scrape",
        buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
        registers: r,
      }),
      scrapeErrors: new client.Counter({ name: "tsbpf_exporter_scrape_errors_total", help: "Map reads that failed", labelNames: ["metric"], registers: r }),
      reloads: new client.Counter({ name: "tsbpf_exporter_reloads_total", help: "Configuration reloads, by result", labelNames: ["result"], registers: r }),
    };
    if (opts.processMetrics !== false) client.collectDefaultMetrics({ register: this.registry });
  }

  /** Loads and attaches everything the config names, or throws and leaves nothing behind. */
  static async start(config: ExporterConfig, opts: ExporterOptions = {}): Promise<Exporter> {
    const e = new Exporter(opts);
    e.#state = await e.#build(config, undefined);
    e.#register(e.#state);
    return e;
  }

  get config(): ExporterConfig | undefined {
    return this.#state?.config;
  }

  /** BPF programs loaded, over all config programs. */
  get programCount(): number {
    let n = 0;
    for (const p of this.#state?.programs.values() ?? []) n += p.programCount;
    return n;
  }

  /**
   * Applies a new configuration. Programs whose object and constants did not
   * change stay loaded (their counts go on); counters and histograms of reloaded
   * programs carry their last values over. On any error the old set stays.
   */
  async reload(config: ExporterConfig): Promise<void> {
    const old = this.#state;
    if (!old || this.#closed) throw new Error("the exporter is closed");
    let next: Loaded;
    try {
      next = await this.#build(config, old);
    } catch (err) {
      this.#self.reloads.inc({ result: "failure" });
      throw err;
    }
    const oldReaders = new Map(old.readers.map((r) => [r.metric.name, r]));
    for (const r of next.readers) {
      const prev = oldReaders.get(r.metric.name);
      if (prev && prev.map !== r.map && prev.metric.kind === r.metric.kind && sameLabels(prev.metric, r.metric)) r.carryFrom(prev);
    }
    this.#self.programs.reset();
    this.#state = next;
    this.#snapshots.clear();
    this.#register(next);
    const kept = new Set(next.programs.values());
    await Promise.allSettled([...old.programs.values()].filter((p) => !kept.has(p)).map((p) => p.close()));
    this.#self.reloads.inc({ result: "success" });
  }

  /** Reads every metric's map now; the registry's next output shows these values. */
  collect(): Map<string, Snapshot> {
    const state = this.#state;
    if (!state) return this.#snapshots;
    const out = new Map<string, Snapshot>();
    for (const reader of state.readers) {
      const name = reader.metric.name;
      try {
        const snap = reader.read();
        out.set(name, snap);
        this.#self.mapRead.set({ metric: name }, snap.readSeconds);
        this.#self.series.set({ metric: name }, snap.series.length);
        this.#self.dropped.inc({ metric: name }, snap.dropped);
      } catch (err) {
        this.#self.scrapeErrors.inc({ metric: name });
        this.#warn(`reading ${name} (map ${reader.metric.map}): ${(err as Error).message}`);
      }
    }
    this.#snapshots = out;
    return out;
  }

  /** One Prometheus scrape: read the maps, then the text format. */
  async scrape(): Promise<Buffer> {
    const end = this.#self.scrapeDuration.startTimer();
    const snaps = this.collect();
    end();
    const self = await this.registry.metrics();
    // Written after the await, with nothing awaited until the copy: concurrent
    // scrapes never share the writer (a later collect only makes values newer).
    const w = this.#text;
    w.reset();
    for (const snap of snaps.values()) writeMetric(w, snap);
    w.str(self);
    return w.take();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const state = this.#state;
    this.#state = undefined;
    if (!state) return;
    const results = await Promise.allSettled([...state.programs.values()].map((p) => p.close()));
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #build(config: ExporterConfig, old: Loaded | undefined): Promise<Loaded> {
    // 1. Every object read (or compiled) and every metric checked against its map's spec.
    const prepared: PreparedProgram[] = [];
    for (const [i, p] of config.programs.entries()) prepared.push(await prepareProgram(p, i));
    const byName = new Map(prepared.map((p) => [p.config.name, p]));
    for (const m of config.metrics) {
      const spec = byName.get(m.program)?.spec;
      if (spec) checkMetricMap(m, spec.maps.get(m.map), spec.maps.keys());
    }
    // 2. Loaded and attached; programs unchanged since the running config are kept.
    const programs = new Map<string, LoadedProgram>();
    const fresh: LoadedProgram[] = [];
    try {
      for (const p of prepared) {
        const same = old?.programs.get(p.config.name);
        if (same && same.fingerprint === p.fingerprint) {
          programs.set(p.config.name, same);
          continue;
        }
        const loaded = await loadProgram(p);
        fresh.push(loaded);
        programs.set(p.config.name, loaded);
      }
      // 3. Readers; BCC programs' maps are only known now.
      const readers: MetricReader[] = [];
      for (const m of config.metrics) {
        const prog = programs.get(m.program)!;
        const map = prog.maps.get(m.map);
        checkMetricMap(m, map && { name: map.name, type: map.type, keySize: map.keySize, valueSize: map.valueSize, key: map.keyType }, prog.maps.keys());
        readers.push(new MetricReader(m, map!));
      }
      Spec.releaseKernel(); // every relocation is done: the kernel's BTF need not stay in memory
      return { config, programs, readers };
    } catch (err) {
      await Promise.allSettled(fresh.map((p) => p.close()));
      throw err;
    }
  }

  #register(state: Loaded): void {
    for (const [name, p] of state.programs) this.#self.programs.set({ program: name }, p.programCount);
  }
}

function sameLabels(a: MetricConfig, b: MetricConfig): boolean {
  return a.labels.length === b.labels.length && a.labels.every((l, i) => l.name === b.labels[i].name);
}
