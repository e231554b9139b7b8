// BCC's KFUNC_PROBE / KRETFUNC_PROBE / LSM_PROBE, translated by the dialect on the host and
// compiled there (test/guest/dialect-programs.ts): they load, attach and fire in the guests,
// where lockdown does not refuse fentry/fexit/LSM programs as it does on the host.
import { test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Collection } from "../../src/index.ts";
import { GUEST_OBJECTS } from "./programs.ts";

const object = (name: string): Uint8Array => new Uint8Array(readFileSync(join(process.env.TSBPF_GUEST_OBJECTS ?? GUEST_OBJECTS, `${name}.o`)));

test("BCC KFUNC_PROBE/KRETFUNC_PROBE (fentry/fexit) count this process's opens; LSM_PROBE attaches", () => {
  using coll = Collection.load(object("bcc_kfunc"), { constants: { target_tgid: process.pid } });
  assert.deepEqual([...coll.spec.programs.keys()].sort(), ["kfunc__vmlinux__do_sys_openat2", "kretfunc__vmlinux__do_sys_openat2", "lsm__file_open"]);
  const links = coll.attachAll();
  try {
    for (let i = 0; i < 5; i++) closeSync(openSync("/proc/self/stat", "r"));
    for (let i = 0; i < 3; i++) {
      try {
        openSync("/nonexistent/tsbpf-dialect", "r");
      } catch {
        // ENOENT: counted as a failed open by the fexit program
      }
    }
    const counts = coll.map("counts");
    const at = (k: number) => Number(counts.lookup(k));
    assert.ok(at(0) >= 8, `fentry calls ${at(0)}`);
    assert.ok(at(1) >= 5, `fexit successes ${at(1)}`);
    assert.ok(at(2) >= 3, `fexit failures ${at(2)}`);
    // The BPF LSM runs programs only when "bpf" is among the active LSMs (lsm= on the command line).
    let lsms = "";
    try {
      lsms = readFileSync("/sys/kernel/security/lsm", "utf8").trim();
    } catch {
      // securityfs not mounted: whether the BPF LSM runs is unknown
    }
    if (lsms.split(",").includes("bpf")) assert.ok(at(3) >= 5, `file_open ${at(3)} (active LSMs: ${lsms})`);
  } finally {
    for (const l of links) l.close();
  }
});
