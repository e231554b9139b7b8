// C++ (Itanium) and Rust (legacy and v0) demangling through gecko-profiler-demangle:
// the Firefox profiler's WebAssembly build of the cpp_demangle and rustc-demangle
// crates. Loaded on first use; results are cached, since stacks repeat names.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";

type Demangler = (name: string) => string;

// The few WebAssembly calls used; tsconfig has no DOM lib, where its types live.
interface Wasm {
  Module: { new (bytes: Uint8Array): object; imports(m: object): { module: string; name: string }[] };
  Instance: new (m: object, imports: object) => { exports: Record<string, unknown> };
}
const WebAssembly = (globalThis as unknown as { WebAssembly: Wasm }).WebAssembly;
let demangler: Demangler | null | undefined;
const cache = new Map<string, string>();

/** Loads the WebAssembly module synchronously (the package's own entry imports .wasm, which Node cannot). */
function load(): Demangler | null {
  if (demangler !== undefined) return demangler;
  try {
    const require = createRequire(import.meta.url);
    const dir = dirname(require.resolve("gecko-profiler-demangle/package.json"));
    // The glue is an ES module; require() of it is not possible in Node 20, so its
    // two functions are taken from a CommonJS-free evaluation of the same file.
    const glue = loadGlue(join(dir, "index_bg.js"));
    const module = new WebAssembly.Module(readFileSync(join(dir, "index_bg.wasm")));
    const imports: Record<string, Record<string, unknown>> = {};
    for (const imp of WebAssembly.Module.imports(module)) (imports[imp.module] ??= {})[imp.name] = glue[imp.name];
    const instance = new WebAssembly.Instance(module, imports);
    (glue.__wbg_set_wasm as (w: unknown) => void)(instance.exports);
    (instance.exports.__wbindgen_start as (() => void) | undefined)?.();
    demangler = glue.demangle_any as Demangler;
  } catch {
    demangler = null; // not installed: names stay mangled
  }
  return demangler;
}

/** Evaluates the wasm-bindgen glue (an ES module of plain functions) and returns its exports. */
function loadGlue(path: string): Record<string, unknown> {
  const source = readFileSync(path, "utf8");
  const names = [...source.matchAll(/^export function (\w+)/gm)].map((m) => m[1]!);
  const body = source.replace(/^export function /gm, "function ") + `\nreturn { ${names.join(", ")} };`;
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  return new Function("module", body)({ require: createRequire(pathToFileURL(path)) }) as Record<string, unknown>;
}

/** Whether `name` looks mangled (Itanium C++ `_Z`, Rust v0 `_R`). Legacy Rust names are Itanium-shaped. */
export function isMangled(name: string): boolean {
  return name.startsWith("_Z") || name.startsWith("__Z") || name.startsWith("_R");
}

/**
 * The demangled form of a C++ or Rust symbol; other names come back as they are.
 * Rust legacy names lose their hash suffix (`::h0123...`), as perf and BCC print them.
 */
export function demangle(name: string): string {
  if (!isMangled(name)) return name;
  let out = cache.get(name);
  if (out !== undefined) return out;
  const d = load();
  try {
    out = d ? d(name) : name;
  } catch {
    out = name;
  }
  cache.set(name, out);
  return out;
}
