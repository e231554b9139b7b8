// The exporter's configuration: programs, and which maps become which metrics,
// with labels decoded from the keys. Read from YAML with positions kept, so
// that every mistake names the file, the line and the field.
//
// Two shapes are read:
// - tsbpf's: `programs:` (builtin, object, source, bcc) and `metrics:`, each
//   metric naming its program (optional when there is one) and map (default:
//   the metric's name);
// - ebpf_exporter's: `metrics:` alone in NAME.yaml, the program being
//   NAME.bpf.o beside it; its `tracing`, `kaddrs` and `cgroup_id_map` are not read.
import { readFileSync } from "node:fs";
import { basename, dirname, resolve as resolvePath } from "node:path";
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node, type Pair, type YAMLMap } from "yaml";
import { UsageError } from "../errors.ts";

/** Where something was written: the file and the 1-based line. */
export interface Position {
  file: string;
  line: number;
}

/** A configuration mistake: `file:line: field: what is wrong`. */
export class ConfigError extends UsageError {
  readonly file: string;
  readonly line: number;
  readonly field: string;
  constructor(at: Position, field: string, message: string, options?: ErrorOptions) {
    super(`${at.file}:${at.line}: ${field}: ${message}`, options);
    this.file = at.file;
    this.line = at.line;
    this.field = field;
  }
}

export type DecoderName =
  | "uint" | "string" | "ksym" | "syscall" | "cgroup" | "inet_ip" | "majorminor" | "static_map" | "regexp" | "hex" | "errno";

export const DECODERS: readonly DecoderName[] = [
  "uint", "string", "ksym", "syscall", "cgroup", "inet_ip", "majorminor", "static_map", "regexp", "hex", "errno",
];

export interface DecoderConfig {
  name: DecoderName;
  staticMap?: Map<string, string>;
  allowUnknown?: boolean;
  regexps?: RegExp[];
  at: Position;
}

export interface LabelConfig {
  name: string;
  size: number;
  padding: number;
  decoders: DecoderConfig[];
  at: Position;
}

export type MetricKind = "counter" | "gauge" | "histogram";
export type BucketType = "exp2" | "exp2zero" | "linear" | "fixed";

export interface MetricConfig {
  kind: MetricKind;
  name: string;
  help: string;
  /** Name of the program whose map this reads. */
  program: string;
  map: string;
  labels: LabelConfig[];
  bucketType?: BucketType;
  bucketMin?: number;
  bucketMax?: number;
  bucketMultiplier?: number;
  bucketKeys?: number[];
  /** Series kept for this metric (default: the config's series_limit). */
  seriesLimit: number;
  at: Position;
  /** Positions of fields, for errors found after parsing (map, labels[i]). */
  fields: Record<string, Position>;
}

export type ProgramSource =
  | { kind: "builtin"; name: string }
  | { kind: "object"; path: string }
  | { kind: "source"; path: string }
  | { kind: "bcc"; text: string; name: string };

export interface ProgramConfig {
  name: string;
  source: ProgramSource;
  /** const volatile values set before load. */
  constants: Record<string, unknown>;
  /** Only these of the object's programs are loaded and attached (default: all). */
  attach?: string[];
  attachAt?: Position;
  at: Position;
}

export interface OtlpConfig {
  endpoint: string;
  intervalMs: number;
}

export interface ExporterConfig {
  /** The files read, in order ("<default>" for the built-in configuration). */
  files: string[];
  programs: ProgramConfig[];
  metrics: MetricConfig[];
  seriesLimit: number;
  otlp?: OtlpConfig;
}

export const DEFAULT_SERIES_LIMIT = 10_000;

const TOP_FIELDS = new Set(["programs", "metrics", "series_limit", "otlp"]);
const EBPF_EXPORTER_IGNORED = new Set(["tracing", "kaddrs", "cgroup_id_map"]);
const PROGRAM_FIELDS = new Set(["name", "builtin", "object", "source", "bcc", "bcc_file", "constants", "attach"]);
const METRIC_FIELDS = new Set([
  "name", "help", "program", "map", "labels", "series_limit",
  "bucket_type", "bucket_min", "bucket_max", "bucket_multiplier", "bucket_keys",
  // ebpf_exporter's, accepted and not used
  "perf_event_array", "flush_interval",
]);
const LABEL_FIELDS = new Set(["name", "size", "padding", "decoders"]);
const DECODER_FIELDS = new Set(["name", "static_map", "allow_unknown", "regexps"]);
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Reads and merges configuration files; throws ConfigError at the first mistake. */
export function readConfigFiles(paths: string[], warn: (msg: string) => void = () => {}): ExporterConfig {
  const parts = paths.map((p) => {
    const file = resolvePath(p);
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      throw new UsageError(`cannot read config ${file}: ${(err as Error).message}`, { cause: err });
    }
    return parseConfig(text, file, warn);
  });
  return mergeConfigs(parts);
}

