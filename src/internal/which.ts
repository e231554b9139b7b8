// Finding programs on PATH, for the tools tsbpf runs and the binaries it probes.
import { accessSync, constants } from "node:fs";
import { delimiter, isAbsolute, join, resolve } from "node:path";

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function pathDirs(extra: readonly string[] = []): string[] {
  const dirs = (process.env.PATH ?? "").split(delimiter).filter((d) => d !== "");
  for (const d of extra) if (!dirs.includes(d)) dirs.push(d);
  return dirs;
}

/** The first executable called `name` on PATH (then in `extra` dirs), or undefined. */
export function which(name: string, extra: readonly string[] = []): string | undefined {
  if (name.includes("/")) {
    const path = resolve(name);
    return isExecutable(path) ? path : undefined;
  }
  for (const dir of pathDirs(extra)) {
    const path = join(isAbsolute(dir) ? dir : resolve(dir), name);
    if (isExecutable(path)) return path;
  }
  return undefined;
}
