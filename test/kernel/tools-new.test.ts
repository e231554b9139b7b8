// The tools of issue 15's last part (gethostlatency, drsnoop, sslsniff, capable)
// against workloads the test makes: name lookups of local names, a memory cgroup
// read past its limit, an OpenSSL s_server/s_client pair on 127.0.0.1.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { assertDetached, linksOfProgram } from "../support/kernel.ts";
import { runTool, runToolIntoHead, tempDir, type ToolResult } from "../support/tools.ts";

const attached = (program: string) => () => linksOfProgram(program).length > 0;

/** Runs `tsbpf ARGS` until `ready()` (its programs attached), then `workload`, then SIGINT. */
async function around<T>(args: string[], ready: () => boolean, workload: () => Promise<T>): Promise<{ r: ToolResult; w: T }> {
  let w!: T;
  let done = false;
  let started = false;
  let failed: unknown;
  const r = await runTool(args, {
    until: () => {
      if (!started && ready()) {
        started = true;
        void workload().then(
          (v) => {
            w = v;
            setTimeout(() => (done = true), 300); // the reader's 50 ms drain, with margin
          },
          (err) => {
            failed = err;
            done = true;
          },
        );
      }
      return done;
    },
  });
  if (failed) throw failed;
  assert.ok(started, `the tool never attached: ${r.err}`);
  return { r, w };
}

/** Runs a command to its end; its pid and stdout. */
async function run(cmd: string, args: string[], opts: { input?: string } = {}): Promise<{ pid: number; out: string; code: number | null }> {
  const c = spawn(cmd, args, { stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "ignore"] });
  let out = "";
  c.stdout!.on("data", (d) => (out += d));
  c.stdin?.on("error", () => {}); // EPIPE: it exited without reading all of it
  c.stdin?.end(opts.input);
  const [code] = (await once(c, "exit")) as [number | null];
  return { pid: c.pid!, out, code };
}

test("gethostlatency times getent's getaddrinfo and gethostbyname2 of local names, with the pid and host", async () => {
  // Entry probes go on last, one per function: ready when all three are on.
  const ready = () => linksOfProgram("lookup_enter").length >= 3;
  const { r, w } = await around(["gethostlatency", "--json"], ready, async () => {
    const ahosts = await run("getent", ["ahosts", "localhost"]); // getaddrinfo
    const hosts = await run("getent", ["hosts", "localhost"]); // gethostbyname2
    return { ahosts, hosts };
  });
  assert.equal(r.code, 0, r.err);
  assert.equal(w.ahosts.code, 0);
  for (const pid of [w.ahosts.pid, w.hosts.pid]) {
    const mine = r.json.filter((e) => e.pid === pid);
    assert.ok(mine.length >= 1, `no lookup by pid ${pid}: ${r.out}`);
    assert.ok(mine.every((e) => e.host === "localhost" && e.comm === "getent" && e.lat_ms > 0 && e.lat_ms < 10_000), JSON.stringify(mine));
  }
  await assertDetached("lookup_enter", "lookup_return");
  // The text form: BCC's columns.
  let pid = 0;
  const text = await around(["gethostlatency", "-p", String(process.pid)], ready, async () => {
    pid = (await run("getent", ["ahosts", "localhost"])).pid; // another process: filtered out
  });
  assert.match(text.r.lines[0]!, /^TIME\s+PID\s+COMM\s+LATms HOST$/);
  assert.ok(!text.r.out.includes(` ${pid} `), text.r.out);
});

