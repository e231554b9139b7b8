// What every tracing tool of the CLI shares: option parsing with --help, the
// privilege check, finding the tool's BPF object, buffered output that notices
// a closed pipe, and one stop signal for Ctrl-C, SIGTERM, `| head` and -d.
import { UsageError } from "../errors.ts";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";

type ParseArgsOptionsConfig = NonNullable<ParseArgsConfig["options"]>;
import { compile, ToolNotFoundError } from "../compile/index.ts";
import { packageRoot } from "../internal/package.ts";
import { privilegeHint } from "../internal/sys/errors.ts";

/** Thrown for bad command-line input: main prints the message and the usage, exit code 2. */
export { UsageError };

type Parsed<O extends ParseArgsOptionsConfig> = ReturnType<typeof parseArgs<{ args: string[]; options: O; allowPositionals: true; strict: true }>>;

/**
 * Parses a tool's arguments (node's parseArgs, strict). Returns undefined after
 * printing `help` for -h/--help; throws UsageError for unknown or malformed options.
 */
export function parseToolArgs<const O extends ParseArgsOptionsConfig>(args: string[], options: O, help: string): Parsed<O> | undefined {
  if (args.includes("-h") || args.includes("--help")) {
    process.stdout.write(help.endsWith("\n") ? help : `${help}\n`);
    return undefined;
  }
  const checked = checkArgs(args, options);
  try {
    return parseArgs({ args: checked, options, allowPositionals: true, strict: true });
  } catch (err) {
    // checkArgs answers every case we know of in our words; this is the fallback.
    throw new UsageError((err as Error).message.split("\n")[0]!);
  }
}

/** "-p/--pid" or "--uid": an option as the help text names it. */
function optionLabel(name: string, config: ParseArgsOptionsConfig[string]): string {
  return config.short ? `-${config.short}/--${name}` : `--${name}`;
}

/**
 * Checks the options before parseArgs sees them, so that each mistake gets a
 * sentence of ours (parseArgs says "argument is ambiguous" for `-p -1`), and
 * passes a negative number after a string option on as its value (`-p -1` becomes
 * `--pid=-1`), for the option's own range check to answer.
 */
function checkArgs(args: string[], options: ParseArgsOptionsConfig): string[] {
  const byShort = new Map<string, string>();
  for (const [name, config] of Object.entries(options)) if (config.short) byShort.set(config.short, name);
  const out: string[] = [];
  // The value of the string option `name`, taken from the next argument.
  const valueAfter = (i: number, name: string): string => {
    const label = optionLabel(name, options[name]!);
    const next = args[i + 1];
    if (next === undefined) throw new UsageError(`${label} needs a value`);
    if (next.startsWith("-") && next !== "-" && !/^-\d/.test(next)) {
      throw new UsageError(`${label} needs a value, but the option ${next} follows it (a value that starts with "-" is written --${name}=${next})`);
    }
    return next;
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--") {
      out.push(...args.slice(i));
      break;
    }
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = a.slice(2, eq < 0 ? undefined : eq);
      const config = Object.hasOwn(options, name) ? options[name] : undefined;
      if (!config) throw new UsageError(`unknown option --${name}${closest(name, Object.keys(options))}`);
      if (config.type === "boolean") {
        if (eq >= 0) throw new UsageError(`--${name} takes no value`);
        out.push(a);
      } else if (eq >= 0) {
        out.push(a);
      } else {
        out.push(`--${name}=${valueAfter(i, name)}`);
        i++;
      }
      continue;
    }
    if (a.startsWith("-") && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const name = byShort.get(a[j]!);
        if (!name) throw new UsageError(`unknown option -${a[j]}${a.length > 2 ? ` (in "${a}")` : ""}`);
        if (options[name]!.type === "boolean") {
          out.push(`--${name}`);
          continue;
        }
        if (j < a.length - 1) {
          out.push(`--${name}=${a.slice(j + 1)}`);
        } else {
          out.push(`--${name}=${valueAfter(i, name)}`);
          i++;
        }
        break;
      }
      continue;
    }
    out.push(a);
  }
  return out;
}

/** ` (did you mean --pid?)` when a known option is one edit or a prefix away. */
function closest(name: string, known: string[]): string {
  const near = known.find((k) => k.startsWith(name) || name.startsWith(k) || editDistance(k, name) <= 1);
  return near && name.length > 1 ? ` (did you mean --${near}?)` : "";
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 1) return 2;
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

/** pid_t as the kernel hands them out: below PID_MAX_LIMIT (4194304 on 64-bit; /proc/sys/kernel/pid_max is at most that). */
export const PID_MAX = 4194303;
/** uid_t is 32 bits and (uid_t)-1 means "no user": the tools take it as "no filter". */
export const UID_MAX = 0xfffffffe;

