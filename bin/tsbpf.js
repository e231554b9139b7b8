#!/usr/bin/env node
// npx tsbpf TOOL ...: the CLI. It runs dist/cli.js, the sources bundled into one file by
// `npm run build:js` (esbuild), when that is newer than every source: faster to start than
// transpiling each module (0.4 s on a host, seconds in an emulated guest). Else it runs the
// TypeScript sources through tsx, so a checkout never runs stale code.
// TSBPF_CLI_FROM_SOURCE=1 forces the sources.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dirname, "..");

function bundleIsFresh() {
  let built;
  try {
    built = statSync(join(root, "dist", "cli.js")).mtimeMs;
  } catch {
    return false;
  }
  const src = join(root, "src");
  return readdirSync(src, { recursive: true }).every((f) => !f.endsWith(".ts") || statSync(join(src, f)).mtimeMs <= built);
}

let main;
if (process.env.TSBPF_CLI_FROM_SOURCE !== "1" && bundleIsFresh()) {
  ({ main } = await import("../dist/cli.js"));
} else {
  const { register } = await import("tsx/esm/api");
  register();
  ({ main } = await import("../src/cli/main.ts"));
}
process.exitCode = await main(process.argv.slice(2));
