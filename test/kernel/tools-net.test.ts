// The network tools (tcpconnect, tcpaccept, tcplife, tcpstates, tcpretrans,
// tcptop, gethostlatency) against TCP on 127.0.0.1 that the test makes: a
// server process and client processes whose pids, ports and counts it knows.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { assertDetached, linksOfProgram } from "../support/kernel.ts";
import { runTool, runToolIntoHead, type ToolResult } from "../support/tools.ts";
import { existsSync, mkdirSync, rmdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { BpfMap } from "../../src/maps/map.ts";
import { MapType } from "../../src/internal/sys/constants.ts";

// A server on 127.0.0.1: prints its port, then "accepted RPORT" per connection; each
// connection gets `reply` bytes, then is closed by the server.
const SERVER = `
const net = require("net");
const reply = Buffer.alloc(Number(process.argv[1] || 0), 120);
const s = net.createServer((c) => { console.log("accepted " + c.remotePort); c.on("error", () => {}); c.end(reply); });
s.listen(0, "127.0.0.1", () => console.log("port " + s.address().port));
setTimeout(() => process.exit(0), 120000);
`;
// A client: COUNT connects to PORT one after another (EVERY ms apart), each sending
// SEND bytes and reading until the server closes; prints "local LPORT" for each.
const CLIENT = `
const net = require("net");
const [port, count, every, send] = process.argv.slice(1).map(Number);
let i = 0;
const go = () => {
  const c = net.connect(port, "127.0.0.1", () => { console.log("local " + c.localPort); c.end(Buffer.alloc(send || 0, 121)); });
  c.on("data", () => {});
  c.on("close", () => { if (++i < count) setTimeout(go, every); else process.exit(0); });
};
go();
`;

function node(code: string, args: (string | number)[]): { child: ChildProcess; lines: string[] } {
  const child = spawn(process.execPath, ["-e", code, ...args.map(String)], { stdio: ["ignore", "pipe", "inherit"] });
  const lines: string[] = [];
  createInterface({ input: child.stdout! }).on("line", (l) => lines.push(l));
  return { child, lines };
}

let server: { child: ChildProcess; lines: string[] };
let port = 0;

before(async () => {
  server = node(SERVER, [100]);
  while (!server.lines.length) await new Promise((r) => setTimeout(r, 20));
  port = Number(server.lines[0]!.split(" ")[1]);
});

after(() => {
  server.child.kill("SIGKILL");
});

/** A client making `count` connects once started; resolves its lines when it exits. */
function client(count: number, every = 50, send = 0) {
  const c = node(CLIENT, [port, count, every, send]);
  const done = once(c.child, "exit").then(() => c.lines);
  return { ...c, done };
}

/** For --json runs (no header): ready once `program` is attached. */
const attached = (program: string) => () => linksOfProgram(program).length > 0;

/**
 * Runs `tsbpf ARGS` until `ready` matches its stdout (its header or banner: it
 * is attached), then runs `workload`, then stops it with SIGINT.
 */
async function around<T>(args: string[], ready: RegExp | (() => boolean), workload: () => Promise<T>): Promise<{ r: ToolResult; w: T }> {
  let w!: T;
  let done = false;
  let started = false;
  const r = await runTool(args, {
    until: (out) => {
      if (!started && (typeof ready === "function" ? ready() : ready.test(out))) {
        started = true;
        void workload().then((v) => {
          w = v;
          // what the kernel wrote last reaches the reader within its 50 ms drain
          setTimeout(() => (done = true), 300);
        });
      }
      return done;
    },
  });
  assert.ok(started, `the tool never printed ${ready}: ${r.err}`);
  return { r, w };
}

test("tcpconnect prints each connect of a process with BCC's columns, LPORT included", async () => {
  const { r, w } = await around(["tcpconnect", "-L", "-U", "-P", String(port)], /DPORT/, () => client(3).done);
  assert.equal(r.code, 0, r.err);
  assert.match(r.lines[0]!, /^UID\s+PID\s+COMM\s+IP SADDR\s+LPORT\s+DADDR\s+DPORT\s*$/);
  const lports = w.map((l) => Number(l.split(" ")[1]));
  const rows = r.lines.slice(1).map((l) => l.trim().split(/\s+/));
  assert.equal(rows.length, 3, r.out);
  for (const [i, row] of rows.entries()) {
    assert.deepEqual(row.slice(2), ["node", "4", "127.0.0.1", String(lports[i]), "127.0.0.1", String(port)], r.out);
    assert.equal(row[0], "0");
  }
  await assertDetached("set_state", "exit_connect");
});

test("tcpconnect --json -p gives the connecting pid; -c counts connects exactly", async () => {
  let pid = 0;
  const { r } = await around(["tcpconnect", "--json", "-P", String(port)], attached("exit_connect"), async () => {
    const c = client(2);
    pid = c.child.pid!;
    return c.done;
  });
  const mine = r.json.filter((e) => e.pid === pid);
  assert.equal(mine.length, 2, r.out);
  for (const e of mine) assert.deepEqual([e.comm, e.ip, e.saddr, e.daddr, e.dport], ["node", 4, "127.0.0.1", "127.0.0.1", port]);

  const counted = await around(["tcpconnect", "-c", "-P", String(port)], /Tracing connect/, () => client(5).done);
  assert.equal(counted.r.code, 0, counted.r.err);
  const table = counted.r.lines.slice(counted.r.lines.findIndex((l) => l.startsWith("LADDR")));
  assert.match(table[0]!, /^LADDR\s+RADDR\s+RPORT\s+CONNECTS\s*$/);
  assert.deepEqual(table.slice(1).map((l) => l.trim().split(/\s+/)), [["127.0.0.1", "127.0.0.1", String(port), "5"]]);
  await assertDetached("set_state", "exit_connect");
});

test("tcpaccept names the accepting process, its local port and each remote port", async () => {
  const before = server.lines.length;
  const { r, w } = await around(["tcpaccept", "-P", String(port)], /LPORT/, () => client(3).done);
  assert.equal(r.code, 0, r.err);
  assert.match(r.lines[0]!, /^PID\s+COMM\s+IP RADDR\s+RPORT\s+LADDR\s+LPORT$/);
  const lports = w.map((l) => l.split(" ")[1]);
  const rows = r.lines.slice(1).map((l) => l.trim().split(/\s+/));
  assert.deepEqual(rows, lports.map((lp) => [String(server.child.pid), "node", "4", "127.0.0.1", lp, "127.0.0.1", String(port)]));
  assert.equal(server.lines.length - before, 3);
  await assertDetached("exit_accept4", "exit_accept");
});

test("tcpaccept --json -p filters by the accepting pid", async () => {
  const { r } = await around(["tcpaccept", "--json", "-p", String(process.pid)], attached("exit_accept4"), () => client(2).done);
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(r.json, [], "another process's accepts got through -p");
  const { r: all } = await around(["tcpaccept", "--json", "-p", String(server.child.pid)], attached("exit_accept4"), () => client(2).done);
  assert.equal(all.json.length, 2, all.out);
  assert.ok(all.json.every((e) => e.pid === server.child.pid && e.lport === port && e.comm === "node"), all.out);
});

test("tcplife gives each session's owner, ports and exact bytes, from both ends", async () => {
  let pid = 0;
  const { r, w } = await around(["tcplife", "--json"], attached("set_state"), async () => {
    const c = client(2, 50, 3000);
    pid = c.child.pid!;
    return c.done;
  });
  assert.equal(r.code, 0, r.err);
  const lports = w.map((l) => Number(l.split(" ")[1]));
  // The kernel's counters are sequence space: bytes_acked counts our SYN and FIN
  // (3000 + 2), bytes_received the peer's FIN (100 + 1).
  for (const lp of lports) {
    const mine = r.json.find((e) => e.lport === lp);
    assert.ok(mine, `no session of local port ${lp}: ${r.out}`);
    assert.deepEqual([mine.pid, mine.comm, mine.laddr, mine.raddr, mine.rport, mine.tx_bytes, mine.rx_bytes], [pid, "node", "127.0.0.1", "127.0.0.1", port, 3002, 101]);
    assert.ok(mine.ms > 0);
    const theirs = r.json.find((e) => e.rport === lp);
    assert.ok(theirs, `no server session for ${lp}`);
    assert.deepEqual([theirs.pid, theirs.lport, theirs.tx_bytes], [server.child.pid, port, 101]); // the passive side: 100 + its FIN
  }
  assert.equal(r.json.filter((e) => e.lport === port || e.rport === port).length, 4, r.out);
});

test("tcplife prints BCC's columns, -w and -s as BCC does", async () => {
  const { r } = await around(["tcplife", "-D", String(port)], /MS$/m, () => client(1).done);
  assert.match(r.lines[0]!, /^PID\s+COMM\s+LADDR\s+LPORT\s+RADDR\s+RPORT\s+TX_KB\s+RX_KB MS$/);
  assert.match(r.lines[1]!, new RegExp(`^\\d+\\s+node\\s+127\\.0\\.0\\.1\\s+\\d+\\s+127\\.0\\.0\\.1\\s+${port}\\s+0\\s+0 \\d+\\.\\d\\d$`));
  const { r: csv } = await around(["tcplife", "-s", "-T", "-D", String(port)], /MS$/m, () => client(1).done);
  assert.equal(csv.lines[0], "TIME,PID,COMM,IP,LADDR,LPORT,RADDR,RPORT,TX_KB,RX_KB,MS");
  assert.match(csv.lines[1]!, new RegExp(`^\\d\\d:\\d\\d:\\d\\d,\\d+,node,4,127\\.0\\.0\\.1,\\d+,127\\.0\\.0\\.1,${port},0,0,\\d+\\.\\d\\d$`));
  await assertDetached("set_state");
});

test("tcpstates follows a client socket from SYN_SENT to CLOSE", async () => {
  const { r, w } = await around(["tcpstates", "--json", "-D", String(port)], attached("set_state"), () => client(1).done);
  assert.equal(r.code, 0, r.err);
  const lport = Number(w[0]!.split(" ")[1]);
  const sk = r.json.find((e) => e.lport === lport)?.skaddr;
  assert.ok(sk, r.out);
  const seq = r.json.filter((e) => e.skaddr === sk).map((e) => `${e.oldstate}->${e.newstate}`);
  assert.deepEqual(seq.slice(0, 2), ["CLOSE->SYN_SENT", "SYN_SENT->ESTABLISHED"]);
  assert.match(seq.at(-1)!, /->CLOSE$/);
  // The server closes first here: the client sees CLOSE_WAIT then LAST_ACK.
  assert.ok(seq.includes("ESTABLISHED->CLOSE_WAIT") && seq.includes("CLOSE_WAIT->LAST_ACK"), seq.join(" "));
  assert.ok(r.json.every((e) => e.rport === port), "-D let other ports through");
  const { r: text } = await around(["tcpstates", "-D", String(port)], /NEWSTATE/, () => client(1).done);
  assert.match(text.lines[0]!, /^SKADDR\s+C-PID\s+C-COMM\s+LADDR\s+LPORT\s+RADDR\s+RPORT\s+OLDSTATE\s+-> NEWSTATE\s+MS$/);
  assert.match(text.lines[1]!, new RegExp(`^[0-9a-f]+\\s+\\d+\\s+node\\s+127\\.0\\.0\\.1\\s+0\\s+127\\.0\\.0\\.1\\s+${port}\\s+CLOSE\\s+-> SYN_SENT\\s+0\\.000$`));
  await assertDetached("set_state");
});

test("tcpretrans sees the SYNs a full accept queue drops, and -c counts them per flow", async () => {
  // A listener that never accepts, backlog 0: one connection fills its queue, the
  // next one's SYN is dropped and retransmitted after the initial RTO (1 s).
  const full = spawn("python3", ["-c", "import socket,time\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(60)"], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    const [line] = (await once(full.stdout!, "data")) as [Buffer];
    const fullPort = Number(line.toString().trim());
    const knock = () => {
      const code = `const net=require("net");for(let i=0;i<3;i++)net.connect(${fullPort},"127.0.0.1").on("error",()=>{});setTimeout(()=>process.exit(0),1600)`;
      const c = spawn(process.execPath, ["-e", code], { stdio: "ignore" });
      return once(c, "exit");
    };
    const { r } = await around(["tcpretrans", "-s"], /STATE/, knock);
    assert.equal(r.code, 0, r.err);
    assert.match(r.lines[0]!, /^TIME\s+PID\s+IP LADDR:LPORT\s+T> RADDR:RPORT\s+STATE\s+SEQ\s*$/);
    const syns = r.lines.filter((l) => l.includes(`127.0.0.1:${fullPort} `));
    assert.ok(syns.length >= 1, r.out);
    for (const l of syns) assert.match(l, new RegExp(`^\\d\\d:\\d\\d:\\d\\d \\d+\\s+4\\s+127\\.0\\.0\\.1:\\d+\\s+R> 127\\.0\\.0\\.1:${fullPort}\\s+SYN_SENT\\s+\\d+$`));

    const counted = await around(["tcpretrans", "-c", "--json"], attached("retransmit"), knock);
    const flows = counted.r.json.filter((e) => e.rport === fullPort);
    assert.ok(flows.length >= 1, counted.r.out);
    assert.ok(flows.every((f) => f.retransmits >= 1 && f.laddr === "127.0.0.1"), counted.r.out);
    await assertDetached("retransmit");
  } finally {
    full.kill("SIGKILL");
  }
});

test("tcptop counts the bytes each process sent and received on each connection", async () => {
  let pid = 0;
  const { r, w } = await around(["tcptop", "--json", "-r", "1000", "1"], /^/, async () => {
    await new Promise((res) => setTimeout(res, 1500)); // the first interval: attached by then
    const c = client(2, 50, 3000);
    pid = c.child.pid!;
    const lines = await c.done;
    await new Promise((res) => setTimeout(res, 1200)); // one more interval
    return lines;
  });
  assert.equal(r.code, 0, r.err);
  const rows = r.json.flatMap((j) => j.rows);
  const bytes = (p: number, laddr: string, field: "rx_kb" | "tx_kb") => Math.round(rows.filter((x) => x.pid === p && x.laddr === laddr).reduce((s, x) => s + x[field], 0) * 1024);
  for (const l of w) {
    const laddr = `127.0.0.1:${l.split(" ")[1]}`;
    assert.deepEqual([bytes(pid, laddr, "tx_kb"), bytes(pid, laddr, "rx_kb")], [3000, 100], `${laddr}: ${JSON.stringify(rows)}`);
    const back = rows.filter((x) => x.pid === server.child.pid && x.raddr === laddr);
    assert.equal(Math.round(back.reduce((s, x) => s + x.rx_kb, 0) * 1024), 3000);
    assert.equal(Math.round(back.reduce((s, x) => s + x.tx_kb, 0) * 1024), 100);
  }
  await assertDetached("send_length", "recv_length");
});

test("network tools | head end cleanly; help names the hooks; -l is refused in one sentence", async () => {
  // The tool notices the closed pipe at its next write: connects keep coming meanwhile.
  const traffic = client(200, 100);
  const { code, out } = await runToolIntoHead(["tcpconnect", "-P", String(port)], 1);
  traffic.child.kill("SIGKILL");
  assert.equal(code, 0);
  assert.match(out, /^PID\s+COMM/);
  await assertDetached("set_state", "exit_connect");
  for (const tool of ["tcpconnect", "tcpaccept", "tcplife", "tcpstates", "tcpretrans", "tcptop"]) {
    const help = await runTool([tool, "--help"]);
    assert.equal(help.code, 0);
    assert.match(help.out, new RegExp(`usage: tsbpf ${tool}[\\s\\S]*hooks: `));
  }
  const lp = await runTool(["tcpretrans", "-l"]);
  assert.equal(lp.code, 1);
  assert.match(lp.err, /^tsbpf: .*tcp_send_loss_probe.*\n$|tcp_send_loss_probe/);
  const bad = await runTool(["tcpconnect", "-P", "70000"]);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /"70000" is not a port/);
});

