// Parsing the text lines of trace_pipe (BCC's trace_fields).

export interface TraceLine {
  /** The task's comm (`<...>` when the kernel had not recorded it); may contain spaces and dashes. */
  task: string;
  /** The thread id (the kernel's pid) of the task that produced the line. */
  pid: number;
  cpu: number;
  /** The irqs-off/need-resched/hardirq/preempt flags, e.g. "d..31"; "" on kernels that do not print them. */
  flags: string;
  /** Trace clock time in seconds. */
  timestamp: number;
  /** The event name, e.g. "bpf_trace_printk" or "tracing_mark_write"; "" for lines without one. */
  event: string;
  /** The text after the event name (after `bpf_trace_printk: ` for bpf_printk output). */
  message: string;
  /** The whole line as read. */
  raw: string;
}

// "<task>-<pid> [(<tgid>)] [<cpu>] [<flags>] <timestamp>: <rest>". The pid is
// the digits after the last dash before the CPU column: the task group is lazy
// but must be followed by "-<digits> [<cpu>]", so dashes inside the task name
// are kept in it, and a message that looks like a header cannot capture it.
// The "(tgid)" column appears with the record-tgid option.
const LINE = /^\s*(.+?)-(\d+)\s+(?:\(\s*(?:\d+|-+)\)\s+)?\[(\d+)\]\s+(?:(\S+)\s+)?(\d+(?:\.\d+)?):\s(.*)$/s;
const EVENT = /^([A-Za-z_][\w.-]*): ?(.*)$/s;

/**
 * Fields of one trace_pipe line, e.g.
 * `           <...>-12345   [001] d..31  1234.567890: bpf_trace_printk: Hello, World!`,
 * or undefined for lines that are not events (e.g. `CPU:3 [LOST 12 EVENTS]`).
 */
export function parseTraceLine(line: string): TraceLine | undefined {
  const raw = line.endsWith("\n") ? line.slice(0, -1) : line;
  const m = LINE.exec(raw);
  if (!m) return undefined;
  const rest = m[6]!;
  const event = EVENT.exec(rest);
  return {
    task: m[1]!,
    pid: Number(m[2]),
    cpu: Number(m[3]),
    flags: m[4] ?? "",
    timestamp: Number(m[5]),
    event: event ? event[1]! : "",
    message: event ? event[2]! : rest,
    raw,
  };
}
