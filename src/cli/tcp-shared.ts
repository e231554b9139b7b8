// What the TCP tools' user-space halves share: their port-list constants (for
// include/tsbpf.h's tsbpf_port_wanted), the two ways their records name a
// connection's ends (src/cli/bpf/tcp.h fills both), and the columns and fields
// that tcplife and tcpstates print alike.
import { clockNow, formatAddress, ipVersion, portListOption } from "../internal/net.ts";

/** A connection's ends as tcpaccept, tcplife, tcpstates and tcpretrans record them. */
export interface LocalRemote {
  family: number;
  lport: number;
  rport: number;
  laddr: number[];
  raddr: number[];
}

/** The same as tcpconnect and tcptop record them: source (local) and destination. */
export interface SourceDest {
  family: number;
  lport: number;
  dport: number;
  saddr: number[];
  daddr: number[];
}

/** Up to 8 ports as the fixed array of a `const volatile __u16 list[TSBPF_MAX_PORTS]`. */
export function portsConstant(ports: number[]): number[] {
  return [...ports, ...Array(8 - ports.length).fill(0)];
}

/** -P PORTS as the constants targ_ports and targ_nports (tcpconnect, tcpaccept). */
export function portConstants(value: string | undefined, option: string) {
  const ports = portListOption(value, option);
  return { targ_ports: portsConstant(ports), targ_nports: ports.length };
}

/** -L LPORTS and -D RPORTS (tcplife, tcpstates) as targ_lports/targ_nlports and targ_rports/targ_nrports. */
export function localRemotePortConstants(o: { localport?: string; remoteport?: string }) {
  const lports = portListOption(o.localport, "-L/--localport");
  const rports = portListOption(o.remoteport, "-D/--remoteport");
  return { targ_lports: portsConstant(lports), targ_nlports: lports.length, targ_rports: portsConstant(rports), targ_nrports: rports.length };
}

/** Seconds since the first timestamp it was given (BCC's TIME(s) columns). */
export function sinceFirst(): (ts: bigint) => number {
  let first: bigint | undefined;
  return (ts) => Number(ts - (first ??= ts)) / 1e9;
}

/** The TIME / TIME(s) prefix columns of tcplife and tcpstates, as BCC prints them. */
export function timeColumns(o: { time?: boolean; timestamp?: boolean; csv?: boolean }) {
  const seconds = sinceFirst();
  return {
    seconds,
    header: () => (o.time ? (o.csv ? "TIME," : "TIME".padEnd(8) + " ") : "") + (o.timestamp ? (o.csv ? "TIME(s)," : "TIME(s)".padEnd(9) + " ") : ""),
    line: (ts: bigint) =>
      (o.time ? (o.csv ? `${clockNow()},` : clockNow().padEnd(8) + " ") : "") +
      (o.timestamp ? (o.csv ? `${seconds(ts).toFixed(6)},` : seconds(ts).toFixed(6).padEnd(9) + " ") : ""),
  };
}

/** The LADDR LPORT RADDR RPORT header of tcplife and tcpstates, addresses `width` wide. */
export function endsHeader(width: number): string {
  return `${"LADDR".padEnd(width)} ${"LPORT".padEnd(5)} ${"RADDR".padEnd(width)} ${"RPORT".padEnd(5)}`;
}

/** A connection's LADDR LPORT RADDR RPORT columns, under endsHeader(width). */
export function endsColumns(e: LocalRemote, width: number): string {
  return `${formatAddress(e.family, e.laddr).padEnd(width)} ${String(e.lport).padEnd(5)} ${formatAddress(e.family, e.raddr).padEnd(width)} ${String(e.rport).padEnd(5)}`;
}

/** A connection's ip, laddr, lport, raddr, rport: JSON fields, and CSV columns in this order. */
export function endsFields(e: LocalRemote) {
  return { ip: ipVersion(e.family), laddr: formatAddress(e.family, e.laddr), lport: e.lport, raddr: formatAddress(e.family, e.raddr), rport: e.rport };
}
