// Reading a kernel config file (a .config, /boot/config-*, /proc/config.gz), with
// no other dependency: the BCC dialect reads the target kernel's through this.
import { readFileSync } from "node:fs";
import { release } from "node:os";
import { gunzipSync } from "node:zlib";
import { ObjectError } from "../object/errors.ts";

/** The text of a kernel config file; like gzopen, it may be gzip-compressed or plain. */
export function readConfigFile(path: string): string {
  const bytes = readFileSync(path);
  return bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes).toString("utf8") : bytes.toString("utf8");
}

/** The text of the running kernel's config, and where it came from; throws an ObjectError when there is none. */
export function readKernelConfigText(): { text: string; path: string } {
  const tried: string[] = [];
  for (const path of [`/boot/config-${release()}`, "/proc/config.gz"]) {
    try {
      return { text: readConfigFile(path), path };
    } catch (err) {
      tried.push(`${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  throw new ObjectError(`cannot read the kernel's config (${tried.join("; ")}); a kernel built with CONFIG_IKCONFIG_PROC has /proc/config.gz`);
}
