// #if evaluation for the BCC dialect's scan (issue 16, item 6). The dialect
// scans the user's text before clang preprocesses it; where an #if group's
// condition uses only macros whose value is known here (the kernel's CONFIG_*,
// the prelude's, -D cflags, the text's own #define/#undef), the dead branches
// are dropped from the scan. The emitted code keeps every line, directives
// included, so clang decides again (and, with the same macros, the same way).
// A condition naming anything else is undecidable: both branches are scanned,
// as before.
import type { Token } from "./lexer.ts";

/** A macro's state as far as the dialect knows: its body text, or undefined for "not defined". */
export type MacroValue = string | undefined;

/** Macros the dialect knows, by name. A name absent from `known` is unknown unless `undefinedPrefix` matches it. */
export interface MacroEnv {
  known: Map<string, MacroValue>;
  /** Names with this prefix not in `known` are known to be undefined (CONFIG_ when the kernel's config was read). */
  undefinedPrefixes: string[];
  /** Looked up after `known` (which the text's #define/#undef change): the kernel config's macros, shared between translations. */
  base?: ReadonlyMap<string, string>;
  /** Names that may or may not be defined (a #define in an undecidable branch): never decided. */
  unknown?: Set<string>;
}

/** A branch is live (compiled), dead (not compiled) or maybe (undecidable: scanned, as before). */
type State = "live" | "dead" | "maybe";

class Undecidable extends Error {}

/** The -D and -U flags of a compile, as the dialect's macros (-DX means X=1, as in cc). */
export function macrosOfCflags(cflags: readonly string[] | undefined): Map<string, MacroValue> {
  const out = new Map<string, MacroValue>();
  const list = cflags ?? [];
  for (let i = 0; i < list.length; i++) {
    let f = list[i]!;
    let kind: "D" | "U" | undefined;
    if (f === "-D" || f === "-U") {
      kind = f[1] as "D" | "U";
      f = list[++i] ?? "";
    } else if (f.startsWith("-D") || f.startsWith("-U")) {
      kind = f[1] as "D" | "U";
      f = f.slice(2);
    }
    if (!kind || f === "") continue;
    if (kind === "U") {
      out.set(f, undefined);
      continue;
    }
    const eq = f.indexOf("=");
    if (eq < 0) out.set(f, "1");
    else out.set(f.slice(0, eq), f.slice(eq + 1));
  }
  return out;
}

/**
 * The CONFIG_* macros a kernel config gives, as the kernel's autoconf.h
 * defines them: =y -> CONFIG_X 1, =m -> CONFIG_X_MODULE 1, numbers and strings
 * as their value; "n" and unset options are not defined.
 */
export function configMacros(config: ReadonlyMap<string, string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, value] of config) {
    if (value === "y") out.set(name, "1");
    else if (value === "m") out.set(`${name}_MODULE`, "1");
    else if (value === "n") continue;
    else out.set(name, value);
  }
  return out;
}

interface Directive {
  index: number;
  name: string;
  rest: string;
}

