// clang's diagnostics, parsed, and the error thrown when a compile fails.
import { TsbpfError } from "../errors.ts";

export type DiagnosticSeverity = "fatal error" | "error" | "warning" | "note" | "remark";

export interface Diagnostic {
  /** File as clang names it ("" for diagnostics without a location, e.g. bad flags). */
  file: string;
  /** 1-based; 0 when clang gave no location. */
  line: number;
  /** 1-based; 0 when clang gave no location. */
  column: number;
  severity: DiagnosticSeverity;
  message: string;
}

const LOCATED = /^(.+?):(\d+):(\d+): (fatal error|error|warning|note|remark): (.*)$/;
const UNLOCATED = /^([\w.+-]*clang[\w.+-]*: )?(fatal error|error|warning|note|remark): (.*)$/;

/**
 * The diagnostics in clang's stderr, in order. Source excerpt lines, caret
 * lines and "In file included from" lines are not diagnostics and are skipped.
 */
export function parseDiagnostics(stderr: string): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  let afterLocated = false;
  for (const line of stderr.split(/\r?\n/)) {
    // The line after a located diagnostic is its source excerpt: C code such
    // as a goto label "error: return -1;" must not be read as a diagnostic.
    const isExcerpt = afterLocated;
    afterLocated = false;
    let m = LOCATED.exec(line);
    if (m) {
      afterLocated = true;
      diagnostics.push({
        file: m[1]!,
        line: Number(m[2]),
        column: Number(m[3]),
        severity: m[4] as DiagnosticSeverity,
        message: m[5]!,
      });
      continue;
    }
    m = UNLOCATED.exec(line);
    if (m && (m[1] !== undefined || !isExcerpt)) {
      diagnostics.push({ file: "", line: 0, column: 0, severity: m[2] as DiagnosticSeverity, message: m[3]! });
    }
  }
  return diagnostics;
}

export function formatDiagnostic(d: Diagnostic): string {
  return d.file === "" ? `${d.severity}: ${d.message}` : `${d.file}:${d.line}:${d.column}: ${d.severity}: ${d.message}`;
}

const MAX_LISTED = 20;

/** clang failed to compile a BPF program. */
export class CompileError extends TsbpfError {
  /** Everything clang reported, notes included. */
  readonly diagnostics: Diagnostic[];
  /** clang's full stderr (with the source excerpts and carets). */
  readonly stderr: string;
  /** The source as shown in diagnostics: the file's path, or the text's name (`<text>` by default). */
  readonly source: string;
  /** clang's exit code (null if it was killed by a signal). */
  readonly exitCode: number | null;

  constructor(init: {
    source: string;
    stderr: string;
    diagnostics: Diagnostic[];
    exitCode: number | null;
    signal?: string | null;
    hints?: string[];
    /** List warnings too (after the errors). Default: $TSBPF_COMPILE_WARNINGS is set. */
    warnings?: boolean;
  }) {
    const isError = (d: Diagnostic) => d.severity === "error" || d.severity === "fatal error";
    const errors = init.diagnostics.filter(isError);
    // Errors first; warnings only when asked: twenty warnings must not hide the one error.
    const showWarnings = init.warnings ?? Boolean(process.env.TSBPF_COMPILE_WARNINGS);
    const warnings = init.diagnostics.filter((d) => d.severity === "warning");
    const listed = showWarnings ? [...errors, ...warnings] : errors;
    const lines = listed.slice(0, MAX_LISTED).map((d) => "  " + formatDiagnostic(d));
    if (listed.length > MAX_LISTED) lines.push(`  ... and ${listed.length - MAX_LISTED} more (see .diagnostics)`);
    if (listed.length === 0) {
      const tail = init.stderr.trim().split("\n").slice(-MAX_LISTED);
      lines.push(...(tail.length > 0 && tail[0] !== "" ? tail.map((l) => "  " + l) : ["  (clang printed nothing)"]));
    }
    if (!showWarnings && warnings.length > 0) {
      lines.push(`  (${warnings.length} warning${warnings.length === 1 ? "" : "s"} not shown: see .diagnostics, or set TSBPF_COMPILE_WARNINGS=1)`);
    }
    const n = errors.length;
    const how = init.signal ? `clang was killed by ${init.signal}` : `${n} error${n === 1 ? "" : "s"}`;
    let message = `tsbpf: failed to compile ${init.source} (${how}):\n${lines.join("\n")}`;
    for (const hint of init.hints ?? []) message += `\n${hint}`;
    super("ERR_TSBPF_COMPILE", message);
    this.diagnostics = init.diagnostics;
    this.stderr = init.stderr;
    this.source = init.source;
    this.exitCode = init.exitCode;
  }
}
