// USDT (SystemTap SDT) probes of a user-space binary: the `.note.stapsdt` notes
// that <sys/sdt.h> leaves, each a probe location with its provider, name,
// semaphore and argument specs ("-4@%eax 8@-16(%rbp) 8@$5"). Pure: reads an
// ElfFile. As libbpf's usdt.c does, addresses are corrected for prelinking by
// `.stapsdt.base`, then turned into file offsets through the loadable segments
// (the uprobe wants the file offset; the semaphore's file offset is the uprobe's
// ref_ctr_offset, which the kernel counts up while the probe is attached).
import { NotSupportedError } from "../errors.ts";
import { EM_X86_64, PF_X, PT_LOAD } from "./constants.ts";
import { ElfError, hex } from "./error.ts";
import type { ElfFile } from "./file.ts";

const NT_STAPSDT = 3;

export interface UsdtProbe {
  provider: string;
  name: string;
  /** The probe's address as the binary is linked (corrected for prelinking). */
  address: number;
  /** File offset of the probe's instruction (the uprobe's offset). */
  fileOffset: number;
  /** The semaphore's address (0: the probe has none). */
  semaphore: number;
  /** File offset of the semaphore (the uprobe's ref_ctr_offset); 0 when there is none. */
  semaphoreOffset: number;
  /** The argument specs as written in the note, e.g. "8@%rbp 8@%r12 -4@%eax". */
  argText: string;
}

/** Where one argument is: a constant, a register, or memory at a register plus a displacement. */
export type UsdtArg =
  | { kind: "const"; size: number; signed: boolean; value: bigint; text: string }
  | { kind: "reg"; size: number; signed: boolean; reg: X86Register; text: string }
  | { kind: "mem"; size: number; signed: boolean; reg: X86Register; offset: bigint; text: string };

export interface X86Register {
  /** The 64-bit register ("rax" for %eax, %ax and %al). */
  name: string;
  /** The field of struct pt_regs (x86-64) that holds it: "ax". */
  field: string;
  /** offsetof(struct pt_regs, field). */
  offset: number;
}

// struct pt_regs (arch/x86/include/asm/ptrace.h, x86-64): field order fixes the offsets.
const PT_REGS_FIELDS = ["r15", "r14", "r13", "r12", "bp", "bx", "r11", "r10", "r9", "r8", "ax", "cx", "dx", "si", "di", "orig_ax", "ip", "cs", "flags", "sp", "ss"];

// Every name an operand may use for a register -> [64-bit name, pt_regs field].
const REGISTERS = new Map<string, [string, string]>();
for (const [r64, r32, r16, r8, field] of [
  ["rax", "eax", "ax", "al", "ax"],
  ["rbx", "ebx", "bx", "bl", "bx"],
  ["rcx", "ecx", "cx", "cl", "cx"],
  ["rdx", "edx", "dx", "dl", "dx"],
  ["rsi", "esi", "si", "sil", "si"],
  ["rdi", "edi", "di", "dil", "di"],
  ["rbp", "ebp", "bp", "bpl", "bp"],
  ["rsp", "esp", "sp", "spl", "sp"],
  ["rip", "eip", "ip", "", "ip"],
] as const) {
  for (const n of [r64, r32, r16, r8]) if (n) REGISTERS.set(n, [r64, field]);
}
for (let i = 8; i <= 15; i++) for (const s of ["", "d", "w", "b"]) REGISTERS.set(`r${i}${s}`, [`r${i}`, `r${i}`]);

/** The x86-64 register an operand names (%eax, %r12d, %sil...), or an error naming it. */
export function x86Register(name: string, spec = name): X86Register {
  const r = REGISTERS.get(name.toLowerCase());
  if (!r) {
    if (/^[abcd]h$/i.test(name)) {
      throw new NotSupportedError("USDT arguments in %ah/%bh/%ch/%dh", `USDT argument "${spec}": the high byte registers (%${name}) are not supported (libbpf refuses them too)`);
    }
    throw new ElfError(`USDT argument "${spec}": unknown x86-64 register %${name}`);
  }
  return { name: r[0], field: r[1], offset: PT_REGS_FIELDS.indexOf(r[1]) * 8 };
}

