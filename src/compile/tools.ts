// Finding the external tools the compiler driver runs: clang and bpftool.
import { TsbpfError } from "../errors.ts";
import { execFile } from "node:child_process";
import { readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathDirs, which } from "../internal/which.ts";

/** A tool tsbpf needs (clang, bpftool) is not installed or not executable. */
export class ToolNotFoundError extends TsbpfError {
  constructor(
    readonly tool: string,
    message: string,
  ) {
    super("ERR_TSBPF_TOOL_NOT_FOUND", message);
  }
}

/** The clang-NN with the highest NN on PATH, or undefined. */
function highestVersionedClang(): string | undefined {
  let best: { version: number; path: string } | undefined;
  for (const dir of pathDirs()) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      const m = /^clang-(\d+)$/.exec(name);
      if (!m) continue;
      const version = Number(m[1]);
      if (best && best.version >= version) continue;
      const path = which(join(resolve(dir), name));
      if (path) best = { version, path };
    }
  }
  return best?.path;
}

const CLANG_INSTALL_HINT =
  'Install it with "apt-get install clang" (Debian/Ubuntu; "dnf install clang" on Fedora), ' +
  "or set TSBPF_CLANG (or the `clang` compile option) to the clang binary to use.";

/**
 * The clang to run: `explicit` (the `clang` option), else $TSBPF_CLANG, else
 * "clang" on PATH, else the highest clang-NN on PATH. Returns an absolute path.
 */
export function findClang(explicit?: string): string {
  const fromEnv = process.env.TSBPF_CLANG;
  const requested = explicit ?? (fromEnv !== undefined && fromEnv !== "" ? fromEnv : undefined);
  if (requested !== undefined) {
    const found = which(requested);
    if (found) return found;
    const origin = explicit !== undefined ? "the `clang` option" : "$TSBPF_CLANG";
    throw new ToolNotFoundError(
      "clang",
      `tsbpf: clang was not found: "${requested}" (from ${origin}) does not exist or is not executable. ` +
        CLANG_INSTALL_HINT,
    );
  }
  const found = which("clang") ?? highestVersionedClang();
  if (found) return found;
  throw new ToolNotFoundError(
    "clang",
    "tsbpf: clang was not found on PATH (looked for clang and clang-NN); tsbpf compiles BPF C programs with clang. " +
      CLANG_INSTALL_HINT,
  );
}

const clangVersions = new Map<string, Promise<string>>();

/** `clang --version` output, memoised per process and binary. */
export function clangVersion(clang: string): Promise<string> {
  let version = clangVersions.get(clang);
  if (!version) {
    version = new Promise<string>((resolvePromise, reject) => {
      execFile(clang, ["--version"], { encoding: "utf8" }, (error, stdout) => {
        if (error) {
          const code = (error as NodeJS.ErrnoException).code;
          reject(
            code === "ENOENT" || code === "EACCES"
              ? new ToolNotFoundError("clang", `tsbpf: clang could not be run (${clang}: ${code}). ${CLANG_INSTALL_HINT}`)
              : new TsbpfError("ERR_TSBPF_COMPILE", `tsbpf: "${clang} --version" failed: ${error.message}`),
          );
        } else resolvePromise(stdout);
      });
    });
    clangVersions.set(clang, version);
    version.catch(() => clangVersions.delete(clang));
  }
  return version;
}

/** bpftool on PATH or in the sbin directories (where distributions install it). */
export function findBpftool(): string {
  const found = which("bpftool", ["/usr/local/sbin", "/usr/sbin", "/sbin"]);
  if (found) return found;
  throw new ToolNotFoundError(
    "bpftool",
    "tsbpf: bpftool was not found (looked on PATH and in /usr/local/sbin, /usr/sbin, /sbin). " +
      "tsbpf generates vmlinux.h, the C header of the kernel's types, from the kernel's BTF " +
      '("bpftool btf dump file /sys/kernel/btf/vmlinux format c"). ' +
      'Install it with "apt-get install bpftool" (Debian; on Ubuntu the package is linux-tools-common / ' +
      "linux-tools-$(uname -r)).",
  );
}
