// tsbpf's BCC layer: BCC's Python API (the BPF facade) and its C dialect
// (translated to libbpf C), so BCC programs port line for line.
export { BPF, prebuildBcc, type BpfSource, type BpfOptions, type KprobeAttach, type TracepointAttach, type UprobeAttach, type TraceFields } from "./bpf.ts";
export { Table, type PerfCallback, type RingCallback, type LostCallback, type PerfBufferOptions, type HistOptions, log2HistLines, linearHistLines } from "./table.ts";
export { translate, syscallOfEvent, type Translation, type TranslateOptions, type TableInfo, type TableKind, type FunctionInfo } from "./dialect.ts";
export { BccError, KeyboardInterrupt } from "./errors.ts";
export { USDT, type UsdtContextOptions } from "./usdt.ts";
export { sleep } from "./interrupt.ts";
export { ksym, ksymname, sym, type SymbolOptions } from "./symbols.ts";