test("drsnoop shows the reclaim a process does at its memory cgroup's limit, with the pages it freed", async (t) => {
  const v1 = "/sys/fs/cgroup/memory";
  const v2 = "/sys/fs/cgroup/unified";
  const cg = existsSync(join(v1, "memory.limit_in_bytes")) ? join(v1, `tsbpf-dr-${process.pid}`) : existsSync(join(v2, "cgroup.subtree_control")) ? join(v2, `tsbpf-dr-${process.pid}`) : undefined;
  if (!cg) return t.skip("no memory cgroup");
  using dir = tempDir("tsbpf-dr-");
  // 96 MiB of file data, written past the page cache (O_DIRECT), then read in a 32 MiB cgroup:
  // clean page cache that the reader's own charges must reclaim, at least 64 MiB of it.
  const file = join("/var/tmp", `tsbpf-dr-${process.pid}.bin`);
  const dd = spawnSync("dd", ["if=/dev/zero", `of=${file}`, "bs=1M", "count=96", "oflag=direct"], { stdio: "ignore" });
  assert.equal(dd.status, 0);
  mkdirSync(cg);
  try {
    if (cg.startsWith(v1)) writeFileSync(join(cg, "memory.limit_in_bytes"), String(32 << 20));
    else writeFileSync(join(cg, "memory.max"), String(32 << 20));
    const reader = join(dir.path, "tsbpfreader");
    spawnSync("cp", ["/bin/cat", reader]);
    let pid = 0;
    const { r } = await around(["drsnoop", "--json"], attached("memcg_end"), async () => {
      pid = (await run("sh", ["-c", `echo $$ > ${cg}/cgroup.procs && exec ${reader} ${file} > /dev/null`])).pid;
    });
    assert.equal(r.code, 0, r.err);
    const mine = r.json.filter((e) => e.pid === pid);
    assert.ok(mine.length > 0, `no reclaim by pid ${pid}: ${r.out.slice(0, 2000)}`);
    assert.ok(mine.every((e) => e.comm === "tsbpfreader" && e.memcg === true && e.lat_ms >= 0), JSON.stringify(mine[0]));
    const pages = mine.reduce((s, e) => s + e.pages, 0);
    assert.ok(pages * 4096 >= 48 << 20, `${pages} pages reclaimed`);
    await assertDetached("memcg_end", "direct_end");
    // BCC's columns, -T and -U; --global-only leaves the cgroup's reclaim out.
    const text = await around(["drsnoop", "-T", "-U", "--global-only"], attached("direct_end"), async () => {
      pid = (await run("sh", ["-c", `echo $$ > ${cg}/cgroup.procs && exec ${reader} ${file} > /dev/null`])).pid;
    });
    assert.match(text.r.lines[0]!, /^TIME\(s\)\s+UID\s+COMM\s+PID\s+LAT\(ms\) PAGES$/);
    assert.ok(!text.r.out.includes("tsbpfreader"), text.r.out);
    assert.deepEqual(linksOfProgram("memcg_end"), []);
  } finally {
    rmdirSync(cg);
    spawnSync("rm", ["-f", file]);
  }
});

/** Resolves when the child has exited (at once if it already has). */
function exited(child: ReturnType<typeof spawn>): Promise<unknown> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : once(child, "exit");
}

/** Whether a TCP socket listens on 127.0.0.1:port (a probe connection would use up s_server's one accept). */
function listening(port: number): boolean {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  return readFileSync("/proc/net/tcp", "utf8").split("\n").some((l) => l.trim().split(/\s+/)[1] === local && l.trim().split(/\s+/)[3] === "0A");
}

