// tsbpf gen: TypeScript from a BPF object's BTF (typed skeletons, interfaces).
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, relative, resolve, sep } from "node:path";
import { compile } from "../compile/index.ts";
import { UsageError } from "../errors.ts";
import { generateSkeleton, generateTypes } from "../gen/index.ts";
import { SyscallError } from "../internal/sys/errors.ts";
import { ObjectSpec } from "../object/spec.ts";
import { parseToolArgs } from "./tool.ts";

const USAGE = `usage: tsbpf gen skeleton INPUT [-o FILE] [--embed] [--import SPECIFIER] [--type NAME]... [--cflags FLAGS]
       tsbpf gen types INPUT [-o FILE] [--type NAME]... [--cflags FLAGS]

INPUT is a BPF object (prog.bpf.o, built with -g) or C source (prog.bpf.c, compiled with
tsbpf's compile(): clang, vmlinux.h, libbpf's headers).

skeleton  A TypeScript module whose load(options) loads the object and returns typed
          programs, maps (TypedMap<Key, Value> as the BTF codecs decode them), rodata, data
          and bss variables, and codecs of its structs for RingBufReader/PerfReader:
            import { load, codecs } from "./prog.skel.ts";
            using skel = load({ rodata: { target_pid: 1234 } });
            skel.attach();
            new RingBufReader(skel.maps.rb, { decode: codecs.Event }).onEvent((e) => ...);
          The module refers to the object by its path relative to the module (checked by
          sha256 at load); a C INPUT is compiled to the .o next to it. --embed carries the
          object inside the module (base64) instead, so the module ships alone.
types     Interfaces (and enum const objects) for the object's named structs, unions and
          enums: struct event -> interface Event, with the C declaration of each member.

options:
  -o, --output FILE     write here (default: stdout; the object path is then relative to
                        the current directory)
      --embed           skeleton: embed the object instead of referring to it
      --import SPEC     skeleton: where the module imports tsbpf from (default "tsbpf")
      --type NAME       only this type (and what it uses) besides maps' and variables' types;
                        repeatable; "event", "struct event", "enum kind" or "Event"
      --cflags FLAGS    extra clang flags for a C INPUT ("-DDEBUG -O1")
  -h, --help            this text

Types follow the codecs: u8..u32, int, float -> number; u64, s64, pointers -> bigint;
bool -> boolean; char[N] -> string; other arrays -> T[]; named enums -> a union of their
values with a const object of the names.`;

const OPTIONS = {
  output: { type: "string", short: "o" },
  embed: { type: "boolean" },
  import: { type: "string" },
  type: { type: "string", multiple: true },
  cflags: { type: "string" },
} as const;

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, OPTIONS, USAGE);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  const [what, input, ...more] = positionals;
  if (what !== "skeleton" && what !== "types") {
    throw new UsageError(what ? `unknown kind "${what}": tsbpf gen skeleton INPUT or tsbpf gen types INPUT` : "say what to generate: tsbpf gen skeleton INPUT or tsbpf gen types INPUT");
  }
  if (input === undefined || more.length) throw new UsageError(`gen ${what} takes one INPUT (a .bpf.o or a .bpf.c), got ${positionals.length - 1}`);
  if (what === "types" && (values.embed || values.import)) throw new UsageError("--embed and --import are for skeletons");
  if (values.output === "") throw new UsageError("-o/--output: an empty file name");
  checkInput(input);
  const { bytes, objectPath } = await objectOf(input, values.cflags, what === "skeleton" && !values.embed);
  const name = objectPath ? baseName(objectPath) : baseName(input);
  const spec = ObjectSpec.fromBytes(bytes, name);
  let text: string;
  if (what === "types") {
    text = generateTypes(spec, { types: values.type, source: baseName(input) });
  } else {
    const from = values.output ? dirname(resolve(values.output)) : process.cwd();
    text = generateSkeleton(spec, {
      bytes,
      embed: values.embed,
      objectPath: objectPath ? relativeSpecifier(from, resolve(objectPath)) : undefined,
      importFrom: values.import,
      types: values.type,
      source: name,
    });
  }
  if (values.output) {
    const output = values.output;
    fileOp(`cannot write ${output}`, () => {
      makeDirs(dirname(resolve(output)));
      writeFileSync(output, text);
    });
  } else {
    process.stdout.write(text);
  }
  return 0;
}

/** A missing INPUT or a directory is a usage error (exit 2); what the file system refuses later is a SyscallError. */
function checkInput(input: string): void {
  if (input === "") throw new UsageError("INPUT is an empty file name");
  let stat;
  try {
    stat = statSync(input);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") throw new UsageError(`${input}: no such file`);
    throw fsError(`cannot read ${input}`, err);
  }
  if (stat.isDirectory()) throw new UsageError(`${input} is a directory; INPUT is a BPF object (.bpf.o) or C source (.bpf.c)`);
  if (!stat.isFile()) throw new UsageError(`${input} is not a regular file; INPUT is a BPF object (.bpf.o) or C source (.bpf.c)`);
}

/** Runs a file-system step; its failure becomes one sentence ("cannot write out.ts: EACCES (permission denied)"). */
function fileOp<T>(what: string, op: () => T): T {
  try {
    return op();
  } catch (err) {
    throw fsError(what, err);
  }
}

/**
 * mkdir -p, one level at a time: node 20's mkdirSync({ recursive: true }) spins
 * forever on a path under /proc whose parent does not exist.
 */
function makeDirs(dir: string): void {
  if (existsSync(dir)) return;
  const parent = dirname(dir);
  if (parent !== dir) makeDirs(parent);
  mkdirSync(dir);
}

function fsError(what: string, err: unknown): Error {
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.code !== "string" || typeof e.errno !== "number") return err as Error;
  const detail = e.message.replace(/^[A-Z]+: /, "").replace(/, \w+ '.*'$/, "");
  return new SyscallError(`${what}: ${e.code} (${detail})`, -e.errno, e.code, e.syscall ?? "", { cause: err });
}

/** The object's bytes; `objectPath` is where the skeleton finds it (a C input's .o is written next to it). */
async function objectOf(input: string, cflags: string | undefined, wantPath: boolean): Promise<{ bytes: Uint8Array; objectPath?: string }> {
  if (!/\.c$/.test(input)) return { bytes: new Uint8Array(fileOp(`cannot read ${input}`, () => readFileSync(input))), objectPath: input };
  const compiled = await compile({ file: input }, { cflags: cflags?.split(/\s+/).filter((f) => f !== "") });
  if (!wantPath) return { bytes: compiled.bytes };
  const objectPath = input.replace(/\.c$/, ".o");
  fileOp(`cannot write ${objectPath}`, () => writeFileSync(objectPath, compiled.bytes));
  return { bytes: compiled.bytes, objectPath };
}

function baseName(path: string): string {
  return path.split(/[\\/]/).pop() ?? path;
}

/** "./prog.bpf.o", "../bpf/prog.bpf.o": a URL path relative to the module's directory. */
function relativeSpecifier(fromDir: string, to: string): string {
  const rel = relative(fromDir, to).split(sep).join("/");
  return rel.startsWith("../") ? rel : `./${rel}`;
}
