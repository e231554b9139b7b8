// Cold and warm cost of a BCC compile: translate, clang's AST pass for the implicit
// kernel reads, then the object compile; against the same without the AST pass
// (what a cold compile cost before src/bcc/kernelreads.ts). "Cold" = nothing of
// this text cached (a nonce comment makes each run's text new); vmlinux.h and the
// AST pass's precompiled prefix stay warm, as on any machine after its first
// BCC program. Not a test: prints the figures.
//
//   node --import tsx bench/bcc-cold.ts [RUNS] [TOOL...]     (tools from the corpus cache, scripts/bcc-corpus.ts)
import { readFormat } from "../src/bcc/tracepoint.ts";
import { translate, translateBcc } from "../src/bcc/dialect.ts";
import { compile } from "../src/compile/compile.ts";
import { PRELUDE_HEADERS } from "../src/bcc/prelude.ts";
import { syscallPrefix } from "../src/link/syscall.ts";
import { probesAvailable } from "../src/link/probe.ts";
import { CORPUS, bccMirror, bccPython, extractCorpus } from "../scripts/bcc-corpus.ts";

const runs = Number(process.argv[2] ?? 3);
const names = process.argv.slice(3);
const tools = names.length ? names : ["opensnoop", "runqlat", "biosnoop", "tcpconnect", "execsnoop", "filetop"];
const mirror = bccMirror();
const python = bccPython();
if (!mirror || !python) throw new Error("needs BCC's repository and python3-bpfcc (see scripts/bcc-corpus.ts)");
const extracted = extractCorpus(CORPUS.filter((t) => tools.includes(t.tool)), mirror, python);
const kprobes = probesAvailable("kprobe");
const prefix = syscallPrefix();

/** Without the AST pass and the PCH: what a cold compile cost before both. */
async function once(text: string, cflags: string[], withAst: boolean): Promise<number> {
  const opts = { file: "bench.c", kprobes, syscallWrappers: prefix !== "sys_", syscallPrefix: prefix, tracepointFormat: readFormat, cflags };
  const t0 = performance.now();
  const code = withAst ? (await translateBcc(text, opts)).code : translate(text, opts).code;
  await compile({ text: code, name: "bench.bcc.c" }, { cflags, ...(withAst ? { prefixHeaders: PRELUDE_HEADERS } : {}) });
  return performance.now() - t0;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
let sumBefore = 0;
let sumAfter = 0;
for (const e of extracted) {
  if (!e.text) continue;
  const before: number[] = [];
  const after: number[] = [];
  const warm: number[] = [];
  for (let r = 0; r < runs; r++) {
    const nonce = `\n// bench ${process.pid} ${Date.now()} ${r}\n`;
    before.push(await once(e.text + nonce + "// without\n", e.cflags, false));
    after.push(await once(e.text + nonce + "// with\n", e.cflags, true));
    warm.push(await once(e.text + nonce + "// with\n", e.cflags, true));
  }
  const b = median(before);
  const a = median(after);
  sumBefore += b;
  sumAfter += a;
  console.log(`${e.tool.padEnd(12)} cold without AST ${b.toFixed(0)} ms, with ${a.toFixed(0)} ms (${(a / b).toFixed(2)}x), warm ${median(warm).toFixed(0)} ms`);
}
console.log(`all: ${(sumAfter / sumBefore).toFixed(2)}x (${sumBefore.toFixed(0)} -> ${sumAfter.toFixed(0)} ms)`);
