// BCC's libbpf-tools, built from the local BCC mirror by scripts/libbpf-tools.ts
// (this kernel's vmlinux.h, libbpf-dev's headers) and loaded program by program
// as libbpf loads them; programs whose hook this host has are attached too.
// The tools that use externs (.kconfig LINUX_KERNEL_VERSION, __ksym kfuncs behind
// bpf_ksym_exists) are first in the list. Skips, saying why, without the mirror.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { describe, test } from "node:test";
import {
  BCC_MIRROR, DEFAULT_TOOLS, USDT_TOOLS, buildTool, loadTool, mirrorAvailable, toolSources, type ProgramOutcome,
} from "../../scripts/libbpf-tools.ts";

const EXTERN_TOOLS = ["biolatency", "biosnoop", "bitesize", "capable", "sigsnoop"];

/**
 * Why a program may fail here, other than tsbpf: each one is this host's, and libbpf
 * fails the same way (bpftool prog loadall was checked for softirqs).
 */
const HOST_REASONS: [RegExp, string][] = [
  [/refused under kernel lockdown/, "fentry/fexit under lockdown"],
  [/the kernel's BTF has no func named/, "the function is not in this kernel"],
];
/** Programs the verifier rejects from clang 14's code, as it does under libbpf (counts[vec_nr] unbounded). */
const VERIFIER_KNOWN = new Set(["softirqs/softirq_exit", "softirqs/softirq_exit_btf"]);

describe("libbpf-tools objects", { skip: mirrorAvailable() ? false : `no BCC mirror at ${BCC_MIRROR} (set TSBPF_BCC_MIRROR)` }, () => {
  const results = new Map<string, ProgramOutcome[]>();

  test(`${DEFAULT_TOOLS.length} tools build and every program loads unless this host explains why`, async (t) => {
    const src = await toolSources();
    const unexplained: string[] = [];
    let programs = 0;
    let loaded = 0;
    for (const tool of DEFAULT_TOOLS) {
      const built = await buildTool(src, tool);
      assert.ok(!("error" in built), `${tool} builds: ${"error" in built ? built.error : ""}`);
      if ("error" in built) continue;
      const outcomes = await loadTool(built.object, tool);
      results.set(tool, outcomes);
      for (const o of outcomes) {
        programs++;
        if (o.loaded) {
          loaded++;
          continue;
        }
        if (HOST_REASONS.some(([re]) => re.test(o.error ?? "")) || VERIFIER_KNOWN.has(`${tool}/${o.program}`)) continue;
        unexplained.push(`${tool}/${o.program} (${o.section}): ${o.error}`);
      }
      const ok = outcomes.filter((o) => o.loaded).length;
      t.diagnostic(`${tool}: ${ok}/${outcomes.length} programs load`);
    }
    t.diagnostic(`in all ${loaded}/${programs} programs of ${DEFAULT_TOOLS.length} tools load (libbpf-tools at ${src.commit.slice(0, 12)})`);
    assert.deepEqual(unexplained, []);
  });

  test("the extern users load every program that is not fentry/fexit", () => {
    for (const tool of EXTERN_TOOLS) {
      const outcomes = results.get(tool);
      assert.ok(outcomes, `${tool} was loaded`);
      for (const o of outcomes) {
        if (/^f(entry|exit)\//.test(o.section)) continue;
        assert.ok(o.loaded, `${tool}/${o.program} (${o.section}) loads: ${o.error}`);
      }
    }
    // sigsnoop's kfuncs (bpf_task_from_pid, bpf_task_release) resolved on this 6.18 kernel.
    assert.ok(results.get("sigsnoop")!.length >= 1);
  });

  test("programs on hooks this host has (tracepoints, raw and BTF tracepoints) attach; kprobes say there are none", (t) => {
    let attached = 0;
    const absent: string[] = [];
    for (const [tool, outcomes] of results) {
      for (const o of outcomes) {
        if (!o.loaded || o.attached === undefined) continue;
        if (/^(tracepoint|tp|raw_tp|raw_tracepoint|tp_btf)\//.test(o.section)) {
          if (o.attached) {
            attached++;
            continue;
          }
          // A tool's alternative for other kernels (cachestat's writeback_dirty_page, which 6.18 lacks):
          // the refusal must say so, and the event must really be absent.
          assert.match(o.attachError!, /does not exist on this kernel/, `${tool}/${o.program} (${o.section})`);
          const event = o.section.replace(/^(tracepoint|tp)\//, "");
          if (event !== o.section) assert.equal(existsSync(`/sys/kernel/tracing/events/${event}`), false, `${event} is absent`);
          absent.push(`${tool}/${o.program}`);
        } else if (/^k(ret)?probe\//.test(o.section)) {
          assert.equal(o.attached, false);
          assert.match(o.attachError!, /no kprobes/);
        }
      }
    }
    t.diagnostic(`${attached} programs attached; hooks absent here: ${absent.join(", ") || "none"}`);
    assert.ok(attached >= 50, `${attached} programs attached`);
  });

  for (const tool of USDT_TOOLS) {
    test(`${tool}: SEC("usdt") programs`, { todo: "pending the usdt branch's SEC(\"usdt\") support" }, () => {});
  }
});
