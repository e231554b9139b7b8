// The clang driver: BPF C source in, a cached BPF ELF object out.
import { execFile } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { TsbpfError } from "../errors.ts";
import { packageRoot } from "../internal/package.ts";
import { CacheError, cacheDir as trustedCacheDir, cacheGet, cachePut, defaultCacheDir, parseDepfile, sha256, sha256File } from "./cache.ts";
import { CompileError, parseDiagnostics } from "./diagnostics.ts";
import { clangVersion, findClang } from "./tools.ts";
import { DEFAULT_BTF_PATH, vmlinuxHeaderInfo, type VmlinuxHeader } from "./vmlinux.ts";

export type CompileSource = { file: string } | { text: string; name?: string };

export interface CompileOptions {
  /** Extra clang flags, appended after tsbpf's (so `-O1`, `-mcpu=v3`, `-DFOO` work). */
  cflags?: string[];
  /** Extra include directories (`-I`), searched before tsbpf's own. */
  includeDirs?: string[];
  /** clang binary. Default: $TSBPF_CLANG, else "clang" on PATH, else the highest clang-NN on PATH. */
  clang?: string;
  /** Cache directory. Default: $TSBPF_CACHE_DIR, else $XDG_CACHE_HOME/tsbpf, else ~/.cache/tsbpf. */
  cacheDir?: string;
  /** Kernel BTF that vmlinux.h is generated from. Default /sys/kernel/btf/vmlinux. */
  btfPath?: string;
  /**
   * Headers the source includes before anything else (`"vmlinux.h"`, `<bpf/bpf_helpers.h>`):
   * precompiled once per flags, clang and kernel, and given to clang as a PCH, so a new
   * program does not parse vmlinux.h again (a BCC program: ~1 s -> ~0.15 s). Their include
   * guards make the source's own #include lines no-ops. Skipped when cflags hold more than
   * -D/-U/-W flags (they could change what the headers mean), and retried without it if
   * clang cannot use it.
   */
  prefixHeaders?: string[];
}

export interface CompiledObject {
  /** The object file in the cache. Treat it as read-only. */
  path: string;
  /** The object file's bytes (a BPF ELF object). */
  bytes: Uint8Array;
  /** True when the object came from the cache and clang did not run. */
  cached: boolean;
}

/** Bump when the cache layout or the flags tsbpf passes change meaning. */
const CACHE_FORMAT = 3;

/** tsbpf's own headers (include/tsbpf.h). */
const TSBPF_INCLUDE = join(packageRoot, "include");

const TARGET_ARCH: Partial<Record<NodeJS.Architecture, string>> = {
  x64: "x86",
  arm64: "arm64",
  arm: "arm",
  s390x: "s390",
  ppc64: "powerpc",
  riscv64: "riscv",
  loong64: "loongarch",
  mips: "mips",
  mipsel: "mips",
};

const MULTIARCH: Partial<Record<NodeJS.Architecture, string>> = {
  x64: "x86_64-linux-gnu",
  arm64: "aarch64-linux-gnu",
  arm: "arm-linux-gnueabihf",
  s390x: "s390x-linux-gnu",
  ppc64: "powerpc64le-linux-gnu",
  riscv64: "riscv64-linux-gnu",
  loong64: "loongarch64-linux-gnu",
};

/**
 * The precompiled `prefixHeaders` for these flags (built on first use, in
 * `<cache>/pch/<key>/prefix.pch`), or undefined when they should not be used.
 */
async function prefixPch(
  clang: string, flags: string[], options: CompileOptions, version: string, btfHash: string | undefined, cacheDir: string,
): Promise<string | undefined> {
  const headers = options.prefixHeaders ?? [];
  const user = options.cflags ?? [];
  if (!headers.length || !btfHash || user.some((f) => !/^-[DUW]/.test(f))) return undefined;
  const base = flags.filter((f) => !user.includes(f) || !/^-[DU]/.test(f));
  return precompiledHeaders(clang, base, headers, version, btfHash, cacheDir);
}

