// A program loaded into the kernel, and the attach calls for each hook kind.
import { Spec } from "../btf/spec.ts";
import { Instructions } from "../asm/instruction.ts";
import { ProgType, Pseudo } from "../internal/sys/constants.ts";
import * as sys from "../internal/sys/bpf.ts";
import { SyscallError, privilegeHint } from "../internal/sys/errors.ts";
import type { FD } from "../internal/sys/fd.ts";
import type { ProgramSpec } from "../object/programs.ts";
import { ObjectError } from "../object/errors.ts";
import { ensureBpffs } from "../maps/pin.ts";
import { AttachError } from "../link/errors.ts";
import type { Link } from "../link/link.ts";
import { failuresOf } from "../internal/settle.ts";
import { attachHook, hookDef, targetOfSection, type HookTarget } from "../link/hooks.ts";
import type { KprobeOptions } from "../link/kprobe.ts";
import type { UprobeOptions } from "../link/uprobe.ts";
import type { UsdtOptions } from "../link/usdt.ts";
import { attachPerfEvent, type PerfEventLink, type PerfEventOptions } from "../link/perf_event.ts";
import { VerifierError } from "./verifier.ts";

export interface RunOptions {
  /** The packet (XDP, tc, socket filter, flow dissector) or other input data. */
  data?: Uint8Array;
  /** Room for the program to grow the packet (XDP adjust_head/tail); default 256 bytes. */
  dataOutRoom?: number;
  /** The context (struct __sk_buff, xdp_md, a raw tracepoint's args...). */
  context?: Uint8Array;
  /** Runs this many times (the duration is the mean); default 1. */
  repeat?: number;
  flags?: number;
  cpu?: number;
}

export interface RunResult {
  /** The program's return value (XDP_PASS, TC_ACT_OK, ...). */
  retval: number;
  /** Mean time of one run, in ns. */
  duration: number;
  data?: Uint8Array;
  context?: Uint8Array;
}

export interface LoadOptions {
  /** fd of each map the program references, by its name in the object. */
  mapFd(name: string): number;
  /** The object's BTF in the kernel, for func_info/line_info. */
  btfFd?: FD;
  /** Kernel BTF for resolving fentry/fexit/tp_btf/lsm targets (default: the running kernel's). */
  kernelBtf?: () => Spec;
  /** Verifier log level on failure (1: the path that failed; 2: every instruction). */
  logLevel?: 1 | 2;
  /** BPF_PROG_LOAD's fd_array: module BTF fds that kfunc calls index with insn.off. */
  fdArray?: Int32Array;
}

const BPF_F_SLEEPABLE = 1 << 4;
const MIN_LOG = 1 << 20;
const MAX_LOG = 1 << 30;

const progTypeNames = Object.fromEntries(Object.entries(ProgType).map(([k, v]) => [v, k.toLowerCase()])) as Record<number, string>;

export class Program implements Disposable, AsyncDisposable {
  readonly fd: FD;
  readonly name: string;
  readonly type: number;
  readonly spec: ProgramSpec;
  readonly #links = new Set<Link>();
  /** The fd of each map the program was loaded with, by its name in the object (USDT attach fills two of them). */
  readonly #mapFds: ReadonlyMap<string, number>;

  private constructor(fd: FD, spec: ProgramSpec, mapFds: ReadonlyMap<string, number>) {
    this.fd = fd;
    this.#mapFds = mapFds;
    this.name = spec.name;
    this.type = spec.type;
    this.spec = spec;
  }

  /** Loads a program: map references filled, attach target resolved, verifier log on failure. */
  static load(spec: ProgramSpec, opts: LoadOptions): Program {
    const insns = new Instructions(spec.instructions.slice());
    const mapFds = new Map<string, number>();
    for (const ref of spec.references) {
      insns.setSrc(ref.insn, ref.kind === "fd" ? Pseudo.MAP_FD : Pseudo.MAP_VALUE);
      const mapFd = opts.mapFd(ref.map);
      mapFds.set(ref.map, mapFd);
      insns.setImm(ref.insn, mapFd);
      insns.setImm(ref.insn + 1, ref.kind === "value" ? ref.offset : 0);
    }
    const attachBtfId = spec.btfTarget ? resolveBtfTarget(spec, opts.kernelBtf ?? (() => Spec.kernel())) : 0;

    const base: sys.ProgLoadAttr = {
      progType: spec.type,
      insns: insns.bytes,
      license: spec.license,
      kernVersion: spec.kernelVersion,
      progFlags: spec.sleepable ? BPF_F_SLEEPABLE : 0,
      name: spec.name.slice(0, 15),
      expectedAttachType: spec.expectedAttachType,
      attachBtfId,
      fdArray: opts.fdArray,
    };
    if (opts.btfFd && spec.funcInfo.length) {
      base.progBtfFd = opts.btfFd.value;
      base.funcInfo = funcInfoBytes(spec);
      base.funcInfoCount = spec.funcInfo.length;
      if (spec.lineInfo.length) {
        base.lineInfo = lineInfoBytes(spec);
        base.lineInfoCount = spec.lineInfo.length;
      }
    }

    try {
      return new Program(sys.progLoad(base), spec, mapFds);
    } catch (err) {
      throw explainLoadFailure(spec, err, () => loadWithLog(base, opts.logLevel ?? 1));
    }
  }