/**
 * An integer option value in [min, max], or a UsageError naming the option and
 * its range. Only decimal digits: "1e3", "0x10", "12abc" and "" are refused.
 */
export function intOption(value: string | undefined, option: string, min = 0, max = Number.MAX_SAFE_INTEGER, what = "an integer"): number | undefined {
  if (value === undefined) return undefined;
  const n = /^-?\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? (min > 0 ? ` >= ${min}` : min === 0 ? " >= 0" : "") : ` from ${min} to ${max}`;
    throw new UsageError(`${option} expects ${what}${range}, got "${value}"`);
  }
  return n;
}

/** A process or thread ID option (-p, -t, -L, -P). */
export function pidOption(value: string | undefined, option: string): number | undefined {
  return intOption(value, option, 1, PID_MAX, "a process ID");
}

/** A user ID option (-u, --uid). */
export function uidOption(value: string | undefined, option: string): number | undefined {
  return intOption(value, option, 0, UID_MAX, "a user ID");
}

/** -d/--duration in seconds: any length works (ToolRun chains timers past setTimeout's 24.8 days). */
export function durationOption(value: string | undefined, option = "-d/--duration"): number | undefined {
  return intOption(value, option, 1, MAX_DURATION_SEC, "a number of seconds");
}

/** 2^32 - 1 seconds: 136 years, and the product with 1000 stays a safe integer. */
const MAX_DURATION_SEC = 0xffffffff;

/** Without root (or CAP_BPF + CAP_PERFMON), says so in one sentence and returns false. */
export function havePrivileges(tool: string): boolean {
  const hint = privilegeHint();
  if (!hint) return true;
  process.stderr.write(`tsbpf ${tool}: ${hint}.\n`);
  return false;
}

/** Where tools' C sources live. */
export const toolSourceDir = join(packageRoot, "src", "cli", "bpf");

/**
 * Where pre-compiled tool objects are looked for: $TSBPF_TOOL_OBJECTS, else the
 * package's dist/bpf (written by `npm run build:bpf`, which `npm pack` runs).
 */
export function toolObjectsDir(): string {
  return process.env.TSBPF_TOOL_OBJECTS || join(packageRoot, "dist", "bpf");
}

/** The tools that have BPF C of their own. */
export function toolNames(): string[] {
  return readdirSync(toolSourceDir)
    .filter((f) => f.endsWith(".bpf.c"))
    .map((f) => f.slice(0, -".bpf.c".length));
}

/**
 * Compiles every tool's C into `outDir` as NAME.bpf.o: CO-RE objects that load on
 * other kernels (the loader relocates them against each kernel's BTF) with no clang there.
 */
export async function buildToolObjects(outDir = toolObjectsDir()): Promise<string[]> {
  mkdirSync(outDir, { recursive: true });
  const written: string[] = [];
  for (const name of toolNames()) {
    const object = await compile({ file: join(toolSourceDir, `${name}.bpf.c`) });
    const path = join(outDir, `${name}.bpf.o`);
    writeFileSync(path, object.bytes);
    written.push(path);
  }
  return written;
}

/** The headers a tool's C may include: the tools' own (src/cli/bpf/*.h) and tsbpf's (include/). */
function toolHeaders(): string[] {
  const headers = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".h")).map((f) => join(dir, f)) : []);
  return [...headers(toolSourceDir), ...headers(join(packageRoot, "include"))];
}

/**
 * In a working tree, an object older than its C or than any header the tools share is a
 * stale build (an installed package has no src/cli/bpf: its objects are what it ships).
 */
export function isStaleToolObject(name: string, object: string): boolean {
  const source = join(toolSourceDir, `${name}.bpf.c`);
  if (!existsSync(source)) return false;
  const built = statSync(object).mtimeMs;
  return [source, ...toolHeaders()].some((path) => statSync(path).mtimeMs > built);
}

/**
 * A tool's BPF object: a pre-compiled CO-RE object (see toolObjectsDir), or else
 * compiled now by clang against this kernel's BTF (cached after the first run).
 */
export async function toolObject(name: string): Promise<{ bytes: Uint8Array; origin: "pre-compiled" | "cached" | "compiled" }> {
  const source = join(toolSourceDir, `${name}.bpf.c`);
  const prebuilt = join(toolObjectsDir(), `${name}.bpf.o`);
  if (existsSync(prebuilt) && !isStaleToolObject(name, prebuilt)) {
    return { bytes: readFileSync(prebuilt), origin: "pre-compiled" };
  }
  try {
    const object = await compile({ file: source });
    return { bytes: object.bytes, origin: object.cached ? "cached" : "compiled" };
  } catch (err) {
    if (!(err instanceof ToolNotFoundError)) throw err;
    err.message +=
      ` Or run the tool from pre-compiled objects: "npm run build:bpf -- DIR" on a machine with clang, ` +
      `then TSBPF_TOOL_OBJECTS=DIR here (no ${toolObjectsDir()}/${name}.bpf.o was found).`;
    throw err;
  }
}

