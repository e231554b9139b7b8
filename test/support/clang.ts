// Builds test inputs with the system compilers. Tests compile their C at run
// time, so no binaries are committed. (The compile driver will replace this.)
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// <linux/types.h> needs <asm/types.h>, which Debian keeps in the multiarch dir.
const MULTIARCH = `/usr/include/${process.arch === "arm64" ? "aarch64" : "x86_64"}-linux-gnu`;

function build(cSource: string, name: string, compile: (src: string, out: string) => void): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), "tsbpf-test-"));
  try {
    const src = join(dir, `${name}.c`);
    const out = join(dir, name);
    writeFileSync(src, cSource);
    compile(src, out);
    return new Uint8Array(readFileSync(out));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** clang -O2 -g -target bpf -c; returns the object file's bytes. */
export function buildBpfObject(cSource: string, name = "prog"): Uint8Array {
  const includes = existsSync(MULTIARCH) ? ["-I", MULTIARCH] : [];
  return build(cSource, name, (src, out) => {
    execFileSync("clang", ["-O2", "-g", "-target", "bpf", "-D__TARGET_ARCH_x86", ...includes, "-c", src, "-o", out], {
      stdio: ["ignore", "inherit", "inherit"],
    });
  });
}

/**
 * cc -O1 -g (plus `extraArgs`, e.g. -shared -fPIC): a native executable or
 * library, also written to `path` so tools like nm can read it.
 */
export function buildExecutable(cSource: string, path: string, extraArgs: string[] = []): Uint8Array {
  const bytes = build(cSource, "exe", (src, out) => {
    execFileSync("cc", ["-O1", "-g", ...extraArgs, src, "-o", out], { stdio: ["ignore", "inherit", "inherit"] });
  });
  writeFileSync(path, bytes, { mode: 0o755 });
  return bytes;
}
