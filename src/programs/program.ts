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
import { attachKprobe, attachKsyscall, type KprobeOptions } from "../link/kprobe.ts";
import { attachRawTracepoint, attachTracepoint, attachTracing, splitTracepoint } from "../link/tracepoint.ts";
import { attachUprobe, type UprobeOptions } from "../link/uprobe.ts";
import { VerifierError } from "./verifier.ts";

export interface LoadOptions {
  /** fd of each map the program references, by its name in the object. */
  mapFd(name: string): number;
  /** The object's BTF in the kernel, for func_info/line_info. */
  btfFd?: FD;
  /** Kernel BTF for resolving fentry/fexit/tp_btf/lsm targets (default: the running kernel's). */
  kernelBtf?: () => Spec;
  /** Verifier log level on failure (1: the path that failed; 2: every instruction). */
  logLevel?: 1 | 2;
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

  private constructor(fd: FD, spec: ProgramSpec) {
    this.fd = fd;
    this.name = spec.name;
    this.type = spec.type;
    this.spec = spec;
  }

  /** Loads a program: map references filled, attach target resolved, verifier log on failure. */
  static load(spec: ProgramSpec, opts: LoadOptions): Program {
    const insns = new Instructions(spec.instructions.slice());
    for (const ref of spec.references) {
      insns.setSrc(ref.insn, ref.kind === "fd" ? Pseudo.MAP_FD : Pseudo.MAP_VALUE);
      insns.setImm(ref.insn, opts.mapFd(ref.map));
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
      return new Program(sys.progLoad(base), spec);
    } catch (err) {
      throw explainLoadFailure(spec, err, () => loadWithLog(base, opts.logLevel ?? 1));
    }
  }

  /**
   * Attaches where the section name says: tracepoint/CAT/NAME, raw_tp/NAME,
   * tp_btf/NAME, fentry/FN, kprobe/FN, ksyscall/NAME, uprobe/PATH:SYMBOL...
   */
  attach(): Link {
    const { attach, attachTarget: target, section } = this.spec;
    const need = (what: string) => {
      if (!target) throw new AttachError(`program ${this.name} (section "${section}") names no ${what}; use the attach method that takes one`);
    };
    switch (attach) {
      case "tracepoint": {
        need("tracepoint");
        const [category, name] = splitTracepoint(target);
        return this.attachTracepoint(category, name);
      }
      case "raw_tracepoint":
        need("tracepoint");
        return this.attachRawTracepoint(target);
      case "tracing":
        return this.#track(attachTracing(this, `${section}`));
      case "kprobe":
      case "kretprobe": {
        need("function");
        const [symbol, offset] = target.split("+");
        return this.attachKprobe({ symbol, offset: offset ? Number(offset) : 0, retprobe: attach === "kretprobe" });
      }
      case "ksyscall":
      case "kretsyscall":
        need("syscall");
        return this.#track(attachKsyscall(this, target, attach === "kretsyscall"));
      case "uprobe":
      case "uretprobe": {
        need("binary and function (uprobe/PATH:SYMBOL)");
        const m = /^(.+):([^:+]+)(?:\+(\d+|0x[0-9a-f]+))?$/i.exec(target);
        if (!m) throw new AttachError(`program ${this.name}: cannot read "${target}" as PATH:SYMBOL[+OFFSET]`);
        return this.attachUprobe({ path: m[1], symbol: m[2], offset: m[3] ? Number(m[3]) : undefined, retprobe: attach === "uretprobe" });
      }
      case "iter":
        throw new AttachError(`program ${this.name}: BPF iterators are not supported yet`);
      default:
        throw new AttachError(
          `program ${this.name} (${progTypeNames[this.type] ?? this.type}, section "${section}") is not attached to a tracing hook; ` +
            `attach it where such programs go (a socket, an interface, a cgroup) with the fd in .fd`,
        );
    }
  }

  attachTracepoint(category: string, name: string): Link {
    this.#expect([ProgType.TRACEPOINT], "tracepoint");
    return this.#track(attachTracepoint(this, category, name));
  }

  attachRawTracepoint(name: string): Link {
    this.#expect([ProgType.RAW_TRACEPOINT, ProgType.RAW_TRACEPOINT_WRITABLE], "raw tracepoint");
    return this.#track(attachRawTracepoint(this, name));
  }

  attachKprobe(opts: KprobeOptions): Link {
    this.#expect([ProgType.KPROBE], "kprobe");
    return this.#track(attachKprobe(this, opts));
  }

  attachUprobe(opts: UprobeOptions): Link {
    this.#expect([ProgType.KPROBE], "uprobe");
    return this.#track(attachUprobe(this, opts));
  }

  /** Links made through this program that are still attached. */
  get links(): readonly Link[] {
    return [...this.#links].filter((l) => !l.closed);
  }

  info(): sys.ProgInfo {
    return sys.progInfo(this.fd.value);
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

  #expect(types: number[], what: string): void {
    if (!types.includes(this.type)) {
      throw new AttachError(`program ${this.name} is a ${progTypeNames[this.type]} program (section "${this.spec.section}"), not a ${what} program`);
    }
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
