// Addresses, ports and TCP states as the network tools print them (BCC's
// inet_ntop and tcp.state2str), shared by tcpconnect, tcpaccept, tcplife,
// tcpretrans, tcpstates and tcptop.
import { UsageError } from "../errors.ts";

export const AF_INET = 2;
export const AF_INET6 = 10;

/**
 * An address from a tool event's `u8[16]` (IPv4 in the first 4 bytes), as
 * inet_ntop writes it: dotted quad, or RFC 5952 IPv6 ("::1", "::ffff:1.2.3.4").
 */
export function formatAddress(family: number, bytes: ArrayLike<number>): string {
  if (family === AF_INET) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  // IPv4-mapped (::ffff:a.b.c.d), as inet_ntop prints it.
  if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) {
    return `::ffff:${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  }
  // The longest run of two or more zero words becomes "::" (the first such run on a tie).
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(":");
  if (bestStart < 0) return hex(words);
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLen))}`;
}

/** "4" or "6", the IP column of BCC's tools. */
export function ipVersion(family: number): number {
  return family === AF_INET6 ? 6 : 4;
}

const TCP_STATES = [
  "", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK",
  "LISTEN", "CLOSING", "NEW_SYN_RECV", "BOUND_INACTIVE",
];

/** A TCP state number as BCC's tcp.state2str names it ("ESTABLISHED", "SYN_SENT"...). */
export function tcpStateName(state: number): string {
  return TCP_STATES[state] || `UNKNOWN_${state}`;
}

/** A comma-separated port list (-P 80,443) as numbers, each 1..65535. */
export function portListOption(value: string | undefined, option: string, max = 8): number[] {
  if (value === undefined) return [];
  const ports = value.split(",").map((p) => p.trim());
  if (ports.length > max) throw new UsageError(`${option}: at most ${max} ports`);
  return ports.map((p) => {
    const n = /^\d+$/.test(p) ? Number(p) : NaN;
    if (!(n >= 1 && n <= 65535)) throw new UsageError(`${option}: "${p}" is not a port (1-65535)`);
    return n;
  });
}

/** The kernel-side family filter of -4/-6: 0 for both. */
export function familyOption(v4: boolean | undefined, v6: boolean | undefined): number {
  if (v4 && v6) throw new UsageError("-4/--ipv4 and -6/--ipv6 exclude each other");
  return v4 ? AF_INET : v6 ? AF_INET6 : 0;
}

/** "HH:MM:SS" of now, as BCC's strftime("%H:%M:%S"). */
export function clockNow(): string {
  return new Date().toTimeString().slice(0, 8);
}
