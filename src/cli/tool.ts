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
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** An integer option value (PID, UID, seconds...), or a UsageError naming the option. */
export function intOption(value: string | undefined, option: string, min = 0): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${option} expects an integer${min > 0 ? ` >= ${min}` : ""}, got "${value}"`);
  return n;
}

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

/**
 * A tool's BPF object: a pre-compiled CO-RE object (see toolObjectsDir), or else
 * compiled now by clang against this kernel's BTF (cached after the first run).
 */
export async function toolObject(name: string): Promise<{ bytes: Uint8Array; origin: "pre-compiled" | "cached" | "compiled" }> {
  const source = join(toolSourceDir, `${name}.bpf.c`);
  const prebuilt = join(toolObjectsDir(), `${name}.bpf.o`);
  // In a working tree, an object older than its source is a stale build.
  if (existsSync(prebuilt) && (!existsSync(source) || statSync(prebuilt).mtimeMs >= statSync(source).mtimeMs)) {
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

/**
 * One run of a tool: `signal` aborts on Ctrl-C, SIGTERM, a closed stdout or
 * after `durationSec`; `stopped` resolves then. Dispose to remove the handlers.
 */
export class ToolRun implements Disposable {
  readonly #controller = new AbortController();
  readonly out = new Output(() => this.stop("stdout closed"));
  readonly stopped: Promise<string>;
  #timer: NodeJS.Timeout | undefined;
  readonly #onSignal = (sig: NodeJS.Signals) => this.stop(sig);

  constructor(opts: { durationSec?: number } = {}) {
    this.stopped = new Promise((resolve) =>
      this.#controller.signal.addEventListener("abort", () => resolve(String(this.#controller.signal.reason)), { once: true }),
    );
    process.on("SIGINT", this.#onSignal);
    process.on("SIGTERM", this.#onSignal);
    if (opts.durationSec) this.#timer = setTimeout(() => this.stop("duration"), opts.durationSec * 1000);
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  stop(reason: string): void {
    if (!this.#controller.signal.aborted) this.#controller.abort(reason);
  }

  [Symbol.dispose](): void {
    this.out.flush();
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
export function finishEvents(tool: string, run: ToolRun, reader: import("../events/reader.ts").EventReader<any>, opts: { json?: boolean; hint?: string } = {}): number {
  if (!run.out.closed && !reader.closed) reader.consume();
  reader.close();
  const lost = reader.lost;
  if (lost > 0) {
    if (opts.json) run.out.json({ lost });
    run.out.flush();
    process.stderr.write(`tsbpf ${tool}: ${lost} events lost${opts.hint ? ` (${opts.hint})` : ""}\n`);
  }
  return lost;
}
