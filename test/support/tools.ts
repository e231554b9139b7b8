// Running a CLI tool as a user does (a subprocess, stopped with Ctrl-C) next to
// workloads whose every action the test knows.
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const root = join(import.meta.dirname, "..", "..");
export const tsbpf = join(root, "bin", "tsbpf.js");

export interface ToolResult {
  out: string;
  err: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** stdout's lines, without the empty last one. */
  lines: string[];
  /** stdout's lines parsed as JSON (for --json runs). */
  json: Record<string, any>[];
}

/**
 * Runs `tsbpf ARGS` (this checkout's, or `opts.bin`), calling `poke` every 100 ms until `until(stdout)` holds (or
 * 60 s pass), then stops it with SIGINT (unless it exited by itself).
 */
export async function runTool(
  args: string[],
  opts: { until?: (out: string) => boolean; poke?: () => void; spawn?: SpawnOptions; timeoutMs?: number; bin?: string } = {},
): Promise<ToolResult> {
  const child = spawn(process.execPath, [opts.bin ?? tsbpf, ...args], { cwd: root, ...opts.spawn, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (err += d));
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on("exit", (c, s) => resolve([c, s])));
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  while (child.exitCode === null && child.signalCode === null && Date.now() < deadline && !(opts.until?.(out) ?? false)) {
    opts.poke?.();
    await new Promise((r) => setTimeout(r, 100));
  }
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGINT");
  const kill = setTimeout(() => child.kill("SIGKILL"), 15_000);
  const [code, signal] = await exited;
  clearTimeout(kill);
  const lines = out.split("\n").filter((l) => l !== "");
  const json = lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
  return { out, err, code, signal, lines, json };
}

/** A temporary directory removed by dispose. */
export function tempDir(prefix: string): { path: string } & Disposable {
  const path = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(path, 0o755); // workloads may run as another user
  return { path, [Symbol.dispose]: () => rmSync(path, { recursive: true, force: true }) };
}

/**
 * A shell under a command name of our choosing (a copy of /bin/sh), running
 * `script` in a loop; builtins such as `read x < FILE` open files in the shell
 * itself, so its PID is the opener.
 */
export class Workload implements Disposable {
  readonly child: ChildProcess;
  readonly comm: string;

  constructor(dir: string, comm: string, script: string, opts: SpawnOptions = {}) {
    this.comm = comm;
    const shell = join(dir, comm);
    copyFileSync("/bin/sh", shell);
    this.child = spawn(shell, ["-c", `while :; do ${script}; sleep 0.1; done`], { stdio: "ignore", ...opts });
  }

  get pid(): number {
    return this.child.pid!;
  }

  [Symbol.dispose](): void {
    this.child.kill("SIGKILL");
  }
}

/**
 * Runs `tsbpf ARGS | head -n LINES` in a shell, as a user pipes a tool into head:
 * the tool must notice the closed pipe and exit. Resolves to the shell's status
 * (null if it had to be killed after `timeoutMs`) and what head printed.
 */
export function runToolIntoHead(args: string[], lines: number, timeoutMs = 60_000): Promise<{ code: number | null; out: string }> {
  const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const cmd = `${[process.execPath, tsbpf, ...args].map(quote).join(" ")} | head -n ${lines}`;
  const shell = spawn("sh", ["-c", cmd], { cwd: root });
  let out = "";
  shell.stdout!.on("data", (d) => (out += d));
  return new Promise((resolve) => {
    const timer = setTimeout(() => shell.kill("SIGKILL"), timeoutMs);
    shell.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}