function parseDirective(t: Token, index: number): Directive | undefined {
  // Line continuations and comments are not part of the condition.
  const text = t.text.replace(/\\\r?\n/g, " ").replace(/\/\*[\s\S]*?\*\//g, " ").replace(/\/\/.*$/gm, "");
  const m = /^#\s*(\w+)\s*([\s\S]*)$/.exec(text);
  if (!m) return undefined;
  return { index, name: m[1]!, rest: m[2]!.trim() };
}

/**
 * Indexes of the tokens in branches that are not compiled, for macros `env`
 * (updated by the text's own #define/#undef as it is read). The directives of
 * a group whose parent is compiled stay (the dialect skips them); everything
 * inside a dead branch goes, nested directives too.
 */
export function deadTokens(tokens: readonly Token[], env: MacroEnv): Set<number> {
  const dead = new Set<number>();
  // Per open group: the state of its enclosing region, whether a branch was certainly taken, whether one was undecidable, the current branch's state.
  const stack: { parent: State; taken: boolean; maybe: boolean; state: State }[] = [];
  const here = (): State => (stack.length ? stack[stack.length - 1]!.state : "live");
  const known = env.known;
  const open = (cond: () => boolean) => {
    const parent = here();
    const g = { parent, taken: false, maybe: false, state: "dead" as State };
    stack.push(g);
    branch(g, cond);
  };
  const branch = (g: { parent: State; taken: boolean; maybe: boolean; state: State }, cond: () => boolean) => {
    if (g.parent === "dead" || g.taken) {
      g.state = "dead";
      return;
    }
    let v: boolean | undefined;
    try {
      v = cond();
    } catch (err) {
      if (!(err instanceof Undecidable)) throw err;
      v = undefined;
    }
    if (v === false) g.state = "dead";
    else if (v === true) {
      g.state = g.maybe || g.parent === "maybe" ? "maybe" : "live";
      g.taken = true;
    } else {
      g.state = "maybe";
      g.maybe = true;
    }
  };
  const evalCond = (text: string) => () => evaluate(text, env) !== 0n;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind !== "directive") {
      if (here() === "dead") dead.add(i);
      continue;
    }
    const d = parseDirective(t, i);
    const name = d?.name;
    const rest = d?.rest ?? "";
    switch (name) {
      case "if":
        open(evalCond(rest));
        if (stack.at(-1)!.parent === "dead") dead.add(i);
        continue;
      case "ifdef":
      case "ifndef": {
        const id = /^[A-Za-z_]\w*/.exec(rest)?.[0] ?? "";
        const neg = name === "ifndef";
        open(() => (isDefined(id, env) ? !neg : neg));
        if (stack.at(-1)!.parent === "dead") dead.add(i);
        continue;
      }
      case "elif":
      case "else": {
        const g = stack.at(-1);
        if (!g) continue; // unbalanced: clang will say
        branch(g, name === "else" ? () => true : evalCond(rest));
        if (g.parent === "dead") dead.add(i);
        continue;
      }
      case "endif": {
        const g = stack.pop();
        if (g?.parent === "dead") dead.add(i);
        continue;
      }
    }
    const state = here();
    if (state === "dead") {
      dead.add(i);
      continue;
    }
    if (name === "define" || name === "undef") {
      const m = /^([A-Za-z_]\w*)(\()?\s*([\s\S]*)$/.exec(rest);
      if (!m) continue;
      const macro = m[1]!;
      if (state === "maybe") {
        // Perhaps defined, perhaps not: unknown from here on.
        known.delete(macro);
        (env.unknown ??= new Set()).add(macro);
        continue;
      }
      env.unknown?.delete(macro);
      if (name === "undef") known.set(macro, undefined);
      // A function-like macro is defined, but its value is not evaluated here.
      else known.set(macro, m[2] ? "\0function" : m[3]!.trim());
    }
  }
  return dead;
}

function valueOf(name: string, env: MacroEnv): MacroValue {
  return env.known.has(name) ? env.known.get(name) : env.base?.get(name);
}

function isDefined(name: string, env: MacroEnv): boolean {
  if (env.unknown?.has(name)) throw new Undecidable(name);
  if (env.known.has(name)) return env.known.get(name) !== undefined;
  if (env.base?.has(name)) return true;
  if (env.undefinedPrefixes.some((p) => name.startsWith(p))) return false;
  throw new Undecidable(name);
}

type Tok = { kind: "num"; value: bigint } | { kind: "id"; text: string } | { kind: "op"; text: string };

const OPS = ["<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "!", "~", "+", "-", "*", "/", "%", "<", ">", "&", "|", "^", "(", ")", "?", ":", ","];

function lex(text: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const num = /^(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)[uUlL]*(?![\w.])/.exec(text.slice(i));
    if (num) {
      const d = num[1]!;
      out.push({ kind: "num", value: d.length > 1 && d[0] === "0" && !/^0[xX]/.test(d) ? BigInt("0o" + d.slice(1)) : BigInt(d) });
      i += num[0].length;
      continue;
    }
    const id = /^[A-Za-z_]\w*/.exec(text.slice(i));
    if (id) {
      out.push({ kind: "id", text: id[0] });
      i += id[0].length;
      continue;
    }
    const op = OPS.find((o) => text.startsWith(o, i));
    if (!op) throw new Undecidable(text); // char constants, floats, strings...
    out.push({ kind: "op", text: op });
    i += op.length;
  }
  return out;
}

const BINARY: Record<string, number> = {
  "||": 1, "&&": 2, "|": 3, "^": 4, "&": 5, "==": 6, "!=": 6, "<": 7, ">": 7, "<=": 7, ">=": 7,
  "<<": 8, ">>": 8, "+": 9, "-": 9, "*": 10, "/": 10, "%": 10,
};

const s64 = (v: bigint) => BigInt.asIntN(64, v);

/**
 * The value of an #if expression over the known macros; throws Undecidable
 * when it names a macro whose value is unknown (unless && or || make it moot).
 */
