// tsbpf sslsniff: the plaintext of TLS reads and writes, BCC's columns and
// options. Hooks: uprobes and uretprobes on OpenSSL's SSL_read/SSL_write (and
// SSL_read_ex/SSL_write_ex), GnuTLS's gnutls_record_recv/send and NSS's
// PR_Read/PR_Write/PR_Recv/PR_Send, as BCC; no kernel hook.
import { readFileSync } from "node:fs";
import { findLibrary } from "../internal/binaries.ts";
import type { Collection } from "../collection.ts";
import { NotSupportedError } from "../errors.ts";
import { ElfFile } from "../elf/file.ts";
import { runEventTool } from "./skeleton.ts";
import { durationOption, intOption, parseToolArgs, pidOption, uidOption, UsageError } from "./tool.ts";

const HELP = `usage: tsbpf sslsniff [-h] [-p PID] [-u UID] [-x] [-c COMM] [-o] [-g] [-n] [--hexdump]
                      [--max-buffer-size SIZE] [-l] [--handshake] [--extra-lib TYPE:PATH] [-d SECS] [--json]

Sniff SSL data: the plaintext of each TLS read and write, until Ctrl-C.

options:
  -p, --pid PID              sniff this PID only (its own libraries, from /proc/PID/maps)
  -u, --uid UID              sniff this UID only
  -x, --extra                show extra fields (UID, TID)
  -c, --comm COMM            sniff only commands named COMM
  -o, --no-openssl           do not show OpenSSL calls
  -g, --no-gnutls            do not show GnuTLS calls
  -n, --no-nss               do not show NSS calls
      --hexdump              show data as hexdump instead of trying to decode it as UTF-8
      --max-buffer-size SIZE bytes of data shown per call (default 8192, at most 8192)
  -l, --latency              show function latency (LAT(ms))
      --handshake            show SSL handshake latency (SSL_do_handshake), with -l
      --extra-lib TYPE:PATH  also intercept this library (TYPE openssl, gnutls or nss); repeatable
  -d, --duration SECS        stop after this many seconds
      --json                 one JSON object per call ("data": the text, or hex with --hexdump)
      --perf-buffer          read events through a perf buffer even where a ring buffer works

hooks: uprobes at entry and uretprobes at return of SSL_read, SSL_write, SSL_read_ex,
SSL_write_ex (libssl), gnutls_record_recv, gnutls_record_send (libgnutls), PR_Read,
PR_Write, PR_Recv, PR_Send (libnspr4), in the libraries the loader finds (ldconfig) or,
with -p, the ones the process maps; a library that is missing is skipped. No kernel
hook: this works wherever uprobes do. Programs linked statically against a TLS
library, or with their own TLS (Go, rustls), are not seen.

examples:
  tsbpf sslsniff               # sniff OpenSSL, GnuTLS and NSS functions
  tsbpf sslsniff -p 181        # sniff PID 181 only
  tsbpf sslsniff -u 1000       # sniff only UID 1000
  tsbpf sslsniff -c curl       # sniff curl command only
  tsbpf sslsniff --no-openssl  # don't show OpenSSL calls
  tsbpf sslsniff --no-gnutls   # don't show GnuTLS calls
  tsbpf sslsniff --no-nss      # don't show NSS calls
  tsbpf sslsniff --hexdump     # show data as hex instead of trying to decode it as UTF-8
  tsbpf sslsniff -x            # show process UID and TID
  tsbpf sslsniff -l            # show function latency
  tsbpf sslsniff -l --handshake  # show SSL handshake latency
  tsbpf sslsniff --extra-lib openssl:/path/libssl.so.1.1 # sniff extra library
`;

const OPTIONS = {
  pid: { type: "string", short: "p" },
  uid: { type: "string", short: "u" },
  extra: { type: "boolean", short: "x" },
  comm: { type: "string", short: "c" },
  "no-openssl": { type: "boolean", short: "o" },
  "no-gnutls": { type: "boolean", short: "g" },
  "no-nss": { type: "boolean", short: "n" },
  hexdump: { type: "boolean" },
  "max-buffer-size": { type: "string" },
  latency: { type: "boolean", short: "l" },
  handshake: { type: "boolean" },
  "extra-lib": { type: "string", multiple: true },
  duration: { type: "string", short: "d" },
  json: { type: "boolean" },
  "perf-buffer": { type: "boolean" },
} as const;

