// tsbpf mountsnoop: mount() and umount() (and the new mount API), as BCC's mountsnoop prints them.
import { constants as osConstants } from "node:os";
import { tracepointExists } from "../link/tracepoint.ts";
import { NotSupportedError } from "../errors.ts";
import { parseEventToolArgs, runEventTool } from "./skeleton.ts";
import { havePrivileges } from "./tool.ts";

const HELP = `usage: tsbpf mountsnoop [-h] [-P] [-p PID] [-d DURATION] [--json] [--perf-buffer]

Trace mount() and umount() syscalls, and fsopen(), fsconfig(), fsmount() and
move_mount() where the kernel has them: one line per call, until Ctrl-C.

options:
  -P, --parent_process  also print the parent's PCOMM and PPID
  -p, --pid PID         trace this PID only
  -d, --duration SECS   stop after this many seconds
      --json            one JSON object per call instead of columns
      --perf-buffer     read events through a perf buffer even where a ring buffer works

hooks: the tracepoints syscalls:sys_enter_/sys_exit_ of mount, umount (umount2),
fsopen, fsconfig, fsmount and move_mount, each where the kernel has it (BCC uses
kprobes on the syscall functions).

examples:
  tsbpf mountsnoop        # trace mount() and umount() system-wide
  tsbpf mountsnoop -P     # with the parent process
`;

const OPTIONS = {
  parent_process: { type: "boolean", short: "P" },
  pid: { type: "string", short: "p" },
  duration: { type: "string", short: "d" },
  json: { type: "boolean" },
  "perf-buffer": { type: "boolean" },
} as const;

const CALLS = ["mount", "umount", "fsopen", "fsconfig", "fsmount", "move_mount"] as const;

export interface MountEvent {
  ts: bigint;
  pid: number;
  tid: number;
  ppid: number;
  mnt_ns: number;
  ret: number;
  call: number;
  i1: number;
  i2: number;
  flags: bigint;
  flags2: bigint;
  comm: string;
  pcomm: string;
  s1: string;
  s2: string;
  s3: string;
  s4: string;
}

type FlagList = [string, number][];
const MOUNT_FLAGS: FlagList = [
  ["MS_RDONLY", 1], ["MS_NOSUID", 2], ["MS_NODEV", 4], ["MS_NOEXEC", 8], ["MS_SYNCHRONOUS", 16], ["MS_REMOUNT", 32],
  ["MS_MANDLOCK", 64], ["MS_DIRSYNC", 128], ["MS_NOATIME", 1024], ["MS_NODIRATIME", 2048], ["MS_BIND", 4096],
  ["MS_MOVE", 8192], ["MS_REC", 16384], ["MS_SILENT", 32768], ["MS_POSIXACL", 1 << 16], ["MS_UNBINDABLE", 1 << 17],
  ["MS_PRIVATE", 1 << 18], ["MS_SLAVE", 1 << 19], ["MS_SHARED", 1 << 20], ["MS_RELATIME", 1 << 21],
  ["MS_KERNMOUNT", 1 << 22], ["MS_I_VERSION", 1 << 23], ["MS_STRICTATIME", 1 << 24], ["MS_LAZYTIME", 1 << 25],
  ["MS_ACTIVE", 1 << 30], ["MS_NOUSER", 2 ** 31],
];
const UMOUNT_FLAGS: FlagList = [["MNT_FORCE", 1], ["MNT_DETACH", 2], ["MNT_EXPIRE", 4], ["UMOUNT_NOFOLLOW", 8]];
const FSMOUNT_FLAGS: FlagList = [["FSMOUNT_CLOEXEC", 1]];
const MOUNT_ATTR_FLAGS: FlagList = [
  ["MOUNT_ATTR_RDONLY", 1], ["MOUNT_ATTR_NOSUID", 2], ["MOUNT_ATTR_NODEV", 4], ["MOUNT_ATTR_NOEXEC", 8],
  ["MOUNT_ATTR_NOATIME", 0x10], ["MOUNT_ATTR_STRICTATIME", 0x20], ["MOUNT_ATTR_NODIRATIME", 0x80],
  ["MOUNT_ATTR_IDMAP", 0x100000], ["MOUNT_ATTR_NOSYMFOLLOW", 0x200000],
];
const MOVE_MOUNT_FLAGS: FlagList = [
  ["MOVE_MOUNT_F_SYMLINKS", 1], ["MOVE_MOUNT_F_AUTOMOUNTS", 2], ["MOVE_MOUNT_F_EMPTY_PATH", 4],
  ["MOVE_MOUNT_T_SYMLINKS", 0x10], ["MOVE_MOUNT_T_AUTOMOUNTS", 0x20], ["MOVE_MOUNT_T_EMPTY_PATH", 0x40],
  ["MOVE_MOUNT_SET_GROUP", 0x100], ["MOVE_MOUNT_BENEATH", 0x200],
];
const FSCONFIG_CMDS = [
  "FSCONFIG_SET_FLAG", "FSCONFIG_SET_STRING", "FSCONFIG_SET_BINARY", "FSCONFIG_SET_PATH", "FSCONFIG_SET_PATH_EMPTY",
  "FSCONFIG_SET_FD", "FSCONFIG_CMD_CREATE", "FSCONFIG_CMD_RECONFIGURE", "FSCONFIG_CMD_CREATE_EXCL",
];
const MS_MGC_VAL = 0xc0ed0000;
const MS_MGC_MSK = 0xffff0000;

