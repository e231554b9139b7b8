#!/usr/bin/env node
// npx tsbpf TOOL ...: the CLI, built by esbuild into dist/cli/ (main.js, and a chunk per
// tool that loads only when that tool runs). An installed package has no src/ and runs
// the build straight away. In a checkout, the build runs only when it is newer than every
// source; else the TypeScript sources run through tsx (a devDependency there), so a
// checkout never runs stale code. TSBPF_CLI_FROM_SOURCE=1 forces the sources.
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dirname, "..");
const built = join(root, "dist", "cli", "main.js");
const src = join(root, "src");

function buildIsFresh() {
  if (process.env.TSBPF_CLI_FROM_SOURCE === "1") return false;
  if (!existsSync(src)) return true; // the package: no sources to compare with
  let time;
  try {
    time = statSync(built).mtimeMs;
  } catch {
    return false;
  }
  return readdirSync(src, { recursive: true }).every((f) => !f.endsWith(".ts") || statSync(join(src, f)).mtimeMs <= time);
}

let main;
if (buildIsFresh()) {
  ({ main } = await import("../dist/cli/main.js"));
} else {
  let register;
  try {
    ({ register } = await import("tsx/esm/api"));
  } catch {
    console.error(`tsbpf: ${built} is missing or older than the sources, and tsx is not installed to run them: run "npm install" then "npm run build:cli" in ${root}`);
    process.exit(1);
  }
  register();
  ({ main } = await import("../src/cli/main.ts"));
}
process.exitCode = await main(process.argv.slice(2));
