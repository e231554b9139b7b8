// tracefs, the kernel's tracing filesystem: finding (or mounting) it, and every read and
// write tsbpf makes there (events, their ids and formats, kprobe/uprobe_events).
import { execFileSync } from "node:child_process";
import { appendFileSync, existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { NotSupportedError } from "../errors.ts";
import { AttachError } from "../link/errors.ts";

export const DEFAULT_TRACEFS = "/sys/kernel/tracing";

let found: string | undefined;

/** /proc/self/mounts escapes space, tab, newline and backslash as octal. */
function unescapeMount(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** Mounted tracefs directories, best first: tracefs mounts, then debugfs's tracing/. */
function mountedCandidates(): string[] {
  let mounts: string;
  try {
    mounts = readFileSync("/proc/self/mounts", "utf8");
  } catch {
    return [];
  }
  const tracefs: string[] = [];
  const debugfs: string[] = [];
  for (const line of mounts.split("\n")) {
    const [, mountPoint, type] = line.split(" ");
    if (mountPoint === undefined || type === undefined) continue;
    if (type === "tracefs") tracefs.push(unescapeMount(mountPoint));
    else if (type === "debugfs") debugfs.push(join(unescapeMount(mountPoint), "tracing"));
  }
  // Prefer the canonical mount point when tracefs is mounted more than once.
  tracefs.sort((a, b) => Number(b === DEFAULT_TRACEFS) - Number(a === DEFAULT_TRACEFS));
  return [...tracefs, ...debugfs];
}

function usable(dir: string): boolean {
  return existsSync(join(dir, "trace_pipe"));
}

/**
 * The tracefs directory (where trace_pipe, trace_marker, kprobe_events... live):
 * a mounted tracefs, or debugfs's tracing/ directory; if neither is mounted,
 * tracefs is mounted at /sys/kernel/tracing (which needs root). Cached once found.
 */
export function tracefsDir(): string {
  if (found !== undefined && usable(found)) return found;
  found = undefined;
  for (const dir of mountedCandidates()) {
    if (usable(dir)) return (found = dir);
  }
  const mount = existsSync("/bin/mount") ? "/bin/mount" : "mount";
  try {
    execFileSync(mount, ["-t", "tracefs", "nodev", DEFAULT_TRACEFS], { stdio: ["ignore", "ignore", "pipe"] });
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: Buffer | string };
    const detail = e.stderr !== undefined && String(e.stderr).trim() !== "" ? String(e.stderr).trim() : e.message;
    const notRoot = typeof process.getuid === "function" && process.getuid() !== 0;
    throw new NotSupportedError(
      "tracefs",
      `tsbpf: tracefs is not mounted, and mounting it failed ("mount -t tracefs nodev ${DEFAULT_TRACEFS}": ${detail}). ` +
        (notRoot ? "Mounting needs root (CAP_SYS_ADMIN); run as root, or " : "") +
        `mount it yourself with "mount -t tracefs nodev ${DEFAULT_TRACEFS}" (the kernel needs CONFIG_TRACING).`,
      { cause: error },
    );
  }
  if (!usable(DEFAULT_TRACEFS)) {
    throw new NotSupportedError(
      "tracefs",
      `tsbpf: mounted tracefs at ${DEFAULT_TRACEFS} but it has no trace_pipe; is the kernel built with CONFIG_TRACING?`,
    );
  }
  return (found = DEFAULT_TRACEFS);
}

// ---- The one owner of tracefs reads and writes: events, formats, probe definitions ----
// Every name that becomes a path under tracefs, or a line in *_events, is checked
// here first: `..` or a `/` in a tracepoint name would leave events/, and a newline in
// a uprobe path would add a probe definition of its author's choosing.

/** Characters of trace event and group names as the kernel makes them (sched, sys_enter_openat, 9p...). */
const EVENT_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** Why `name` cannot be a tracepoint category or event name, or undefined when it can. */
export function badEventName(name: string): string | undefined {
  if (name === "") return "it is empty";
  if (name.includes("..")) return `"${name}" contains ".."`;
  if (!EVENT_NAME.test(name)) return `"${name}" has characters other than letters, digits, "_", "." and "-"`;
  return undefined;
}

function checkedEventDir(category: string, event: string): string {
  for (const name of [category, event]) {
    const bad = badEventName(name);
    if (bad !== undefined) {
      throw new AttachError(`"${category}:${event}" is not a tracepoint name: ${bad}`, {
        hook: "tracepoint",
        target: `${category}:${event}`,
        reason: "invalid tracepoint name",
        suggestion: "write CATEGORY:EVENT as listed under events/ in tracefs, e.g. syscalls:sys_enter_openat",
      });
    }
  }
  return join(tracefsDir(), "events", category, event);
}

/** Whether the kernel has the trace event CATEGORY:EVENT (false for a name that cannot be one, or without tracefs). */
export function tracepointExists(category: string, event: string): boolean {
  if (badEventName(category) !== undefined || badEventName(event) !== undefined) return false;
  try {
    return existsSync(join(tracefsDir(), "events", category, event, "id"));
  } catch {
    return false;
  }
}

/** The id of trace event CATEGORY:EVENT; an AttachError names what exists when it does not. */
export function traceEventId(category: string, event: string): number {
  const dir = checkedEventDir(category, event);
  const idFile = join(dir, "id");
  if (!existsSync(idFile)) {
    const events = join(tracefsDir(), "events");
    const hint = existsSync(join(events, category))
      ? `see ${join(events, category)} for the events of "${category}"`
      : `there is no category "${category}" in ${events}`;
    throw new AttachError(`tracepoint ${category}:${event} does not exist on this kernel (${hint})`, {
      hook: "tracepoint",
      target: `${category}:${event}`,
      reason: "no such tracepoint",
      suggestion: hint,
    });
  }
  return Number.parseInt(readFileSync(idFile, "utf8"), 10);
}

/** The format file of CATEGORY:EVENT, or undefined when there is no such tracepoint (or the name cannot be one). */
export function readTracepointFormat(category: string, event: string): string | undefined {
  if (badEventName(category) !== undefined || badEventName(event) !== undefined) return undefined;
  try {
    return readFileSync(join(tracefsDir(), "events", category, event, "format"), "utf8");
  } catch {
    return undefined;
  }
}

/** Every trace event as "category:event". */
export function listTracepoints(): string[] {
  const root = join(tracefsDir(), "events");
  const out: string[] = [];
  for (const category of readdirSync(root, { withFileTypes: true })) {
    if (!category.isDirectory()) continue;
    for (const event of readdirSync(join(root, category.name), { withFileTypes: true })) {
      if (event.isDirectory()) out.push(`${category.name}:${event.name}`);
    }
  }
  return out;
}

export type DynamicProbeKind = "kprobe" | "uprobe";

/** Where tracefs defines probes of this kind (kprobe_events, uprobe_events), or undefined when it cannot. */
export function probeEventsFile(kind: DynamicProbeKind): string | undefined {
  let dir: string;
  try {
    dir = tracefsDir();
  } catch {
    return undefined;
  }
  const file = join(dir, `${kind}_events`);
  return existsSync(file) ? file : undefined;
}

export interface ProbeEventDefinition {
  kind: DynamicProbeKind;
  retprobe: boolean;
  /** Group and event names: letters, digits and "_" only. */
  group: string;
  event: string;
  /** kprobe: SYMBOL+OFFSET; uprobe: PATH:0xOFFSET. */
  location: string;
}

/** Why `location` cannot go into a *_events line, or undefined when it can. */
export function badProbeLocation(location: string): string | undefined {
  // The kernel splits a definition on whitespace and takes each line as one definition.
  if (/[\s\x00-\x1f\x7f]/.test(location)) return "it contains whitespace or a control character (a newline would start another probe definition)";
  if (location === "") return "it is empty";
  return undefined;
}

/**
 * Adds a probe definition to kprobe_events/uprobe_events; returns the function
 * that removes it. Names and location are checked before anything is written.
 */
export function addProbeEvent(def: ProbeEventDefinition): () => void {
  const hook = def.kind;
  for (const name of [def.group, def.event]) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      throw new AttachError(`cannot define ${hook} event ${def.group}/${def.event}: "${name}" is not a valid event name`, { hook, reason: "invalid event name" });
    }
  }
  const bad = badProbeLocation(def.location);
  if (bad !== undefined) {
    throw new AttachError(`cannot define a ${hook} on ${JSON.stringify(def.location)}: ${bad}`, {
      hook,
      target: def.location,
      reason: bad,
      suggestion: hook === "uprobe" ? "give the binary by a path without whitespace (a symbolic link to it will do)" : undefined,
    });
  }
  const file = probeEventsFile(def.kind);
  if (!file) {
    throw new AttachError(`cannot define a ${hook}: tracefs has no ${def.kind}_events`, { hook, reason: `no ${def.kind}_events in tracefs` });
  }
  appendFileSync(file, `${def.retprobe ? "r" : "p"}:${def.group}/${def.event} ${def.location}\n`);
  return () => appendFileSync(file, `-:${def.group}/${def.event}\n`);
}
