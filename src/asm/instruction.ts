// BPF instructions as 8-byte records in a byte array (struct bpf_insn):
// code u8 | dst_reg:4 src_reg:4 | off s16 | imm s32. Little-endian only.

export const INSN_SIZE = 8;

export const Opcode = {
  /** BPF_LD | BPF_IMM | BPF_DW: a 16-byte load of a 64-bit immediate. */
  LD_IMM64: 0x18,
  /** BPF_JMP | BPF_CALL. */
  CALL: 0x85,
  /** BPF_JMP | BPF_EXIT. */
  EXIT: 0x95,
  /** BPF_JMP | BPF_JA. */
  JA: 0x05,
} as const;

/** A mutable view of a program's instructions. */
export class Instructions {
  readonly bytes: Uint8Array;
  readonly #view: DataView;

  constructor(bytes: Uint8Array) {
    if (bytes.byteLength % INSN_SIZE !== 0) {
      throw new Error(`instruction bytes (${bytes.byteLength}) are not a multiple of ${INSN_SIZE}`);
    }
    this.bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get length(): number {
    return this.bytes.byteLength / INSN_SIZE;
  }

  code(i: number): number {
    return this.bytes[i * INSN_SIZE];
  }

  dst(i: number): number {
    return this.bytes[i * INSN_SIZE + 1] & 0x0f;
  }

  src(i: number): number {
    return this.bytes[i * INSN_SIZE + 1] >> 4;
  }

  setSrc(i: number, src: number): void {
    const at = i * INSN_SIZE + 1;
    this.bytes[at] = (this.bytes[at] & 0x0f) | (src << 4);
  }

  off(i: number): number {
    return this.#view.getInt16(i * INSN_SIZE + 2, true);
  }

  setCode(i: number, code: number): void {
    this.bytes[i * INSN_SIZE] = code;
  }

  setOff(i: number, off: number): void {
    this.#view.setInt16(i * INSN_SIZE + 2, off, true);
  }

  imm(i: number): number {
    return this.#view.getInt32(i * INSN_SIZE + 4, true);
  }

  setImm(i: number, imm: number): void {
    this.#view.setInt32(i * INSN_SIZE + 4, imm, true);
  }

  isLdImm64(i: number): boolean {
    return this.code(i) === Opcode.LD_IMM64;
  }

  /** A call to a bpf-to-bpf function (src_reg = BPF_PSEUDO_CALL). */
  isPseudoCall(i: number): boolean {
    return this.code(i) === Opcode.CALL && this.src(i) === 1;
  }

  /** An ld_imm64 of a function address (src_reg = BPF_PSEUDO_FUNC), e.g. a bpf_loop callback. */
  isPseudoFunc(i: number): boolean {
    return this.isLdImm64(i) && this.src(i) === 4;
  }

  /** Poisons an instruction the way libbpf does: a call to a helper that does not exist. */
  poison(i: number, marker: number): void {
    this.bytes.fill(0, i * INSN_SIZE, (i + 1) * INSN_SIZE);
    this.bytes[i * INSN_SIZE] = Opcode.CALL;
    this.setImm(i, marker);
  }
}
