// Histogram slots as BCC numbers them. A log2 slot comes from BCC's
// bpf_log2l() (include/tsbpf_hist.h: tsbpf_log2l): floor(log2(v)) + 1, and 1
// for 0 as for 1, so slot 1 prints as 0 -> 1 and slot s > 1 holds
// [2^(s-1), 2^s - 1]; slot 0 is never filled. A linear slot is the value itself
// (or (v - base) / step: tsbpf_linear_slot).

/** BCC's log2_index_max: enough slots for any 64-bit value. */
export const LOG2_SLOTS = 65;
/** BCC's linear_index_max. */
export const LINEAR_SLOTS = 1025;

/** BCC's bpf_log2l(v) in user space: floor(log2(v)) + 1, and 1 for 0 (v is taken as a u64). */
export function log2l(v: number | bigint): number {
  let n = BigInt.asUintN(64, typeof v === "bigint" ? v : BigInt(Math.trunc(v))) >> 1n;
  let r = 1;
  while (n > 0n) {
    n >>= 1n;
    r++;
  }
  return r;
}

/** The values a log2 slot stands for, as BCC prints them: [low, high]; slot 1 prints 0 -> 1. */
export function log2Range(slot: number): [bigint, bigint] {
  let low = (1n << BigInt(slot)) >> 1n;
  const high = (1n << BigInt(slot)) - 1n;
  if (low === high) low -= 1n;
  return [low, high];
}
