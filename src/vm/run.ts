// tsbpf vm run: boots a kernel under QEMU with node, npm and the project in an
// initramfs, runs one command as root, streams its output and returns its exit code.
//
// The guest has three serial ports: ttyS0 is the kernel console (quiet, and the
// /init markers; QEMU's stdout), ttyS1 the command's stdout and ttyS2 its stderr
// (raw: bytes pass unchanged; unix sockets QEMU connects to). So kernel messages
// never mix with the command's output, and the exit status comes from a marker
// line with a per-run nonce that the command cannot forge by accident.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, statfsSync, statSync, writeSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join, posix, resolve } from "node:path";
import type { Writable } from "node:stream";
import { chooseAccel, cacheDir, findQemu, VmError, type Accel, type Log } from "./host.ts";
import { GuestTree, hostNode, layerFile, projectTree, systemLayer } from "./guest-image.ts";
import { packageRoot } from "../internal/package.ts";
import { resolveKernel, type Kernel } from "./kernels.ts";
import { guestModules, imageFileSystem } from "./modules.ts";

export interface VmFile {
  /** A file or directory on the host. */
  host: string;
  /** Where it goes in the guest (absolute); default: the same absolute path as on the host. */
  guest?: string;
}

export interface VmDisk {
  /** A raw image (or block device) on the host. */
  path: string;
  /** Attached read-only (QEMU refuses writes). */
  readonly?: boolean;
}

export interface VmRunOptions {
  /** "6.1", "6.12" or a path to a vmlinuz. Default "6.12". */
  kernel?: string;
  /** Guest memory, as QEMU's -m takes it. Default "2G". */
  mem?: string;
  cpus?: number;
  /** Seconds the command may run (from its start, after the boot); then exit code 124. */
  timeout?: number;
  files?: VmFile[];
  /**
   * Raw images attached as virtio-blk disks, /dev/vda, /dev/vdb, ... in this order (the
   * guest has no other disk; $TSBPF_DISKS lists them for the command). virtio_blk and the
   * module of each image's file system (xfs, btrfs; ext4 is built in) are loaded first.
   */
  disks?: VmDisk[];
  /** More kernel modules to load before the command (with their dependencies). */
  modules?: string[];
  /** Extra environment for the command. */
  env?: Record<string, string>;
  /** The command's working directory in the guest (created if missing). Default: the host's cwd. */
  cwd?: string;
  command: string[];
  stdout?: Writable;
  stderr?: Writable;
  /** Progress and timings (stderr with --verbose); silent by default. */
  log?: Log;
  /** Aborts the run (kills QEMU; exit code 130). */
  signal?: AbortSignal;
}

export interface VmTimings {
  /** Finding QEMU and the kernel (a download on first use). */
  kernelMs: number;
  /** The initramfs layers (built when something changed) and this run's archive. */
  initramfsMs: number;
  /** QEMU's start to the command's start in the guest (the start marker). */
  bootMs?: number;
  /** QEMU's start to the first byte of the command's output. */
  firstOutputMs?: number;
  /** The command's start to its exit marker. */
  commandMs?: number;
  totalMs: number;
}

export interface VmRunResult {
  /** The command's exit status; 124 when it timed out. */
  exitCode: number;
  timedOut: boolean;
  /** Boots tried (2 when the first never reached the command). */
  boots: number;
  accel: Accel;
  kernel: Kernel;
  timings: VmTimings;
}