/** A hash map of 8-byte keys pinned at a fresh path under /sys/fs/bpf (BCC's --cgroupmap/--mntnsmap maps). */
function pinnedIdMap(ids: bigint[]): { path: string } & Disposable {
  const path = `/sys/fs/bpf/tsbpf-ids-${process.pid}-${pinSerial++}`;
  const map = BpfMap.create({ type: MapType.HASH, keySize: 8, valueSize: 1, maxEntries: 16, name: "ids" });
  for (const id of ids) map.update(id, new Uint8Array([1]));
  map.pin(path);
  map.close();
  return { path, [Symbol.dispose]: () => rmSync(path, { force: true }) };
}
let pinSerial = 0;

test("tcptop -S leaves out the loadavg line that -C keeps; --cgroupmap counts only the cgroup's tasks", async (t) => {
  // One output each (interval 1, count 1): the tool exits by itself.
  const withSummary = await runTool(["tcptop", "-C", "1", "1"]);
  assert.equal(withSummary.code, 0, withSummary.err);
  // BCC: "%-8s loadavg: %s" of /proc/loadavg whole, then a blank line, then the columns.
  assert.match(withSummary.out, /\n\d\d:\d\d:\d\d loadavg: \d+\.\d\d \d+\.\d\d \d+\.\d\d \d+\/\d+ \d+\n\nPID\s+COMM/);
  const noSummary = await runTool(["tcptop", "-C", "-S", "1", "1"]);
  assert.equal(noSummary.code, 0, noSummary.err);
  assert.doesNotMatch(noSummary.out, /loadavg/);
  assert.match(noSummary.out, /^PID\s+COMM\s+LADDR\s+RADDR\s+RX_KB\s+TX_KB$/m);

  const v2 = "/sys/fs/cgroup/unified";
  if (!existsSync(join(v2, "cgroup.procs"))) return t.skip("no cgroup v2 hierarchy");
  const cg = join(v2, `tsbpf-tcptop-${process.pid}`);
  mkdirSync(cg);
  try {
    using map = pinnedIdMap([BigInt(statSync(cg).ino)]); // a v2 cgroup's id is its directory's inode
    let inside = 0;
    let outside = 0;
    const { r } = await around(["tcptop", "--json", "-r", "1000", "--cgroupmap", map.path, "1"], attached("send_length"), async () => {
      const a = spawn("sh", ["-c", `echo $$ > ${cg}/cgroup.procs && exec "$0" -e "$1" ${port} 2 50 1000`, process.execPath, CLIENT], { stdio: "ignore" });
      const b = client(2, 50, 1000);
      inside = a.pid!;
      outside = b.child.pid!;
      await Promise.all([once(a, "exit"), b.done]);
      await new Promise((res) => setTimeout(res, 1200)); // the interval after the traffic
    });
    assert.equal(r.code, 0, r.err);
    const rows = r.json.flatMap((j) => j.rows);
    assert.ok(rows.some((x) => x.pid === inside && Math.round(x.tx_kb * 1024) === 1000), JSON.stringify(rows));
    assert.ok(rows.every((x) => x.pid === inside), `rows of other cgroups: ${JSON.stringify(rows.filter((x) => x.pid !== inside))} (outside: ${outside})`);
    await assertDetached("send_length", "recv_length");
  } finally {
    rmdirSync(cg);
  }
});

