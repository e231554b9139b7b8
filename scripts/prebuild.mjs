// npm run build:addon: builds the N-API addon with node-gyp when build/Release is
// missing or older than native/tsbpf.c, and copies it to
// prebuilds/PLATFORM-ARCH/tsbpf_native.node, which the package ships and loads first.
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dirname, "..");
const built = join(root, "build", "Release", "tsbpf_native.node");
const source = join(root, "native", "tsbpf.c");
if (!existsSync(built) || statSync(built).mtimeMs < statSync(source).mtimeMs) {
  const gyp = process.env.npm_config_node_gyp;
  const r = gyp
    ? spawnSync(process.execPath, [gyp, "rebuild"], { cwd: root, stdio: "inherit" })
    : spawnSync("npx", ["--yes", "node-gyp", "rebuild"], { cwd: root, stdio: "inherit" });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
const dir = join(root, "prebuilds", `${process.platform}-${process.arch}`);
mkdirSync(dir, { recursive: true });
copyFileSync(built, join(dir, "tsbpf_native.node"));
console.log(join(dir, "tsbpf_native.node"));
