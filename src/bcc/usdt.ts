// BCC's USDT class and bpf_usdt_readarg()/bpf_usdt_readarg_p() in BCC's C.
//
// BCC generates, per enabled probe, C that reads each argument from pt_regs as
// the note's spec says, switching on the IP where a probe has several locations,
// and rewrites each readarg call inside the function to that probe's reader.
// tsbpf routes BCC's calls through the protocol of libbpf's usdt.bpf.h instead:
// the specs go into a map at attach (link/usdt.ts), each location's uprobe link
// carries its spec id as BPF cookie, and one reader serves every probe. Why: one
// attach path for SEC("usdt") objects and BCC text (semaphores, pids, several
// locations with different specs), no rewriting of the user's functions (the
// readarg calls stay as written, a macro of the prelude), and the same compiled
// object serves any binary, so the text's translation (and its cache key) does
// not depend on the probed binary. The cost is a map lookup per argument read.
import { readFileSync, realpathSync } from "node:fs";
import { ElfFile } from "../elf/index.ts";
import { readUsdtProbes, type UsdtProbe } from "../elf/usdt.ts";
import { UsageError } from "../errors.ts";
import { resolveBinary } from "../link/uprobe.ts";
import type { UsdtTarget } from "../link/hooks.ts";

export interface UsdtContextOptions {
  /** The binary or library with the probes (a path, a program on PATH, a library name). */
  path?: string;
  /** A running process: its executable and the libraries it has mapped, and only its events. */
  pid?: number;
}

/** BCC's USDT(path=..., pid=...): the probes to enable, given to BPF.load({ text }, { usdtContexts: [u] }). */
export class USDT {
  readonly path: string | undefined;
  readonly pid: number | undefined;
  readonly #enabled: { provider: string; name: string; fnName: string; binary: string }[] = [];
  #probeCache = new Map<string, UsdtProbe[]>();

  constructor(opts: UsdtContextOptions) {
    if (opts.path === undefined && opts.pid === undefined) throw new UsageError("USDT: give a path or a pid");
    this.pid = opts.pid;
    this.path = opts.path !== undefined ? realpathSync(resolveBinary(opts.path)) : undefined;
  }

  /** The binaries to search: the path, else the process's executable, then its mapped libraries. */
  #binaries(): string[] {
    if (this.path) return [this.path];
    const pid = this.pid!;
    let exe: string;
    try {
      exe = realpathSync(`/proc/${pid}/exe`);
    } catch (err) {
      throw new UsageError(`USDT: no process ${pid} (${(err as Error).message})`, { cause: err });
    }
    const libs = new Set<string>();
    for (const line of readFileSync(`/proc/${pid}/maps`, "utf8").split("\n")) {
      const file = line.split(/\s+/).slice(5).join(" ");
      if (file.startsWith("/") && file !== exe && !file.endsWith(" (deleted)")) libs.add(file);
    }
    return [exe, ...libs];
  }

  #probesOf(binary: string): UsdtProbe[] {
    let probes = this.#probeCache.get(binary);
    if (!probes) {
      try {
        probes = readUsdtProbes(new ElfFile(new Uint8Array(readFileSync(binary)), binary));
      } catch {
        probes = []; // a mapped file that is not an ELF (a locale archive) has no probes
      }
      this.#probeCache.set(binary, probes);
    }
    return probes;
  }

  /** Every probe of the context's binaries, as "provider:name", with the binary that has it. */
  enumerateProbes(): { provider: string; name: string; binary: string; locations: number; argText: string }[] {
    const out = new Map<string, { provider: string; name: string; binary: string; locations: number; argText: string }>();
    for (const binary of this.#binaries()) {
      for (const p of this.#probesOf(binary)) {
        const key = `${binary}\0${p.provider}:${p.name}`;
        const seen = out.get(key);
        if (seen) seen.locations++;
        else out.set(key, { provider: p.provider, name: p.name, binary, locations: 1, argText: p.argText });
      }
    }
    return [...out.values()];
  }

  /**
   * BCC's enable_probe(probe, fn_name): run function `fnName` of the BPF text at
   * probe "name" or "provider:name"; it reads arguments with bpf_usdt_readarg(N, ctx, &v)
   * (N from 1) and bpf_usdt_readarg_p(N, ctx, buf, len).
   */
  enableProbe(probe: string, fnName: string): void {
    const colon = probe.lastIndexOf(":");
    const provider = colon >= 0 ? probe.slice(0, colon) : undefined;
    const name = colon >= 0 ? probe.slice(colon + 1) : probe;
    const found = this.enumerateProbes().filter((p) => p.name === name && (provider === undefined || p.provider === provider));
    const where = this.path ?? `process ${this.pid}`;
    if (!found.length) {
      const have = [...new Set(this.enumerateProbes().map((p) => `${p.provider}:${p.name}`))];
      throw new UsageError(`USDT: no probe ${probe} in ${where}${have.length ? `; it has ${have.slice(0, 12).join(", ")}${have.length > 12 ? ", ..." : ""}` : " (it has no USDT probes)"}`);
    }
    const providers = new Set(found.map((p) => `${p.binary}:${p.provider}`));
    if (providers.size > 1) throw new UsageError(`USDT: probe ${probe} is in several places (${[...providers].join(", ")}); write it as provider:name`);
    const p = found[0]!;
    this.#enabled.push({ provider: p.provider, name: p.name, fnName, binary: p.binary });
  }

  /** BCC's spelling. */
  enable_probe(probe: string, fn_name: string): void {
    this.enableProbe(probe, fn_name);
  }

  /** BCC's enable_probe_or_bail: BCC prints and exits; here the UsageError says the same (the CLI prints it, exit 2). */
  enable_probe_or_bail(probe: string, fn_name: string): void {
    this.enableProbe(probe, fn_name);
  }

  /**
   * BCC's get_text() (the tools print it under -v): the C that reads the enabled probes'
   * arguments. Here that is the same for every probe, usdt.bpf.h's spec map and reader,
   * which the prelude adds when the text calls bpf_usdt_readarg.
   */
  getText(): string {
    return this.#enabled.length ? usdtPrelude("bpf_usdt_readarg") : "";
  }

  /** BCC's spelling. */
  get_text(): string {
    return this.getText();
  }

  /** What BPF.load attaches: each enabled probe's function and registry target. */
  targets(): { fnName: string; target: UsdtTarget }[] {
    return this.#enabled.map((e) => ({ fnName: e.fnName, target: { hook: "usdt", path: e.binary, provider: e.provider, name: e.name, pid: this.pid } }));
  }
}