/** BCC's _decode_flags: the names of the bits set, then what is left (or 0x0) in hex. */
export function decodeFlags(value: number | bigint, list: FlagList): string {
  let flags = BigInt(value);
  const out: string[] = [];
  for (const [name, bit] of list) {
    if (flags & BigInt(bit)) out.push(name);
    flags &= ~BigInt(bit);
  }
  if (flags || !out.length) out.push(`0x${flags.toString(16)}`);
  return out.join("|");
}

export function decodeMountFlags(value: number | bigint): string {
  let flags = BigInt(value);
  const magic = (flags & BigInt(MS_MGC_MSK)) === BigInt(MS_MGC_VAL);
  if (magic) flags &= ~BigInt(MS_MGC_MSK);
  const rest = decodeFlags(flags, MOUNT_FLAGS);
  return magic ? `MS_MGC_VAL|${rest}` : rest;
}

/** A C string as BCC prints it: in double quotes, with escapes. */
export function quote(s: string): string {
  let out = "";
  for (const b of Buffer.from(s, "utf8")) {
    const esc: Record<number, string> = { 7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r", 34: '\\"', 92: "\\\\" };
    out += esc[b] ?? (b >= 0x20 && b <= 0x7e ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, "0")}`);
  }
  return `"${out}"`;
}

const errnoNames = new Map(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));

function retval(ret: number): string {
  return ret < 0 ? `-${errnoNames.get(-ret) ?? String(-ret)}` : String(ret);
}

const AT_FDCWD = -100;
const fdText = (fd: number) => (fd === AT_FDCWD ? "AT_FDCWD" : String(fd));

/** The CALL column: `mount("tmpfs", "/mnt", "tmpfs", MS_NOSUID, "size=1m") = 0`. */
export function callText(e: MountEvent): string {
  switch (CALLS[e.call]) {
    case "mount":
      return `mount(${quote(e.s1)}, ${quote(e.s2)}, ${quote(e.s3)}, ${decodeMountFlags(e.flags)}, ${quote(e.s4)}) = ${retval(e.ret)}`;
    case "umount":
      return `umount(${quote(e.s1)}, ${decodeFlags(e.flags, UMOUNT_FLAGS)}) = ${retval(e.ret)}`;
    case "fsopen":
      return `fsopen(${quote(e.s1)}, ${decodeMountFlags(e.flags)}) = ${retval(e.ret)}`;
    case "fsconfig":
      return `fsconfig(${e.i1}, ${FSCONFIG_CMDS[Number(e.flags)] ?? `0x${e.flags.toString(16)}`}, ${quote(e.s1)}, ${quote(e.s2)}, ${e.i2}) = ${retval(e.ret)}`;
    case "fsmount":
      return `fsmount(${e.i1}, ${decodeFlags(e.flags, FSMOUNT_FLAGS)}, ${decodeFlags(e.flags2, MOUNT_ATTR_FLAGS)}) = ${retval(e.ret)}`;
    case "move_mount":
      return `move_mount(${fdText(e.i1)}, ${quote(e.s1)}, ${fdText(e.i2)}, ${quote(e.s2)}, ${decodeFlags(e.flags, MOVE_MOUNT_FLAGS)}) = ${retval(e.ret)}`;
    default:
      return `?(${e.call}) = ${retval(e.ret)}`;
  }
}

export async function run(args: string[]): Promise<number> {
  const parsed = parseEventToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { o, pid, duration } = parsed;
  // Before the kernel checks: without root, tracefs cannot be read and every hook looks missing.
  if (!havePrivileges("mountsnoop")) return 1;
  const calls = CALLS.filter((c) => tracepointExists("syscalls", `sys_enter_${c}`));
  if (!calls.includes("mount")) throw new NotSupportedError("syscalls:sys_enter_mount", "this tool needs the syscall tracepoints (CONFIG_FTRACE_SYSCALLS), and this kernel has no syscalls:sys_enter_mount");
  const parent = o.parent_process ?? false;
  return runEventTool<MountEvent>({
    tool: "mountsnoop",
    durationSec: duration,
    programs: calls.flatMap((c) => [`enter_${c}`, `exit_${c}`]),
    constants: { targ_pid: pid ?? 0 },
    transport: o["perf-buffer"] ? "perf" : undefined,
    json: o.json,
    header: parent
      ? `${"COMM".padEnd(16)} ${"PID".padEnd(7)} ${"TID".padEnd(7)} ${"PCOMM".padEnd(16)} ${"PPID".padEnd(7)} ${"MNT_NS".padEnd(11)} CALL`
      : `${"COMM".padEnd(16)} ${"PID".padEnd(7)} ${"TID".padEnd(7)} ${"MNT_NS".padEnd(11)} CALL`,
    line: (e) =>
      parent
        ? `${e.comm.padEnd(16)} ${String(e.pid).padEnd(7)} ${String(e.tid).padEnd(7)} ${e.pcomm.padEnd(16)} ${String(e.ppid).padEnd(7)} ${String(e.mnt_ns).padEnd(11)} ${callText(e)}`
        : `${e.comm.padEnd(16)} ${String(e.pid).padEnd(7)} ${String(e.tid).padEnd(7)} ${String(e.mnt_ns).padEnd(11)} ${callText(e)}`,
    record: (e) => ({
      comm: e.comm, pid: e.pid, tid: e.tid, pcomm: e.pcomm, ppid: e.ppid, mnt_ns: e.mnt_ns,
      call: CALLS[e.call], ret: e.ret, text: callText(e),
    }),
  });
}