/** Several files make one configuration: program and metric names must stay unique. */
export function mergeConfigs(parts: ExporterConfig[]): ExporterConfig {
  const out: ExporterConfig = { files: [], programs: [], metrics: [], seriesLimit: DEFAULT_SERIES_LIMIT };
  const programs = new Map<string, ProgramConfig>();
  const metrics = new Map<string, MetricConfig>();
  for (const part of parts) {
    out.files.push(...part.files);
    for (const p of part.programs) {
      const prev = programs.get(p.name);
      if (prev) throw new ConfigError(p.at, "programs.name", `program "${p.name}" is already defined at ${prev.at.file}:${prev.at.line}`);
      programs.set(p.name, p);
      out.programs.push(p);
    }
    for (const m of part.metrics) {
      const prev = metrics.get(m.name);
      if (prev) throw new ConfigError(m.at, "metrics.name", `metric "${m.name}" is already defined at ${prev.at.file}:${prev.at.line}`);
      metrics.set(m.name, m);
      out.metrics.push(m);
    }
    out.otlp = part.otlp ?? out.otlp;
  }
  if (parts.length === 1) out.seriesLimit = parts[0].seriesLimit;
  return out;
}

/** Parses one YAML text. `file` names it in errors and anchors relative paths. */
export function parseConfig(text: string, file: string, warn: (msg: string) => void = () => {}): ExporterConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const pos = (node: { range?: [number, number, number] | null } | null | undefined): Position => ({
    file,
    line: node?.range ? lineCounter.linePos(node.range[0]).line : 1,
  });
  if (doc.errors.length) {
    const e = doc.errors[0];
    throw new ConfigError({ file, line: lineCounter.linePos(e.pos[0]).line }, "yaml", e.message.split("\n")[0]);
  }
  const root = doc.contents;
  if (!isMap(root)) throw new ConfigError(pos(root as Node), "(top level)", "expected a mapping with programs: and metrics:");
  const r = new Reader(file, pos, doc);
  const top = r.fields(root, "(top level)", TOP_FIELDS, EBPF_EXPORTER_IGNORED, warn);

  const seriesLimit = top.series_limit ? r.int(top.series_limit, "series_limit", 1) : DEFAULT_SERIES_LIMIT;
  const dir = dirname(file);
  const programs: ProgramConfig[] = [];
  if (top.programs) {
    for (const [i, node] of r.seq(top.programs, "programs").entries()) programs.push(r.program(node, `programs[${i}]`, dir));
  } else if (top.metrics) {
    // ebpf_exporter's layout: NAME.yaml describes NAME.bpf.o beside it.
    const name = basename(file).replace(/\.ya?ml$/, "");
    programs.push({ name, source: { kind: "object", path: resolvePath(dir, `${name}.bpf.o`) }, constants: {}, at: pos(root) });
  }
  const seen = new Map<string, Position>();
  for (const p of programs) {
    const prev = seen.get(p.name);
    if (prev) throw new ConfigError(p.at, "programs.name", `program "${p.name}" is already defined at line ${prev.line}`);
    seen.set(p.name, p.at);
  }

  const metrics: MetricConfig[] = [];
  if (top.metrics) {
    const m = r.fields(r.map(top.metrics, "metrics"), "metrics", new Set(["counters", "gauges", "histograms"]));
    for (const [group, kind] of [["counters", "counter"], ["gauges", "gauge"], ["histograms", "histogram"]] as const) {
      if (!m[group]) continue;
      for (const [i, node] of r.seq(m[group], `metrics.${group}`).entries()) {
        metrics.push(r.metric(node, `metrics.${group}[${i}]`, kind, programs, seriesLimit));
      }
    }
  }
  const names = new Map<string, MetricConfig>();
  for (const metric of metrics) {
    const prev = names.get(metric.name);
    if (prev) throw new ConfigError(metric.fields.name, "name", `metric "${metric.name}" is already defined at line ${prev.at.line}`);
    names.set(metric.name, metric);
  }
  if (!programs.length && !metrics.length) throw new ConfigError(pos(root), "(top level)", "neither programs nor metrics are defined");

  let otlp: OtlpConfig | undefined;
  if (top.otlp) {
    const o = r.fields(r.map(top.otlp, "otlp"), "otlp", new Set(["endpoint", "interval"]));
    if (!o.endpoint) throw new ConfigError(pos(top.otlp), "otlp.endpoint", "is required (http://HOST:4318/v1/metrics)");
    const endpoint = r.str(o.endpoint, "otlp.endpoint");
    if (!/^https?:\/\//.test(endpoint)) throw new ConfigError(pos(o.endpoint), "otlp.endpoint", `expected an http(s) URL, got "${endpoint}"`);
    otlp = { endpoint, intervalMs: o.interval ? r.number(o.interval, "otlp.interval") * 1000 : 15_000 };
  }
  return { files: [file], programs, metrics, seriesLimit, otlp };
}