  /**
   * Attaches where the section name says: tracepoint/CAT/NAME, raw_tp/NAME,
   * tp_btf/NAME, fentry/FN, kprobe/FN, ksyscall/NAME, uprobe/PATH:SYMBOL...
   * (the hook registry, link/hooks.ts, reads the section).
   */
  attach(): Link {
    const { attach, attachTarget, section } = this.spec;
    const target = targetOfSection(attach, attachTarget, section);
    if (!target) {
      const def = hookDef(attach);
      throw new AttachError(`program ${this.name} (section "${section}") names no target; write ${def.label} as ${attach}/${def.syntax}, or use the attach method that takes one`, {
        hook: attach,
        target: section,
        reason: "the section names no target",
      });
    }
    return this.attachTo(target);
  }

  /** Attaches to a hook of the registry: { hook: "tracepoint", category, event }, { hook: "uprobe", path, symbol }... */
  attachTo(target: HookTarget): Link {
    return this.#track(attachHook(this, target));
  }

  attachTracepoint(category: string, name: string): Link {
    return this.attachTo({ hook: "tracepoint", category, event: name });
  }

  attachRawTracepoint(name: string): Link {
    return this.attachTo({ hook: "raw_tracepoint", event: name });
  }

  attachKprobe(opts: KprobeOptions): Link {
    return this.attachTo({ hook: opts.retprobe ? "kretprobe" : "kprobe", symbol: opts.symbol, offset: opts.offset });
  }

  /** Runs this program on a sampling perf event (cpu-clock at 49 Hz on every CPU by default), as BCC's attach_perf_event. */
  attachPerfEvent(opts: PerfEventOptions = {}): PerfEventLink {
    return this.#track(attachPerfEvent(this, opts)) as PerfEventLink;
  }

  attachUprobe(opts: UprobeOptions): Link {
    return this.attachTo({ hook: opts.retprobe ? "uretprobe" : "uprobe", path: opts.path, symbol: opts.symbol, offset: opts.offset, pid: opts.pid });
  }

  /** A USDT probe (libbpf's usdt.bpf.h protocol): every location of provider:name in the binary, each a uprobe with a BPF cookie. */
  attachUsdt(opts: UsdtOptions): Link {
    return this.attachTo({ hook: "usdt", path: opts.binary, provider: opts.provider, name: opts.name, pid: opts.pid, cookie: opts.cookie });
  }

  /** The fd of map `name` (its name in the object) if this program references it. */
  referencedMapFd(name: string): number | undefined {
    return this.#mapFds.get(name);
  }