test("tcpconnect --mntnsmap traces only the connects made in the mount namespaces the pinned map names", async (t) => {
  if (spawnSync("unshare", ["-m", "true"]).status !== 0) return t.skip("no unshare -m");
  // A client in a mount namespace of its own, waiting on stdin to start (its namespace is known first).
  const held = spawn("unshare", ["-m", "sh", "-c", `read x; exec "$0" -e "$1" ${port} 3 20 0`, process.execPath, CLIENT], { stdio: ["pipe", "ignore", "inherit"] });
  const ns = () => {
    try {
      return BigInt(statSync(`/proc/${held.pid}/ns/mnt`).ino);
    } catch {
      return 0n;
    }
  };
  const mine = BigInt(statSync("/proc/self/ns/mnt").ino);
  while (ns() === 0n || ns() === mine) await new Promise((res) => setTimeout(res, 20)); // until unshare has run
  using map = pinnedIdMap([ns()]);
  const { r } = await around(["tcpconnect", "--json", "-P", String(port), "--mntnsmap", map.path], attached("exit_connect"), async () => {
    held.stdin!.end("go\n");
    await Promise.all([once(held, "exit"), client(2).done]); // 3 connects inside, 2 outside
  });
  assert.equal(r.code, 0, r.err);
  assert.equal(r.json.length, 3, r.out);
  assert.ok(r.json.every((e) => e.pid === held.pid && e.dport === port), r.out);
  await assertDetached("set_state", "exit_connect");
});

