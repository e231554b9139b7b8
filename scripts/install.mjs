// npm's install script: the package ships the addon prebuilt for linux-x64
// (prebuilds/linux-x64/tsbpf_native.node, N-API, so one binary serves every Node
// from 20 on). Only where that does not load (another architecture, a checkout
// without one, a prebuilt older than native/tsbpf.c) is it built, with node-gyp.
// Plain JavaScript with no imports of the package: nothing is built yet when it runs.
import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const root = join(import.meta.dirname, "..");
const prebuilt = join(root, "prebuilds", `${process.platform}-${process.arch}`, "tsbpf_native.node");
const source = join(root, "native", "tsbpf.c");

function prebuiltLoads() {
  if (!existsSync(prebuilt)) return false;
  // In a checkout, a prebuilt older than the C is stale (npm pack gives every file the same time).
  if (existsSync(source) && statSync(prebuilt).mtimeMs < statSync(source).mtimeMs) return false;
  try {
    createRequire(import.meta.url)(prebuilt);
    return true;
  } catch (err) {
    console.error(`tsbpf: the prebuilt addon does not load here (${err.message}); building it`);
    return false;
  }
}

if (!prebuiltLoads()) {
  // Under npm, npm_config_node_gyp is npm's own node-gyp; else npx finds one.
  const gyp = process.env.npm_config_node_gyp;
  const r = gyp
    ? spawnSync(process.execPath, [gyp, "rebuild"], { cwd: root, stdio: "inherit" })
    : spawnSync("npx", ["--yes", "node-gyp", "rebuild"], { cwd: root, stdio: "inherit" });
  if (r.status !== 0) {
    console.error("tsbpf: building the native addon failed: it needs python3, make and a C compiler (apt-get install python3 make gcc)");
    process.exit(r.status ?? 1);
  }
}
