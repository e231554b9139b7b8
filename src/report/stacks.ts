// Stack output as BCC's profile, offcputime and stackcount print it: the
// multi-line form (frames one per line, "--" between kernel and user frames,
// "-" with comm and pid, the count) and the folded form (`-f`: one line per
// stack, root first, for flamegraph.pl, speedscope and our flame graph).
//
// Frames arrive symbolized, LEAF FIRST: the order a stack trace map holds
// them (stack[0] is the innermost function). The folded form reverses them.

export type Frames = readonly string[];

export interface StackSample {
  /** Kernel frames, leaf first; "missed" when the stack id was an error (BCC prints [Missed Kernel Stack]). */
  kernel?: Frames | "missed";
  /** User frames, leaf first; "missed" likewise. */
  user?: Frames | "missed";
  /** Frames of a stack that is not split into kernel and user parts, leaf first. */
  frames?: Frames;
  /** Samples, events, or time (offcputime's microseconds). */
  count: number | bigint;
  /** Process name (BCC prints it before the count, and first in a folded line). */
  comm?: string;
  pid?: number;
}

export interface StackFormatOptions {
  /** "--" between kernel and user frames (BCC's -d, --delimited). Default false, as BCC. */
  delimited?: boolean;
  /** Order by count, smallest first, as BCC prints (default); "none" keeps the given order. */
  sort?: "count" | "none";
}

const MISSED_KERNEL = "[Missed Kernel Stack]";
const MISSED_USER = "[Missed User Stack]";

function sorted(stacks: Iterable<StackSample>, opts: StackFormatOptions): StackSample[] {
  const list = [...stacks];
  // Array.prototype.sort is stable, as Python's sorted().
  if ((opts.sort ?? "count") === "count") list.sort((a, b) => (BigInt(a.count) < BigInt(b.count) ? -1 : BigInt(a.count) > BigInt(b.count) ? 1 : 0));
  return list;
}

const both = (s: StackSample) => Array.isArray(s.kernel) && Array.isArray(s.user);

/** BCC's multi-line stack output: lines for one stack, ending with its count and an empty line. */
export function stackLines(s: StackSample, opts: StackFormatOptions = {}): string[] {
  const out: string[] = [];
  if (s.kernel === "missed") out.push(`    ${MISSED_KERNEL}`);
  else for (const f of s.kernel ?? []) out.push(`    ${f}`);
  if (opts.delimited && both(s)) out.push("    --");
  if (s.user === "missed") out.push(`    ${MISSED_USER}`);
  else for (const f of s.user ?? []) out.push(`    ${f}`);
  for (const f of s.frames ?? []) out.push(`    ${f}`);
  if (s.comm !== undefined || s.pid !== undefined) out.push(`    ${"-".padEnd(16)} ${s.comm ?? ""} (${s.pid ?? 0})`);
  out.push(`        ${s.count}`, "");
  return out;
}

/** All stacks in BCC's multi-line form (newline-terminated). */
export function formatStacks(stacks: Iterable<StackSample>, opts: StackFormatOptions = {}): string {
  return sorted(stacks, opts)
    .flatMap((s) => stackLines(s, opts))
    .map((l) => l + "\n")
    .join("");
}

/** A stack's frames root first, as a folded line has them: comm, user frames, "-" (delimited), kernel frames. */
export function foldedFrames(s: StackSample, opts: StackFormatOptions = {}): string[] {
  const line: string[] = [];
  if (s.comm !== undefined) line.push(s.comm);
  if (s.user === "missed") line.push(MISSED_USER);
  else if (s.user) line.push(...[...s.user].reverse());
  if (opts.delimited && both(s)) line.push("-");
  if (s.kernel === "missed") line.push(MISSED_KERNEL);
  else if (s.kernel) line.push(...[...s.kernel].reverse());
  if (s.frames) line.push(...[...s.frames].reverse());
  return line;
}

/** BCC's folded output (`-f`): "comm;root;...;leaf count" per stack (newline-terminated). */
export function formatFolded(stacks: Iterable<StackSample>, opts: StackFormatOptions = {}): string {
  return sorted(stacks, opts)
    .map((s) => `${foldedFrames(s, opts).join(";")} ${s.count}\n`)
    .join("");
}

/** Reads folded lines ("a;b;c 12") back: frames root first and counts. Blank lines and # comments are skipped. */
export function parseFolded(text: string): { frames: string[]; count: number }[] {
  const out: { frames: string[]; count: number }[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trimEnd();
    if (!line || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    const count = Number(line.slice(at + 1));
    if (at < 0 || !Number.isFinite(count)) continue;
    out.push({ frames: line.slice(0, at).split(";"), count });
  }
  return out;
}