interface SslEvent {
  timestamp_ns: bigint;
  delta_ns: bigint;
  pid: number;
  tid: number;
  uid: number;
  len: number;
  rw: number;
  buf_filled: number;
  comm: string;
  buf: Uint8Array | number[];
}

type LibType = "openssl" | "gnutls" | "nss";

/** Per library: [symbol, entry program, return program]. */
const PROBES: Record<LibType, [string, string, string][]> = {
  openssl: [
    ["SSL_write", "rw_enter", "write_exit"],
    ["SSL_read", "rw_enter", "read_exit"],
    ["SSL_write_ex", "rw_ex_enter", "write_ex_exit"],
    ["SSL_read_ex", "rw_ex_enter", "read_ex_exit"],
  ],
  gnutls: [
    ["gnutls_record_send", "rw_enter", "write_exit"],
    ["gnutls_record_recv", "rw_enter", "read_exit"],
  ],
  nss: [
    ["PR_Write", "rw_enter", "write_exit"],
    ["PR_Send", "rw_enter", "write_exit"],
    ["PR_Read", "rw_enter", "read_exit"],
    ["PR_Recv", "rw_enter", "read_exit"],
  ],
};
const LIB_NAMES: Record<LibType, RegExp> = { openssl: /\/libssl\.so[.\d]*$/, gnutls: /\/libgnutls\.so[.\d]*$/, nss: /\/libnspr4\.so[.\d]*$/ };
const LDCONFIG_NAMES: Record<LibType, string> = { openssl: "ssl", gnutls: "gnutls", nss: "nspr4" };
const FUNC = ["READ/RECV", "WRITE/SEND", "HANDSHAKE"];

/** The library of a type: the one `pid` maps (as a path its probes can use), else the loader's. */
function libraryOf(type: LibType, pid: number | undefined): string | undefined {
  if (pid === undefined) return findLibrary(LDCONFIG_NAMES[type]);
  let maps: string;
  try {
    maps = readFileSync(`/proc/${pid}/maps`, "utf8");
  } catch {
    throw new UsageError(`-p/--pid: no process ${pid}`);
  }
  const path = maps.split("\n").map((l) => l.split(/\s+/)[5] ?? "").find((p) => LIB_NAMES[type].test(p));
  return path ? `/proc/${pid}/root${path}` : undefined;
}

/** The symbols of `names` that the library defines (OpenSSL before 1.1.1 has no _ex forms). */
function definedSymbols(path: string, names: string[]): Set<string> {
  const elf = new ElfFile(new Uint8Array(readFileSync(path)), path);
  const have = new Set<string>();
  for (const n of names) {
    try {
      elf.symbolFileOffset(n);
      have.add(n);
    } catch {
      // not in this version
    }
  }
  return have;
}

