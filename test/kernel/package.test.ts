// The npm package as a user gets it: packed from the tracked files, installed with
// --ignore-scripts (so nothing is compiled: the addon must be the prebuilt one) into an
// empty project, then used from plain JavaScript, type-checked by a strict TypeScript
// consumer, and run as `npx tsbpf`.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { root, tempDir } from "../support/tools.ts";

const work = tempDir("tsbpf-package-");
const consumer = join(work.path, "consumer");
const installed = join(consumer, "node_modules", "tsbpf");
let listing: string[] = [];

before(() => {
  // Pack a copy of the tracked files, so that prepack's build (dist/, prebuilds/) does not
  // write into this checkout, where a new dist/bpf would change what other tests run.
  const copy = join(work.path, "source");
  for (const f of execFileSync("git", ["ls-files", "-z"], { cwd: root, encoding: "utf8" }).split("\0").filter(Boolean)) {
    if (!existsSync(join(root, f))) continue; // deleted in the working tree
    mkdirSync(dirname(join(copy, f)), { recursive: true });
    copyFileSync(join(root, f), join(copy, f));
  }
  symlinkSync(join(root, "node_modules"), join(copy, "node_modules"));
  const name = execFileSync("npm", ["pack", "--silent", "--pack-destination", work.path], { cwd: copy, encoding: "utf8" }).trim().split("\n").pop()!;
  const tarball = join(work.path, name);
  listing = execFileSync("tar", ["-tzf", tarball], { encoding: "utf8" }).split("\n").filter(Boolean);

  mkdirSync(consumer);
  writeFileSync(join(consumer, "package.json"), `${JSON.stringify({ name: "consumer", private: true, type: "module" })}\n`);
  execFileSync("npm", ["install", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline", tarball], { cwd: consumer, stdio: "pipe" });
});

after(() => work[Symbol.dispose]());

test("the tarball holds the build, the prebuilt addon, the headers and the tools' objects, and no tests, benchmarks or TypeScript sources", () => {
  for (const f of [
    "package.json", "README.md", "LICENSE", "bin/tsbpf.js", "dist/cli/main.js", "dist/js/index.js", "dist/js/index.d.ts",
    "dist/js/bcc/index.d.ts", "dist/js/gen/index.d.ts", "dist/js/vm/run.d.ts", "prebuilds/linux-x64/tsbpf_native.node",
    "dist/bpf/opensnoop.bpf.o", "dist/bpf/execsnoop.bpf.o", "include/tsbpf.h", "native/tsbpf.c", "binding.gyp", "scripts/install.mjs",
  ]) {
    assert.ok(listing.includes(`package/${f}`), `the package has no ${f}`);
  }
  const shipped = (pattern: RegExp) => listing.filter((f) => pattern.test(f));
  // Every header a tool's C includes, so that a tool whose object is stale or missing compiles.
  for (const c of shipped(/^package\/src\/cli\/bpf\/.*\.bpf\.c$/)) {
    const text = readFileSync(join(root, c.slice("package/".length)), "utf8");
    for (const [, h] of text.matchAll(/^#include "([^"]+\.h)"/gm)) {
      if (h !== "vmlinux.h") assert.ok(listing.includes(`package/src/cli/bpf/${h}`), `${c} includes ${h}, which the package lacks`);
    }
  }
  assert.deepEqual(shipped(/^package\/(test|bench|examples|\.ci)\//), []);
  assert.deepEqual(shipped(/\.ts$/).filter((f) => !f.endsWith(".d.ts")), [], "no TypeScript sources");
  assert.deepEqual(shipped(/\.o$/).filter((f) => !f.startsWith("package/dist/bpf/")), [], "no build intermediates");
});

test("installed with --ignore-scripts, a plain .mjs loads a BCC program through the facade and counts its own opens", () => {
  writeFileSync(
    join(consumer, "count.mjs"),
    `import { openSync } from "node:fs";
import { createRequire } from "node:module";
import { BPF } from "tsbpf";

const b = await BPF.load({ text: \`
BPF_HASH(opens, u32, u64);
TRACEPOINT_PROBE(syscalls, sys_enter_openat) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    opens.increment(pid);
    return 0;
}\` });
for (let i = 0; i < 7; i++) {
  try { openSync("/nonexistent/tsbpf-package-test", "r"); } catch {}
}
const count = b.get("opens").get(process.pid);
b.cleanup();
const { version } = createRequire(import.meta.url)("tsbpf/package.json");
console.log(JSON.stringify({ count: String(count), version }));
`,
  );
  const r = spawnSync(process.execPath, ["count.mjs"], { cwd: consumer, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split("\n").pop()!) as { count: string; version: string };
  const count = Number(out.count);
  assert.equal(out.version, "0.1.0", "tsbpf/package.json is exported");
  // Seven of ours; Node itself may open a file or two in between.
  assert.ok(count >= 7 && count < 20, `count ${count}`);
  assert.equal(existsSync(join(installed, "build")), false, "nothing was compiled at install");
});

test("a strict TypeScript consumer (module node16, skipLibCheck false) type-checks against the shipped declarations", () => {
  mkdirSync(join(consumer, "node_modules", "@types"), { recursive: true });
  symlinkSync(join(root, "node_modules", "@types", "node"), join(consumer, "node_modules", "@types", "node"));
  writeFileSync(
    join(consumer, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        strict: true, module: "node16", moduleResolution: "node16", target: "ES2022", lib: ["ES2023", "ESNext.Disposable"],
        types: ["node"], skipLibCheck: false, noEmit: true, exactOptionalPropertyTypes: false,
      },
      files: ["use.ts"],
    }),
  );
  writeFileSync(
    join(consumer, "use.ts"),
    `import { BPF, Collection, ObjectSpec, RingBufReader, TsbpfError, type CollectionOptions } from "tsbpf";
import { BPF as BccBPF, translate } from "tsbpf/bcc";
import { generateTypes, SkeletonObject } from "tsbpf/gen";
import { runVm } from "tsbpf/vm";

export function open(bytes: Uint8Array): Collection {
  const spec: ObjectSpec = ObjectSpec.fromBytes(bytes);
  const options: CollectionOptions = { constants: { target_pid: 1 } };
  return Collection.load(spec, options);
}
export const sameFacade: typeof BPF = BccBPF;
export const code = (err: unknown): string | undefined => (err instanceof TsbpfError ? err.code : undefined);
export const parts = [translate, generateTypes, SkeletonObject, RingBufReader, runVm] as const;
`,
  );
  const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
  const r = spawnSync(process.execPath, [tsc, "-p", "."], { cwd: consumer, encoding: "utf8" });
  assert.equal(r.status, 0, `tsc: ${r.stdout}${r.stderr}`);
  // And the mistakes a consumer makes are caught through the same declarations.
  writeFileSync(join(consumer, "use.ts"), `import { Collection } from "tsbpf";\nexport const n: number = Collection.load;\n`);
  const bad = spawnSync(process.execPath, [tsc, "-p", "."], { cwd: consumer, encoding: "utf8" });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stdout, /TS2322/);
});

test("npx tsbpf opensnoop -d 2 runs from the package: the built CLI and the shipped object, no clang, nothing compiled", () => {
  const cache = join(work.path, "empty-cache");
  const r = spawnSync("npx", ["tsbpf", "opensnoop", "-d", "2"], {
    cwd: consumer,
    encoding: "utf8",
    env: { ...process.env, TSBPF_CLANG: "/nonexistent/clang", TSBPF_CACHE_DIR: cache, TSBPF_TOOL_OBJECTS: "" },
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout.split("\n")[0]!, /^PID\s+COMM\s+FD\s+ERR\s+PATH$/);
  assert.equal(existsSync(join(cache, "objects")), false, "nothing was compiled");
  // The installed package carries no sources, so bin/tsbpf.js runs dist/cli without looking for them.
  assert.equal(existsSync(join(installed, "src", "index.ts")), false);
  assert.ok(readdirSync(join(installed, "dist", "cli")).some((f) => f.startsWith("opensnoop-")), "opensnoop is a chunk of its own");
  assert.ok(statSync(join(installed, "prebuilds", "linux-x64", "tsbpf_native.node")).size > 0);
});