/**
 * Buffered stdout for a stream of lines: written once per batch of events, not
 * per line. A closed pipe (`tool | head`) stops the tool instead of crashing it.
 */
export class Output {
  #lines: string[] = [];
  #scheduled = false;
  #closed = false;
  readonly #onClosed: () => void;

  constructor(onClosed: () => void) {
    this.#onClosed = onClosed;
    process.stdout.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code !== "EPIPE") throw err;
      this.#close();
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  line(text: string): void {
    if (this.#closed) return;
    this.#lines.push(text);
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => this.flush());
    }
  }

  json(value: unknown): void {
    this.line(JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? Number(v) : v)));
  }

  flush(): void {
    this.#scheduled = false;
    if (this.#closed || this.#lines.length === 0) return;
    const text = `${this.#lines.join("\n")}\n`;
    this.#lines = [];
    try {
      process.stdout.write(text);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EPIPE") throw err;
      this.#close();
    }
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#lines = [];
    this.#onClosed();
  }
}

const TIMER_MAX_MS = 2 ** 31 - 1;

/**
 * One run of a tool: `signal` aborts on Ctrl-C, SIGTERM, a closed stdout or
 * after `durationSec`; `stopped` resolves then. Dispose to remove the handlers.
 */
export class ToolRun implements Disposable {
  readonly #controller = new AbortController();
  readonly out = new Output(() => this.stop("stdout closed"));
  readonly stopped: Promise<string>;
  #timer: NodeJS.Timeout | undefined;
  // Holds the event loop until the run stops: a tool that only waits (a count
  // read at Ctrl-C) has no other handle, and node would exit at once.
  #keepAlive: NodeJS.Timeout | undefined = setInterval(() => {}, TIMER_MAX_MS);
  readonly #onSignal = (sig: NodeJS.Signals) => this.stop(sig);

  constructor(opts: { durationSec?: number } = {}) {
    this.stopped = new Promise((resolve) =>
      this.#controller.signal.addEventListener(
        "abort",
        () => {
          this.#release();
          resolve(String(this.#controller.signal.reason));
        },
        { once: true },
      ),
    );
    process.on("SIGINT", this.#onSignal);
    process.on("SIGTERM", this.#onSignal);
    if (opts.durationSec) this.#stopAfter(opts.durationSec * 1000);
  }

  // setTimeout takes at most 2^31 - 1 ms (24.8 days; more fires at once with a
  // TimeoutOverflowWarning): longer durations wait in steps. Timers never fire
  // early, so the steps add up to at least the duration.
  #stopAfter(ms: number): void {
    const step = Math.min(ms, TIMER_MAX_MS);
    this.#timer = setTimeout(() => (ms > step ? this.#stopAfter(ms - step) : this.stop("duration")), step);
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  stop(reason: string): void {
    if (!this.#controller.signal.aborted) this.#controller.abort(reason);
  }

  #release(): void {
    clearInterval(this.#keepAlive);
    this.#keepAlive = undefined;
  }

  [Symbol.dispose](): void {
    this.out.flush();
    this.#release();
    clearTimeout(this.#timer);
    process.off("SIGINT", this.#onSignal);
    process.off("SIGTERM", this.#onSignal);
  }
}

/**
 * The end of a tool's event stream, once `run` has stopped: hands over what the
 * buffer still holds (unless stdout is closed), closes the reader and reports
 * what the kernel could not deliver: "N events lost" on stderr and, with
 * --json, a last record {"lost": N} on stdout. Nothing is said when none were
 * lost. Returns the count.
 */
export function finishEvents(
  tool: string, run: ToolRun, reader: import("../events/reader.ts").EventReader<any>,
  opts: { json?: boolean; hint?: string; missed?: () => number } = {},
): number {
  if (!run.out.closed && !reader.closed) reader.consume();
  reader.close();
  // What a full buffer dropped, and the program runs the kernel skipped (a tracing
  // program does not run while another runs on its CPU, e.g. in an interrupt): each may be an event.
  const skipped = opts.missed?.() ?? 0;
  const lost = reader.lost + skipped;
  if (lost > 0) {
    if (opts.json) run.out.json({ lost });
    run.out.flush();
    const why = [skipped ? `${skipped} program runs the kernel skipped` : "", reader.lost && opts.hint ? opts.hint : ""].filter(Boolean).join("; ");
    process.stderr.write(`tsbpf ${tool}: ${lost} events lost${why ? ` (${why})` : ""}\n`);
  }
  return lost;
}