function hexdump(bytes: Uint8Array): string {
  const hex = Buffer.from(bytes).toString("hex");
  return hex.match(/.{1,32}/g)?.join("\n") ?? "";
}

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { values: o, positionals } = parsed;
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const pid = pidOption(o.pid, "-p/--pid");
  const uid = uidOption(o.uid, "-u/--uid");
  const duration = durationOption(o.duration);
  const maxBuf = intOption(o["max-buffer-size"], "--max-buffer-size", 0, 8192) ?? 8192;
  const libs: [LibType, string][] = [];
  for (const type of ["openssl", "gnutls", "nss"] as const) {
    if (o[`no-${type}`]) continue;
    const path = libraryOf(type, pid);
    if (path) libs.push([type, path]);
  }
  for (const spec of o["extra-lib"] ?? []) {
    const m = /^(openssl|gnutls|nss):(.+)$/.exec(spec);
    if (!m) throw new UsageError(`--extra-lib expects TYPE:PATH with TYPE openssl, gnutls or nss, got "${spec}"`);
    libs.push([m[1] as LibType, m[2]!]);
  }
  if (libs.length === 0) {
    throw new NotSupportedError("a TLS library", `sslsniff found none of the TLS libraries it was asked for (libssl, libgnutls, libnspr4)${pid ? ` in process ${pid}` : ""}: name one with --extra-lib TYPE:PATH`);
  }
  const attach = (coll: Collection) => {
    for (const [type, path] of libs) {
      const probes = PROBES[type];
      const have = definedSymbols(path, probes.map((p) => p[0]));
      // Returns first: a call whose entry is seen has its return seen too.
      for (const [symbol, , ret] of probes) if (have.has(symbol)) coll.program(ret).attachUprobe({ path, symbol, pid, retprobe: true });
      for (const [symbol, entry] of probes) if (have.has(symbol)) coll.program(entry).attachUprobe({ path, symbol, pid });
      if (type === "openssl" && o.latency && o.handshake && definedSymbols(path, ["SSL_do_handshake"]).size) {
        coll.program("handshake_exit").attachUprobe({ path, symbol: "SSL_do_handshake", pid, retprobe: true });
        coll.program("handshake_enter").attachUprobe({ path, symbol: "SSL_do_handshake", pid });
      }
    }
  };
  let start: bigint | undefined;
  const header =
    `${"FUNC".padEnd(12)} ${"TIME(s)".padEnd(18)} ${"COMM".padEnd(16)} ${"PID".padEnd(7)} ${"LEN".padEnd(7)}` +
    (o.extra ? ` ${"UID".padEnd(7)} ${"TID".padEnd(7)}` : "") +
    (o.latency ? ` ${"LAT(ms)".padEnd(7)}` : "");
  const decode = (e: SslEvent) => {
    const size = e.buf_filled ? Math.min(e.len, maxBuf) : 0;
    const bytes = Uint8Array.from(e.buf.slice(0, size) as ArrayLike<number>);
    return { size, bytes, data: o.hexdump ? hexdump(bytes) : Buffer.from(bytes).toString("utf8") };
  };
  return runEventTool<SslEvent>({
    tool: "sslsniff",
    constants: { targ_pid: pid ?? 0, targ_uid: uid ?? 0xffffffff },
    durationSec: duration,
    transport: o["perf-buffer"] ? "perf" : undefined,
    attach,
    json: o.json,
    header,
    line: (e) => {
      if (o.comm !== undefined && e.comm !== o.comm) return undefined;
      start ??= e.timestamp_ns;
      const lat = e.delta_ns ? (Number(e.delta_ns) / 1e6).toFixed(3) : "N/A";
      const base =
        `${(FUNC[e.rw] ?? "?").padEnd(12)} ${(Number(e.timestamp_ns - start) / 1e9).toFixed(9).padEnd(18)} ${e.comm.padEnd(16)} ${String(e.pid).padEnd(7)} ${String(e.len).padEnd(6)}` +
        (o.extra ? ` ${String(e.uid).padEnd(7)} ${String(e.tid).padEnd(7)}` : "") +
        (o.latency ? ` ${lat.padEnd(7)}` : "");
      const { size, data } = decode(e);
      if (size === 0) return base;
      const lost = e.len - size;
      const end = lost > 0 ? `----- END DATA (TRUNCATED, ${lost} bytes lost) -----` : "----- END DATA -----";
      // BCC's format ends "\n\n" and print adds one: two blank lines after each block.
      return `${base}\n----- DATA -----\n${data}\n${end}\n\n`;
    },
    record: (e) => {
      if (o.comm !== undefined && e.comm !== o.comm) return undefined;
      start ??= e.timestamp_ns;
      const { size, data } = decode(e);
      return {
        func: FUNC[e.rw] ?? "?", time: Number(e.timestamp_ns - start) / 1e9, comm: e.comm, pid: e.pid, tid: e.tid, uid: e.uid,
        len: e.len, ...(o.latency ? { lat_ms: e.delta_ns ? Number(e.delta_ns) / 1e6 : null } : {}), data, truncated: e.len - size,
      };
    },
  });
}