/** Typed access to YAML nodes, every failure a ConfigError at the node's line. */
class Reader {
  constructor(
    readonly file: string,
    readonly pos: (node: { range?: [number, number, number] | null } | null | undefined) => Position,
    readonly doc: Document,
  ) {}

  /** An alias (*name) stands for its anchor's node. */
  deref(node: unknown): unknown {
    return isAlias(node) ? node.resolve(this.doc) : node;
  }

  fail(node: unknown, field: string, message: string): never {
    throw new ConfigError(this.pos(node as Node), field, message);
  }

  map(node: unknown, field: string): YAMLMap {
    node = this.deref(node);
    if (!isMap(node)) this.fail(node, field, "expected a mapping");
    return node;
  }

  seq(node: unknown, field: string): unknown[] {
    node = this.deref(node);
    if (!isSeq(node)) this.fail(node, field, "expected a list");
    return node.items;
  }

  /** The fields of a mapping by name; an unknown field is an error (a typo would otherwise be ignored). */
  fields(map: YAMLMap, where: string, known: Set<string>, ignored = new Set<string>(), warn: (m: string) => void = () => {}): Record<string, Node | undefined> {
    const out: Record<string, Node | undefined> = {};
    for (const pair of map.items as Pair<unknown, unknown>[]) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      if (ignored.has(key)) {
        warn(`${this.file}:${this.pos(pair.key as Node).line}: ${key}: not read by tsbpf exporter (ignored)`);
        continue;
      }
      if (!known.has(key)) {
        this.fail(pair.key, where === "(top level)" ? key : `${where}.${key}`, `unknown field (expected one of: ${[...known].join(", ")})`);
      }
      // A key with no value (`help:`) is a null scalar with a position of its own.
      out[key] = (pair.value ?? pair.key) as Node;
      if (pair.value === null || (isScalar(pair.value) && pair.value.value === null)) {
        this.fail(pair.key, where === "(top level)" ? key : `${where}.${key}`, "has no value");
      }
    }
    return out;
  }

  str(node: unknown, field: string): string {
    node = this.deref(node);
    if (!isScalar(node) || (typeof node.value !== "string" && typeof node.value !== "number")) this.fail(node, field, "expected a string");
    return String(node.value);
  }

  number(node: unknown, field: string): number {
    node = this.deref(node);
    if (!isScalar(node) || typeof node.value !== "number" || !Number.isFinite(node.value)) this.fail(node, field, "expected a number");
    return node.value;
  }

  int(node: unknown, field: string, min = 0): number {
    const n = this.number(node, field);
    if (!Number.isInteger(n) || n < min) this.fail(node, field, `expected an integer >= ${min}, got ${n}`);
    return n;
  }

  bool(node: unknown, field: string): boolean {
    node = this.deref(node);
    if (!isScalar(node) || typeof node.value !== "boolean") this.fail(node, field, "expected true or false");
    return node.value;
  }

  program(node: unknown, where: string, dir: string): ProgramConfig {
    const f = this.fields(this.map(node, where), where, PROGRAM_FIELDS);
    if (!f.name) this.fail(node, `${where}.name`, "is required");
    const name = this.str(f.name, `${where}.name`);
    if (!LABEL_NAME.test(name)) this.fail(f.name, `${where}.name`, `"${name}" is not a name ([a-zA-Z_][a-zA-Z0-9_]*)`);
    const kinds = (["builtin", "object", "source", "bcc", "bcc_file"] as const).filter((k) => f[k]);
    if (kinds.length !== 1) {
      this.fail(node, where, `needs exactly one of builtin, object, source, bcc, bcc_file${kinds.length ? ` (has ${kinds.join(", ")})` : ""}`);
    }
    const kind = kinds[0];
    const value = this.str(f[kind], `${where}.${kind}`);
    let source: ProgramSource;
    switch (kind) {
      case "builtin":
        source = { kind, name: value };
        break;
      case "object":
      case "source":
        source = { kind, path: resolvePath(dir, value) };
        break;
      case "bcc":
        source = { kind: "bcc", text: value, name: `${this.file}:${this.pos(f.bcc).line}` };
        break;
      case "bcc_file": {
        const path = resolvePath(dir, value);
        let text: string;
        try {
          text = readFileSync(path, "utf8");
        } catch (err) {
          this.fail(f.bcc_file, `${where}.bcc_file`, `cannot read ${path}: ${(err as Error).message}`);
        }
        source = { kind: "bcc", text, name: path };
        break;
      }
    }
    const constants: Record<string, unknown> = {};
    if (f.constants) {
      for (const pair of this.map(f.constants, `${where}.constants`).items as Pair<unknown, unknown>[]) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        if (!isScalar(pair.value)) this.fail(pair.key, `${where}.constants.${key}`, "expected a number, string or boolean");
        constants[key] = pair.value.value;
      }
    }
    let attach: string[] | undefined;
    if (f.attach) {
      if (kind === "bcc" || kind === "bcc_file") this.fail(f.attach, `${where}.attach`, "BCC programs attach as their C says (auto-attach names)");
      attach = this.seq(f.attach, `${where}.attach`).map((n, i) => this.str(n, `${where}.attach[${i}]`));
    }
    return { name, source, constants, attach, attachAt: f.attach ? this.pos(f.attach as Node) : undefined, at: this.pos(node as Node) };
  }

  metric(node: unknown, where: string, kind: MetricKind, programs: ProgramConfig[], seriesLimit: number): MetricConfig {
    const f = this.fields(this.map(node, where), where, METRIC_FIELDS);
    const at = this.pos(node as Node);
    if (!f.name) this.fail(node, `${where}.name`, "is required");
    const name = this.str(f.name, `${where}.name`);
    if (!METRIC_NAME.test(name)) this.fail(f.name, `${where}.name`, `"${name}" is not a Prometheus metric name`);
    const fields: Record<string, Position> = { name: this.pos(f.name), map: this.pos(f.map ?? f.name) };
    let program: string;
    if (f.program) {
      program = this.str(f.program, `${where}.program`);
      fields.program = this.pos(f.program);
      if (!programs.some((p) => p.name === program)) {
        this.fail(f.program, `${where}.program`, `no program "${program}" is defined${programs.length ? ` (programs: ${programs.map((p) => p.name).join(", ")})` : ""}`);
      }
    } else if (programs.length === 1) {
      program = programs[0].name;
    } else {
      this.fail(node, `${where}.program`, programs.length ? `is required when there are several programs (${programs.map((p) => p.name).join(", ")})` : "no program is defined");
    }
    const metric: MetricConfig = {
      kind,
      name,
      help: f.help ? this.str(f.help, `${where}.help`) : name,
      program,
      map: f.map ? this.str(f.map, `${where}.map`) : name,
      labels: [],
      seriesLimit: f.series_limit ? this.int(f.series_limit, `${where}.series_limit`, 1) : seriesLimit,
      at,
      fields,
    };
    const labelNames = new Set<string>();
    if (f.labels) {
      for (const [i, l] of this.seq(f.labels, `${where}.labels`).entries()) {
        const label = this.label(l, `${where}.labels[${i}]`);
        if (labelNames.has(label.name)) this.fail(l, `${where}.labels[${i}].name`, `label "${label.name}" appears twice`);
        labelNames.add(label.name);
        fields[`labels[${i}]`] = label.at;
        metric.labels.push(label);
      }
    }
    if (kind === "histogram") {
      const type = f.bucket_type ? this.str(f.bucket_type, `${where}.bucket_type`) : undefined;
      if (!type || !["exp2", "exp2zero", "linear", "fixed"].includes(type)) {
        this.fail(f.bucket_type ?? node, `${where}.bucket_type`, `expected exp2, exp2zero, linear or fixed${type ? `, got "${type}"` : ""}`);
      }
      metric.bucketType = type as BucketType;
      metric.bucketMultiplier = f.bucket_multiplier ? this.number(f.bucket_multiplier, `${where}.bucket_multiplier`) : 1;
      if (type === "fixed") {
        if (!f.bucket_keys) this.fail(node, `${where}.bucket_keys`, "is required for bucket_type: fixed");
        metric.bucketKeys = this.seq(f.bucket_keys, `${where}.bucket_keys`).map((k, i) => this.number(k, `${where}.bucket_keys[${i}]`));
        if (!metric.bucketKeys.length) this.fail(f.bucket_keys, `${where}.bucket_keys`, "is empty");
      } else {
        if (!f.bucket_max) this.fail(node, `${where}.bucket_max`, "is required");
        metric.bucketMin = f.bucket_min ? this.int(f.bucket_min, `${where}.bucket_min`) : 0;
        metric.bucketMax = this.int(f.bucket_max, `${where}.bucket_max`);
        if (metric.bucketMax <= metric.bucketMin) this.fail(f.bucket_max, `${where}.bucket_max`, `must be above bucket_min (${metric.bucketMin})`);
        if (metric.bucketMax - metric.bucketMin > 1000) this.fail(f.bucket_max, `${where}.bucket_max`, "more than 1000 buckets");
      }
      const last = metric.labels.at(-1);
      if (!last) this.fail(node, `${where}.labels`, "a histogram needs labels, the last one being the bucket");
      if (last.decoders.length !== 1 || last.decoders[0].name !== "uint") {
        this.fail(f.labels, `${where}.labels[${metric.labels.length - 1}]`, `the last label of a histogram is its bucket: decoders must be [uint]`);
      }
    } else {
      for (const k of ["bucket_type", "bucket_min", "bucket_max", "bucket_multiplier", "bucket_keys"]) {
        if (f[k]) this.fail(f[k], `${where}.${k}`, `only histograms have buckets (this is a ${kind})`);
      }
    }
    return metric;
  }

  label(node: unknown, where: string): LabelConfig {
    const f = this.fields(this.map(node, where), where, LABEL_FIELDS);
    if (!f.name) this.fail(node, `${where}.name`, "is required");
    const name = this.str(f.name, `${where}.name`);
    if (!LABEL_NAME.test(name) || name.startsWith("__") || name === "le") this.fail(f.name, `${where}.name`, `"${name}" cannot be a label name`);
    if (!f.size) this.fail(node, `${where}.size`, "is required (bytes of the key this label decodes)");
    const size = this.int(f.size, `${where}.size`, 1);
    const padding = f.padding ? this.int(f.padding, `${where}.padding`) : 0;
    if (!f.decoders) this.fail(node, `${where}.decoders`, "is required (for example [{name: uint}])");
    const decoders = this.seq(f.decoders, `${where}.decoders`).map((d, i) => this.decoder(d, `${where}.decoders[${i}]`));
    if (!decoders.length) this.fail(f.decoders, `${where}.decoders`, "is empty");
    return { name, size, padding, decoders, at: this.pos(node as Node) };
  }

  decoder(node: unknown, where: string): DecoderConfig {
    const f = this.fields(this.map(node, where), where, DECODER_FIELDS);
    if (!f.name) this.fail(node, `${where}.name`, "is required");
    const name = this.str(f.name, `${where}.name`);
    if (!(DECODERS as string[]).includes(name)) this.fail(f.name, `${where}.name`, `unknown decoder "${name}" (decoders: ${DECODERS.join(", ")})`);
    const d: DecoderConfig = { name: name as DecoderName, at: this.pos(node as Node) };
    if (name === "static_map") {
      if (!f.static_map) this.fail(node, `${where}.static_map`, "is required for the static_map decoder");
      d.staticMap = new Map();
      for (const pair of this.map(f.static_map, `${where}.static_map`).items as Pair<unknown, unknown>[]) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        d.staticMap.set(key, this.str(pair.value, `${where}.static_map.${key}`));
      }
      d.allowUnknown = f.allow_unknown ? this.bool(f.allow_unknown, `${where}.allow_unknown`) : false;
    } else if (f.static_map || f.allow_unknown) {
      this.fail(f.static_map ?? f.allow_unknown, `${where}`, "static_map and allow_unknown belong to the static_map decoder");
    }
    if (name === "regexp") {
      if (!f.regexps) this.fail(node, `${where}.regexps`, "is required for the regexp decoder");
      d.regexps = this.seq(f.regexps, `${where}.regexps`).map((r, i) => {
        const text = this.str(r, `${where}.regexps[${i}]`);
        try {
          return new RegExp(text);
        } catch (err) {
          this.fail(r, `${where}.regexps[${i}]`, `not a regular expression: ${(err as Error).message}`);
        }
      });
    } else if (f.regexps) {
      this.fail(f.regexps, `${where}.regexps`, "regexps belong to the regexp decoder");
    }
    return d;
  }
}
