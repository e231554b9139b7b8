// xfsslower and btrfsslower on this host (no kprobes: the syscall tracepoints, kept by
// the file system's magic), on images made with mkfs.xfs/mkfs.btrfs and loop-mounted in
// a temp dir; ext4slower's own test is in tools-fs.test.ts. The kprobe path runs in the
// guests (test/guest/tools.guest.ts).
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { checkFsSlower } from "../support/fsslower.ts";
import { runTool, tempDir } from "../support/tools.ts";

const dir = tempDir("tsbpf-fsslower-");
const mounted: string[] = [];

after(() => {
  for (const m of mounted) spawnSync("umount", [m]);
  dir[Symbol.dispose]();
});

/** An image of `size` made by mkfs.FS and loop-mounted; undefined (with the reason) when it cannot be. */
function mountImage(fs: string, size: string): { mount?: string; why?: string } {
  const image = join(dir.path, `${fs}.img`);
  const mount = join(dir.path, fs);
  mkdirSync(mount);
  if (spawnSync("truncate", ["-s", size, image]).status !== 0) return { why: "truncate failed" };
  const mkfs = spawnSync(`mkfs.${fs}`, ["-q", "-f", image], { encoding: "utf8" });
  if (mkfs.error || mkfs.status !== 0) return { why: `mkfs.${fs} is missing or failed (apt-get install ${fs === "xfs" ? "xfsprogs" : "btrfs-progs"})` };
  const m = spawnSync("mount", ["-o", "loop", image, mount], { encoding: "utf8" });
  if (m.status !== 0) return { why: `mount -o loop: ${m.stderr.trim()}` };
  mounted.push(mount);
  return { mount };
}

for (const [tool, fs, title, size] of [["xfsslower", "xfs", "XFS", "320M"], ["btrfsslower", "btrfs", "btrfs", "128M"]] as const) {
  test(`${tool} 0: dd's opens, 4 KiB writes and reads at their offsets, and its fsync on ${fs}`, async (t) => {
    const { mount, why } = mountImage(fs, size);
    if (!mount) return t.skip(why);
    await checkFsSlower(tool, title, mount);
  });
}

test("the fsslower tools: help names both hook paths; a negative min_ms is refused", async () => {
  for (const tool of ["xfsslower", "btrfsslower"]) {
    const help = await runTool([tool, "--help"]);
    assert.equal(help.code, 0);
    assert.match(help.out, /hooks: where the kernel has kprobes, as BCC: a kprobe and a kretprobe/);
    assert.match(help.out, /Without kprobes .* this times the syscalls/s);
  }
  assert.equal((await runTool(["xfsslower", "-1"])).code, 2);
});