let headersDigestMemo: string | undefined;

/**
 * What the headers outside a program's own text are, as of now: tsbpf's include/
 * (the BCC prelude's and the tools' headers) and libbpf's <bpf/...>, by path, size
 * and mtime. For the caches that are keyed by a program's text alone (precompiled
 * headers, the BCC rewrites' results): an edited header or an upgraded libbpf-dev
 * gives them new keys instead of stale answers. Read once per process.
 */
export function headersDigest(): string {
  if (headersDigestMemo !== undefined) return headersDigestMemo;
  const entries: string[] = [];
  const walk = (dir: string) => {
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch {
      return;
    }
    for (const name of names) {
      const path = join(dir, name);
      const st = statSync(path, { throwIfNoEntry: false });
      if (st?.isDirectory()) walk(path);
      else if (st && name.endsWith(".h")) entries.push(`${path}:${st.size}:${st.mtimeMs}`);
    }
  };
  walk(TSBPF_INCLUDE);
  walk("/usr/include/bpf");
  headersDigestMemo = sha256(entries.join("\n"));
  return headersDigestMemo;
}

/**
 * `headers` (each as `#include` takes it: `"vmlinux.h"`, `<bpf/bpf_helpers.h>`)
 * precompiled for clang `flags`, built on first use in `<cache>/pch/<key>/prefix.pch`;
 * undefined when clang cannot build it (the caller then parses the headers itself).
 */
export async function precompiledHeaders(
  clang: string, flags: string[], headers: string[], version: string, btfHash: string, cacheDir: string,
): Promise<string | undefined> {
  const dir = trustedCacheDir(cacheDir, "pch", sha256(JSON.stringify([CACHE_FORMAT, flags, version, btfHash, headers, headersDigest()])).slice(0, 24));
  const pch = join(dir, "prefix.pch");
  if (existsSync(pch)) return pch;
  const header = join(dir, "prefix.h");
  await writeFile(header, headers.map((h) => `#include ${h}\n`).join(""));
  const tmp = `${pch}.tmp-${process.pid}`;
  const r = await runClang(clang, [...flags, "-w", "-x", "c-header", header, "-o", tmp], dir);
  if (r.code !== 0) {
    await rm(tmp, { force: true });
    return undefined;
  }
  await rename(tmp, pch);
  return pch;
}

/** Headers that libbpf's development package installs. */
const LIBBPF_HEADERS = new Set(
  ["bpf_helpers.h", "bpf_helper_defs.h", "bpf_tracing.h", "bpf_core_read.h", "bpf_endian.h", "usdt.bpf.h"].map(
    (h) => `bpf/${h}`,
  ),
);

/** What a compiled object's cache entry records beside it (see cachePut). */
interface CompileMeta {
  format: number;
  source: string;
  /** Every file the compile read (from clang's depfile) except the source text and vmlinux.h. */
  deps: { path: string; sha256: string }[];
}

interface ClangResult {
  code: number | null;
  signal: string | null;
  stderr: string;
}

/**
 * How long one clang run may take ($TSBPF_CLANG_TIMEOUT seconds, default 300): a cold
 * compile of BCC's largest tools takes seconds; a clang that hangs must not hang its caller.
 */
export function clangTimeoutMs(): number {
  const s = Number(process.env.TSBPF_CLANG_TIMEOUT);
  return (Number.isFinite(s) && s > 0 ? s : 300) * 1000;
}

function runClang(clang: string, args: string[], cwd: string): Promise<ClangResult> {
  return new Promise((resolvePromise, reject) => {
    execFile(clang, args, { cwd, encoding: "utf8", maxBuffer: 64 * 1024 * 1024, timeout: clangTimeoutMs() }, (error, _stdout, stderr) => {
      if (!error) return resolvePromise({ code: 0, signal: null, stderr });
      const e = error as NodeJS.ErrnoException & { code?: unknown; signal?: string | null };
      if (typeof e.code === "number" || e.signal) {
        resolvePromise({ code: typeof e.code === "number" ? e.code : null, signal: e.signal ?? null, stderr });
      } else reject(error);
    });
  });
}

