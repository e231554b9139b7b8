// tsbpf: eBPF from TypeScript. The layers, top to bottom:
//   compile/   C -> BPF ELF object (clang, vmlinux.h from the kernel's BTF)
//   object/    ELF object -> ObjectSpec (programs, maps, variables), pure
//   elf/, btf/ the readers under it; btf/codec is the one decoder compiler
//   collection, maps/, programs/, link/   kernel objects (own fds, Symbol.dispose)
//   events/                   event readers over the mapped ring and perf buffers
//   tracing/   tracefs and trace_pipe
//   internal/sys  the thin native layer and the bpf()/perf_event_open() attrs
export { TsbpfError, UsageError, NotSupportedError, isTsbpfError, type TsbpfErrorCode } from "./errors.ts";
export { compile, CompileError, vmlinuxHeader, type CompileOptions, type CompiledObject } from "./compile/index.ts";
export { ObjectSpec } from "./object/spec.ts";
export { ObjectError } from "./object/errors.ts";
export type { ProgramSpec, MapReference } from "./object/programs.ts";
export type { MapSpec } from "./object/maps.ts";
export { VariableSpec } from "./object/variables.ts";
export { Collection, Variable, type CollectionOptions } from "./collection.ts";
export { applyCoreRelocations, type CoreRelocations, type CoreOptions, type TargetBtf } from "./object/core.ts";
export { CoreError, type CoreFixup } from "./btf/core.ts";
export { BpfMap, type MapDefinition, type UpdateMode } from "./maps/map.ts";
export type { StorageOwner } from "./maps/storage.ts";
export type { RedirectValue } from "./maps/codec.ts";
export { Program, type RunOptions, type RunResult } from "./programs/program.ts";
export { VerifierError } from "./programs/verifier.ts";
export { Link } from "./link/link.ts";
export { hooks, hookDef, sectionDef, sectionDefs, attachHook, describeTarget, fallbackFor, type HookKind, type HookTarget, type HookDef, type SectionDef } from "./link/hooks.ts";
export { attachPerfEvent, PerfEventLink, onlineCpus, SOFTWARE_EVENTS, HARDWARE_EVENTS, type PerfEventOptions, type PerfEventSpec } from "./link/perf_event.ts";
export { readStack, readBuildIdStack, decodeStack, decodeBuildIdStack, stackIds, deleteStack, StackFlag, type BuildIdFrame } from "./maps/stack.ts";
export { kallsyms, Kallsyms, type KernelSymbol } from "./internal/kallsyms.ts";
export { AttachError, type AttachErrorDetails } from "./link/errors.ts";
export { syscallPrefix } from "./link/syscall.ts";
// Packet hooks (also through attachTo({ hook: "xdp" | "tc" | "socket" | "cgroup", ... })).
export { attachXdp, xdpQuery, XdpLink, XDP_ACTION, XDP_FLAGS, type XdpOptions, type XdpMode } from "./link/xdp.ts";
export { attachTc, TcLink, TC_ACT, type TcOptions, type TcDirection } from "./link/tc.ts";
export { attachSocketFilter, openRawSocket, RawSocket } from "./link/socket.ts";
export { attachCgroup, cgroup2Root, type CgroupOptions } from "./link/cgroup.ts";
export { attachSockmap } from "./link/sockmap.ts";
export { RingBufReader } from "./events/ringbuf.ts";
export { PerfReader, splitPacketRecord, type PerfReaderOptions, type PacketOptions } from "./events/perf.ts";
export { EventReader, type RawHandler, type ReaderOptions } from "./events/reader.ts";
export { chooseEventTransport, openEvents, openPacketEvents, type EventTransport } from "./events/channel.ts";
export { haveMapType, haveRingBuf, haveProgType, haveAttachType, haveHelper, havePmu, haveKernelBtf, haveDynamicProbes } from "./features/index.ts";
export { tracePipe, parseTraceLine, tracefsDir, type TraceLine } from "./tracing/index.ts";
export { Spec as BtfSpec, BtfError, codecFor, type Codec } from "./btf/index.ts";
export { ElfFile, ElfError } from "./elf/index.ts";
export { SyscallError } from "./internal/sys/errors.ts";
export { MapType, ProgType, AttachType, MapFlag } from "./internal/sys/constants.ts";
// BCC's Python API and C dialect (src/bcc): BPF.load({ text }), tables, KeyboardInterrupt.
export { BPF, Table, BccError, KeyboardInterrupt, sleep, translate as translateBcc } from "./bcc/index.ts";
export type { BpfSource, BpfOptions, PerfCallback, RingCallback, TraceFields } from "./bcc/index.ts";
export { generateSkeleton, generateTypes, SkeletonObject, type SkeletonOptions, type TypesOptions, type SkeletonLoadOptions, type LoadedSkeleton, type TypedMap, type PerCpuMap, type Encodable } from "./gen/index.ts";
export * from "./histogram/index.ts";
export * from "./report/index.ts";
export * from "./symbolize/index.ts";
