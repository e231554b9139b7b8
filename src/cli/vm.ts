// tsbpf vm: run a command in a Debian kernel under QEMU (for what the host kernel lacks).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { UsageError } from "../errors.ts";
import { VmError } from "../vm/host.ts";
import { kernelFeatures, listKernels, resolveKernel } from "../vm/kernels.ts";
import { runVm, type VmDisk, type VmFile } from "../vm/run.ts";

const USAGE = `usage: tsbpf vm run [--kernel 6.1|6.12|PATH] [--mem 2G] [--cpus 2] [--timeout SECONDS] [--verbose]
                    [--file HOST_PATH[:GUEST_PATH]]... [--disk IMAGE[:ro]]... [--module NAME]...
                    [--env NAME=VALUE]... [--cwd DIR] -- COMMAND...
       tsbpf vm kernels

run      Boots the kernel (default 6.12) under qemu-system-x86_64 with node, npm, npx and this
         project (at its host path) in the initramfs, runs COMMAND as root in the same working
         directory as here, streams its stdout and stderr, and exits with its exit status.
         --file copies a file or directory in (default: at the same absolute path).
         --disk attaches a raw image (or block device) as a virtio-blk disk, /dev/vda,
         /dev/vdb, ... in order (read-only with :ro; $TSBPF_DISKS lists them in the guest);
         virtio_blk and the image's file system module (xfs, btrfs) are loaded first.
         --module loads a module of the guest kernel (and its dependencies) before COMMAND.
         --timeout stops a command that runs longer (exit status 124). A boot that never
         reaches the command is tried once more. --verbose prints progress and timings to stderr.
         Failures of the VM itself exit with 125.
kernels  Lists the kernel versions apt offers, the package each maps to and which are cached.

Environment: TSBPF_CACHE_DIR (kernels and initramfs pieces; default ~/.cache/tsbpf),
TSBPF_QEMU (the qemu-system-x86_64 binary), TSBPF_VM_ACCEL (kvm or tcg; default: KVM only
if a probe boot works), TSBPF_VM_BOOT_TIMEOUT (seconds to reach the command; default 120),
TSBPF_VM_APPEND (more kernel parameters; "loglevel=7" with --verbose shows the boot).`;


function fail(message: string): number {
  console.error(`tsbpf vm: ${message}`);
  return 2;
}

export async function run(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (!sub || sub === "--help" || sub === "-h" || sub === "help") {
    console.log(USAGE);
    return sub ? 0 : 2;
  }
  try {
    if (sub === "kernels") return kernels(rest);
    if (sub === "run") return await runCommand(rest);
  } catch (err) {
    if (err instanceof UsageError) return fail(err.message);
    if (err instanceof VmError) {
      console.error(`tsbpf vm: ${err.message}`);
      return 125;
    }
    throw err;
  }
  return fail(`unknown subcommand "${sub}"\n\n${USAGE}`);
}

function kernels(args: string[]): number {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(USAGE);
    return 0;
  }
  const verbose = args.includes("--verbose") || args.includes("-v");
  const log = verbose ? (m: string) => console.error(`tsbpf vm: ${m}`) : () => {};
  const list = listKernels(log);
  if (list.length === 0) {
    console.log("no kernels: apt knows no linux-image packages and none are cached");
    return 1;
  }
  const rows = [["VERSION", "PACKAGE (newest in apt)", "CACHED", "KPROBES", "BTF", "FPROBE"]];
  for (const k of list) {
    const cached = k.package !== undefined && k.cached.includes(k.package);
    let features: Record<string, string> = {};
    if (cached) features = kernelFeatures(resolveKernel(k.series, log).config);
    rows.push([k.series, k.package ?? "(not in apt)", cached ? "yes" : "no", features.KPROBES ?? "-", features.DEBUG_INFO_BTF ?? "-", features.FPROBE ?? "-"]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd());
  const others = list.flatMap((k) => k.cached.filter((p) => p !== k.package));
  if (others.length) console.log(`\nalso cached: ${others.join(", ")}`);
  return 0;
}

/** Whether the guest command runs the tsbpf CLI (tsbpf, npx tsbpf, node bin/tsbpf.js). */
function runsTsbpf(command: string[]): boolean {
  return command.some((a) => /(^|\/)tsbpf(\.js)?$/.test(a) || /(^|[\s/])tsbpf(\.js)?\s/.test(a));
}

/**
 * The guest has no clang: its tools load the project's dist/bpf, which travels in with the
 * project (unless --env TSBPF_TOOL_OBJECTS points elsewhere). Builds it here first when an
 * object is missing or older than its C (or a shared header) and the host has clang; without clang, the guest's
 * tool says what to do.
 */
