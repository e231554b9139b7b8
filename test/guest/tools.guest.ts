// Runs INSIDE a guest kernel (tsbpf vm run), through test/guest/all.ts: the kprobe paths of
// tsbpf's tools, which the host (no kprobes) cannot take. The tools load dist/bpf (the guest
// has no clang). The fsslower checks need the disks test/vm/vm.test.ts attaches with --disk:
// images made by mkfs.ext4, mkfs.xfs and mkfs.btrfs ($TSBPF_DISKS lists their devices).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { closeSync, mkdirSync, openSync, readSync, unlinkSync, writeFileSync } from "node:fs";
import { createServer, connect, type AddressInfo } from "node:net";
import { join } from "node:path";
import { checkFsSlower } from "../support/fsslower.ts";
import { linksOfProgram } from "../support/kernel.ts";
import { runTool } from "../support/tools.ts";
import { imageFileSystem } from "../../src/vm/modules.ts";
import { FILE_SYSTEMS, kprobeTargets } from "../../src/cli/fsslower.ts";
import { tracepointExists } from "../../src/link/tracepoint.ts";

const scratch = `/dev/shm/tsbpf-tools-${process.pid}`;
mkdirSync(scratch, { recursive: true });

/** The file system on a disk, by its super block. */
function fsOf(device: string): string | undefined {
  const fd = openSync(device, "r");
  try {
    const head = Buffer.alloc(0x10048);
    return imageFileSystem(head.subarray(0, readSync(fd, head, 0, head.length, 0)));
  } finally {
    closeSync(fd);
  }
}

const disks = (process.env.TSBPF_DISKS ?? "").split(" ").filter((d) => d !== "");
const byFs = new Map(disks.map((d) => [fsOf(d), d]));
const TITLES: Record<string, string> = { ext4: "ext4", xfs: "XFS", btrfs: "btrfs" };

for (const fs of ["ext4", "xfs", "btrfs"]) {
  const f = FILE_SYSTEMS[fs]!;
  test(`${f.tool} 0 through kprobes on ${Object.values(f.functions).map((x) => x[0]).join(", ")}: dd on a ${fs} disk`, async (t) => {
    const device = byFs.get(fs as "ext4");
    if (!device) return t.skip(`no ${fs} disk attached (TSBPF_DISKS="${disks.join(" ")}"): run through test/vm/vm.test.ts`);
    const mount = `/mnt/tsbpf-${fs}`;
    mkdirSync(mount, { recursive: true });
    const m = spawnSync("mount", ["-t", fs, device, mount], { encoding: "utf8" });
    assert.equal(m.status, 0, `mount -t ${fs} ${device}: ${m.stderr}`);
    try {
      const targets = kprobeTargets(f);
      assert.ok(targets, `the kprobe path: kprobes and ${JSON.stringify(f.functions)} in kallsyms`);
      console.log(`# ${f.tool}: kprobes on ${Object.values(targets).join(", ")}`);
      const links: Record<string, number> = {};
      await checkFsSlower(f.tool, TITLES[fs]!, mount, {
        onReady: () => {
          for (const p of ["fs_read_entry", "fs_write_entry", "fs_open_entry", "fs_fsync_entry", "fs_return", "enter_write"]) links[p] = linksOfProgram(p).length;
        },
      });
      // One link per entry program, the return program on all four functions, no syscall tracepoints.
      assert.deepEqual(links, { fs_read_entry: 1, fs_write_entry: 1, fs_open_entry: 1, fs_fsync_entry: 1, fs_return: 4, enter_write: 0 });
    } finally {
      spawnSync("umount", [mount]);
    }
  });
}

test("filelife through the kprobe on vfs_unlink: a file on tmpfs (no ext4 tracepoint could see it)", async () => {
  const name = `life-${process.pid}`;
  let state = { started: false, done: false, links: 0 };
  const r = await runTool(["filelife"], {
    timeoutMs: 90_000,
    until: (o) => {
      if (!state.started && o.startsWith("TIME")) {
        state.started = true;
        state.links = linksOfProgram("vfs_unlink").length;
        spawn("sh", ["-c", `echo x > ${scratch}/${name}; sleep 0.5; rm ${scratch}/${name}`], { stdio: "ignore" }).on("exit", () => (state.done = true));
      }
      return state.done && o.includes(` ${name}`);
    },
  });
  assert.equal(r.code, 0, r.err);
  assert.equal(state.links, 1, "a link of the vfs_unlink kprobe");
  assert.match(r.lines[0]!, /^TIME\s+PID\s+COMM\s+AGE\(s\)\s+FILE$/);
  const line = r.lines.find((l) => l.endsWith(` ${name}`));
  assert.ok(line, r.out);
  const [, pid, comm, age] = line.split(/\s+/);
  assert.ok(Number(pid) > 0);
  assert.equal(comm, "rm");
  assert.ok(Number(age) >= 0.45 && Number(age) < 30, line);
});