/** Seconds a boot may take to reach the command before it counts as failed ($TSBPF_VM_BOOT_TIMEOUT). */
function bootTimeout(): number {
  const v = Number(process.env.TSBPF_VM_BOOT_TIMEOUT);
  return Number.isFinite(v) && v > 0 ? v : 120;
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

const GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** The /init of the guest: mounts, runs the command with its output on ttyS1/ttyS2, reports, powers off. */
export function initScript(o: { nonce: string; command: string[]; cwd: string; env: Record<string, string>; modules?: string[]; disks?: number }): string {
  const env = Object.entries(o.env).map(([k, v]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new VmError(`bad environment variable name "${k}"`);
    return `${k}=${shellQuote(v)}`;
  });
  return `#!/bin/sh
export PATH=${shellQuote(GUEST_PATH)} HOME=/root TERM=dumb USER=root LOGNAME=root SHELL=/bin/sh
export NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_AUDIT=false NPM_CONFIG_FUND=false
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup
ip link set lo up 2>/dev/null
${moduleLines(o.modules ?? [], o.disks ?? 0)}hostname tsbpf-vm
ulimit -l unlimited 2>/dev/null
stty -F /dev/ttyS1 raw -echo 2>/dev/null
stty -F /dev/ttyS2 raw -echo 2>/dev/null
mkfifo /run/tsbpf-out /run/tsbpf-err
cat /run/tsbpf-out >/dev/ttyS1 & out=$!
cat /run/tsbpf-err >/dev/ttyS2 & err=$!
mkdir -p ${shellQuote(o.cwd)}
echo "TSBPF-${o.nonce}-START" >/dev/ttyS0
(cd ${shellQuote(o.cwd)} && exec env TSBPF_IN_VM=1 ${env.join(" ")} ${o.command.map(shellQuote).join(" ")}) </dev/null >/run/tsbpf-out 2>/run/tsbpf-err
code=$?
# The copiers end when every writer has gone, after the ttys drained; a daemon the
# command left behind may hold the pipes: wait for them 5 s at most.
i=0
while [ $i -lt 50 ] && { kill -0 $out 2>/dev/null || kill -0 $err 2>/dev/null; }; do sleep 0.1; i=$((i + 1)); done
echo "TSBPF-${o.nonce}-EXIT $code" >/dev/ttyS0
poweroff -f
`;
}

/** Where /init finds the modules that runVm put in the archive. */
const MODULE_DIR = "/lib/modules/tsbpf";

/** Disk names in the guest: vda, vdb, ... */
export function diskNames(n: number): string[] {
  if (n > 26) throw new VmError(`${n} disks: at most 26 (vda to vdz)`);
  return Array.from({ length: n }, (_, i) => `/dev/vd${String.fromCharCode(97 + i)}`);
}

/** insmod in order (a failure is said on the console), then wait up to 5 s for the disks' device nodes. */
function moduleLines(modules: string[], disks: number): string {
  const lines = modules.map((m) => `insmod ${MODULE_DIR}/${m}.ko 2>/dev/ttyS0 || echo "tsbpf vm: insmod ${m} failed" >/dev/ttyS0`);
  const last = diskNames(disks).at(-1);
  if (last) lines.push(`i=0; while [ $i -lt 50 ] && [ ! -b ${last} ]; do sleep 0.1; i=$((i + 1)); done`);
  return lines.length ? `${lines.join("\n")}\n` : "";
}

function roomIn(dir: string, bytes: number): boolean {
  try {
    const st = statfsSync(dir);
    return st.bavail * st.bsize > bytes;
  } catch {
    return false;
  }
}

/** `dst` := the concatenation of `parts` (the kernel unpacks concatenated cpio archives in order). */
function concat(dst: string, parts: string[]): void {
  copyFileSync(parts[0]!, dst); // copy_file_range: the big system layer never passes through this process
  const out = openSync(dst, "a");
  const buffer = Buffer.allocUnsafe(4 << 20);
  try {
    for (const part of parts.slice(1)) {
      const fd = openSync(part, "r");
      try {
        for (let n; (n = readSync(fd, buffer, 0, buffer.length, null)) > 0; ) {
          for (let done = 0; done < n; ) done += writeSync(out, buffer, done, n - done);
        }
      } finally {
        closeSync(fd);
      }
    }
  } finally {
    closeSync(out);
  }
}

/** Splits a stream into lines for `onLine` (a partial last line is flushed on end). */
function lines(onLine: (line: string) => void): { push(chunk: Buffer): void; end(): void } {
  let rest = "";
  return {
    push(chunk) {
      rest += chunk.toString("latin1");
      let i;
      while ((i = rest.indexOf("\n")) >= 0) {
        onLine(rest.slice(0, i).replace(/\r$/, ""));
        rest = rest.slice(i + 1);
      }
    },
    end() {
      if (rest !== "") onLine(rest.replace(/\r$/, ""));
      rest = "";
    },
  };
}

interface BootOutcome {
  started: boolean;
  exitCode?: number;
  timedOut: boolean;
  aborted: boolean;
  /** QEMU's exit status, or the signal that ended it. */
  qemuExit: string;
  console: string[];
  qemuStderr: string;
  bootMs?: number;
  firstOutputMs?: number;
  commandMs?: number;
}

/** A unix socket QEMU connects to (`-chardev socket,path=...`); `onData` gets what it sends. */
function channel(path: string, onData: (chunk: Buffer) => void): { ready: Promise<void>; closed: Promise<void>; close(): void } {
  let connection: Socket | undefined;
  let closedResolve!: () => void;
  const closed = new Promise<void>((r) => (closedResolve = r));
  const server = createServer((socket) => {
    connection = socket;
    server.close(); // one connection per run
    socket.on("data", onData);
    socket.on("error", () => {});
    socket.on("close", () => closedResolve());
  });
  const ready = new Promise<void>((resolvePromise, reject) => {
    server.once("error", reject);
    server.listen(path, () => resolvePromise());
  });
  return {
    ready,
    closed,
    close() {
      server.close();
      connection?.destroy();
      closedResolve();
    },
  };
}

async function boot(qemu: string, args: (chardevs: { out: string; err: string }) => string[], nonce: string, o: VmRunOptions, log: Log): Promise<BootOutcome> {
  const dir = mkdtempSync(join(tmpdir(), "tsbpf-vm-"));
  const sockets = { out: join(dir, "out"), err: join(dir, "err") };
  const out: BootOutcome = { started: false, timedOut: false, aborted: false, qemuExit: "", console: [], qemuStderr: "" };
  let started = Date.now();
  const firstOutput = (): void => {
    out.firstOutputMs ??= Date.now() - started;
  };
  const gout = channel(sockets.out, (c) => {
    firstOutput();
    (o.stdout ?? process.stdout).write(c);
  });
  const gerr = channel(sockets.err, (c) => {
    firstOutput();
    (o.stderr ?? process.stderr).write(c);
  });
  try {
    await Promise.all([gout.ready, gerr.ready]);
    started = Date.now();
    const child = spawn(qemu, args(sockets), { stdio: ["ignore", "pipe", "pipe"] });
    // QEMU must not outlive us (an exception, process.exit): kill it on the way out.
    const killOnExit = (): void => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    };
    process.on("exit", killOnExit);
    await new Promise<void>((resolvePromise, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let commandStarted = 0;
      const kill = (): void => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      };
      const arm = (seconds: number, onFire: () => void): void => {
        if (timer) clearTimeout(timer);
        timer = setTimeout(onFire, seconds * 1000);
      };
      arm(bootTimeout(), () => {
        log(`no command start after ${bootTimeout()} s: stopping this boot`);
        kill();
      });
      const onAbort = (): void => {
        out.aborted = true;
        kill();
      };
      if (o.signal?.aborted) onAbort();
      o.signal?.addEventListener("abort", onAbort, { once: true });
      const consoleLines = lines((line) => {
        if (line === `TSBPF-${nonce}-START`) {
          out.started = true;
          commandStarted = Date.now();
          out.bootMs = commandStarted - started;
          log(`command started ${out.bootMs} ms after QEMU`);
          if (o.timeout !== undefined && o.timeout > 0) {
            arm(o.timeout, () => {
              out.timedOut = true;
              kill();
            });
          } else if (timer) {
            clearTimeout(timer);
          }
          return;
        }
        const m = new RegExp(`^TSBPF-${nonce}-EXIT (\\d+)$`).exec(line);
        if (m) {
          out.exitCode = Number(m[1]);
          out.commandMs = Date.now() - commandStarted;
          // poweroff -f follows at once; do not wait long for it.
          arm(10, kill);
          return;
        }
        out.console.push(line);
        if (out.console.length > 200) out.console.shift();
        log(`[console +${Date.now() - started} ms] ${line}`);
      });
      child.stdout!.on("data", (c: Buffer) => consoleLines.push(c));
      child.stderr!.on("data", (c: Buffer) => {
        out.qemuStderr += c.toString();
        log(`[qemu] ${c.toString().trimEnd()}`);
      });
      child.on("error", (err) => {
        if (timer) clearTimeout(timer);
        o.signal?.removeEventListener("abort", onAbort);
        reject(new VmError(`cannot run ${qemu}: ${err.message}`));
      });
      child.on("close", (code, sig) => {
        if (timer) clearTimeout(timer);
        o.signal?.removeEventListener("abort", onAbort);
        process.off("exit", killOnExit);
        consoleLines.end();
        out.qemuExit = sig ? `signal ${sig}` : `status ${code}`;
        // Ctrl-C in a terminal reaches QEMU too (same process group): that is our abort.
        if (o.signal?.aborted || /terminating on signal/.test(out.qemuStderr)) out.aborted = true;
        resolvePromise();
      });
    });
    // QEMU is gone; what it sent is read to the end (its sockets closed with it).
    await Promise.race([Promise.all([gout.closed, gerr.closed]), new Promise((r) => setTimeout(r, 2000).unref())]);
    return out;
  } finally {
    gout.close();
    gerr.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function qemuArgs(o: { kernel: Kernel; initrd: string; accel: Accel; mem: string; cpus: number; out: string; err: string; disks?: VmDisk[] }): string[] {
  // quiet: the console (ttyS0, never mixed with the command's output) shows only errors:
  // nothing on a good boot, the panic or oops on a bad one (for --verbose and the error).
  const append = ["console=ttyS0", "quiet", "panic=-1", "mitigations=off", "rdinit=/init"];
  // $TSBPF_VM_APPEND: more kernel parameters (say "loglevel=7" with --verbose to watch the boot).
  if (process.env.TSBPF_VM_APPEND) append.push(process.env.TSBPF_VM_APPEND);
  return [
    "-M", "pc",
    "-accel", o.accel,
    "-cpu", o.accel === "kvm" ? "host" : "max",
    "-m", o.mem,
    "-smp", String(o.cpus),
    "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
    "-kernel", o.kernel.pvh ?? o.kernel.vmlinuz,
    "-initrd", o.initrd,
    "-append", append.join(" "),
    // ttyS0: console and markers; ttyS1, ttyS2: the command's stdout and stderr.
    "-chardev", "stdio,id=con,signal=off",
    "-chardev", `socket,id=out,path=${o.out}`,
    "-chardev", `socket,id=err,path=${o.err}`,
    "-serial", "chardev:con", "-serial", "chardev:out", "-serial", "chardev:err",
    // virtio-blk over PCI; QEMU's option syntax escapes a comma by doubling it.
    ...(o.disks ?? []).flatMap((d) => ["-drive", `file=${d.path.replace(/,/g, ",,")},format=raw,if=virtio${d.readonly ? ",readonly=on" : ""}`]),
  ];
}

/** Boots, runs the command, powers off. Throws VmError for failures of the VM itself. */
export async function runVm(o: VmRunOptions): Promise<VmRunResult> {
  const log: Log = o.log ?? (() => {});
  const t0 = Date.now();
  if (o.command.length === 0) throw new VmError("no command to run");
  const mem = o.mem ?? "2G";
  if (!/^\d+[KMGT]?$/i.test(mem)) throw new VmError(`--mem ${mem}: expected a size such as 2G or 512M`);
  const cpus = o.cpus ?? 2;
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > 64) throw new VmError(`--cpus ${cpus}: expected 1 to 64`);

  const qemu = findQemu(log);
  const kernel = resolveKernel(o.kernel ?? "6.12", log);
  const accel = chooseAccel(qemu, kernel.pvh ?? kernel.vmlinuz, log);
  const t1 = Date.now();
  log(`kernel ${kernel.name}${kernel.pvh ? " (PVH)" : ""}, ${accel}, ready in ${t1 - t0} ms`);

  const root = packageRoot;
  const project = projectTree(root);
  const system = systemLayer(project, log);
  const proj = layerFile("project", project, log);

  const nonce = randomBytes(8).toString("hex");
  const run = new GuestTree(system.tree);
  for (const f of o.files ?? []) {
    const host = resolve(f.host);
    if (!existsSync(host)) throw new VmError(`--file ${f.host}: no such file or directory`);
    const guest = f.guest ?? host;
    if (!posix.isAbsolute(guest)) throw new VmError(`--file ${f.host}:${guest}: the guest path must be absolute`);
    run.addTree(host, guest);
  }
  const disks = (o.disks ?? []).map((d) => ({ ...d, path: resolve(d.path) }));
  const wanted = [...(disks.length ? ["virtio_pci", "virtio_blk"] : []), ...(o.modules ?? [])];
  for (const d of disks) {
    let head: Buffer;
    try {
      const st = statSync(d.path);
      if (!st.isFile() && !st.isBlockDevice()) throw new Error("not a file or block device");
      const fd = openSync(d.path, "r");
      head = Buffer.alloc(0x10048);
      try {
        head = head.subarray(0, readSync(fd, head, 0, head.length, 0));
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      throw new VmError(`--disk ${d.path}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message}`);
    }
    const fs = imageFileSystem(head);
    if (fs === "xfs" || fs === "btrfs") wanted.push(fs);
  }
  const modules = guestModules(kernel, [...new Set(wanted)]);
  for (const m of modules) run.add({ type: "file", path: `${MODULE_DIR}/${m.name}.ko`, mode: 0o644, data: m.data });
  if (modules.length) log(`modules for the guest: ${modules.map((m) => m.name).join(", ")}`);
  const env = { ...(disks.length ? { TSBPF_DISKS: diskNames(disks.length).join(" ") } : {}), ...(o.env ?? {}) };
  const cwd = o.cwd ?? process.cwd();
  run.add({
    type: "file",
    path: "/init",
    mode: 0o755,
    data: Buffer.from(initScript({ nonce, command: o.command, cwd, env, modules: modules.map((m) => m.name), disks: disks.length })),
  });
  // The run's archive is 100+ MB written and deleted each run: tmpfs when it has room.
  const tmpDir = roomIn("/dev/shm", 2 * (statSync(system.file).size + statSync(proj.file).size)) ? "/dev/shm" : resolve(cacheDir(), "vm", "tmp");
  mkdirSync(tmpDir, { recursive: true });
  const runCpio = resolve(tmpDir, `run-${process.pid}-${nonce}.cpio`);
  const initrd = resolve(tmpDir, `initrd-${process.pid}-${nonce}.cpio`);
  try {
    run.write(runCpio);
    concat(initrd, [system.file, proj.file, runCpio]);
    rmSync(runCpio, { force: true });
    const t2 = Date.now();
    log(`initramfs ${(statSync(initrd).size / 1e6).toFixed(1)} MB (node ${hostNode()}, project ${root}) in ${t2 - t1} ms`);

    const args = (chardevs: { out: string; err: string }): string[] => qemuArgs({ kernel, initrd, accel, mem, cpus, disks, ...chardevs });
    log(`${qemu} ${args({ out: "OUT", err: "ERR" }).join(" ")}`);
    let outcome: BootOutcome | undefined;
    let boots = 0;
    for (; boots < 2; ) {
      boots++;
      outcome = await boot(qemu, args, nonce, o, log);
      if (outcome.started || outcome.aborted) break;
      if (boots < 2) log(`boot ${boots} never reached the command (QEMU ${outcome.qemuExit}); booting again`);
    }
    const b = outcome!;
    const timings: VmTimings = {
      kernelMs: t1 - t0,
      initramfsMs: t2 - t1,
      bootMs: b.bootMs,
      firstOutputMs: b.firstOutputMs,
      commandMs: b.commandMs,
      totalMs: Date.now() - t0,
    };
    const result = (exitCode: number, timedOut = false): VmRunResult => ({ exitCode, timedOut, boots, accel, kernel, timings });
    if (b.aborted) return result(130);
    if (b.timedOut) return result(124, true);
    if (b.exitCode !== undefined) return result(b.exitCode);
    // From the panic or oops on, else the last lines.
    const crash = b.console.findIndex((l) => /Kernel panic|BUG:|Oops:|general protection fault/.test(l));
    const shown = crash >= 0 ? b.console.slice(crash, crash + 30) : b.console.slice(-25);
    const tail = [...shown, ...(b.qemuStderr.trim() ? [`(qemu) ${b.qemuStderr.trim()}`] : [])].join("\n") || "(none)";
    if (!b.started) {
      throw new VmError(`the guest (${kernel.name}) never reached the command in ${boots} boots (QEMU ${b.qemuExit}); its last console lines:\n${tail}`);
    }
    throw new VmError(`the guest (${kernel.name}) stopped before the command finished (QEMU ${b.qemuExit}; a kernel panic?); its last console lines:\n${tail}`);
  } finally {
    rmSync(runCpio, { force: true });
    rmSync(initrd, { force: true });
  }
}
