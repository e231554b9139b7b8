// The hooks that packets.test.ts does not drive: cgroup/sysctl, cgroup/connect6,
// cgroup_skb/ingress (each by link to a cgroup the test makes, checked against what
// a process inside the cgroup and one outside it see), and sk_msg on a sockhash.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, rmdirSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { Collection } from "../../src/collection.ts";
import { compile } from "../../src/compile/index.ts";
import { cgroup2Root } from "../../src/link/cgroup.ts";
import { HEADERS, linksOfProgram } from "../support/kernel.ts";

const run = promisify(execFile);

/** Runs `node -e script` inside cgroup `cg` (or outside it when cg is undefined); its stdout, trimmed. */
async function node(script: string, cg?: string): Promise<string> {
  const r = cg
    ? await run("sh", ["-c", `echo $$ > ${cg}/cgroup.procs && exec "$0" -e "$1"`, process.execPath, script], { timeout: 20_000 })
    : await run(process.execPath, ["-e", script], { timeout: 20_000 });
  return r.stdout.trim();
}

/** A fresh cgroup under the cgroup2 root, removed after `body`. */
async function inCgroup(name: string, body: (cg: string) => Promise<void>): Promise<void> {
  const cg = join(cgroup2Root(), `tsbpf-test-${name}-${process.pid}`);
  mkdirSync(cg);
  try {
    await body(cg);
  } finally {
    rmdirSync(cg);
  }
}

test("cgroup/sysctl refuses reads of one sysctl to processes in a test cgroup, and counts them", async () => {
  const spec = await compile({
    name: "sysctl.bpf.c",
    text: `${HEADERS}
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); } refused SEC(".maps");
SEC("cgroup/sysctl")
int no_ostype(struct bpf_sysctl *ctx) {
    char name[16] = {};
    if (ctx->write || bpf_sysctl_get_name(ctx, name, sizeof(name), 0) < 0) return 1;
    /* "kernel/ostype" */
    if (name[0] != 'k' || name[7] != 'o' || name[8] != 's' || name[9] != 't' || name[10] != 'y' || name[13] != 0) return 1;
    __u32 k = 0;
    __u64 *n = bpf_map_lookup_elem(&refused, &k);
    if (n) __sync_fetch_and_add(n, 1);
    return 0;
}`,
  });
  await using coll = Collection.load(spec.bytes);
  const read = `try{console.log(require("fs").readFileSync("/proc/sys/kernel/ostype","utf8").trim())}catch(e){console.log(e.code)}`;
  await inCgroup("sysctl", async (cg) => {
    {
      using link = coll.program("no_ostype").attachTo({ hook: "cgroup", path: cg });
      assert.match(link.target, /sysctl \(link\)/);
      assert.equal(await node(read, cg), "EPERM");
      assert.equal(await node(read), "Linux", "outside the cgroup");
      assert.equal(coll.map<number, bigint>("refused").lookup(0), 1n);
    }
    assert.deepEqual(linksOfProgram("no_ostype"), []);
    assert.equal(await node(read, cg), "Linux", "after the link closed");
  });
});

test("cgroup/connect6 refuses connects to one port of ::1 from a test cgroup only", async () => {
  const spec = await compile({
    name: "connect6.bpf.c",
    text: `${HEADERS}
#include <bpf/bpf_endian.h>
const volatile __u16 refuse_port = 0;
SEC("cgroup/connect6")
int refuse6(struct bpf_sock_addr *ctx) {
    return ctx->user_port == bpf_htons(refuse_port) ? 0 : 1;
}`,
  });
  const accepted: Socket[] = [];
  const server = createServer((s) => accepted.push(s.end()));
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(0, "::1", resolve));
  const port = (server.address() as { port: number }).port;
  await using coll = Collection.load(spec.bytes, { constants: { refuse_port: port } });
  const client = `const c=require("net").connect(${port},"::1");c.on("connect",()=>{c.destroy();console.log("ok")});c.on("error",e=>console.log(e.code))`;
  try {
    await inCgroup("connect6", async (cg) => {
      using link = coll.program("refuse6").attachTo({ hook: "cgroup", path: cg });
      assert.match(link.target, /inet6_connect \(link\)/);
      assert.equal(await node(client, cg), "EPERM");
      assert.equal(await node(client), "ok", "outside the cgroup");
    });
    assert.equal(accepted.length, 1, "only the connect from outside arrived");
  } finally {
    server.close();
  }
});