  /** Links made through this program that are still attached. */
  get links(): readonly Link[] {
    return [...this.#links].filter((l) => !l.closed);
  }

  info(): sys.ProgInfo {
    return sys.progInfo(this.fd.value);
  }

  /**
   * Runs the program in the kernel on `data` (a packet, for XDP, tc and socket
   * filters) and/or a context, without attaching it (BPF_PROG_TEST_RUN; cilium/ebpf's
   * Program.Run). `data` is the packet as the program left it, and `ctx` the context,
   * when the kernel gives them back.
   */
  run(opts: RunOptions = {}): RunResult {
    const dataOut = opts.data ? new Uint8Array(opts.data.byteLength + (opts.dataOutRoom ?? 256)) : undefined;
    const ctxOut = opts.context ? new Uint8Array(opts.context.byteLength) : undefined;
    const r = sys.progTestRun({ progFd: this.fd.value, dataIn: opts.data, dataOut, ctxIn: opts.context, ctxOut, repeat: opts.repeat, flags: opts.flags, cpu: opts.cpu });
    return {
      retval: r.retval,
      duration: r.duration,
      data: dataOut?.subarray(0, Math.min(r.dataSizeOut, dataOut.byteLength)),
      context: ctxOut?.subarray(0, Math.min(r.ctxSizeOut, ctxOut.byteLength)),
    };
  }

  pin(path: string): void {
    ensureBpffs(path);
    sys.objPin(this.fd.value, path);
  }

  /** Detaches every link made through this program, then unloads it. */
  close(): void {
    for (const link of this.#links) link.close();
    this.#links.clear();
    this.fd.close();
  }

  /** As close(), detaching the links at once (Link.closeAsync). */
  async closeAsync(): Promise<void> {
    const links = [...this.#links];
    this.#links.clear();
    const failures = await failuresOf(links.map((l) => l.closeAsync()));
    this.fd.close();
    if (failures.length) throw failures[0];
  }

  [Symbol.dispose](): void {
    this.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.closeAsync();
  }

  toString(): string {
    return `Program(${this.name})`;
  }

  #track(link: Link): Link {
    this.#links.add(link);
    return link;
  }
}

function resolveBtfTarget(spec: ProgramSpec, kernelBtf: () => Spec): number {
  const target = spec.btfTarget!;
  const found = kernelBtf()
    .typesByName(target.name)
    .find((t) => t.kind === target.kind);
  if (!found) {
    throw new ObjectError(
      `program ${spec.name} (section "${spec.section}"): the kernel's BTF has no ${target.kind} named ${target.name}; ` +
        `check the name after the "/" in the section`,
    );
  }
  return found.id;
}

function funcInfoBytes(spec: ProgramSpec): Uint8Array {
  const out = new Uint8Array(spec.funcInfo.length * sys.FUNC_INFO_SIZE);
  const v = new DataView(out.buffer);
  spec.funcInfo.forEach((r, i) => {
    v.setUint32(i * 8, r.insnOff, true);
    v.setUint32(i * 8 + 4, r.typeId, true);
  });
  return out;
}

function lineInfoBytes(spec: ProgramSpec): Uint8Array {
  const out = new Uint8Array(spec.lineInfo.length * sys.LINE_INFO_SIZE);
  const v = new DataView(out.buffer);
  spec.lineInfo.forEach((r, i) => {
    const at = i * 16;
    v.setUint32(at, r.insnOff, true);
    v.setUint32(at + 4, r.fileNameOff, true);
    v.setUint32(at + 8, r.lineOff, true);
    v.setUint32(at + 12, r.lineCol, true);
  });
  return out;
}

/** Loads again with a verifier log (growing the buffer as the kernel asks) and returns the log. */
function loadWithLog(base: sys.ProgLoadAttr, level: number): string {
  let size = MIN_LOG;
  for (;;) {
    const logBuf = new Uint8Array(size);
    const out = { logTrueSize: 0 };
    try {
      // It may load this time (a transient failure); then there is no error to explain.
      sys.progLoad({ ...base, logBuf, logLevel: level }, out).close();
      return "";
    } catch (err) {
      const code = err instanceof SyscallError ? err.code : "";
      if (code === "ENOSPC" && size < MAX_LOG) {
        size = Math.min(MAX_LOG, Math.max(size * 4, out.logTrueSize));
        continue;
      }
      const end = logBuf.indexOf(0);
      return new TextDecoder().decode(end < 0 ? logBuf : logBuf.subarray(0, end));
    }
  }
}

function explainLoadFailure(spec: ProgramSpec, err: unknown, log: () => string): unknown {
  if (!(err instanceof SyscallError)) return err;
  const tracing = spec.type === ProgType.TRACING || spec.type === ProgType.LSM;
  if (err.code === "EPERM" && tracing && privilegeHint() === "") {
    // Root with every capability and still EPERM: lockdown (see KERNEL.md for this host).
    return new AttachError(
      `program ${spec.name} (section "${spec.section}"): the kernel refused to load it (EPERM) although this process ` +
        `has the capabilities: fentry/fexit/lsm programs are refused under kernel lockdown. Use a tracepoint, ` +
        `raw tracepoint or tp_btf program instead, or a kernel without lockdown`,
      { cause: err },
    );
  }
  if (err.code === "EACCES" || err.code === "EINVAL" || err.code === "E2BIG" || err.code === "ENOSPC") {
    const text = log();
    if (text || err.code === "EACCES") return new VerifierError(spec.name, err.code, err.errno, text, { cause: err });
  }
  err.message = `loading program ${spec.name} (section "${spec.section}"): ${err.message}`;
  return err;
}
