// The hook registry (unit: no root, no kernel), and the tracefs checks that keep
// names out of paths and probe definitions. The last tests need root: attaching
// through the registry with a bad tracepoint name, and more programs on one trace
// event than the kernel allows.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ProgType, AttachType } from "../../src/internal/sys/constants.ts";
import {
  attachHook, describeTarget, hooks, sectionDef, sectionDefs, sectionOf, targetOfSection, type HookKind, type HookTarget,
} from "../../src/link/hooks.ts";
import { sectionDef as sectionDefViaObject } from "../../src/object/sections.ts";
import { AttachError } from "../../src/link/errors.ts";
import { addProbeEvent, badEventName, badProbeLocation, probeEventsFile, tracepointExists } from "../../src/tracing/tracefs.ts";
import { BPF_TRACE_MAX_PROGS } from "../../src/link/link.ts";

const root = process.getuid?.() === 0;

test("every section prefix names a hook kind of the registry, and a program type that hook takes", () => {
  for (const def of sectionDefs) {
    const hook = hooks[def.attach];
    assert.ok(hook, `${def.prefix}: hook ${def.attach}`);
    if (def.attach !== "none") assert.ok(hook.progTypes.includes(def.progType), `${def.prefix}: ${def.progType} not in ${def.attach}`);
    else assert.ok(def.means, `${def.prefix}: an "attached by other means" entry says to what`);
  }
  // The ELF reader reads the same table.
  assert.equal(sectionDefViaObject, sectionDef);
});

test("section names resolve as libbpf's do: longest prefix, bare names, exact names", () => {
  const cases: [string, HookKind, number, number | undefined][] = [
    ["tracepoint/syscalls/sys_enter_openat", "tracepoint", ProgType.TRACEPOINT, undefined],
    ["tp/sched/sched_switch", "tracepoint", ProgType.TRACEPOINT, undefined],
    ["raw_tp.w/sched_switch", "raw_tracepoint", ProgType.RAW_TRACEPOINT_WRITABLE, undefined],
    ["kprobe/do_sys_openat2", "kprobe", ProgType.KPROBE, undefined],
    ["kprobe", "kprobe", ProgType.KPROBE, undefined],
    ["ksyscall/openat", "ksyscall", ProgType.KPROBE, undefined],
    ["uprobe.s//bin/bash:readline", "uprobe", ProgType.KPROBE, undefined],
    ["fentry/do_unlinkat", "tracing", ProgType.TRACING, AttachType.TRACE_FENTRY],
    ["lsm/file_open", "tracing", ProgType.LSM, AttachType.LSM_MAC],
    ["xdp.frags/devmap", "none", ProgType.XDP, AttachType.XDP_DEVMAP],
    ["perf_event", "none", ProgType.PERF_EVENT, undefined],
    ["cgroup/connect4", "cgroup", ProgType.CGROUP_SOCK_ADDR, AttachType.CGROUP_INET4_CONNECT],
  ];
  for (const [section, hook, progType, attachType] of cases) {
    const def = sectionDef(section);
    assert.ok(def, section);
    assert.deepEqual([def.attach, def.progType, def.attachType], [hook, progType, attachType], section);
  }
  assert.equal(sectionDef("kprobes/x"), undefined);
  assert.equal(sectionDef("xdpfoo"), undefined);
  assert.equal(sectionDef("perf_event")?.means, "a perf event (perf_event_open: a timer, a counter): program.attachPerfEvent({ event, frequency })");
});

