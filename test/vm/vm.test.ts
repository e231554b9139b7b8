// tsbpf vm: the runner itself (output, exit status, files, timeout, errors), then
// the guest suite (test/guest/*.guest.ts through test/guest/all.ts: kprobes, kretprobes,
// fentry, tools on kprobes...) in each
// Debian kernel, one boot per kernel. TSBPF_TEST_HOST_ONLY=1 skips all of it.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { compile } from "../../src/compile/index.ts";
import { GUEST_OBJECTS, GUEST_PROGRAMS } from "../guest/programs.ts";
import { ensureToolObjects } from "../../src/cli/vm.ts";
import { prepareGuestCorpus } from "../../scripts/bcc-corpus.ts";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const HOST_ONLY = process.env.TSBPF_TEST_HOST_ONLY === "1";
const KERNELS = ["6.1", "6.12"];

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** `tsbpf vm ARGS...` from the project root. */
function vm(args: string[], env: Record<string, string> = {}, limitMs = 300_000): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, [join(ROOT, "bin", "tsbpf.js"), "vm", ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    // SIGTERM: the CLI stops QEMU on its way out.
    const timer = setTimeout(() => child.kill("SIGTERM"), limitMs);
    child.on("error", reject);
    child.on("close", (status) => {
      clearTimeout(timer);
      resolvePromise({ status, stdout, stderr, ms: Date.now() - started });
    });
  });
}

