// BPF_MAP_TYPE_STACK_TRACE maps and bpf_get_stack buffers, read back as arrays
// of addresses. Addresses are bigints: kernel addresses (0xffffffff8...) do not
// fit a double exactly.
import type { BpfMap } from "./map.ts";

/** BPF_F_* flags of bpf_get_stackid/bpf_get_stack and of the map (BPF_F_STACK_BUILD_ID). */
export const StackFlag = {
  SKIP_FIELD_MASK: 0xff,
  USER_STACK: 1 << 8,
  FAST_STACK_CMP: 1 << 9,
  REUSE_STACKID: 1 << 10,
  USER_BUILD_ID: 1 << 11,
  /** map_flags of a stack map whose entries are struct bpf_stack_build_id. */
  STACK_BUILD_ID: 1 << 5,
} as const;

/** struct bpf_stack_build_id.status */
export const BuildIdStatus = { EMPTY: 0, VALID: 1, IP: 2 } as const;

/** One frame of a build-id stack: the binary's build id and the offset in it, or a bare address. */
export type BuildIdFrame =
  | { status: "valid"; buildId: string; offset: bigint }
  | { status: "ip"; ip: bigint };

const BUILD_ID_FRAME = 32; // s32 status; u8 build_id[20]; (pad 4); u64 offset|ip

/** u64 addresses from `bytes` (a stack map value or a bpf_get_stack buffer), up to the first 0. */
export function decodeStack(bytes: Uint8Array, byteLength = bytes.byteLength): bigint[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, Math.min(byteLength, bytes.byteLength));
  const out: bigint[] = [];
  for (let o = 0; o + 8 <= view.byteLength; o += 8) {
    const ip = view.getBigUint64(o, true);
    if (ip === 0n) break;
    out.push(ip);
  }
  return out;
}

/** struct bpf_stack_build_id entries, up to the first EMPTY one. */
export function decodeBuildIdStack(bytes: Uint8Array, byteLength = bytes.byteLength): BuildIdFrame[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, Math.min(byteLength, bytes.byteLength));
  const out: BuildIdFrame[] = [];
  for (let o = 0; o + BUILD_ID_FRAME <= view.byteLength; o += BUILD_ID_FRAME) {
    const status = view.getInt32(o, true);
    const value = view.getBigUint64(o + 24, true);
    if (status === BuildIdStatus.VALID) {
      out.push({ status: "valid", buildId: hex(bytes.subarray(o + 4, o + 24)), offset: value });
    } else if (status === BuildIdStatus.IP) {
      out.push({ status: "ip", ip: value });
    } else break;
  }
  return out;
}

/**
 * The build id as hex. The kernel copies at most 20 bytes and zero-fills the
 * rest: shorter ids (md5, 16 bytes) lose their trailing zeros here.
 */
function hex(b: Uint8Array): string {
  let end = b.length;
  if (b.length === 20 && b[16] === 0 && b[17] === 0 && b[18] === 0 && b[19] === 0) end = 16;
  let s = "";
  for (let i = 0; i < end; i++) s += b[i]!.toString(16).padStart(2, "0");
  return s;
}

function keyOf(id: number): Uint8Array {
  const key = new Uint8Array(4);
  new DataView(key.buffer).setUint32(0, id, true);
  return key;
}

/** What a negative bpf_get_stackid result means. */
export function stackIdError(id: number): string | undefined {
  if (id >= 0) return undefined;
  switch (-id) {
    case 14:
      return "EFAULT: no stack (a kernel thread has no user stack, or the stack could not be walked)";
    case 17:
      return "EEXIST: hash collision, the map already holds another stack with this id (BPF_F_REUSE_STACKID replaces it)";
    case 12:
      return "ENOMEM: the stack map is full";
    case 22:
      return "EINVAL: bad flags";
    default:
      return `error ${-id}`;
  }
}

/**
 * Reads stack `id` of a stack map as addresses, innermost first; an empty array
 * for a negative id (the program got an error) or an id that is not there.
 */
export function readStack(map: BpfMap, id: number): bigint[] {
  if (id < 0) return [];
  const value = map.lookupBytes(keyOf(id));
  return value ? decodeStack(value) : [];
}

/** Reads stack `id` of a map created with BPF_F_STACK_BUILD_ID. */
export function readBuildIdStack(map: BpfMap, id: number): BuildIdFrame[] {
  if (id < 0) return [];
  const value = map.lookupBytes(keyOf(id));
  return value ? decodeBuildIdStack(value) : [];
}

/** Removes stack `id` from the map, so the id can be reused for another stack. */
export function deleteStack(map: BpfMap, id: number): boolean {
  return id >= 0 && map.deleteBytes(keyOf(id));
}

/** Every stack id present in the map. */
export function stackIds(map: BpfMap): number[] {
  const ids: number[] = [];
  for (const key of map.keys() as Iterable<unknown>) {
    // Decoded through BTF (a u32), or raw bytes when the map has no key type.
    ids.push(key instanceof Uint8Array ? new DataView(key.buffer, key.byteOffset, 4).getUint32(0, true) : Number(key));
  }
  return ids;
}