const NUMBER = "-?(?:0x[0-9a-f]+|\\d+)";
const CONST_RE = new RegExp(`^(?:(-?\\d+)@)?\\$(${NUMBER})$`, "i");
const REG_RE = /^(?:(-?\d+)@)?%(\w+)$/;
const MEM_RE = new RegExp(`^(?:(-?\\d+)@)?(${NUMBER})?\\(%(\\w+)\\)$`, "i");
const SIB_RE = /^(?:-?\d+@)?[^(]*\(%\w*,%\w+(?:,\d+)?\)$/;

function toBigInt(text: string): bigint {
  return text.startsWith("-") ? -BigInt(text.slice(1)) : BigInt(text);
}

function sizeOf(text: string | undefined, spec: string): { size: number; signed: boolean } {
  // Old producers wrote no size: the argument is a long.
  if (text === undefined) return { size: 8, signed: false };
  const n = Number(text);
  const size = Math.abs(n);
  if (![1, 2, 4, 8].includes(size)) throw new ElfError(`USDT argument "${spec}": size ${text} is not 1, 2, 4 or 8 bytes (a minus sign means signed)`);
  return { size, signed: n < 0 };
}

/** One argument spec: "-4@%eax", "8@-16(%rbp)", "4@$5", "8@(%rdi)". */
export function parseUsdtArg(spec: string): UsdtArg {
  let m = CONST_RE.exec(spec);
  if (m) return { kind: "const", ...sizeOf(m[1], spec), value: toBigInt(m[2]!), text: spec };
  m = REG_RE.exec(spec);
  if (m) return { kind: "reg", ...sizeOf(m[1], spec), reg: x86Register(m[2]!, spec), text: spec };
  m = MEM_RE.exec(spec);
  if (m) return { kind: "mem", ...sizeOf(m[1], spec), reg: x86Register(m[3]!, spec), offset: m[2] ? toBigInt(m[2]) : 0n, text: spec };
  if (SIB_RE.test(spec)) {
    throw new NotSupportedError("USDT arguments with an index register", `USDT argument "${spec}": base + index addressing is not supported (libbpf 1.1's usdt.bpf.h cannot express it either)`);
  }
  if (/^(?:-?\d+@)?[A-Za-z_.][\w.]*(?:[+-]\d+)?\(%rip\)$/.test(spec)) {
    throw new NotSupportedError("USDT arguments relative to a symbol", `USDT argument "${spec}": an operand naming a symbol (symbol(%rip)) is not supported`);
  }
  throw new ElfError(`USDT argument "${spec}": not a constant ($N), a register (%reg) or memory (OFFSET(%reg)), each after SIZE@`);
}

/** Every argument of a probe, from its note's argument text (space-separated; empty: no arguments). */
export function parseUsdtArgs(text: string): UsdtArg[] {
  const parts = text.trim().split(/\s+/).filter(Boolean);
  if (parts.length > USDT_MAX_ARGS) throw new ElfError(`USDT argument specs "${text}": ${parts.length} arguments, more than ${USDT_MAX_ARGS}`);
  return parts.map(parseUsdtArg);
}

/** The most arguments a probe may have (sys/sdt.h's limit, and usdt.bpf.h's BPF_USDT_MAX_ARG_CNT). */
export const USDT_MAX_ARGS = 12;

function cstr(bytes: Uint8Array, at: number, what: string, elf: ElfFile): [string, number] {
  const end = bytes.indexOf(0, at);
  if (end < 0) elf.fail(`a .note.stapsdt note's ${what} is not NUL-terminated`);
  return [new TextDecoder().decode(bytes.subarray(at, end)), end + 1];
}

function fileOffsetOf(elf: ElfFile, addr: number, executable: boolean): number | undefined {
  for (const ph of elf.programHeaders) {
    if (ph.type !== PT_LOAD || (executable && !(ph.flags & PF_X))) continue;
    if (addr >= ph.vaddr && addr < ph.vaddr + ph.filesz) return addr - ph.vaddr + ph.offset;
  }
  return undefined;
}

/** Every USDT probe location of an executable or shared library (empty when it has no .note.stapsdt). */
export function readUsdtProbes(elf: ElfFile): UsdtProbe[] {
  const notes = elf.notes(".note.stapsdt").filter((n) => n.name === "stapsdt" && n.type === NT_STAPSDT);
  if (!notes.length) return [];
  if (elf.machine !== EM_X86_64) {
    throw new NotSupportedError("USDT on this architecture", `${elf.path}: USDT probes are read for x86-64 binaries only (e_machine ${elf.machine})`);
  }
  const baseSection = elf.section(".stapsdt.base");
  const out: UsdtProbe[] = [];
  for (const note of notes) {
    const d = note.desc;
    if (d.length < 24 + 3) elf.fail(`.note.stapsdt note at ${hex(note.offset)} is ${d.length} bytes, too short for three addresses and three strings`);
    const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
    // BigInts until adjusted: a prelinked note's address may wrap below 0 before the correction.
    const rawAddress = v.getBigUint64(0, true);
    const noteBase = v.getBigUint64(8, true);
    const rawSemaphore = v.getBigUint64(16, true);
    const [provider, a] = cstr(d, 24, "provider", elf);
    const [name, b] = cstr(d, a, "name", elf);
    const [argText] = cstr(d, b, "argument text", elf);
    // Prelinking moves the binary but not the notes: .stapsdt.base's real address says by how much.
    const diff = noteBase && baseSection ? BigInt(baseSection.addr) - noteBase : 0n;
    const address = Number(BigInt.asUintN(64, rawAddress + diff));
    const semaphore = rawSemaphore ? Number(BigInt.asUintN(64, rawSemaphore + diff)) : 0;
    const fileOffset = fileOffsetOf(elf, address, true);
    if (fileOffset === undefined) elf.fail(`USDT probe ${provider}:${name} at ${hex(address)} is not in an executable segment`);
    let semaphoreOffset = 0;
    if (semaphore) {
      const off = fileOffsetOf(elf, semaphore, false);
      if (off === undefined) elf.fail(`USDT probe ${provider}:${name}: its semaphore at ${hex(semaphore)} is not in a loadable segment`);
      semaphoreOffset = off;
    }
    out.push({ provider, name, address, fileOffset, semaphore, semaphoreOffset, argText });
  }
  return out;
}

/**
 * The locations of probe `provider:name` (one per place the compiler put it:
 * inlined or repeated probes have several). `provider` may be omitted when the
 * name is unique among providers.
 */
export function findUsdtProbe(elf: ElfFile, provider: string | undefined, name: string): UsdtProbe[] {
  const all = readUsdtProbes(elf);
  const found = all.filter((p) => p.name === name && (provider === undefined || p.provider === provider));
  if (provider === undefined) {
    const providers = [...new Set(found.map((p) => p.provider))];
    if (providers.length > 1) throw new ElfError(`USDT probe "${name}" in ${elf.path} is ambiguous: providers ${providers.join(", ")}; give provider:name`);
  }
  return found;
}