async function lookup(cacheDir: string, key: string): Promise<CompiledObject | undefined> {
  let entry;
  try {
    entry = await cacheGet<CompileMeta>(key, { cacheDir });
  } catch (err) {
    // A changed object or a manifest naming something else: not used, said, and rebuilt.
    if (err instanceof CacheError && (err.problem === "tampered" || err.problem === "name" || err.problem === "not-a-file")) {
      process.emitWarning(`${err.message}; compiling again`, { code: err.code });
      return undefined;
    }
    throw err;
  }
  const meta = entry?.meta;
  if (!entry || !meta || meta.format !== CACHE_FORMAT || !Array.isArray(meta.deps)) return undefined;
  const unchanged = await Promise.all(
    meta.deps.map((dep) => sha256File(dep.path).then((h) => h === dep.sha256, () => false)),
  );
  if (!unchanged.every(Boolean)) return undefined;
  return { path: entry.path, bytes: entry.bytes, cached: true };
}

/**
 * Compile BPF C to a BPF ELF object with clang (`-O2 -g -target bpf`, so the
 * object carries BTF), with the kernel's vmlinux.h, tsbpf's include/ and
 * libbpf's <bpf/...> headers on the include path.
 *
 * Objects are cached by the source, the contents of every header it included,
 * the options, the clang version and the kernel's BTF; a cache hit does not run
 * clang. Throws `CompileError` (with parsed `.diagnostics`) when clang fails.
 */
