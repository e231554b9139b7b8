// The guest suite's one entry point, run INSIDE each guest kernel by test/vm/vm.test.ts:
//   node --import tsx --test-reporter=tap test/guest/all.ts
// It imports every test/guest/*.guest.ts into this one process, so that all guest checks
// share one boot per kernel (a boot and a node start cost seconds under TCG).
// A guest file registers node:test tests at its top level; TSBPF_GUEST_ONLY=NAME[,NAME]
// (file names without .guest.ts) runs only those files, for work on one of them.
import { readdirSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const dir = dirname(fileURLToPath(import.meta.url));
const only = process.env.TSBPF_GUEST_ONLY?.split(",").filter((s) => s !== "");
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".guest.ts"))
  .filter((f) => !only || only.includes(f.slice(0, -".guest.ts".length)))
  .sort();
for (const f of files) await import(pathToFileURL(`${dir}/${f}`).href);
