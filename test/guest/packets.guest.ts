// Runs INSIDE a guest kernel (6.1, 6.12) through test/guest/all.ts: the packet
// hooks with real traffic on lo (the guest has no `ip netns`; lo carries only
// this test's traffic), and a veth pair made through tsbpf's own netlink client
// where the kernel has veth (not in the Debian guests: a module; that test skips).
// XDP, tc and the socket filter use the tools' pre-compiled objects (dist/bpf);
// the cgroup and sockmap programs were compiled on the host
// (test/guest/packet-programs.ts). Each test checks what the traffic did and
// that nothing is left attached, and prints the attach method it got
// ("# packet-hook HOOK KERNEL METHOD") for DESIGN.md's table.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { existsSync, mkdirSync, readFileSync, rmdirSync } from "node:fs";
import { createServer, get } from "node:http";
import { connect, createServer as createTcpServer, type Socket } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { Collection } from "../../src/collection.ts";
import { AttachType } from "../../src/internal/sys/constants.ts";
import { attachXdp, xdpQuery } from "../../src/link/xdp.ts";
import { attachTc, tcFilterCount } from "../../src/link/tc.ts";
import { openRawSocket } from "../../src/link/socket.ts";
import { cgroup2Root } from "../../src/link/cgroup.ts";
import { attachSockmap } from "../../src/link/sockmap.ts";
import { ifindexOf } from "../../src/link/netdev.ts";
import { createVeth, deleteLink, setLinkUp } from "../../src/internal/netlink/index.ts";
import { SyscallError } from "../../src/internal/sys/errors.ts";
import { httpLine } from "../../src/cli/sockfilter.ts";
import { toolObject } from "../../src/cli/tool.ts";
import { linksOfProgram } from "../support/kernel.ts";
import { GUEST_OBJECTS } from "./programs.ts";

const run = promisify(execFile);
const release = readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();
const [major = 0, minor = 0] = release.split(".").map(Number);
const atLeast = (a: number, b: number): boolean => major > a || (major === a && minor >= b);
const object = (name: string): Uint8Array => new Uint8Array(readFileSync(join(process.env.TSBPF_GUEST_OBJECTS ?? GUEST_OBJECTS, `${name}.o`)));
const N = 20;

/** One row of DESIGN.md's table, in the TAP output. */
const note = (hook: string, method: string): void => console.log(`# packet-hook ${hook} ${release} ${method}`);