test("cgroup_skb/ingress counts the packets a test cgroup's sockets receive, and drops them when told", async () => {
  const spec = await compile({
    name: "ingress.bpf.c",
    text: `${HEADERS}
const volatile __u8 drop = 0;
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); } packets SEC(".maps");
SEC("cgroup_skb/ingress")
int count_in(struct __sk_buff *skb) {
    __u32 k = 0;
    __u64 *n = bpf_map_lookup_elem(&packets, &k);
    if (n) __sync_fetch_and_add(n, 1);
    return drop ? 0 : 1;
}`,
  });
  // A UDP receiver in the cgroup: prints how many of N datagrams to itself arrived within 1.5 s.
  const N = 20;
  const receiver = `const d=require("dgram").createSocket("udp4");let got=0;d.on("message",()=>got++);
    d.bind(0,"127.0.0.1",()=>{const s=require("dgram").createSocket("udp4");let i=0;
    const send=()=>{if(i++<${N})s.send("x",d.address().port,"127.0.0.1",send);else setTimeout(()=>{console.log(got);process.exit(0)},1500)};send()})`;
  for (const drop of [0, 1]) {
    await using coll = Collection.load(spec.bytes, { constants: { drop } });
    await inCgroup(`ingress${drop}`, async (cg) => {
      using link = coll.program("count_in").attachTo({ hook: "cgroup", path: cg });
      assert.match(link.target, /inet_ingress \(link\)/);
      assert.equal(await node(receiver, cg), drop ? "0" : String(N));
      // Every datagram passed the program once on its way in (loopback: no other ingress here).
      assert.equal(coll.map<number, bigint>("packets").lookup(0), BigInt(N));
    });
  }
});

test("an sk_msg program on a sockhash counts what a socket sends and drops the messages it refuses", async () => {
  const { attachSockmap } = await import("../../src/link/sockmap.ts");
  const { AttachType } = await import("../../src/internal/sys/constants.ts");
  const spec = await compile({
    name: "skmsg.bpf.c",
    text: `${HEADERS}
struct { __uint(type, BPF_MAP_TYPE_SOCKHASH); __uint(max_entries, 4); __type(key, __u32); __type(value, __u64); } socks SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 2); __type(key, __u32); __type(value, __u64); } seen SEC(".maps");
SEC("sk_msg")
int verdict(struct sk_msg_md *msg) {
    __u32 k = 0;
    __u64 *n = bpf_map_lookup_elem(&seen, &k);
    if (n) __sync_fetch_and_add(n, msg->size);
    char *p = msg->data;
    if (p + 1 > (char *)msg->data_end) return SK_PASS;
    if (*p != '!') return SK_PASS;
    k = 1;
    n = bpf_map_lookup_elem(&seen, &k);
    if (n) __sync_fetch_and_add(n, 1);
    return SK_DROP;
}`,
  });
  await using coll = Collection.load(spec.bytes);
  const socks = coll.map("socks");
  const accepted: Socket[] = [];
  const server = createServer((s) => accepted.push(s));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  const { connect } = await import("node:net");
  const client = await new Promise<Socket>((resolve, reject) => {
    const c = connect(port, "127.0.0.1");
    c.once("connect", () => resolve(c)).once("error", reject);
  });
  try {
    const fdOf = (s: Socket): number => (s as unknown as { _handle: { fd: number } })._handle.fd;
    using link = attachSockmap(coll.program("verdict"), socks, AttachType.SK_MSG_VERDICT);
    socks.updateBytes(new Uint8Array(new Uint32Array([1]).buffer), new Uint8Array(new BigUint64Array([BigInt(fdOf(client))]).buffer));
    for (let i = 0; i < 50 && accepted.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    let got = "";
    accepted[0]!.on("data", (d) => (got += d));
    const write = (s: string): Promise<string> => new Promise((resolve) => client.write(s, (err) => resolve(err ? (err as NodeJS.ErrnoException).code ?? err.message : "ok")));
    assert.equal(await write("hello "), "ok");
    await write("!refused"); // SK_DROP: the sender's write fails (EACCES) or the bytes vanish
    for (let i = 0; i < 100 && !got.includes("hello"); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(got, "hello ", "the refused message never arrived");
    const seen = coll.map<number, bigint>("seen");
    assert.equal(seen.lookup(1), 1n, "one message refused");
    assert.equal(seen.lookup(0), BigInt("hello ".length + "!refused".length), "bytes of both messages seen");
  } finally {
    client.destroy();
    for (const s of accepted) s.destroy();
    server.close();
  }
});
