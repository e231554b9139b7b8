// What `tsbpf vm` needs of the host: QEMU, busybox and a few tools from Debian
// packages (installed with apt-get when missing, as root), the cache directory,
// and the choice of accelerator.
import { TsbpfError } from "../errors.ts";
import { spawnSync } from "node:child_process";
import { accessSync, constants, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { defaultCacheDir } from "../compile/cache.ts";
import { which } from "../internal/which.ts";

/** A failure of the VM runner that is the host's, not the guest command's: exit code 125. */
export class VmError extends TsbpfError {
  constructor(message: string, options?: ErrorOptions) {
    super("ERR_TSBPF_VM", message, options);
  }
}

/** The directory for kernels and initramfs pieces: `<cache>/kernels`, `<cache>/vm`. */
export function cacheDir(): string {
  return defaultCacheDir();
}

export type Log = (message: string) => void;

let aptUpdated = false;

/** `apt-get update`, once per process. */
export function aptUpdate(log: Log): void {
  if (aptUpdated) return;
  log("apt-get update");
  const r = spawnSync("apt-get", ["update", "-qq"], { encoding: "utf8", stdio: ["ignore", "ignore", "pipe"] });
  if (r.error || r.status !== 0) throw new VmError(`"apt-get update" failed: ${r.error?.message ?? r.stderr.trim()}`);
  aptUpdated = true;
}

/** Installs Debian packages with apt-get (we must be root); throws VmError saying what failed. */
export function aptInstall(packages: string[], why: string, log: Log): void {
  if (!which("apt-get")) throw new VmError(`${why}, and apt-get is not available to install ${packages.join(", ")}`);
  if (process.getuid?.() !== 0) {
    throw new VmError(`${why}; install it as root with "apt-get install ${packages.join(" ")}"`);
  }
  const attempt = (): { ok: boolean; err: string } => {
    const r = spawnSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...packages], {
      encoding: "utf8",
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
    return { ok: !r.error && r.status === 0, err: r.error?.message ?? r.stderr.trim().split("\n").slice(-3).join("; ") };
  };
  log(`apt-get install ${packages.join(" ")} (${why})`);
  let r = attempt();
  if (!r.ok) {
    try {
      aptUpdate(log);
    } catch {
      // the install error below says more
    }
    r = attempt();
  }
  if (!r.ok) throw new VmError(`${why}, and "apt-get install ${packages.join(" ")}" failed: ${r.err}`);
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * qemu-system-x86_64: $TSBPF_QEMU when set (never installed over: a path that
 * does not exist is an error), else on PATH, else installed from qemu-system-x86.
 */
export function findQemu(log: Log): string {
  const explicit = process.env.TSBPF_QEMU;
  if (explicit) {
    const path = which(explicit);
    if (path) return path;
    throw new VmError(
      `QEMU was not found: TSBPF_QEMU="${explicit}" does not exist or is not executable. ` +
        `Unset TSBPF_QEMU to use qemu-system-x86_64 from PATH (installed with "apt-get install qemu-system-x86" when missing).`,
    );
  }
  const found = which("qemu-system-x86_64");
  if (found) return found;
  aptInstall(["qemu-system-x86"], "qemu-system-x86_64 is not installed", log);
  const installed = which("qemu-system-x86_64");
  if (!installed) throw new VmError(`installed qemu-system-x86 but qemu-system-x86_64 is still not on PATH`);
  return installed;
}

/**
 * busybox for the guest: $TSBPF_BUSYBOX, else the host's (a static one preferred;
 * a dynamic one brings its libraries along), else installed from busybox-static.
 */
export function findBusybox(log: Log): string {
  const candidates = [process.env.TSBPF_BUSYBOX, "/bin/busybox", "/usr/bin/busybox", which("busybox")].filter(
    (p): p is string => p !== undefined && p !== "" && executable(p),
  );
  const isStatic = (p: string): boolean => {
    const r = spawnSync("ldd", [p], { encoding: "utf8" });
    return /not a dynamic executable|statically linked/.test(`${r.stdout}${r.stderr}`);
  };
  const found = candidates.find(isStatic) ?? candidates[0];
  if (found) return found;
  aptInstall(["busybox-static"], "busybox (for the guest's /init and tools) is not installed", log);
  const installed = ["/bin/busybox", "/usr/bin/busybox"].find(executable);
  if (!installed) throw new VmError(`installed busybox-static but found no busybox in /bin or /usr/bin`);
  return installed;
}

/** A host tool from a Debian package, installed when missing; undefined when that fails. */
export function optionalTool(name: string, pkg: string, log: Log): string | undefined {
  const found = which(name);
  if (found) return found;
  try {
    aptInstall([pkg], `${name} is not installed`, log);
  } catch (err) {
    log(`${(err as Error).message}; going on without ${name}`);
    return undefined;
  }
  return which(name);
}

export type Accel = "kvm" | "tcg";

/**
 * The accelerator: $TSBPF_VM_ACCEL (kvm or tcg) when set; else KVM only if a
 * probe boot of `kernel` under KVM printed the kernel's banner within a few
 * seconds (cached per host boot and QEMU binary: on some hosts /dev/kvm exists
 * but `-accel kvm` hangs or aborts); else TCG.
 */
export function chooseAccel(qemu: string, kernel: string, log: Log): Accel {
  const forced = process.env.TSBPF_VM_ACCEL;
  if (forced === "kvm" || forced === "tcg") return forced;
  if (forced) throw new VmError(`TSBPF_VM_ACCEL="${forced}": expected "kvm" or "tcg"`);
  try {
    accessSync("/dev/kvm", constants.R_OK | constants.W_OK);
  } catch {
    return "tcg";
  }
  let bootId = "unknown";
  try {
    bootId = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  } catch {
    // no boot id: probe every time
  }
  const record = join(cacheDir(), "vm", `kvm-probe-${bootId}-${qemu.replace(/\W/g, "_")}`);
  if (existsSync(record)) return readFileSync(record, "utf8").trim() === "kvm" ? "kvm" : "tcg";
  const started = Date.now();
  const r = spawnSync(
    qemu,
    ["-accel", "kvm", "-cpu", "host", "-M", "pc", "-m", "256M", "-nodefaults", "-no-user-config", "-display", "none",
      "-no-reboot", "-serial", "stdio", "-kernel", kernel, "-append", "console=ttyS0 panic=-1 earlyprintk=ttyS0"],
    { encoding: "utf8", timeout: 4000, killSignal: "SIGKILL", stdio: ["ignore", "pipe", "pipe"] },
  );
  const accel: Accel = /Linux version/.test(r.stdout ?? "") ? "kvm" : "tcg";
  log(`KVM probe: ${accel === "kvm" ? "works" : "does not work"} (${Date.now() - started} ms${r.stderr ? `; ${r.stderr.trim().split("\n")[0]}` : ""}); using ${accel}`);
  try {
    mkdirSync(dirname(record), { recursive: true });
    writeFileSync(record, accel);
  } catch {
    // not cached: probed again next time
  }
  return accel;
}
