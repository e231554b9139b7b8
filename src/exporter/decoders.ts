// Label decoders: bytes of a map key -> label value, as ebpf_exporter's. Each
// label runs a chain; the first decoder gets the key's bytes, the next ones the
// text the previous one made. A decoder returns DROP to drop the whole series
// (regexp with no match).
import { readdirSync, readFileSync, statSync } from "node:fs";
import { constants as osConstants } from "node:os";
import { join } from "node:path";
import type { DecoderConfig, DecoderName } from "./config.ts";
import { kallsyms } from "../internal/kallsyms.ts";
import { syscallName as tableName } from "../internal/syscalls.ts";

export const DROP = Symbol("drop series");
export type Decoded = string | typeof DROP;
type Input = Uint8Array | string;
export type Decoder = (input: Input) => Decoded;

/** Which first decoders fit a key field: used to check configs against the map's BTF key type. */
export type FieldShape = "int" | "chars" | "bytes" | "pointer" | "unknown";

/** Whether `name`, first in its chain, can decode a field of this shape and size; else why not. */
export function decoderFits(name: DecoderName, shape: FieldShape, size: number): string | undefined {
  if (shape === "unknown") return undefined;
  switch (name) {
    case "string":
      return shape === "chars" || shape === "bytes" ? undefined : `a ${describeShape(shape, size)} is not a string (char array)`;
    case "uint":
    case "syscall":
    case "cgroup":
    case "errno":
    case "static_map":
      if (shape === "chars") return `a char array is not an integer (use the string decoder)`;
      return size <= 8 ? undefined : `${size} bytes do not make an integer`;
    case "ksym":
      return size === 8 && (shape === "int" || shape === "pointer") ? undefined : `ksym needs an 8-byte address, the field is a ${describeShape(shape, size)}`;
    case "majorminor":
      return size === 4 && shape === "int" ? undefined : `majorminor needs a 4-byte dev_t, the field is a ${describeShape(shape, size)}`;
    case "inet_ip":
      return (size === 4 || size === 16) && shape !== "chars" && shape !== "pointer" ? undefined : `inet_ip needs 4 (IPv4) or 16 (IPv6) bytes, the field is a ${describeShape(shape, size)}`;
    case "regexp":
      return shape === "chars" || shape === "bytes" ? undefined : `regexp matches text: put a decoder before it (uint, string...)`;
    case "hex":
      return undefined;
  }
}

function describeShape(shape: FieldShape, size: number): string {
  return { int: `${size}-byte integer`, chars: `char[${size}]`, bytes: `${size}-byte array`, pointer: "pointer", unknown: "field" }[shape];
}

export function makeDecoder(conf: DecoderConfig): Decoder {
  switch (conf.name) {
    case "uint":
      return (v) => (typeof v === "string" ? v : uintOf(v).toString());
    case "string":
      return (v) => (typeof v === "string" ? v : cString(v));
    case "hex":
      return (v) => (typeof v === "string" ? Buffer.from(v).toString("hex") : Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("hex"));
    case "ksym":
      return (v) => {
        const addr = typeof v === "string" ? BigInt(v) : uintOf(v);
        return ksym(addr) ?? `unknown_addr:0x${addr.toString(16)}`;
      };
    case "syscall":
      return (v) => syscallName(Number(typeof v === "string" ? v : uintOf(v)));
    case "errno":
      return (v) => errnoName(Number(typeof v === "string" ? v : uintOf(v)));
    case "cgroup":
      return (v) => {
        const id = typeof v === "string" ? BigInt(v) : uintOf(v);
        return cgroupPath(id) ?? `unknown_cgroup_id:${id}`;
      };
    case "majorminor":
      return (v) => {
        const dev = Number(typeof v === "string" ? v : uintOf(v));
        // Userspace dev_t encoding (new_encode_dev), as the BPF side writes it.
        const major = (dev >>> 8) & 0xfff;
        const minor = (dev & 0xff) | ((dev >>> 12) & 0xfff00);
        return blockDevice(major, minor) ?? `unknown:${major}:${minor}`;
      };
    case "inet_ip":
      return (v) => (typeof v === "string" ? v : inetIp(v));
    case "static_map": {
      const table = conf.staticMap ?? new Map<string, string>();
      return (v) => {
        const key = typeof v === "string" ? v : uintOf(v).toString();
        return table.get(key) ?? (conf.allowUnknown ? key : `unknown:${key}`);
      };
    }
    case "regexp": {
      const res = conf.regexps ?? [];
      return (v) => {
        const text = typeof v === "string" ? v : cString(v);
        for (const re of res) {
          const m = re.exec(text);
          if (m) return m[1] ?? m[0];
        }
        return DROP;
      };
    }
  }
}

