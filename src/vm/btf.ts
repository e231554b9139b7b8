// The BTF of the VM harness's kernels, for CO-RE tests against kernels other
// than the running one: the raw .BTF section of the kernel's ELF vmlinux (the
// PVH image the harness already unpacked, or the bzImage's payload
// decompressed), written once to <cache>/kernels/btf/<kernel>.btf. The file is
// what /sys/kernel/btf/vmlinux holds when that kernel runs.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ElfFile } from "../elf/file.ts";
import { parseHeader } from "../btf/parse.ts";
import { cacheDir, VmError, type Log } from "./host.ts";
import { resolveKernel, vmlinuxOf, type Kernel } from "./kernels.ts";

/** The raw BTF (`.BTF` section) of an ELF vmlinux. */
export function btfOfVmlinux(elf: Uint8Array, what = "vmlinux"): Uint8Array {
  const file = new ElfFile(elf, what);
  const section = file.section(".BTF");
  if (!section || section.size === 0) throw new VmError(`${what} has no .BTF section (a kernel built without CONFIG_DEBUG_INFO_BTF)`);
  const raw = section.data();
  parseHeader(raw); // a BTF header, whole
  return raw;
}

function btfPathOf(kernel: Kernel): string {
  const dir = join(cacheDir(), "kernels", "btf");
  if (/^linux-image-[\w.+-]+$/.test(kernel.name)) return join(dir, `${kernel.name}.btf`);
  const st = statSync(kernel.vmlinuz);
  const key = createHash("sha256").update(`${kernel.vmlinuz}:${st.size}:${st.mtimeMs}`).digest("hex").slice(0, 16);
  return join(dir, `local-${key}.btf`);
}

/**
 * The path of a cached file holding `kernel`'s raw BTF, extracting it first
 * when it is not there yet (from the PVH vmlinux when the harness made one,
 * else by decompressing the bzImage).
 */
export function kernelBtfFile(kernel: Kernel, log: Log = () => {}): string {
  const path = btfPathOf(kernel);
  if (existsSync(path)) return path;
  const started = Date.now();
  const elf = kernel.pvh ? readFileSync(kernel.pvh) : vmlinuxOf(kernel.vmlinuz, log);
  const raw = btfOfVmlinux(elf, kernel.pvh ?? kernel.vmlinuz);
  mkdirSync(join(cacheDir(), "kernels", "btf"), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, raw);
  renameSync(tmp, path);
  log(`${kernel.name}: BTF (${raw.length} bytes) extracted in ${Date.now() - started} ms to ${path}`);
  return path;
}

/**
 * The BTF file of a kernel as `tsbpf vm --kernel` names it: a series ("6.1",
 * "6.12", fetched into the cache when absent) or the path of a vmlinuz.
 */
export function vmKernelBtf(kernel: string, log: Log = () => {}): string {
  try {
    return kernelBtfFile(resolveKernel(kernel, log), log);
  } catch (err) {
    if (err instanceof VmError) throw err;
    throw new VmError(`kernel ${kernel}: cannot extract its BTF: ${(err as Error).message}`);
  }
}