const show = (r: Run): string => `status ${r.status}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

describe("tsbpf vm run", { skip: HOST_ONLY && "TSBPF_TEST_HOST_ONLY=1" }, () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "tsbpf-vm-test-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("an unknown kernel version: a clear error, no boot", async () => {
    const r = await vm(["run", "--kernel", "5.4", "--", "true"]);
    assert.equal(r.status, 125, show(r));
    assert.match(r.stderr, /unknown kernel 5\.4; available: .*\b6\.1\b.*\b6\.12\b.* or a path to a vmlinuz/, show(r));
  });

  test("--disk of a missing image: a clear error, no boot", async () => {
    const r = await vm(["run", "--disk", join(dir, "nothing.img"), "--", "true"]);
    assert.equal(r.status, 125, show(r));
    assert.match(r.stderr, /--disk .*nothing\.img: no such file/, show(r));
  });

  test("QEMU missing: a clear error, no boot", async () => {
    const r = await vm(["run", "--", "true"], { TSBPF_QEMU: "/nonexistent/qemu-system-x86_64" });
    assert.equal(r.status, 125, show(r));
    assert.match(r.stderr, /QEMU was not found: TSBPF_QEMU="\/nonexistent\/qemu-system-x86_64" does not exist/, show(r));
  });

  test("exit status 0; stdout byte for byte, stderr apart; timings with --verbose", { timeout: 300_000 }, async () => {
    const r = await vm(["run", "--verbose", "--", "sh", "-c", `printf 'hi\\r\\nthere\\n\\001'; echo oops >&2; echo "$0" "$1"`, "a b", "c'd"]);
    assert.equal(r.status, 0, show(r));
    assert.equal(r.stdout, "hi\r\nthere\n\u0001a b c'd\n");
    assert.match(r.stderr, /^oops$/m);
    assert.match(r.stderr, /timings: .*QEMU start to command \d+ ms, to first output \d+ ms/, show(r));
  });

  test("a non-zero exit status; --file in; node, npx tsbpf and the project at its host path", { timeout: 300_000 }, async () => {
    writeFileSync(join(dir, "in.txt"), "from the host\n");
    mkdirSync(join(dir, "tree", "sub"), { recursive: true });
    writeFileSync(join(dir, "tree", "sub", "deep.txt"), "deep\n");
    const script = [
      "cat /data/in.txt",
      `cat ${dir}/tree/sub/deep.txt`,
      "pwd",
      `node -e 'console.log("node", process.version)'`,
      "npx tsbpf --help | head -n 1",
      "test -f build/Release/tsbpf_native.node && echo addon",
      "test -d node_modules/typescript || echo no-typescript",
      "grep -q ' /sys/fs/bpf bpf ' /proc/mounts && grep -q ' /sys/kernel/tracing tracefs ' /proc/mounts && echo mounts",
      "id -u",
      "exit 3",
    ].join("; ");
    // Two raw disks: the first read-only with a marker to read, the second for the guest to write.
    const ro = join(dir, "ro.img");
    const rw = join(dir, "rw,disk.img"); // a comma: QEMU's option syntax must escape it
    writeFileSync(ro, Buffer.concat([Buffer.from("tsbpf-disk-ro\n"), Buffer.alloc((1 << 20) - 14)]));
    writeFileSync(rw, Buffer.alloc(1 << 20));
    const disks = [
      `echo "$TSBPF_DISKS"`,
      "head -c 14 /dev/vda",
      "cat /sys/block/vda/ro /sys/block/vdb/ro",
      "printf tsbpf-from-guest | dd of=/dev/vdb bs=512 seek=8 conv=fsync 2>/dev/null",
      "printf x | dd of=/dev/vda 2>/dev/null || echo ro-refused",
    ];
    const r = await vm(["run", "--file", `${join(dir, "in.txt")}:/data/in.txt`, "--file", join(dir, "tree"), "--disk", `${ro}:ro`, "--disk", rw, "--", "sh", "-c", [...disks, script].join("; ")]);
    assert.equal(r.status, 3, show(r));
    assert.equal(
      r.stdout,
      `/dev/vda /dev/vdb\ntsbpf-disk-ro\n1\n0\nro-refused\n` +
        `from the host\ndeep\n${ROOT}\nnode ${process.version}\nusage: tsbpf COMMAND [ARGS...]\naddon\nno-typescript\nmounts\n0\n`,
      show(r),
    );
    assert.equal(readFileSync(rw).toString("latin1", 4096, 4096 + 16), "tsbpf-from-guest");
    assert.equal(readFileSync(ro).toString("latin1", 0, 14), "tsbpf-disk-ro\n");
  });

  test("a boot that never reaches the command is tried twice, then an error with the console's last lines", { timeout: 300_000 }, async () => {
    // No /init: the kernel panics ("Unable to mount root fs") before any command.
    const r = await vm(["run", "--verbose", "--kernel", "6.1", "--", "true"], { TSBPF_VM_APPEND: "rdinit=/nonexistent" });
    assert.equal(r.status, 125, show(r));
    assert.match(r.stderr, /boot 1 never reached the command .*; booting again/, show(r));
    assert.match(r.stderr, /never reached the command in 2 boots/, show(r));
    assert.match(r.stderr, /Kernel panic/, show(r));
  });

  test("a guest that dies during the command is not booted again", { timeout: 300_000 }, async () => {
    const r = await vm(["run", "--verbose", "--", "sh", "-c", "echo started; sleep 1; echo c > /proc/sysrq-trigger; sleep 100"]);
    assert.equal(r.status, 125, show(r));
    assert.equal(r.stdout, "started\n");
    assert.match(r.stderr, /stopped before the command finished/, show(r));
    assert.match(r.stderr, /sysrq|Kernel panic/i, show(r));
    // A boot that dies before the command (a TCG flake under load) is retried by design;
    // once the command has started, a dead guest must not be booted again.
    const afterStart = r.stderr.slice(r.stderr.indexOf("command started"));
    assert.match(r.stderr, /command started/, show(r));
    assert.doesNotMatch(afterStart, /booting again/, show(r));
  });

  test("a hanging command is stopped at --timeout: exit status 124", { timeout: 300_000 }, async () => {
    const r = await vm(["run", "--timeout", "15", "--", "sleep", "1000"]);
    assert.equal(r.status, 124, show(r));
    assert.match(r.stderr, /did not finish in 15 s/, show(r));
    assert.ok(r.ms < 120_000, `took ${r.ms} ms`);
  });
});

describe("guest suite (test/guest/*.guest.ts)", { skip: HOST_ONLY && "TSBPF_TEST_HOST_ONLY=1" }, () => {
  let objects: string;
  // mkfs'd images for the fsslower checks (test/guest/tools.guest.ts), attached with --disk.
  const disks: string[] = [];
  let images: string;
  before(async () => {
    objects = mkdtempSync(join(tmpdir(), "tsbpf-guest-objects-"));
    images = mkdtempSync(join(tmpdir(), "tsbpf-guest-disks-")); // not under objects: --file copies that in
    for (const [fs, size] of [["ext4", "64M"], ["xfs", "320M"], ["btrfs", "128M"]] as const) {
      const image = join(images, `${fs}.img`);
      spawnSync("truncate", ["-s", size, image]);
      const mkfs = spawnSync(`mkfs.${fs}`, ["-q", fs === "ext4" ? "-F" : "-f", image], { encoding: "utf8" });
      // Without mkfs.xfs/mkfs.btrfs (xfsprogs, btrfs-progs) the guest skips that file system, saying so.
      if (mkfs.status === 0) disks.push("--disk", image);
      else rmSync(image, { force: true });
    }
    for (const [name, text] of Object.entries(GUEST_PROGRAMS)) {
      const o = await compile({ text, name: `${name}.bpf.c` });
      writeFileSync(join(objects, `${name}.o`), o.bytes);
    }
    // Guest files run tsbpf's tools, which load dist/bpf (the guest has no clang).
    await ensureToolObjects(undefined);
    // test/guest/bcc-corpus.guest.ts: BCC's tools compiled for each guest kernel (cached; without BCC's mirror or Debian's bpfcc-tools, a skip note).
    await prepareGuestCorpus(objects, KERNELS, { recordFailure: true, log: (m) => console.error(m) });
  });
  after(() => {
    rmSync(objects, { recursive: true, force: true });
    rmSync(images, { recursive: true, force: true });
  });

  for (const kernel of KERNELS) {
    test(`in ${kernel}`, { timeout: 660_000 }, async (t) => {
      const r = await vm([
        "run", "--kernel", kernel, "--timeout", "540", "--file", `${objects}:${GUEST_OBJECTS}`, ...disks,
        // test/guest/packets.guest.ts: veth pairs, and tc's clsact qdisc with a bpf filter (the 6.1 path).
        "--module", "veth", "--module", "sch_ingress", "--module", "cls_bpf", "--module", "nf_conntrack", "--module", "x_tables", // the last two: test/guest/modbtf.guest.ts
        "--", "node", "--import", "tsx", "--test-reporter=tap", "test/guest/all.ts",
      ]);
      // One subtest per guest test, with the guest's diagnostics when it failed.
      const lines = r.stdout.split("\n");
      let results = 0;
      for (let i = 0; i < lines.length; i++) {
        const m = /^(not )?ok \d+ - (.*)$/.exec(lines[i]!);
        if (!m) continue;
        results++;
        const detail: string[] = [];
        for (let j = i + 1; j < lines.length && /^\s/.test(lines[j]!); j++) detail.push(lines[j]!);
        await t.test(m[2]!, () => {
          if (m[1]) assert.fail(`failed in the ${kernel} guest:\n${detail.join("\n")}`);
        });
      }
      assert.ok(results > 0, `no test results from the guest\n${show(r)}`);
      assert.equal(r.status, 0, show(r));
    });
  }
});
