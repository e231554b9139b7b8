// BCC's implicit kernel memory reads, from clang's own view of the program.
//
// BCC's front end turns `a->b->c` through a pointer into kernel memory into
// bpf_probe_read calls. Here clang parses the translated program
// (-ast-dump=json, filtered to the user's functions: the whole AST of a
// vmlinux.h program is ~180 MB) and every read of a value (an lvalue-to-rvalue
// conversion) whose memory is reached through a kernel pointer is wrapped in
// __TSBPF_KREAD(...) (bpf_probe_read_kernel; vmlinux.h's structs carry
// preserve_access_index, so the offsets are CO-RE relocated), or
// __TSBPF_UREAD(...) (bpf_probe_read_user) for __user data and syscall
// arguments. Wraps are inserted text only: no newline is added or removed, so
// the user's line numbers hold.
//
// Which pointers are "kernel" (after BCC's ProbeVisitor): anything the program
// did not get from a safe source. Safe: the program's context argument (and a
// helper's parameter every caller passes it to), pointers to the stack (&local,
// local arrays), map values (bpf_map_lookup_elem, ringbuf_reserve), BTF pointers
// (bpf_get_current_task_btf). Kernel: integers cast to pointers (PT_REGS_PARMn,
// bpf_get_current_task()), pointers loaded from memory (kernel memory, map
// values that stored a kernel pointer, tracepoint fields), &member of kernel
// memory, and what variables assigned from any of these hold.
import { mkdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { defaultCacheDir, sha256, writeFileAtomic } from "../compile/cache.ts";
import { clangVersion, findClang } from "../compile/tools.ts";
import { vmlinuxHeaderInfo } from "../compile/vmlinux.ts";
import { headersDigest } from "../compile/compile.ts";
import { dumpAst, type AstNode, type UserText } from "./clang-ast.ts";

/** Suffix the AST run gives the user's functions, so one -ast-dump-filter names them all. */
const AST_MARK = "__tsbpf_ast";

export interface KernelReadsOptions {
  /** Where the user's text starts in `code` (the prelude before it is not scanned). */
  userStart: number;
  /** Every function defined in the user's part (helpers, programs, twins). */
  functions: string[];
  /** Program functions: their first parameter is the context. */
  programs: string[];
  cflags?: string[];
  includeDirs?: string[];
  cacheDir?: string;
  arch: string;
  /** Kernel BTF that vmlinux.h comes from. Default: this kernel's. */
  btfPath?: string;
}

export interface KernelReadsResult {
  code: string;
  /** Reads wrapped. */
  kernelReads: number;
  userReads: number;
  /** True when the result came from the cache (clang did not run). */
  cached: boolean;
}

/** What memory an lvalue designates, or what a pointer value points to. */
type Kind = "safe" | "kernel" | "user";
/** A helper's parameter before its callers are seen, a variable before its assignments are. */
type VarKind = Kind | "unknown";

type Node = AstNode;

const PREFIX_CACHE_FORMAT = 6;

/** The macros the wraps expand to (put in the prelude). */
export const KERNEL_READ_MACROS = `/* BCC's implicit probe reads (src/bcc/kernelreads.ts) */
#define __TSBPF_KREAD(...) ({ __typeof__(__VA_ARGS__) __tsbpf_kv; \\
  bpf_probe_read_kernel((void *)&__tsbpf_kv, sizeof(__tsbpf_kv), (const void *)&(__VA_ARGS__)); __tsbpf_kv; })
#define __TSBPF_UREAD(...) ({ __typeof__(__VA_ARGS__) __tsbpf_uv; \\
  bpf_probe_read_user((void *)&__tsbpf_uv, sizeof(__tsbpf_uv), (const void *)&(__VA_ARGS__)); __tsbpf_uv; })
`;

/** Rewrites the implicit kernel reads of a translated BCC program (cached by its text, flags, clang, kernel and headers). */
export async function rewriteKernelReads(code: string, opts: KernelReadsOptions): Promise<KernelReadsResult> {
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  const clang = findClang();
  const [version, vmlinux] = await Promise.all([clangVersion(clang), vmlinuxHeaderInfo({ cacheDir, btfPath: opts.btfPath })]);
  const key = sha256(JSON.stringify([PREFIX_CACHE_FORMAT, code, opts.userStart, opts.functions, opts.programs, opts.cflags ?? [], version, vmlinux.btfHash, headersDigest()]));
  const cacheFile = join(cacheDir, "bcc-reads", `${key}.json`);
  try {
    const hit = JSON.parse(await readFile(cacheFile, "utf8")) as { wraps: [number, number, Kind][] };
    return { ...applyWraps(code, hit.wraps), cached: true };
  } catch {
    // not cached
  }
  const { decls, text } = await dumpAst(code, {
    userStart: opts.userStart, names: opts.functions, mark: AST_MARK, clang, clangVersion: version, vmlinux, cacheDir,
    cflags: opts.cflags, includeDirs: opts.includeDirs, arch: opts.arch,
  });
  const wraps = new Analysis(decls, text, new Set(opts.programs.map((p) => p + AST_MARK))).run();
  await mkdir(dirname(cacheFile), { recursive: true, mode: 0o700 })
    .then(() => writeFileAtomic(cacheFile, JSON.stringify({ wraps })))
    .catch(() => {});
  return { ...applyWraps(code, wraps), cached: false };
}

function applyWraps(code: string, wraps: [number, number, Kind][]): Omit<KernelReadsResult, "cached"> {
  const inserts: { at: number; text: string; order: number }[] = [];
  let kernelReads = 0;
  let userReads = 0;
  for (const [b, e, kind] of wraps) {
    if (kind === "user") userReads++;
    else kernelReads++;
    // Prefixes of wider wraps go first, suffixes are all ")": nesting holds.
    inserts.push({ at: b, text: kind === "user" ? "__TSBPF_UREAD(" : "__TSBPF_KREAD(", order: -(e - b) });
    inserts.push({ at: e, text: ")", order: 0 });
  }
  inserts.sort((x, y) => x.at - y.at || x.order - y.order);
  let out = "";
  let cursor = 0;
  for (const ins of inserts) {
    out += code.slice(cursor, ins.at) + ins.text;
    cursor = ins.at;
  }
  return { code: out + code.slice(cursor), kernelReads, userReads };
}

const CTX_TYPES = /^(const )?struct (pt_regs|bpf_raw_tracepoint_args|tracepoint__\w+|trace_event_raw_\w+|bpf_perf_event_data|__sk_buff|xdp_md|bpf_sock_ops|bpf_sock_addr|sk_msg_md|bpf_sysctl|bpf_sockopt) \*$/;

class Analysis {
  /** Variable id -> kind of the pointer it holds. */
  readonly vars = new Map<string, VarKind>();
  /** What the pointer each user function returns points to (the worst of its return statements). */
  readonly returns = new Map<string, Kind>();
  /** Function whose body flow() is in. */
  currentFn: string | undefined;
  /** Parameter ids of each function, in order. */
  readonly params = new Map<string, { id: string; type: string }[]>();
  changed = false;

  constructor(
    readonly decls: Node[],
    readonly user: UserText,
    readonly programs: Set<string>,
  ) {}

  run(): [number, number, Kind][] {
    // Ranges first: clang writes a file name only when it changes, in document order.
    for (const d of this.decls) this.user.walk(d);
    for (const d of this.decls) {
      if (d.kind !== "FunctionDecl" || !d.name) continue;
      const ps = (d.inner ?? []).filter((n) => n.kind === "ParmVarDecl").map((n) => ({ id: n.id!, type: n.type?.qualType ?? "" }));
      this.params.set(d.name, ps);
      ps.forEach((p, i) => {
        // A program's first parameter is its context; a helper's parameters are decided by its callers.
        const isProgram = this.programs.has(d.name!);
        this.vars.set(p.id, isProgram && i === 0 ? "safe" : isProgram ? "kernel" : "unknown");
      });
    }
    // Callers decide helper parameters; variables take the worst of what is assigned to them. To a fixpoint.
    const fixpoint = () => {
      for (let round = 0; round < 20; round++) {
        this.changed = false;
        for (const d of this.decls) this.flow(d);
        if (!this.changed) break;
      }
    };
    fixpoint();
    // A helper nobody calls with a known pointer: its context-typed parameters are contexts, the rest kernel;
    // then again, for what those parameters flow into (tcptracer's sockp = (struct inet_sock *)skp).
    let defaulted = false;
    for (const ps of this.params.values()) {
      for (const p of ps) {
        if (this.vars.get(p.id) !== "unknown") continue;
        this.vars.set(p.id, CTX_TYPES.test(p.type) ? "safe" : "kernel");
        defaulted = true;
      }
    }
    if (defaulted) fixpoint();
    for (const [id, k] of this.vars) if (k === "unknown") this.vars.set(id, "safe");
    const wraps: [number, number, Kind][] = [];
    for (const d of this.decls) this.collect(d, wraps, false);
    return wraps;
  }

  // ---- kinds ----

  strip(n: Node): Node {
    while (n.kind === "ParenExpr" || (n.kind === "ImplicitCastExpr" && (n.castKind === "NoOp" || n.castKind === "BitCast"))) n = n.inner![0]!;
    return n;
  }

  isPointer(n: Node): boolean {
    const t = n.type?.desugaredQualType ?? n.type?.qualType ?? "";
    return /\*\s*(const|volatile|restrict|\s)*$/.test(t) || /\(\*\)/.test(t);
  }

  userTagged(n: Node): boolean {
    return /btf_type_tag\("user"\)/.test(n.type?.qualType ?? "");
  }

  /** What memory a pointer value points to. */
  ptrKind(n: Node): Kind {
    const inner = n.inner ?? [];
    switch (n.kind) {
      case "ParenExpr":
        return this.ptrKind(inner[0]!);
      case "ImplicitCastExpr":
      case "CStyleCastExpr": {
        const sub = inner[0]!;
        switch (n.castKind) {
          case "LValueToRValue":
            return this.loadedPtrKind(sub);
          case "ArrayToPointerDecay":
          case "FunctionToPointerDecay":
            return this.lvalueKind(sub);
          case "IntegralToPointer": {
            if (this.userTagged(n)) return "user";
            // (void *)(long)skb->data: packet memory, which programs read directly (BCC: IsContextMemberExpr).
            if (this.packetContextMember(sub)) return "safe";
            const t = this.user.text(sub);
            if (/__TSBPF_SYSCALL_ARG|__TSBPF_TP_/.test(t)) return "user";
            return "kernel";
          }
          case "NullToPointer":
            return "safe";
          default: {
            const k = this.ptrKind(sub);
            return k === "kernel" && this.userTagged(n) ? "user" : k;
          }
        }
      }
      case "UnaryOperator":
        if (n.opcode === "&") return this.lvalueKind(inner[0]!);
        if (n.opcode === "++" || n.opcode === "--") return this.ptrKind(inner[0]!);
        return "safe";
      case "BinaryOperator":
        if (n.opcode === "=" || n.opcode === ",") return this.ptrKind(inner[1]!);
        return this.isPointer(inner[0]!) ? this.ptrKind(inner[0]!) : this.isPointer(inner[1]!) ? this.ptrKind(inner[1]!) : "safe";
      case "CompoundAssignOperator":
        return this.ptrKind(inner[0]!);
      case "ConditionalOperator":
        return worst(this.ptrKind(inner[1]!), this.ptrKind(inner[2]!));
      case "StmtExpr": {
        const stmts = inner[0]?.inner ?? [];
        const last = stmts[stmts.length - 1];
        return last ? this.ptrKind(last) : "safe";
      }
      case "DeclRefExpr":
        return this.varKind(n);
      case "CallExpr": {
        // A user helper returns what its return statements hold (tcpdrop's skb_to_tcphdr);
        // BPF helpers' results are map values, ring buffer records, BTF pointers: safe.
        const name = this.calleeName(n);
        return (name && this.returns.get(name)) || "safe";
      }
      default:
        return "safe";
    }
  }

  /** A member of a packet program's context (skb->data, skb->cb[i], xdp->data_end), under casts. */
  packetContextMember(n: Node): boolean {
    let m = n;
    while (m.kind === "ParenExpr" || m.kind === "ImplicitCastExpr" || m.kind === "CStyleCastExpr" || m.kind === "ArraySubscriptExpr") m = m.inner![0]!;
    if (m.kind !== "MemberExpr" || !m.isArrow) return false;
    const base = this.strip(m.inner![0]!);
    const t = base.kind === "ImplicitCastExpr" ? base.inner![0]!.type?.qualType ?? "" : base.type?.qualType ?? "";
    return /^(const )?struct (__sk_buff|xdp_md|sk_msg_md|sk_reuseport_md) \*$/.test(t) && this.ptrKind(base) === "safe";
  }

  varKind(ref: Node): Kind {
    const id = ref.referencedDecl?.id;
    if (!id || ref.referencedDecl?.kind === "FunctionDecl") return "safe";
    const k = this.vars.get(id);
    if (k === undefined) return "safe"; // globals
    if (k === "unknown") return "safe";
    if (k === "kernel" && this.userTagged(ref)) return "user";
    return k;
  }

  /** A pointer loaded from the memory an lvalue designates. */
  loadedPtrKind(lv: Node): Kind {
    const s = this.strip(lv);
    if (s.kind === "DeclRefExpr") return this.varKind(s);
    if (this.userTagged(lv)) return "user";
    const mem = this.lvalueKind(lv);
    if (mem === "user") return "user";
    // A tracepoint's pointer fields: for syscalls, the syscall's (user) arguments.
    const base = this.memberBase(s);
    if (base && /struct tracepoint__syscalls__|struct trace_event_raw_sys_enter/.test(base.type?.qualType ?? "")) return "user";
    return "kernel";
  }

  memberBase(n: Node): Node | undefined {
    if (n.kind === "MemberExpr" && n.isArrow) return this.strip(n.inner![0]!);
    if (n.kind === "ArraySubscriptExpr") {
      const b = this.strip(n.inner![0]!);
      return b.kind === "MemberExpr" ? this.memberBase(b) : undefined;
    }
    return undefined;
  }

  /** What memory an lvalue designates. */
  lvalueKind(n: Node): Kind {
    const inner = n.inner ?? [];
    switch (n.kind) {
      case "ParenExpr":
        return this.lvalueKind(inner[0]!);
      case "MemberExpr":
        return n.isArrow ? this.ptrKind(inner[0]!) : this.lvalueKind(inner[0]!);
      case "UnaryOperator":
        return n.opcode === "*" ? this.ptrKind(inner[0]!) : "safe";
      case "ArraySubscriptExpr": {
        const [a, b] = inner;
        return this.isPointer(a!) ? this.ptrKind(a!) : this.ptrKind(b!);
      }
      default:
        return "safe";
    }
  }

  // ---- data flow ----

  /** The name of the function a call calls directly (through clang's FunctionToPointerDecay), if any. */
  calleeName(call: Node): string | undefined {
    let callee = this.strip(call.inner![0]!);
    if (callee.kind === "ImplicitCastExpr" && callee.castKind === "FunctionToPointerDecay") callee = this.strip(callee.inner![0]!);
    return callee.referencedDecl?.name;
  }

  setVar(id: string, k: Kind): void {
    const old = this.vars.get(id);
    if (old === undefined) return;
    const next = old === "unknown" ? k : worst(old, k);
    if (next !== old) {
      this.vars.set(id, next);
      this.changed = true;
    }
  }

  flow(n: Node): void {
    const inner = n.inner ?? [];
    if (n.kind === "FunctionDecl" && n.name && inner.some((c) => c.kind === "CompoundStmt")) {
      const outer = this.currentFn;
      this.currentFn = n.name;
      for (const c of inner) this.flow(c);
      this.currentFn = outer;
      return;
    }
    if (n.kind === "ReturnStmt" && this.currentFn && inner[0] && this.isPointer(inner[0])) {
      const k = this.ptrKind(inner[0]);
      const old = this.returns.get(this.currentFn) ?? "safe";
      const next = worst(old, k);
      if (next !== old) {
        this.returns.set(this.currentFn, next);
        this.changed = true;
      }
    }
    if (n.kind === "VarDecl" && n.id) {
      if (!this.vars.has(n.id)) this.vars.set(n.id, "unknown");
      const init = inner.find((c) => c.kind !== undefined && !/Attr$/.test(c.kind));
      if (init && this.isPointer(n)) this.setVar(n.id, this.ptrKind(init));
    }
    if ((n.kind === "BinaryOperator" && n.opcode === "=") || n.kind === "CompoundAssignOperator") {
      const lhs = this.strip(inner[0]!);
      if (lhs.kind === "DeclRefExpr" && lhs.referencedDecl?.id && this.isPointer(lhs)) this.setVar(lhs.referencedDecl.id, this.ptrKind(inner[1]!));
    }
    if (n.kind === "CallExpr") {
      const name = this.calleeName(n);
      const ps = name ? this.params.get(name) : undefined;
      if (ps) {
        inner.slice(1).forEach((arg, i) => {
          const p = ps[i];
          if (p && this.isPointer(arg)) this.setVar(p.id, this.ptrKind(arg));
        });
      }
    }
    for (const c of inner) this.flow(c);
  }

  // ---- the wraps ----

  collect(n: Node, wraps: [number, number, Kind][], unevaluated: boolean): void {
    const inner = n.inner ?? [];
    if (n.kind === "UnaryExprOrTypeTraitExpr") unevaluated = true; // sizeof/alignof: no read
    if (!unevaluated && n.kind === "ImplicitCastExpr" && n.castKind === "LValueToRValue") {
      const sub = inner[0]!;
      const kind = this.lvalueKind(sub);
      if (kind !== "safe") {
        const r = this.user.range(sub);
        if (r) wraps.push([r[0], r[1], kind]);
      }
    }
    for (const c of inner) this.collect(c, wraps, unevaluated);
  }
}

function worst(a: Kind, b: Kind): Kind {
  if (a === "user" || b === "user") return a === "kernel" || b === "kernel" ? "kernel" : "user";
  if (a === "kernel" || b === "kernel") return "kernel";
  return "safe";
}
