// Where the tsbpf package's own files are (package.json, include/, build/ with the
// addon, dist/): the nearest package.json above this module. Counting "../" would
// not do: this module runs from src/internal/ and, bundled, from dist/cli/; compiled, from dist/js/internal/.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

function findRoot(): string {
  const start = dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json"))) return dir;
    if (dirname(dir) === dir) throw new Error(`tsbpf: no package.json above ${start}: the package is incomplete`);
  }
}

/** The tsbpf package root. */
export const packageRoot: string = findRoot();
