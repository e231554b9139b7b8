// BCC's packet dialect, from clang's own view of the program.
//
// In BCC, `struct ethernet_t *eth = cursor_advance(cursor, sizeof(*eth));`
// makes `eth` an offset into the packet, and `eth->type` reads the packet: the
// front end (b_frontend_action.cc, BTypeVisitor) rewrites every rvalue read of
// a field through a variable whose type points to a "packet" struct (one marked
// __attribute__((deprecated("packet"))), as <bcc/proto.h>'s BPF_PACKET_HEADER
// does) into bpf_dext_pkt(skb, (u64)eth+BYTE, BIT, BITS), and `eth->f = v` into
// bpf_dins_pkt(skb, (u64)eth+BYTE, BIT, BITS, v); skb is the enclosing
// function's first parameter, BYTE/BIT the field's offset and BITS its width
// (the bitfield's, or the type's size). Both helpers are in <bcc/packet.h>:
// load_byte/half/word, which read in network order.
//
// Here clang parses the translated program (JSON AST filtered, as in
// kernelreads.ts, to the user's functions, and to the packet structs by
// renaming them for the run), and the field offsets come from the packed
// layout of the struct's fields. Only text is replaced, with no newline added
// or removed, so the user's line numbers hold. Programs that declare no
// packet struct skip the clang run.
import { readFileSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { packageRoot } from "../internal/package.ts";
import { defaultCacheDir, sha256, writeFileAtomic } from "../compile/cache.ts";
import { clangVersion, findClang } from "../compile/tools.ts";
import { vmlinuxHeaderInfo } from "../compile/vmlinux.ts";
import { headersDigest } from "../compile/compile.ts";
import { BccError } from "./errors.ts";
import { dumpAst, type AstNode, type UserText } from "./clang-ast.ts";

/** Suffix of the user's functions and the packet structs in the AST run (one -ast-dump-filter names them all). */
const MARK = "__tsbpf_pkt";
const CACHE_FORMAT = 2;

export interface PacketReadsOptions {
  /** Where the user's text starts in `code`. */
  userStart: number;
  /** Every function defined in the user's part. */
  functions: string[];
  /** How errors name the program. */
  displayName: string;
  cflags?: string[];
  includeDirs?: string[];
  cacheDir?: string;
  arch: string;
  /** Kernel BTF that vmlinux.h comes from. Default: this kernel's. */
  btfPath?: string;
}

export interface PacketReadsResult {
  code: string;
  /** Field reads turned into bpf_dext_pkt. */
  packetReads: number;
  /** Field writes turned into bpf_dins_pkt. */
  packetWrites: number;
  cached: boolean;
}

/** A field of a packed struct: its offset and width in bits. */
export interface PacketField {
  name: string;
  bitOffset: number;
  bits: number;
}

/** An edit: replace [from, to) of the code with text. */
type Edit = [from: number, to: number, text: string];

type Node = AstNode;

let protoStructs: string[] | undefined;

/** The packet structs <bcc/proto.h> defines (read from the header itself). */
function protoHeaderStructs(): string[] {
  if (!protoStructs) {
    const text = readFileSync(join(packageRoot, "include", "bcc", "proto.h"), "utf8");
    protoStructs = [...text.matchAll(/^struct\s+(\w+)\s*\{/gm)].map((m) => m[1]!);
  }
  return protoStructs;
}

/**
 * Struct tags the user's text may use as packet headers: those of <bcc/proto.h>
 * when it is included, and the user's own structs declared BPF_PACKET_HEADER or
 * deprecated("packet"). clang decides (packed and deprecated) which are.
 */
export function packetStructCandidates(userText: string): string[] {
  const out = new Set<string>();
  if (/#\s*include\s*[<"]bcc\/proto\.h[>"]/.test(userText)) for (const s of protoHeaderStructs()) out.add(s);
  for (const m of userText.matchAll(/\bstruct\s+(\w+)\s*\{/g)) {
    let depth = 0;
    let i = m.index! + m[0].length - 1;
    for (; i < userText.length; i++) {
      const c = userText[i];
      if (c === "{") depth++;
      else if (c === "}" && --depth === 0) break;
    }
    const tail = userText.slice(i + 1, userText.indexOf(";", i + 1) >>> 0);
    if (/\bBPF_PACKET_HEADER\b|deprecated\s*\(\s*"packet"\s*\)/.test(tail)) out.add(m[1]!);
  }
  return [...out];
}

/** Rewrites field reads and writes through packet-struct pointers as BCC does (cached by the text, flags, clang, kernel and headers). */
export async function rewritePacketReads(code: string, opts: PacketReadsOptions): Promise<PacketReadsResult> {
  const structs = packetStructCandidates(code.slice(opts.userStart));
  if (structs.length === 0) return { code, packetReads: 0, packetWrites: 0, cached: true };
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  const clang = findClang();
  const [version, vmlinux] = await Promise.all([clangVersion(clang), vmlinuxHeaderInfo({ cacheDir, btfPath: opts.btfPath })]);
  const key = sha256(JSON.stringify([CACHE_FORMAT, code, opts.userStart, opts.functions, structs, opts.cflags ?? [], version, vmlinux.btfHash, headersDigest()]));
  const cacheFile = join(cacheDir, "bcc-packets", `${key}.json`);
  try {
    const hit = JSON.parse(await readFile(cacheFile, "utf8")) as { edits: Edit[]; reads: number; writes: number };
    return { code: applyEdits(code, hit.edits), packetReads: hit.reads, packetWrites: hit.writes, cached: true };
  } catch {
    // not cached
  }
  const { decls, text } = await dumpAst(code, {
    userStart: opts.userStart, names: [...opts.functions, ...structs], mark: MARK, clang, clangVersion: version, vmlinux, cacheDir,
    cflags: opts.cflags, includeDirs: opts.includeDirs, arch: opts.arch,
  });
  const { edits, reads, writes } = new PacketRewriter(decls, text, opts.displayName).run();
  await mkdir(dirname(cacheFile), { recursive: true, mode: 0o700 })
    .then(() => writeFileAtomic(cacheFile, JSON.stringify({ edits, reads, writes })))
    .catch(() => {});
  return { code: applyEdits(code, edits), packetReads: reads, packetWrites: writes, cached: false };
}

function applyEdits(code: string, edits: Edit[]): string {
  const sorted = [...edits].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let out = "";
  let at = 0;
  for (const [from, to, text] of sorted) {
    // Newlines of the replaced text stay, after the replacement: line numbers hold.
    const newlines = code.slice(from, to).split("\n").length - 1;
    out += code.slice(at, from) + text + "\n".repeat(newlines);
    at = to;
  }
  return out + code.slice(at);
}

/** Size in bits of a C scalar or array type as clang spells it (BPF target), or undefined. */
export function typeBits(type: string): number | undefined {
  const t = type.replace(/\b(const|volatile|signed|__signed__)\b/g, " ").replace(/\s+/g, " ").trim();
  const arr = /^(.*?)\s*\[(\d+)\]$/.exec(t);
  if (arr) {
    const inner = typeBits(arr[1]!);
    return inner === undefined ? undefined : inner * Number(arr[2]);
  }
  if (/\*$/.test(t)) return 64;
  if (/^enum\b/.test(t)) return 32;
  const base = t.replace(/\bunsigned\b/, "").trim() || "int";
  const sizes: Record<string, number> = { char: 8, _Bool: 8, short: 16, "short int": 16, int: 32, long: 64, "long int": 64, "long long": 64, "long long int": 64, __int128: 128 };
  return sizes[base];
}

/**
 * Field offsets of a packed struct: fields follow each other with no padding,
 * bitfields at the next bit, other fields at the next byte (clang's layout
 * under __attribute__((packed))). Undefined when a field's size is unknown.
 */
export function packedLayout(fields: { name: string; type: string; bitfield?: number }[]): PacketField[] | undefined {
  const out: PacketField[] = [];
  let bit = 0;
  for (const f of fields) {
    if (f.bitfield !== undefined) {
      out.push({ name: f.name, bitOffset: bit, bits: f.bitfield });
      bit += f.bitfield;
      continue;
    }
    const bits = typeBits(f.type);
    if (bits === undefined) return undefined;
    bit = Math.ceil(bit / 8) * 8;
    out.push({ name: f.name, bitOffset: bit, bits });
    bit += bits;
  }
  return out;
}

class PacketRewriter {
  /** Packet structs (renamed) -> field layout. */
  readonly layouts = new Map<string, PacketField[] | undefined>();
  /** Variables pointing to a packet struct -> the struct's name (renamed). */
  readonly packetVars = new Map<string, string>();
  readonly edits: Edit[] = [];
  reads = 0;
  writes = 0;

  constructor(
    readonly decls: Node[],
    readonly user: UserText,
    readonly displayName: string,
  ) {}

  run(): { edits: Edit[]; reads: number; writes: number } {
    // Ranges first: clang writes a file name only when it changes, in document order.
    for (const d of this.decls) this.user.walk(d);
    for (const d of this.decls) {
      if (d.kind !== "RecordDecl" || !d.name) continue;
      const inner = d.inner ?? [];
      // BPF_PACKET_HEADER: packed and deprecated (the JSON dump does not say the message).
      if (!inner.some((n) => n.kind === "PackedAttr") || !inner.some((n) => n.kind === "DeprecatedAttr")) continue;
      const fields = inner
        .filter((n) => n.kind === "FieldDecl")
        .map((n) => ({ name: n.name ?? "", type: n.type?.desugaredQualType ?? n.type?.qualType ?? "", bitfield: n.isBitfield ? Number(n.inner?.[0]?.value) : undefined }));
      this.layouts.set(d.name, packedLayout(fields));
    }
    if (this.layouts.size === 0) return { edits: [], reads: 0, writes: 0 };
    for (const d of this.decls) if (d.kind === "FunctionDecl") this.fn(d);
    return { edits: this.edits, reads: this.reads, writes: this.writes };
  }

  // ---- the rewrite ----

  strip(n: Node): Node {
    while (n.kind === "ParenExpr" || (n.kind === "ImplicitCastExpr" && n.castKind !== "LValueToRValue")) n = n.inner![0]!;
    return n;
  }

  /** `struct X *` with X a packet struct: X. */
  packetPointee(type: Node["type"]): string | undefined {
    const t = type?.desugaredQualType ?? type?.qualType ?? "";
    const m = /^(?:const\s+|volatile\s+)*struct\s+(\w+)\s*\*\s*(?:const\s*)?$/.exec(t);
    return m && this.layouts.has(m[1]!) ? m[1] : undefined;
  }

  fn(d: Node): void {
    const params = (d.inner ?? []).filter((n) => n.kind === "ParmVarDecl");
    const body = (d.inner ?? []).find((n) => n.kind === "CompoundStmt");
    if (!body) return;
    // Parameters and variables of packet-pointer type (BCC clones the struct's mark into the variable).
    const mark = (n: Node) => {
      if ((n.kind === "VarDecl" || n.kind === "ParmVarDecl") && n.id) {
        const s = this.packetPointee(n.type);
        if (s) this.packetVars.set(n.id, s);
      }
      for (const c of n.inner ?? []) mark(c);
    };
    params.forEach(mark);
    mark(body);
    this.visit(body, d, params[0]?.name);
  }

  /** The packet field a member expression designates: its variable, struct and field. */
  packetMember(n: Node): { variable: string; field: PacketField } | undefined {
    const m = this.strip(n);
    if (m.kind !== "MemberExpr") return undefined;
    let base = m.inner?.[0];
    while (base && (base.kind === "ParenExpr" || base.kind === "ImplicitCastExpr")) base = base.inner?.[0];
    if (base?.kind !== "DeclRefExpr" || !base.referencedDecl) return undefined;
    const struct = this.packetVars.get(base.referencedDecl.id);
    if (!struct) return undefined;
    const layout = this.layouts.get(struct);
    const field = layout?.find((f) => f.name === m.name);
    if (!field) return undefined;
    return { variable: base.referencedDecl.name ?? "", field };
  }

  fail(n: Node, fnNode: Node, detail: string): never {
    const r = this.user.range(n);
    const line = r ? this.lineOf(r[0]) : 0;
    throw new BccError(this.displayName, line, `${(fnNode.name ?? "").replace(MARK, "")}()`, detail);
  }

  /** The user's line of an offset in the code (after the last #line directive before it). */
  lineOf(offset: number): number {
    const before = this.user.code.slice(0, offset);
    const directive = [...before.matchAll(/^#line (\d+) "[^"]*"$/gm)].pop();
    if (!directive) return 0;
    const from = directive.index! + directive[0].length + 1;
    return Number(directive[1]) + (before.slice(from).split("\n").length - 1);
  }

  visit(n: Node, fnNode: Node, ctx: string | undefined): void {
    const inner = n.inner ?? [];
    if (n.kind === "UnaryExprOrTypeTraitExpr") return; // sizeof(*eth), sizeof(eth->f): no read
    if (n.kind === "ImplicitCastExpr" && n.castKind === "LValueToRValue") {
      const pm = this.packetMember(inner[0]!);
      if (pm) {
        const member = this.strip(inner[0]!);
        const r = this.user.range(member);
        if (!r) this.fail(n, fnNode, `a packet header field (${pm.field.name}) is read inside a macro's body: tsbpf, as BCC, cannot rewrite it there`);
        if (!ctx) this.fail(n, fnNode, "a packet header is read in a function without parameters: the first parameter must be the skb");
        const f = pm.field;
        this.edits.push([r[0], r[1], `bpf_dext_pkt(${ctx}, (u64)${pm.variable}+${f.bitOffset >> 3}, ${f.bitOffset & 7}, ${f.bits})`]);
        this.reads++;
        return;
      }
    }
    if ((n.kind === "BinaryOperator" && n.opcode === "=") || n.kind === "CompoundAssignOperator") {
      const pm = this.packetMember(inner[0]!);
      if (pm) {
        if (n.kind === "CompoundAssignOperator") this.fail(n, fnNode, `"${n.opcode}" on a packet header field (${pm.field.name}): write it with "=" (BCC rewrites only assignments)`);
        const whole = this.user.range(n);
        const rhs = this.user.range(inner[1]!);
        if (!whole || !rhs) this.fail(n, fnNode, `a packet header field (${pm.field.name}) is written inside a macro's body: tsbpf, as BCC, cannot rewrite it there`);
        if (!ctx) this.fail(n, fnNode, "a packet header is written in a function without parameters: the first parameter must be the skb");
        const f = pm.field;
        this.edits.push([whole[0], rhs[0], `bpf_dins_pkt(${ctx}, (u64)${pm.variable}+${f.bitOffset >> 3}, ${f.bitOffset & 7}, ${f.bits}, `]);
        this.edits.push([whole[1], whole[1], ")"]);
        this.writes++;
        this.visit(inner[1]!, fnNode, ctx);
        return;
      }
    }
    for (const c of inner) this.visit(c, fnNode, ctx);
  }
}