/** A little-endian unsigned integer of up to 8 bytes. */
export function uintOf(bytes: Uint8Array): bigint {
  let n = 0n;
  for (let i = Math.min(bytes.length, 8) - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]);
  return n;
}

const utf8 = new TextDecoder("utf-8", { fatal: false });
function cString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return utf8.decode(end < 0 ? bytes : bytes.subarray(0, end));
}

export function inetIp(b: Uint8Array): string {
  if (b.length === 4) return b.join(".");
  if (b.length !== 16) return Buffer.from(b).toString("hex");
  const v4mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  if (v4mapped) return `::ffff:${b.subarray(12).join(".")}`;
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((b[i] << 8) | b[i + 1]);
  // RFC 5952: the longest run (of 2+) of zero words becomes "::".
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}

/** The syscall's name from the one table (internal/syscalls.ts), or unknown_syscall:N. */
export function syscallName(nr: number): string {
  return tableName(nr) ?? `unknown_syscall:${nr}`;
}

let errnoNames: Map<number, string> | undefined;
export function errnoName(n: number): string {
  errnoNames ??= new Map(Object.entries(osConstants.errno).map(([name, v]) => [v, name]));
  const abs = n > 0x7fffffff ? 0x100000000 - n : Math.abs(n);
  return errnoNames.get(abs) ?? `errno_${abs}`;
}

// ---- kernel symbols: internal/kallsyms.ts, the one owner of /proc/kallsyms ----

/** The kernel symbol containing `addr` (the nearest at or below it). */
export function ksym(addr: bigint): string | undefined {
  return kallsyms().lookup(addr)?.name;
}

// ---- cgroups: id -> path, by the inode numbers of cgroup2 directories ----

let cgroupIndex: Map<bigint, string> | undefined;
let cgroupIndexAt = 0;

/** The path under /sys/fs/cgroup of the cgroup with this id (its cgroup2 inode number); rescanned when unknown, at most once a second. */
export function cgroupPath(id: bigint, root = "/sys/fs/cgroup"): string | undefined {
  const hit = cgroupIndex?.get(id);
  if (hit !== undefined) return hit;
  if (cgroupIndex && Date.now() - cgroupIndexAt < 1000) return undefined;
  cgroupIndex = new Map();
  cgroupIndexAt = Date.now();
  const walk = (dir: string, depth: number) => {
    let st;
    try {
      st = statSync(dir, { bigint: true });
    } catch {
      return;
    }
    cgroupIndex!.set(st.ino, dir);
    if (depth > 32) return;
    let names: string[];
    try {
      names = readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
    } catch {
      return;
    }
    for (const n of names) walk(join(dir, n), depth + 1);
  };
  walk(root, 0);
  return cgroupIndex.get(id);
}

// ---- block devices: major:minor -> name, from /proc/partitions ----

let partitions: Map<string, string> | undefined;

export function blockDevice(major: number, minor: number): string | undefined {
  const key = `${major}:${minor}`;
  if (!partitions?.has(key)) {
    partitions = new Map();
    try {
      for (const line of readFileSync("/proc/partitions", "utf8").split("\n").slice(2)) {
        const f = line.trim().split(/\s+/);
        if (f.length === 4) partitions.set(`${f[0]}:${f[1]}`, f[3]);
      }
    } catch {
      // no /proc/partitions: every device stays unknown
    }
  }
  return partitions.get(key);
}