/** An OpenSSL server on 127.0.0.1 for one connection, printing what it reads; the client sends `text`. */
async function tlsExchange(dir: string, port: number, text: string, opts: { client?: string; reply?: string } = {}): Promise<{ server: number; client: number; got: string }> {
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  if (!existsSync(cert)) {
    const gen = spawnSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost"], { stdio: "ignore" });
    assert.equal(gen.status, 0);
  }
  // stdin held open: s_server ends its session at EOF on stdin.
  const server = spawn("openssl", ["s_server", "-accept", `127.0.0.1:${port}`, "-cert", cert, "-key", key, "-naccept", "1", "-quiet"], { stdio: ["pipe", "pipe", "pipe"] });
  let got = "";
  server.stdout!.on("data", (d) => (got += d));
  while (!listening(port) && server.exitCode === null) await new Promise((r) => setTimeout(r, 20));
  // OpenSSL's s_client sends its stdin; a client of ours (opts.client PORT TEXT) sends TEXT and waits for the reply.
  const client = opts.client
    ? spawn(opts.client, [String(port), text], { stdio: ["ignore", "pipe", "inherit"] })
    : spawn("openssl", ["s_client", "-connect", `127.0.0.1:${port}`, "-quiet"], { stdio: ["pipe", "ignore", "ignore"] });
  let heard = "";
  client.stdout?.on("data", (d) => (heard += d));
  client.stdin?.write(text);
  const deadline = Date.now() + 20_000;
  const wait = async (done: () => boolean) => {
    while (!done() && server.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  };
  await wait(() => got.includes(text.trim()));
  if (opts.reply) {
    server.stdin!.write(opts.reply); // s_server sends its stdin to the client
    await wait(() => heard.includes(opts.reply!.trim()));
  }
  // -quiet implies -ign_eof: the client stays until it is stopped.
  const gone = Promise.all([exited(client), exited(server)]);
  client.kill();
  server.kill();
  await gone;
  return { server: server.pid!, client: client.pid!, got };
}

test("sslsniff shows the plaintext s_client wrote and s_server read, with pids, lengths and latency", async (t) => {
  if (spawnSync("openssl", ["version"]).status !== 0) return t.skip("no openssl");
  using dir = tempDir("tsbpf-ssl-");
  const secret = `tsbpf-secret-${process.pid}\n`;
  const port = 20000 + (process.pid % 20000);
  // Entry probes go on last: SSL_write, SSL_read (rw_enter), then the _ex forms (rw_ex_enter).
  const openssl = () => linksOfProgram("rw_ex_enter").length >= 2;
  const { r, w } = await around(["sslsniff", "--json", "-l", "-c", "openssl"], openssl, () => tlsExchange(dir.path, port, secret));
  assert.equal(r.code, 0, r.err);
  assert.equal(w.got, secret);
  const write = r.json.find((e) => e.func === "WRITE/SEND" && e.pid === w.client && e.data === secret);
  const read = r.json.find((e) => e.func === "READ/RECV" && e.pid === w.server && e.data === secret);
  assert.ok(write && read, r.out);
  for (const e of [write, read]) assert.deepEqual([e.len, e.truncated, e.comm, typeof e.lat_ms], [secret.length, 0, "openssl", "number"]);
  await assertDetached("write_exit", "read_exit", "rw_enter");

  // Text: BCC's block, --hexdump, a 4-byte buffer (truncated), -x; -o leaves OpenSSL out.
  const hex = await around(["sslsniff", "-x", "--hexdump", "--max-buffer-size", "4"], openssl, () => tlsExchange(dir.path, port + 1, secret));
  assert.match(hex.r.lines[0]!, /^FUNC\s+TIME\(s\)\s+COMM\s+PID\s+LEN\s+UID\s+TID\s*$/);
  const at = hex.r.lines.findIndex((l) => l.startsWith("WRITE/SEND") && l.includes(` ${hex.w.client} `));
  assert.ok(at > 0, hex.r.out);
  assert.deepEqual(hex.r.lines.slice(at + 1, at + 4), ["----- DATA -----", Buffer.from(secret.slice(0, 4)).toString("hex"), `----- END DATA (TRUNCATED, ${secret.length - 4} bytes lost) -----`]);

  // GnuTLS (-o: OpenSSL left out): a client of ours sends the secret with gnutls_record_send
  // and reads the server's reply with gnutls_record_recv.
  const exe = join(dir.path, "tlsclient");
  writeFileSync(`${exe}.c`, GNUTLS_CLIENT);
  const cc = spawnSync("cc", ["-o", exe, `${exe}.c`, "-lgnutls"], { encoding: "utf8" });
  if (cc.status !== 0) return t.skip(`no GnuTLS to build against: ${cc.stderr}`);
  const reply = `reply-${process.pid}\n`;
  const gnu = await around(["sslsniff", "--json", "-o"], () => linksOfProgram("rw_enter").length >= 2, () => tlsExchange(dir.path, port + 2, secret, { client: exe, reply }));
  assert.equal(gnu.r.code, 0, gnu.r.err);
  assert.ok(!gnu.r.json.some((e) => e.comm === "openssl"), gnu.r.out);
  const sent = gnu.r.json.find((e) => e.func === "WRITE/SEND" && e.pid === gnu.w.client && e.data === secret);
  const back = gnu.r.json.find((e) => e.func === "READ/RECV" && e.pid === gnu.w.client && e.data === reply);
  assert.ok(sent && back && sent.comm === "tlsclient", gnu.r.out);
});

// A GnuTLS client: connects to 127.0.0.1:PORT (no certificate check), sends MSG, prints one record it reads.
const GNUTLS_CLIENT = `
#include <gnutls/gnutls.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
int main(int argc, char **argv) {
	gnutls_certificate_credentials_t cred;
	gnutls_session_t s;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[1])) };
	char buf[256];
	int fd = socket(AF_INET, SOCK_STREAM, 0), r;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) return 2;
	gnutls_certificate_allocate_credentials(&cred);
	gnutls_init(&s, GNUTLS_CLIENT);
	gnutls_set_default_priority(s);
	gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred);
	gnutls_transport_set_int(s, fd);
	do r = gnutls_handshake(s); while (r < 0 && !gnutls_error_is_fatal(r));
	if (r < 0) { fprintf(stderr, "handshake: %s\\n", gnutls_strerror(r)); return 3; }
	if (gnutls_record_send(s, argv[2], strlen(argv[2])) != (ssize_t)strlen(argv[2])) return 4;
	do r = gnutls_record_recv(s, buf, sizeof(buf) - 1); while (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED);
	if (r <= 0) return 5;
	fwrite(buf, 1, r, stdout);
	return 0;
}
`;

test("capable: no tracepoint reports capability checks; without kprobes or fentry it says so in one sentence", async (t) => {
  const r = await runTool(["capable"]);
  if (r.code === 0) return t.skip("this kernel has fentry or kprobes (the guests check capable)");
  assert.equal(r.code, 1);
  assert.match(r.err, /^tsbpf capable: capable needs fentry or a kprobe on cap_capable, and this kernel has neither .*no tracepoint reports capability checks\n$/);
  assert.equal(r.out, "");
  await assertDetached("cap_fentry", "cap_kprobe");
});

test("new tools: | head ends cleanly, help names the hooks, bad input is a usage error", async () => {
  const lookups = setInterval(() => spawn("getent", ["ahosts", "localhost"], { stdio: "ignore" }), 100);
  const { code, out } = await runToolIntoHead(["gethostlatency"], 2);
  clearInterval(lookups);
  assert.equal(code, 0);
  assert.match(out, /^TIME\s+PID\s+COMM\s+LATms HOST\n.*localhost\n$/);
  await assertDetached("lookup_enter", "lookup_return");
  for (const tool of ["gethostlatency", "drsnoop", "sslsniff", "capable"]) {
    const help = await runTool([tool, "--help"]);
    assert.equal(help.code, 0);
    assert.match(help.out, new RegExp(`usage: tsbpf ${tool}[\\s\\S]*hooks: `));
  }
  const bad = await runTool(["sslsniff", "--max-buffer-size", "9000"]);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--max-buffer-size expects/);
  const lib = await runTool(["sslsniff", "--extra-lib", "boringssl:/x"]);
  assert.equal(lib.code, 2);
  assert.match(lib.err, /--extra-lib expects TYPE:PATH/);
});

test("ToolRun holds the event loop until it stops, and lets go after (no keep-alive timers in the tools)", async () => {
  const code = `
    import { ToolRun } from ${JSON.stringify(join(import.meta.dirname, "..", "..", "src", "cli", "tool.ts"))};
    const run = new ToolRun();
    process.stdout.write("ready\\n");
    const why = await run.stopped; // nothing else holds the loop: without ToolRun's own hold, node exits here (13)
    run[Symbol.dispose]();
    process.stdout.write("stopped " + why + "\\n");
  `;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  while (!out.includes("ready") && child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 300)); // long enough for node to have exited were nothing holding it
  assert.equal(child.exitCode, null, `exited before the stop: ${out}`);
  child.kill("SIGINT");
  const [status] = (await once(child, "exit")) as [number | null];
  assert.equal(status, 0);
  assert.equal(out, "ready\nstopped SIGINT\n");
});