test("mountsnoop: a tmpfs mount and umount by busybox", async () => {
  const target = `${scratch}/mnt`;
  mkdirSync(target, { recursive: true });
  let state = { started: false, code: -1 };
  const r = await runTool(["mountsnoop", "-P"], {
    timeoutMs: 90_000,
    until: (o) => {
      if (!state.started && o.startsWith("COMM")) {
        state.started = true;
        spawn("sh", ["-c", `mount -t tmpfs -o nosuid,nodev,size=1m tsbpftmpfs ${target} && umount ${target}`], { stdio: "ignore" }).on("exit", (c) => (state.code = c ?? -2));
      }
      return state.code >= 0 && o.includes(`umount("${target}"`);
    },
  });
  assert.equal(r.code, 0, r.err);
  assert.equal(state.code, 0, "mount/umount failed");
  assert.match(r.lines[0]!, /^COMM\s+PID\s+TID\s+PCOMM\s+PPID\s+MNT_NS\s+CALL$/);
  const mount = r.lines.find((l) => l.includes(`mount("tsbpftmpfs"`));
  assert.ok(mount, r.out);
  assert.match(mount, /^mount\s+\d+\s+\d+\s+sh\s+\d+\s+\d+\s+/);
  assert.match(mount, new RegExp(`mount\\("tsbpftmpfs", "${target}", "tmpfs", (MS_\\w+\\|)*MS_NOSUID\\|MS_NODEV(\\|MS_\\w+)*, "size=1m"\\) = 0$`), mount);
  const umount = r.lines.find((l) => l.includes(`umount("${target}"`))!;
  assert.match(umount, new RegExp(`umount\\("${target}", 0x0\\) = 0$`), umount);
});

/** Runs `tsbpf ARGS` while this process unlinks `n` files it made (so -p self counts exactly n). */
async function withUnlinks(n: number, args: string[]) {
  let done = false;
  const r = await runTool(args, {
    timeoutMs: 90_000,
    until: (o) => {
      if (!done && /Tracing|Hit Ctrl-C/.test(o)) {
        for (let i = 0; i < n; i++) {
          const p = join(scratch, `u-${i}`);
          writeFileSync(p, "");
          unlinkSync(p);
        }
        done = true;
      }
      return done;
    },
  });
  assert.equal(r.code, 0, r.err);
  return r;
}

test("funccount, funclatency and stackcount on a kernel function (kprobes): vfs_unlink, exactly 37 calls", async () => {
  const N = 37;
  const count = await withUnlinks(N, ["funccount", "-p", String(process.pid), "vfs_unlink"]);
  assert.match(count.out, new RegExp(`^vfs_unlink +${N}$`, "m"), count.out);
  const lat = await withUnlinks(N, ["funclatency", "-u", "-p", String(process.pid), "vfs_unlink"]);
  assert.match(lat.out, new RegExp(`count: ${N}$`, "m"), lat.out);
  const stacks = await withUnlinks(N, ["stackcount", "-p", String(process.pid), "vfs_unlink"]);
  assert.match(stacks.out, new RegExp(`\\n  vfs_unlink\\n(?:  .*\\n)*  do_unlinkat\\n(?:  .*\\n)*    ${N}\\n`), stacks.out);
});

test("tcptop: BCC's kprobes on tcp_sendmsg and tcp_cleanup_rbuf where the sock tracepoints are missing (6.1), else the tracepoints", async () => {
  const kprobes = !tracepointExists("sock", "sock_send_length");
  const program = kprobes ? "kprobe_sendmsg" : "send_length";
  console.log(`# tcptop: ${kprobes ? "kprobes" : "tracepoints"}`);
  // 3000 bytes out, 100 back, on one connection to a server in this process.
  const server = createServer((s) => {
    let got = 0;
    s.on("data", (d) => {
      got += d.length;
      if (got >= 3000) s.end(Buffer.alloc(100, "y"));
    });
  });
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
  const port = (server.address() as AddressInfo).port;
  let lport = 0;
  let finishedAt = 0;
  try {
    const r = await runTool(["tcptop", "--json", "-r", "1000", "1"], {
      timeoutMs: 90_000,
      until: () => {
        if (!lport && linksOfProgram(program).length > 0) {
          const c = connect(port, "127.0.0.1", () => {
            lport = c.localPort!;
            c.write(Buffer.alloc(3000, "x"));
          });
          c.on("data", () => {});
          c.on("end", () => {
            c.end();
            finishedAt = Date.now();
          });
        }
        return finishedAt > 0 && Date.now() > finishedAt + 2500; // two more intervals
      },
    });
    assert.equal(r.code, 0, r.err);
    const rows = r.json.flatMap((j) => j.rows as { pid: number; laddr: string; rx_kb: number; tx_kb: number }[]);
    const mine = rows.filter((x) => x.pid === process.pid && x.laddr === `127.0.0.1:${lport}`);
    const sum = (f: "rx_kb" | "tx_kb") => Math.round(mine.reduce((s, x) => s + x[f], 0) * 1024);
    assert.deepEqual([sum("tx_kb"), sum("rx_kb")], [3000, 100], JSON.stringify(rows));
  } finally {
    server.close();
  }
});
