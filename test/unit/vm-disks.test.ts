// tsbpf vm run's disks and modules, without a boot: the QEMU arguments, /init's module
// lines, module dependencies from .modinfo and the file system of an image's super block.
import { test } from "node:test";
import assert from "node:assert/strict";
import { diskNames, initScript, qemuArgs } from "../../src/vm/run.ts";
import { imageFileSystem, moduleDepends } from "../../src/vm/modules.ts";

test("--disk: a virtio drive per image, read-only when asked, commas in the path doubled", () => {
  const args = qemuArgs({
    kernel: { name: "k", vmlinuz: "/k/vmlinuz" }, initrd: "/i", accel: "tcg", mem: "2G", cpus: 2, out: "/o", err: "/e",
    disks: [{ path: "/tmp/a,b.img", readonly: true }, { path: "/tmp/c.img" }],
  });
  const drives = args.flatMap((a, i) => (a === "-drive" ? [args[i + 1]] : []));
  assert.deepEqual(drives, ["file=/tmp/a,,b.img,format=raw,if=virtio,readonly=on", "file=/tmp/c.img,format=raw,if=virtio"]);
  assert.deepEqual(diskNames(3), ["/dev/vda", "/dev/vdb", "/dev/vdc"]);
  assert.throws(() => diskNames(27), /at most 26/);
});

test("/init insmods the modules in order and waits for the last disk", () => {
  const script = initScript({ nonce: "n", command: ["true"], cwd: "/", env: {}, modules: ["virtio_blk", "xfs"], disks: 2 });
  const insmods = [...script.matchAll(/^insmod (\S+)/gm)].map((m) => m[1]);
  assert.deepEqual(insmods, ["/lib/modules/tsbpf/virtio_blk.ko", "/lib/modules/tsbpf/xfs.ko"]);
  assert.match(script, /\[ ! -b \/dev\/vdb \]/);
  assert.ok(script.indexOf("insmod") < script.indexOf("-START"), "modules before the command");
  assert.doesNotMatch(initScript({ nonce: "n", command: ["true"], cwd: "/", env: {} }), /insmod/);
});

test("module dependencies come from .modinfo's depends=, '-' read as '_'", () => {
  const elf = Buffer.from("\x7fELF....\0license=GPL\0depends=libcrc32c,raid6-pq,xor\0retpoline=Y\0name=btrfs\0", "latin1");
  assert.deepEqual(moduleDepends(elf), ["libcrc32c", "raid6_pq", "xor"]);
  assert.deepEqual(moduleDepends(Buffer.from("\0depends=\0name=virtio\0", "latin1")), []);
  assert.deepEqual(moduleDepends(Buffer.from("no modinfo", "latin1")), []);
});

test("an image's file system from its super block: ext4, xfs, btrfs, or none", () => {
  const ext4 = Buffer.alloc(4096);
  ext4.writeUInt16LE(0xef53, 1080);
  const xfs = Buffer.alloc(4096);
  xfs.write("XFSB", 0, "latin1");
  const btrfs = Buffer.alloc(0x10048);
  btrfs.write("_BHRfS_M", 0x10040, "latin1");
  assert.equal(imageFileSystem(ext4), "ext4");
  assert.equal(imageFileSystem(xfs), "xfs");
  assert.equal(imageFileSystem(btrfs), "btrfs");
  assert.equal(imageFileSystem(Buffer.alloc(4096)), undefined);
  assert.equal(imageFileSystem(Buffer.alloc(10)), undefined);
});