export function evaluate(text: string, env: MacroEnv, depth = 0): bigint {
  if (depth > 32) throw new Undecidable(text);
  const toks = lex(text);
  let p = 0;
  const peek = () => toks[p];
  const isOp = (s: string) => {
    const t = toks[p];
    return t?.kind === "op" && t.text === s;
  };
  const expect = (s: string) => {
    if (!isOp(s)) throw new Undecidable(text);
    p++;
  };
  // Values: a bigint, or "unknown" (a thunk that throws) so that 0 && X and 1 || X still decide.
  type V = bigint | Undecidable;
  const need = (v: V): bigint => {
    if (v instanceof Undecidable) throw v;
    return v;
  };
  const primary = (): V => {
    const t = toks[p++];
    if (!t) throw new Undecidable(text);
    if (t.kind === "num") return t.value;
    if (t.kind === "op") {
      if (t.text === "(") {
        const v = ternary();
        expect(")");
        return v;
      }
      if (t.text === "!" || t.text === "~" || t.text === "-" || t.text === "+") {
        const v = primary();
        if (v instanceof Undecidable) return v;
        return t.text === "!" ? (v === 0n ? 1n : 0n) : t.text === "~" ? s64(~v) : t.text === "-" ? s64(-v) : v;
      }
      throw new Undecidable(text);
    }
    if (t.text === "defined") {
      const paren = isOp("(");
      if (paren) p++;
      const id = toks[p++];
      if (id?.kind !== "id") throw new Undecidable(text);
      if (paren) expect(")");
      try {
        return isDefined(id.text, env) ? 1n : 0n;
      } catch (err) {
        if (err instanceof Undecidable) return err;
        throw err;
      }
    }
    if (t.text === "KERNEL_VERSION" && isOp("(") && valueOf("KERNEL_VERSION", env) !== undefined) {
      p++;
      const args: V[] = [ternary()];
      while (isOp(",")) {
        p++;
        args.push(ternary());
      }
      expect(")");
      if (args.length !== 3) throw new Undecidable(text);
      const [a, b, c] = args.map(need) as [bigint, bigint, bigint];
      return (a << 16n) + (b << 8n) + (c > 255n ? 255n : c);
    }
    // An object-like macro: its body's value.
    let known: boolean;
    try {
      known = isDefined(t.text, env);
    } catch (err) {
      if (err instanceof Undecidable) return err;
      throw err;
    }
    if (!known) return 0n; // the preprocessor's rule for undefined names
    const body = valueOf(t.text, env)!;
    if (body === "\0function" || isOp("(")) return new Undecidable(t.text);
    try {
      return evaluate(body, env, depth + 1);
    } catch (err) {
      if (err instanceof Undecidable) return err;
      throw err;
    }
  };
  const binary = (minPrec: number): V => {
    let left = primary();
    for (;;) {
      const t = peek();
      if (t?.kind !== "op") break;
      const prec = BINARY[t.text];
      if (prec === undefined || prec < minPrec) break;
      p++;
      const right = binary(prec + 1);
      const op = t.text;
      if (op === "&&") {
        if (left === 0n || right === 0n) left = 0n;
        else if (left instanceof Undecidable || right instanceof Undecidable) left = left instanceof Undecidable ? left : right;
        else left = 1n;
        continue;
      }
      if (op === "||") {
        if ((typeof left === "bigint" && left !== 0n) || (typeof right === "bigint" && right !== 0n)) left = 1n;
        else if (left instanceof Undecidable || right instanceof Undecidable) left = left instanceof Undecidable ? left : right;
        else left = 0n;
        continue;
      }
      if (left instanceof Undecidable) continue;
      if (right instanceof Undecidable) {
        left = right;
        continue;
      }
      const a = left;
      const b = right;
      switch (op) {
        case "|": left = a | b; break;
        case "^": left = a ^ b; break;
        case "&": left = a & b; break;
        case "==": left = a === b ? 1n : 0n; break;
        case "!=": left = a !== b ? 1n : 0n; break;
        case "<": left = a < b ? 1n : 0n; break;
        case ">": left = a > b ? 1n : 0n; break;
        case "<=": left = a <= b ? 1n : 0n; break;
        case ">=": left = a >= b ? 1n : 0n; break;
        case "<<": left = s64(a << b); break;
        case ">>": left = a >> b; break;
        case "+": left = s64(a + b); break;
        case "-": left = s64(a - b); break;
        case "*": left = s64(a * b); break;
        case "/":
        case "%":
          if (b === 0n) throw new Undecidable(text);
          left = op === "/" ? a / b : a % b;
          break;
      }
    }
    return left;
  };
  const ternary = (): V => {
    const c = binary(1);
    if (!isOp("?")) return c;
    p++;
    const a = ternary();
    expect(":");
    const b = ternary();
    const cv = need(c);
    return cv !== 0n ? a : b;
  };
  const v = ternary();
  if (p !== toks.length) throw new Undecidable(text);
  return need(v);
}
