// A small C tokenizer for the BCC front end: enough to find declarations,
// function bodies and `table.method(...)` calls without being fooled by
// strings, character constants, comments or preprocessor lines. Comments and
// whitespace are not tokens; the text between tokens is kept by the rewriter,
// so what it does not touch comes out byte for byte.
import { TsbpfError } from "../errors.ts";

export type TokenKind = "ident" | "number" | "string" | "char" | "punct" | "directive";

export interface Token {
  kind: TokenKind;
  text: string;
  /** Offsets into the source: [start, end). */
  start: number;
  end: number;
  /** 1-based line of `start`. */
  line: number;
}

// Longest first: only `->` and `...` matter to the rewriter (so that `a->b.c`
// and varargs are not read as member calls), the rest keeps tokens tidy.
const PUNCTUATORS = [
  "<<=", ">>=", "...", "->", "++", "--", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||",
  "+=", "-=", "*=", "/=", "%=", "&=", "^=", "|=", "##",
];

export class LexError extends TsbpfError {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super("ERR_TSBPF_BCC", message);
  }
}

/** Line starts, for offset -> line. */
export function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) starts.push(i + 1);
  return starts;
}

export function lineOf(starts: number[], offset: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid]! <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo + 1;
}

const isIdentStart = (c: string) => /[A-Za-z_$]/.test(c);
const isIdent = (c: string) => /[A-Za-z0-9_$]/.test(c);

export function tokenize(text: string): Token[] {
  const starts = lineStarts(text);
  const tokens: Token[] = [];
  let i = 0;
  let atLineStart = true; // only whitespace since the last newline
  const n = text.length;
  const push = (kind: TokenKind, start: number, end: number) => {
    tokens.push({ kind, text: text.slice(start, end), start, end, line: lineOf(starts, start) });
    atLineStart = false;
  };
  while (i < n) {
    const c = text[i]!;
    if (c === "\n") {
      atLineStart = true;
      i++;
      continue;
    }
    if (c === " " || c === "\t" || c === "\r" || c === "\f" || c === "\v") {
      i++;
      continue;
    }
    if (c === "\\" && text[i + 1] === "\n") {
      i += 2;
      continue;
    }
    if (c === "/" && text[i + 1] === "/") {
      while (i < n && text[i] !== "\n") i++;
      continue;
    }
    if (c === "/" && text[i + 1] === "*") {
      const close = text.indexOf("*/", i + 2);
      if (close < 0) throw new LexError("unterminated /* comment", lineOf(starts, i));
      i = close + 2;
      continue;
    }
    if (c === "#" && atLineStart) {
      // A preprocessor line, with its continuations. Comments inside are part of it.
      const start = i;
      while (i < n && text[i] !== "\n") {
        if (text[i] === "\\" && text[i + 1] === "\n") i += 2;
        else if (text[i] === "/" && text[i + 1] === "*") {
          const close = text.indexOf("*/", i + 2);
          i = close < 0 ? n : close + 2;
        } else i++;
      }
      let end = i;
      while (end > start && /[ \t\r]/.test(text[end - 1]!)) end--;
      push("directive", start, end);
      atLineStart = true;
      continue;
    }
    const start = i;
    if (c === '"' || c === "'") {
      i = skipQuoted(text, i, starts);
      push(c === '"' ? "string" : "char", start, i);
      continue;
    }
    if (isIdentStart(c)) {
      while (i < n && isIdent(text[i]!)) i++;
      // String/char prefixes: L"", u8"", u"", U""
      if ((text[i] === '"' || text[i] === "'") && /^(L|u8|u|U)$/.test(text.slice(start, i))) {
        const quote = text[i]!;
        i = skipQuoted(text, i, starts);
        push(quote === '"' ? "string" : "char", start, i);
        continue;
      }
      push("ident", start, i);
      continue;
    }
    if (/[0-9]/.test(c) || (c === "." && /[0-9]/.test(text[i + 1] ?? ""))) {
      i++;
      while (i < n) {
        const d = text[i]!;
        if ((d === "+" || d === "-") && /[eEpP]/.test(text[i - 1]!)) i++;
        else if (isIdent(d) || d === ".") i++;
        else break;
      }
      push("number", start, i);
      continue;
    }
    const op = PUNCTUATORS.find((p) => text.startsWith(p, i));
    i += op ? op.length : 1;
    push("punct", start, i);
  }
  return tokens;
}

function skipQuoted(text: string, i: number, starts: number[]): number {
  const quote = text[i]!;
  const from = i;
  i++;
  while (i < text.length) {
    const c = text[i]!;
    if (c === "\\") {
      i += 2;
      continue;
    }
    if (c === quote) return i + 1;
    if (c === "\n") break;
    i++;
  }
  throw new LexError(`unterminated ${quote === '"' ? "string literal" : "character constant"}`, lineOf(starts, from));
}

/** Index of the token closing the bracket opened at `open` ("(", "[" or "{"), or -1. */
export function matching(tokens: Token[], open: number): number {
  const pairs: Record<string, string> = { "(": ")", "[": "]", "{": "}" };
  const stack: string[] = [];
  for (let i = open; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind !== "punct") continue;
    if (pairs[t.text]) stack.push(pairs[t.text]!);
    else if (t.text === ")" || t.text === "]" || t.text === "}") {
      if (stack.pop() !== t.text) return -1;
      if (stack.length === 0) return i;
    }
  }
  return -1;
}

/** Splits tokens [from, to) at top-level commas into [start, end) ranges. */
export function splitArgs(tokens: Token[], from: number, to: number): [number, number][] {
  const out: [number, number][] = [];
  let depth = 0;
  let start = from;
  for (let i = from; i < to; i++) {
    const t = tokens[i]!;
    if (t.kind !== "punct") continue;
    if (t.text === "(" || t.text === "[" || t.text === "{") depth++;
    else if (t.text === ")" || t.text === "]" || t.text === "}") depth--;
    else if (t.text === "," && depth === 0) {
      out.push([start, i]);
      start = i + 1;
    }
  }
  if (to > from || out.length > 0) out.push([start, to]);
  return out;
}