export async function compile(source: CompileSource, options: CompileOptions = {}): Promise<CompiledObject> {
  // Checked (or made) before anything is read from it or written to it: the user's, 0700.
  const cacheDir = trustedCacheDir(options.cacheDir ?? defaultCacheDir());
  const btfPath = resolve(options.btfPath ?? DEFAULT_BTF_PATH);
  const clang = findClang(options.clang);
  const cwd = process.cwd();

  let file: string | undefined;
  let text: string;
  let displayName: string;
  if ("file" in source) {
    file = resolve(source.file);
    try {
      text = await readFile(file, "utf8");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new TsbpfError(code ?? "ERR_TSBPF_COMPILE", `tsbpf: cannot read BPF source ${file}: ${code ?? String(error)}`, { cause: error });
    }
    displayName = file;
  } else {
    text = source.text;
    displayName = source.name ?? "<text>";
  }

  // vmlinux.h is only needed by programs that include it, so a failure to
  // generate it (no bpftool, no kernel BTF) is reported only if clang then
  // cannot find it.
  const [version, vmlinux] = await Promise.all([
    clangVersion(clang),
    vmlinuxHeaderInfo({ btfPath, cacheDir }).then(
      (header): VmlinuxHeader | Error => header,
      (error: unknown): VmlinuxHeader | Error => (error instanceof Error ? error : new Error(String(error))),
    ),
  ]);

  const arch = TARGET_ARCH[process.arch] ?? "x86";
  const flags = ["-O2", "-g", "-target", "bpf", `-D__TARGET_ARCH_${arch}`, "-Wall", "-fno-color-diagnostics"];
  if (file) flags.push("-I", dirname(file));
  for (const dir of options.includeDirs ?? []) flags.push("-I", resolve(dir));
  flags.push("-I", TSBPF_INCLUDE);
  if (!(vmlinux instanceof Error)) flags.push("-I", dirname(vmlinux.path));
  // With -target bpf clang does not search the multiarch directory, where
  // <asm/types.h> (needed by <linux/types.h> and so <linux/bpf.h>) lives.
  const multiarch = MULTIARCH[process.arch];
  if (multiarch && existsSync(`/usr/include/${multiarch}`)) flags.push("-idirafter", `/usr/include/${multiarch}`);
  flags.push(...(options.cflags ?? []));

  const key = sha256(
    JSON.stringify({
      format: CACHE_FORMAT,
      file: file ?? null,
      name: file ? null : displayName,
      text,
      flags,
      cwd,
      clang,
      version,
      btf: vmlinux instanceof Error ? null : vmlinux.btfHash,
    }),
  );
  const hit = await lookup(cacheDir, key);
  if (hit) return hit;

  const tmpRoot = trustedCacheDir(cacheDir, "tmp");
  const buildDir = await mkdtemp(join(tmpRoot, "build-"));
  try {
    let input: string;
    let clangCwd = cwd;
    const args = [...flags];
    if (file) {
      input = file;
    } else {
      // The text goes into a file of its own name, compiled from its directory:
      // diagnostics then name it as the user did, and clang finds the file to
      // copy source lines into BTF line info (which verifier logs print).
      clangCwd = join(buildDir, "src");
      await mkdir(clangCwd);
      const base = basename(displayName) || "source.bpf.c";
      await writeFile(join(clangCwd, base), text);
      input = base;
      args.push(`-fdebug-prefix-map=${clangCwd}=.`);
    }
    const pch = await prefixPch(clang, flags, options, version, vmlinux instanceof Error ? undefined : vmlinux.btfHash, cacheDir);
    const output = join(buildDir, "out.o");
    const depfile = join(buildDir, "out.d");
    // "-x c": the name need not end in .c (e.g. "<text>").
    args.push("-x", "c", "-c", input, "-o", output, "-MD", "-MF", depfile);

    let result = pch ? await runClang(clang, [...args, "-include-pch", pch], clangCwd) : await runClang(clang, args, clangCwd);
    // A PCH clang refuses (a header changed under it): compile as if there were none.
    if (pch && result.code !== 0 && /precompiled header|PCH file|\.pch/i.test(result.stderr)) result = await runClang(clang, args, clangCwd);
    if (result.code !== 0) {
      const diagnostics = parseDiagnostics(result.stderr);
      const hints: string[] = [];
      const missing = diagnostics
        .filter((d) => d.severity === "fatal error" || d.severity === "error")
        .map((d) => /^'([^']+)' file not found/.exec(d.message)?.[1])
        .filter((h): h is string => h !== undefined);
      if (missing.some((h) => LIBBPF_HEADERS.has(h))) {
        hints.push(
          "hint: libbpf's headers (<bpf/bpf_helpers.h> etc.) were not found: " +
            'install them with "apt-get install libbpf-dev" (Debian/Ubuntu; "dnf install libbpf-devel" on Fedora).',
        );
      }
      if (missing.includes("vmlinux.h")) {
        hints.push(
          vmlinux instanceof Error
            ? `hint: vmlinux.h could not be generated: ${vmlinux.message}`
            : `hint: vmlinux.h is at ${vmlinux.path}`,
        );
      }
      if (result.signal === "SIGTERM") {
        hints.push(`hint: clang was stopped after ${clangTimeoutMs() / 1000} s; set TSBPF_CLANG_TIMEOUT (seconds) to allow it longer`);
      }
      throw new CompileError({
        source: displayName,
        stderr: result.stderr,
        diagnostics,
        exitCode: result.code,
        signal: result.signal,
        hints,
      });
    }

    const skip = new Set([input === file ? "" : resolve(clangCwd, input), vmlinux instanceof Error ? "" : vmlinux.path, pch ?? ""]);
    const depPaths = [...new Set(parseDepfile(await readFile(depfile, "utf8")).map((p) => resolve(clangCwd, p)))].filter(
      (p) => !skip.has(p),
    );
    const deps = await Promise.all(depPaths.map(async (path) => ({ path, sha256: await sha256File(path) })));
    const bytes = new Uint8Array(await readFile(output));
    const meta: CompileMeta = { format: CACHE_FORMAT, source: displayName, deps };
    const objectPath = await cachePut(key, bytes, meta, { cacheDir });
    return { path: objectPath, bytes, cached: false };
  } finally {
    await rm(buildDir, { recursive: true, force: true });
  }
}
