// tsbpf's clang driver: compile BPF C (with the kernel's vmlinux.h and libbpf's
// headers) to a cached BPF ELF object.
export { compile, type CompileOptions, type CompileSource, type CompiledObject } from "./compile.ts";
export { CompileError, parseDiagnostics, type Diagnostic, type DiagnosticSeverity } from "./diagnostics.ts";
export { vmlinuxHeader, type VmlinuxOptions } from "./vmlinux.ts";
export { defaultCacheDir, CacheError, cacheGet, cachePut, type CacheEntry, type CacheOptions, type CacheProblem } from "./cache.ts";
export { ToolNotFoundError } from "./tools.ts";