test("tcpaccept --mntnsmap traces only the accepts of processes in the mount namespaces the pinned map names", async (t) => {
  if (spawnSync("unshare", ["-m", "true"]).status !== 0) return t.skip("no unshare -m");
  // A second server in a mount namespace of its own (unshare execs node: the server has its pid).
  const held = spawn("unshare", ["-m", process.execPath, "-e", SERVER, "0"], { stdio: ["ignore", "pipe", "inherit"] });
  const lines: string[] = [];
  createInterface({ input: held.stdout! }).on("line", (l) => lines.push(l));
  try {
    for (let i = 0; i < 500 && !lines.length; i++) await new Promise((res) => setTimeout(res, 20));
    assert.match(lines[0] ?? "", /^port \d+$/, "the server in its own mount namespace never listened");
    const heldPort = Number(lines[0]!.split(" ")[1]);
    const ns = BigInt(statSync(`/proc/${held.pid}/ns/mnt`).ino);
    assert.notEqual(ns, BigInt(statSync("/proc/self/ns/mnt").ino));
    using map = pinnedIdMap([ns]);
    const { r } = await around(["tcpaccept", "--json", "--mntnsmap", map.path], attached("exit_accept4"), async () => {
      const inside = node(CLIENT, [heldPort, 3, 20, 0]);
      await Promise.all([once(inside.child, "exit"), client(2).done]); // 3 accepts inside, 2 outside
    });
    assert.equal(r.code, 0, r.err);
    assert.equal(r.json.length, 3, r.out);
    assert.ok(r.json.every((e) => e.pid === held.pid && e.lport === heldPort && e.comm === "node"), r.out);
    await assertDetached("exit_accept4", "exit_accept");
  } finally {
    held.kill("SIGKILL");
  }
});
