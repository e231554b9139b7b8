// The floor of any syscall counter on this host: a program that returns 0 at
// raw_tp/sys_enter, attached until SIGTERM. For bench/exporter.ts:
//   BENCH_PEER="node --import tsx bench/empty-sys-enter.ts" node --import tsx bench/exporter.ts flood
import { compile } from "../src/compile/index.ts";
import { ObjectSpec } from "../src/object/spec.ts";
import { Collection } from "../src/collection.ts";

const text = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
SEC("raw_tp/sys_enter") int empty_enter(void *ctx) { return 0; }
char LICENSE[] SEC("license") = "GPL";`;
const coll = Collection.load(ObjectSpec.fromBytes((await compile({ text, name: "empty.bpf.c" })).bytes));
coll.attachAll();
process.on("SIGTERM", () => {
  coll.close();
  process.exit(0);
});
setInterval(() => {}, 1 << 30);