async function eventually(f: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (f()) return true;
    if (Date.now() >= end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A UDP receiver on 127.0.0.1: how many datagrams it got. */
async function receiver(): Promise<{ port: number; count: () => number; close: () => void }> {
  const s = createSocket("udp4");
  let n = 0;
  s.on("message", () => n++);
  await new Promise<void>((resolve) => s.bind(0, "127.0.0.1", resolve));
  return { port: s.address().port, count: () => n, close: () => s.close() };
}

async function sendUdp(port: number, count: number, size: number): Promise<void> {
  const s = createSocket("udp4");
  const b = Buffer.alloc(size, 120);
  for (let i = 0; i < count; i++) await new Promise<void>((resolve, reject) => s.send(b, port, "127.0.0.1", (e) => (e ? reject(e) : resolve())));
  s.close();
}

const sum = (v: bigint[] | undefined): bigint => (v ?? []).reduce((a, b) => a + b, 0n);

test("XDP on lo (generic): XDP_DROP drops exactly the datagrams sent, XDP_PASS lets them through; nothing left", async () => {
  for (const passOnly of [false, true]) {
    await using coll = Collection.load((await toolObject("xdpdrop")).bytes, { constants: { pass_only: passOnly } });
    const rx = await receiver();
    try {
      {
        using link = attachXdp(coll.program("xdp_drop_count"), { interface: "lo" });
        assert.equal(link.mode, "generic", "lo has no native XDP: the fallback");
        assert.equal(link.method, "link", "XDP links since 5.9");
        if (!passOnly) note("xdp", `${link.method} (${link.mode})`);
        assert.notEqual(xdpQuery("lo").attached, "none");
        await sendUdp(rx.port, N, 32);
        const counts = coll.map<number, bigint[]>("dropcnt");
        await eventually(() => sum(counts.lookup(17)) >= BigInt(N) && (!passOnly || rx.count() === N));
        assert.equal(sum(counts.lookup(17)), BigInt(N));
        assert.equal(rx.count(), passOnly ? N : 0);
      }
      assert.equal(xdpQuery("lo").attached, "none", "closing the link removed the program");
      assert.deepEqual(linksOfProgram("xdp_drop_count"), []);
    } finally {
      rx.close();
    }
  }
});

test("XDP on a veth pair made through tsbpf's netlink client: native mode by link, and by netlink; removed", async (t) => {
  const a = `tpg${process.pid % 10000}a`;
  const b = `tpg${process.pid % 10000}b`;
  try {
    createVeth(a, b);
  } catch (err) {
    // The Debian guests' veth is a module, and the initramfs loads none: "Unknown device type".
    if (err instanceof SyscallError && err.code === "EOPNOTSUPP") {
      t.skip(`this kernel has no veth driver loaded: ${err.message}`);
      return;
    }
    throw err;
  }
  try {
    setLinkUp(ifindexOf(a));
    setLinkUp(ifindexOf(b));
    assert.ok(existsSync(`/sys/class/net/${b}`));
    await using coll = Collection.load((await toolObject("xdpdrop")).bytes, { constants: { pass_only: true } });
    const prog = coll.program("xdp_drop_count");
    for (const method of ["link", "netlink"] as const) {
      {
        using link = attachXdp(prog, { interface: a, method });
        assert.equal(link.mode, "native");
        assert.equal(link.method, method);
        assert.equal(xdpQuery(a).progId, prog.info().id);
        note("xdp (veth)", `${link.method} (${link.mode})`);
      }
      assert.deepEqual(xdpQuery(a), { attached: "none", progId: 0 });
    }
  } finally {
    deleteLink(ifindexOf(a));
  }
  assert.equal(existsSync(`/sys/class/net/${a}`) || existsSync(`/sys/class/net/${b}`), false, "the pair is gone");
});

test(`tc egress on lo counts bytes and packets per flow (${atLeast(6, 6) ? "tcx link" : "clsact + netlink filter"}); nothing left`, async (t) => {
  await using coll = Collection.load((await toolObject("tcdump")).bytes);
  const rx = await receiver();
  try {
    {
      let attached;
      try {
        attached = attachTc(coll.program("tc_count"), { interface: "lo", direction: "egress" });
      } catch (err) {
        // The Debian 6.1 guest: clsact (sch_ingress) is a module, and the initramfs loads none.
        if (!atLeast(6, 6) && /qdisc kind is unknown/.test((err as Error).message)) {
          note("tc", "netlink (clsact is a module here: not loaded)");
          t.skip(`no clsact qdisc in this kernel: ${(err as Error).message}`);
          return;
        }
        throw err;
      }
      using link = attached;
      assert.equal(link.method, atLeast(6, 6) ? "tcx" : "netlink");
      note("tc", link.method);
      await sendUdp(rx.port, N, 100);
      const flows = [...coll.map<{ dport: number; proto: number }, { bytes: bigint; packets: bigint }>("flows").entries()].filter(([k]) => k.proto === 17 && k.dport === rx.port);
      // lo's frames carry a 14-byte Ethernet header: 14 + IPv4 20 + UDP 8 + payload.
      assert.deepEqual(flows.map(([, v]) => v), [{ packets: BigInt(N), bytes: BigInt(N * (14 + 20 + 8 + 100)) }]);
    }
    assert.equal(tcFilterCount("lo", "egress"), 0);
    assert.deepEqual(linksOfProgram("tc_count"), []);
  } finally {
    rx.close();
  }
});

test("a socket filter on a raw socket of lo keeps only HTTP packets and sees the request line", async () => {
  await using coll = Collection.load((await toolObject("sockfilter")).bytes);
  const path = `/tsbpf-guest-${process.pid}`;
  const lines: string[] = [];
  {
    using sock = openRawSocket(coll.program("http_filter"), "lo");
    note("socket", "setsockopt SO_ATTACH_BPF (raw socket)");
    const server = createServer((_req, res) => res.end("ok"));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    try {
      await new Promise<void>((resolve, reject) => get(`http://127.0.0.1:${port}${path}`, (res) => res.resume().on("end", resolve)).on("error", reject));
      await eventually(() => {
        for (let f = sock.read(); f; f = sock.read()) lines.push(httpLine(f)?.line ?? `(not IPv4 TCP: ${f.length} bytes)`);
        return lines.includes(`GET ${path} HTTP/1.1`);
      });
    } finally {
      server.close();
    }
  }
  assert.ok(lines.includes(`GET ${path} HTTP/1.1`), JSON.stringify(lines));
  for (const line of lines) assert.match(line, /^(GET|POST|PUT|DELETE|HEAD|HTTP)/);
});

/** The cgroup2 root, mounted first if the guest has none. */
function cgroupRoot(): string {
  try {
    return cgroup2Root();
  } catch {
    mkdirSync("/sys/fs/cgroup", { recursive: true });
    const r = spawnSync("mount", ["-t", "cgroup2", "none", "/sys/fs/cgroup"], { encoding: "utf8" });
    assert.equal(r.status, 0, `mount -t cgroup2: ${r.stderr}`);
    return cgroup2Root();
  }
}

/** Runs `node -e script` in cgroup `cg`; its stdout. */
async function inCgroup(cg: string, script: string): Promise<string> {
  const r = await run("sh", ["-c", `echo $$ > ${cg}/cgroup.procs && exec "$0" -e "$1"`, process.execPath, script], { timeout: 30_000 });
  return r.stdout.trim();
}

test("cgroup/connect4 rewrites one port and refuses another for processes in a test cgroup only; nothing left", async () => {
  const accepted: Socket[] = [];
  const server = createTcpServer((s) => accepted.push(s.end()));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const to = (server.address() as { port: number }).port;
  const from = to === 65535 ? to - 1 : to + 1;
  await using coll = Collection.load(object("pkt_connect4"), { constants: { from_port: from, to_port: to, refuse_port: 1 } });
  const cg = join(cgroupRoot(), `tsbpf-guest-${process.pid}`);
  mkdirSync(cg);
  const client = `const net=require("net");const t=(p)=>new Promise(r=>{const c=net.connect(p,"127.0.0.1");c.on("connect",()=>{c.destroy();r("ok")});c.on("error",e=>r(e.code))});
    (async()=>{console.log(await t(${from}),await t(1))})()`;
  try {
    {
      using link = coll.program("rewrite_connect").attachTo({ hook: "cgroup", path: cg });
      const method = /\((\w+)\)$/.exec(link.target)?.[1] ?? link.target;
      note("cgroup/connect4", method);
      assert.equal(method, "link");
      assert.equal(await inCgroup(cg, client), "ok EPERM");
      assert.equal(accepted.length, 1);
      const outside = await run(process.execPath, ["-e", client], { timeout: 30_000 });
      assert.equal(outside.stdout.trim(), "ECONNREFUSED ECONNREFUSED");
    }
    assert.deepEqual(linksOfProgram("rewrite_connect"), []);
    assert.equal(await inCgroup(cg, client), "ECONNREFUSED ECONNREFUSED", "detached: the cgroup's connects are its own again");
  } finally {
    server.close();
    rmdirSync(cg);
  }
});

test("cgroup/sock_create refuses UDP sockets in a test cgroup only, and counts them; nothing left", async () => {
  await using coll = Collection.load(object("pkt_sock_create"));
  const cg = join(cgroupRoot(), `tsbpf-guest-sc-${process.pid}`);
  mkdirSync(cg);
  const client = `const s=require("dgram").createSocket("udp4");s.on("error",e=>{console.log(e.code);process.exit(0)});s.bind(0,"127.0.0.1",()=>{console.log("ok");s.close()})`;
  try {
    {
      using link = coll.program("no_udp").attachTo({ hook: "cgroup", path: cg });
      const method = /\((\w+)\)$/.exec(link.target)?.[1] ?? link.target;
      note("cgroup/sock_create", method);
      assert.equal(await inCgroup(cg, client), "EPERM");
      const outside = await run(process.execPath, ["-e", client], { timeout: 30_000 });
      assert.equal(outside.stdout.trim(), "ok");
      assert.ok((coll.map<number, bigint>("refused").lookup(0) ?? 0n) >= 1n, "the program counted the refusal");
    }
    assert.deepEqual(linksOfProgram("no_udp"), []);
    assert.equal(await inCgroup(cg, client), "ok", "detached: UDP sockets again");
  } finally {
    rmdirSync(cg);
  }
});

test("a sockmap verdict program redirects what one connection receives out of another; detached after", async () => {
  await using coll = Collection.load(object("pkt_sockmap"));
  const socks = coll.map("socks");
  const serverSide: Socket[] = [];
  const server = createTcpServer((s) => serverSide.push(s));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  const dial = (): Promise<Socket> => new Promise((resolve, reject) => connect(port, "127.0.0.1").on("connect", function (this: Socket) { resolve(this); }).on("error", reject));
  const c1 = await dial();
  const c2 = await dial();
  try {
    assert.ok(await eventually(() => serverSide.length === 2));
    const fdOf = (s: Socket): number => (s as unknown as { _handle: { fd: number } })._handle.fd;
    using link = attachSockmap(coll.program("redirect"), socks, AttachType.SK_SKB_STREAM_VERDICT);
    note("sockmap (sk_skb)", "prog_attach");
    assert.equal(link.fd, undefined, "BPF_PROG_ATTACH to the map");
    const key = (k: number): Uint8Array => new Uint8Array(new Uint32Array([k]).buffer);
    const val = (fd: number): Uint8Array => new Uint8Array(new BigUint64Array([BigInt(fd)]).buffer);
    socks.updateBytes(key(0), val(fdOf(serverSide[0]!)));
    socks.updateBytes(key(1), val(fdOf(serverSide[1]!)));
    let got = "";
    c2.on("data", (d) => (got += d));
    let leaked = "";
    serverSide[0]!.on("data", (d) => (leaked += d));
    c1.write("redirected by sockmap");
    assert.ok(await eventually(() => got === "redirected by sockmap"), `c2 got ${JSON.stringify(got)}`);
    assert.equal(leaked, "", "the receiving socket itself saw nothing");
  } finally {
    for (const s of [c1, c2, ...serverSide]) s.destroy();
    server.close();
  }
});