/**
 * C for the prelude when the text reads USDT arguments: usdt.bpf.h's spec map
 * (same layout, filled at attach by link/usdt.ts) and BCC's readarg calls as
 * macros over one reader. Arguments count from 1, as in BCC.
 */
export function usdtPrelude(text: string): string {
  if (!/\bbpf_usdt_readarg(_p)?\b/.test(text)) return "";
  return `
/* USDT arguments (src/bcc/usdt.ts): the spec map of libbpf's usdt.bpf.h, one spec per probe location, its id the link's BPF cookie */
struct __bpf_usdt_arg_spec { __u64 val_off; __u32 arg_type; short reg_off; bool arg_signed; char arg_bitshift; };
struct __bpf_usdt_spec { struct __bpf_usdt_arg_spec args[12]; __u64 usdt_cookie; short arg_cnt; };
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, int);
	__type(value, struct __bpf_usdt_spec);
} __bpf_usdt_specs SEC(".maps");

static __always_inline int __tsbpf_usdt_arg(struct pt_regs *ctx, __u64 n, __u64 *res)
{
	int id = (int)bpf_get_attach_cookie(ctx);
	struct __bpf_usdt_spec *spec;
	struct __bpf_usdt_arg_spec *a;
	__u64 val = 0;
	long err = 0;

	*res = 0;
	spec = bpf_map_lookup_elem(&__bpf_usdt_specs, &id);
	if (!spec)
		return -3; /* ESRCH */
	if (n >= 12 || n >= (__u64)spec->arg_cnt)
		return -2; /* ENOENT */
	a = &spec->args[n];
	switch (a->arg_type & 0xff) {
	case 0: /* a constant */
		val = a->val_off;
		break;
	case 1: /* a register */
		err = bpf_probe_read_kernel(&val, sizeof(val), (void *)ctx + a->reg_off);
		break;
	case 2: /* memory at a register plus an offset */
		err = bpf_probe_read_kernel(&val, sizeof(val), (void *)ctx + a->reg_off);
		if (!err)
			err = bpf_probe_read_user(&val, sizeof(val), (void *)(val + a->val_off));
		break;
	default:
		return -22; /* EINVAL */
	}
	if (err)
		return err;
	val <<= a->arg_bitshift;
	val = a->arg_signed ? (__u64)((__s64)val >> a->arg_bitshift) : val >> a->arg_bitshift;
	*res = val;
	return 0;
}

#define bpf_usdt_readarg(n, ctx, addr) ({ __u64 __tsbpf_v; int __tsbpf_e = __tsbpf_usdt_arg((struct pt_regs *)(ctx), (n) - 1, &__tsbpf_v); *(addr) = (typeof(*(addr)))__tsbpf_v; __tsbpf_e; })
#define bpf_usdt_readarg_p(n, ctx, buf, len) ({ __u64 __tsbpf_a; int __tsbpf_e = __tsbpf_usdt_arg((struct pt_regs *)(ctx), (n) - 1, &__tsbpf_a); if (!__tsbpf_e) __tsbpf_e = bpf_probe_read_user((buf), (len), (void *)__tsbpf_a); __tsbpf_e; })
`;
}