test("targets are read from section tails and written back the same way", () => {
  const cases: [HookKind, string, string, HookTarget][] = [
    ["tracepoint", "syscalls/sys_enter_openat", "tracepoint/syscalls/sys_enter_openat", { hook: "tracepoint", category: "syscalls", event: "sys_enter_openat" }],
    ["raw_tracepoint", "sched_switch", "raw_tp/sched_switch", { hook: "raw_tracepoint", event: "sched_switch" }],
    ["kprobe", "do_sys_openat2+8", "kprobe/do_sys_openat2+8", { hook: "kprobe", symbol: "do_sys_openat2", offset: 8 }],
    ["ksyscall", "openat", "ksyscall/openat", { hook: "ksyscall", syscall: "openat" }],
    ["uretprobe", "/bin/bash:readline", "uretprobe//bin/bash:readline", { hook: "uretprobe", path: "/bin/bash", symbol: "readline", offset: undefined }],
  ];
  for (const [kind, tail, section, want] of cases) {
    const got = targetOfSection(kind, tail, section);
    assert.deepEqual(got, want, section);
    assert.equal(sectionOf(got!), section.replace("raw_tp/", "raw_tracepoint/"));
  }
  assert.equal(targetOfSection("kprobe", "", "kprobe"), undefined, "a bare kprobe takes its target at attach");
  assert.equal(describeTarget({ hook: "uprobe", path: "/bin/bash", offset: 0x10 }), "uprobe:/bin/bash:0x10");
  assert.throws(() => targetOfSection("tracepoint", "no_category", "tracepoint/no_category"), (e: unknown) => e instanceof AttachError && e.hook === "tracepoint");
  assert.throws(() => targetOfSection("uprobe", "/bin/bash", "uprobe//bin/bash"), /PATH:SYMBOL/);
});

test("every attachable hook has an attach function, and the kprobe kinds name their fallback mechanism", () => {
  for (const [kind, def] of Object.entries(hooks)) {
    assert.equal(def.kind, kind);
    if (kind === "none" || kind === "iter") assert.equal(def.attach, undefined, kind);
    else assert.equal(typeof def.attach, "function", kind);
  }
  for (const kind of ["kprobe", "kretprobe", "ksyscall", "kretsyscall"] as const) {
    assert.equal(typeof hooks[kind].fallback, "function", kind);
    assert.equal(typeof hooks[kind].requires, "function", kind);
  }
  assert.match(hooks.uprobe.mechanism!, /uprobe_events/);
});

test("a program of the wrong type, or for a hook attached by other means, is refused before any syscall", () => {
  const fake = { name: "p", type: ProgType.XDP, fd: undefined as never };
  assert.throws(
    () => attachHook(fake, { hook: "none", section: "sk_msg" }),
    (e: unknown) => e instanceof AttachError && e.hook === "none" && /a sockmap/.test(e.message),
  );
  assert.throws(
    () => attachHook(fake, { hook: "raw_tracepoint", event: "sched_switch" }),
    (e: unknown) => e instanceof AttachError && e.code === "ERR_TSBPF_ATTACH" && /xdp program, not a raw tracepoint program/.test(e.message),
  );
});

test("tracepoint names with .. or / are refused; real names pass", () => {
  for (const bad of ["..", "../..", "a/b", "x..y", "", "a b", "a\nb"]) assert.ok(badEventName(bad), JSON.stringify(bad));
  for (const good of ["syscalls", "sys_enter_openat", "9p", "kvm-intel", "a.b"]) assert.equal(badEventName(good), undefined, good);
  assert.equal(tracepointExists("..", "events"), false);
  assert.equal(tracepointExists("syscalls", "../../events"), false);
});

test("a uprobe path with a newline cannot add a probe definition to uprobe_events", () => {
  const evil = "/tmp/x:0x0\np:tsbpf/evil /bin/sh:0x0";
  assert.match(badProbeLocation(evil)!, /newline/);
  const before = root && probeEventsFile("uprobe") ? readFileSync(probeEventsFile("uprobe")!, "utf8") : undefined;
  assert.throws(
    () => addProbeEvent({ kind: "uprobe", retprobe: false, group: "tsbpf", event: "t", location: evil }),
    (e: unknown) => e instanceof AttachError && e.hook === "uprobe" && /newline/.test(e.message),
  );
  assert.throws(() => addProbeEvent({ kind: "uprobe", retprobe: false, group: "tsbpf", event: "a\nb", location: "/bin/sh:0x0" }), AttachError);
  assert.throws(() => addProbeEvent({ kind: "kprobe", retprobe: false, group: "../x", event: "e", location: "f+0" }), AttachError);
  if (before !== undefined) assert.equal(readFileSync(probeEventsFile("uprobe")!, "utf8"), before, "uprobe_events is unchanged");
});