export async function ensureToolObjects(log: ((m: string) => void) | undefined): Promise<void> {
  const { buildToolObjects, isStaleToolObject, toolNames } = await import("./tool.ts");
  const { packageRoot } = await import("../internal/package.ts");
  const dir = join(packageRoot, "dist", "bpf");
  const stale = toolNames().filter((name) => {
    const object = join(dir, `${name}.bpf.o`);
    return !existsSync(object) || isStaleToolObject(name, object);
  });
  if (stale.length === 0) return;
  const { ToolNotFoundError } = await import("../compile/index.ts");
  const t0 = Date.now();
  try {
    await buildToolObjects(dir);
  } catch (err) {
    if (!(err instanceof ToolNotFoundError)) throw err;
    console.error(`tsbpf vm: the tools' objects (${stale.join(", ")}) are not in ${dir} and cannot be built here: ${err.message}`);
    return;
  }
  (log ?? ((m: string) => process.stderr.write(`tsbpf vm: ${m}\n`)))(`built the tools' objects into ${dir} for the guest (${Date.now() - t0} ms)`);
}

async function runCommand(args: string[]): Promise<number> {
  const files: VmFile[] = [];
  const disks: VmDisk[] = [];
  const modules: string[] = [];
  const env: Record<string, string> = {};
  let kernel: string | undefined;
  let mem: string | undefined;
  let cpus: number | undefined;
  let timeout: number | undefined;
  let cwd: string | undefined;
  let verbose = false;
  let i = 0;
  for (; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--") {
      i++;
      break;
    }
    if (!a.startsWith("-")) break; // the command starts here
    const eq = a.indexOf("=");
    const name = eq > 0 && a.startsWith("--") ? a.slice(0, eq) : a;
    const value = (): string => {
      if (eq > 0 && a.startsWith("--")) return a.slice(eq + 1);
      const v = args[++i];
      if (v === undefined) throw new UsageError(`${name} needs a value`);
      return v;
    };
    switch (name) {
      case "--help":
      case "-h":
        console.log(USAGE);
        return 0;
      case "--verbose":
      case "-v":
        verbose = true;
        break;
      case "--kernel":
        kernel = value();
        break;
      case "--mem":
        mem = value();
        break;
      case "--cpus": {
        const v = value();
        cpus = Number(v);
        if (!/^\d+$/.test(v) || cpus < 1) return fail(`--cpus ${v}: expected a positive number`);
        break;
      }
      case "--timeout": {
        const v = value();
        timeout = Number(v);
        if (!Number.isFinite(timeout) || timeout <= 0) return fail(`--timeout ${v}: expected a number of seconds`);
        break;
      }
      case "--file": {
        const v = value();
        const colon = v.indexOf(":");
        files.push(colon >= 0 ? { host: v.slice(0, colon), guest: v.slice(colon + 1) } : { host: v });
        break;
      }
      case "--disk": {
        const v = value();
        const ro = v.endsWith(":ro");
        const path = ro ? v.slice(0, -3) : v;
        if (!path) return fail(`--disk ${v}: expected IMAGE or IMAGE:ro`);
        disks.push({ path, readonly: ro });
        break;
      }
      case "--module": {
        const v = value();
        if (!/^[A-Za-z0-9_-]+$/.test(v)) return fail(`--module ${v}: expected a module name such as xfs`);
        modules.push(v);
        break;
      }
      case "--env": {
        const v = value();
        const e = v.indexOf("=");
        if (e <= 0) return fail(`--env ${v}: expected NAME=VALUE`);
        env[v.slice(0, e)] = v.slice(e + 1);
        break;
      }
      case "--cwd":
        cwd = value();
        break;
      default:
        return fail(`unknown option ${a}\n\n${USAGE}`);
    }
  }
  const command = args.slice(i);
  if (command.length === 0) return fail(`no command given\n\n${USAGE}`);

  const log = verbose ? (m: string) => process.stderr.write(`tsbpf vm: ${m}\n`) : undefined;
  if (runsTsbpf(command) && !env.TSBPF_TOOL_OBJECTS) await ensureToolObjects(log);
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    const result = await runVm({ kernel, mem, cpus, timeout, files, disks, modules, env, cwd, command, log, signal: stop.signal });
    if (result.timedOut) console.error(`tsbpf vm: the command did not finish in ${timeout} s; stopped the guest (exit status 124)`);
    if (verbose) {
      const t = result.timings;
      const ms = (v: number | undefined): string => (v === undefined ? "-" : `${v} ms`);
      console.error(
        `tsbpf vm: timings: kernel ${ms(t.kernelMs)}, initramfs ${ms(t.initramfsMs)}, QEMU start to command ${ms(t.bootMs)}, ` +
          `to first output ${ms(t.firstOutputMs)}, command ${ms(t.commandMs)}, total ${ms(t.totalMs)} ` +
          `(${result.accel}, ${result.boots} boot${result.boots > 1 ? "s" : ""}, exit status ${result.exitCode})`,
      );
    }
    return result.exitCode;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
