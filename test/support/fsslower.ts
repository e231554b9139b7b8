// The fsslower family (ext4slower, xfsslower, btrfsslower) against a dd workload on a
// mounted file system, on the host (test/kernel/tools-fsslower.test.ts) and in the
// guests (test/guest/tools.guest.ts): the same checks on either hook path.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { runTool } from "./tools.ts";

function run(cmd: string, args: string[]): Promise<number | null> {
  return new Promise((resolve) => spawn(cmd, args, { stdio: "ignore" }).on("exit", (c) => resolve(c)));
}

const KB = [0, 4, 8, 12, 16, 20, 24, 28];

/**
 * `tsbpf TOOL 0` while dd writes eight 4 KiB blocks to a new file on `mount` with an
 * fsync, then reads them back: the file's lines must show two opens (O), the eight
 * writes (W) and reads (R) of 4096 bytes at their offsets, and one fsync (S).
 */
export async function checkFsSlower(tool: string, title: string, mount: string, opts: { env?: Record<string, string>; onReady?: () => void } = {}): Promise<string[]> {
  const name = `fsslower-${process.pid}-${tool}`;
  const file = join(mount, name);
  let state: "waiting" | "running" | "done" = "waiting";
  const ours = (out: string): string[][] =>
    out.split("\n").filter((l) => l.endsWith(` ${name}`)).map((l) => l.trim().split(/\s+/));
  const r = await runTool([tool, "0"], {
    spawn: { env: { ...process.env, ...opts.env } },
    timeoutMs: 120_000,
    until: (out) => {
      if (state === "waiting" && out.includes("FILENAME")) {
        state = "running";
        opts.onReady?.();
        void (async () => {
          await run("dd", ["if=/dev/zero", `of=${file}`, "bs=4096", "count=8", "conv=fsync"]);
          await run("dd", [`if=${file}`, "of=/dev/null", "bs=4096"]);
          state = "done";
        })();
      }
      return state === "done" && ours(out).filter((f) => f[3] === "R" && f[4] === "4096").length >= 8;
    },
  });
  assert.equal(r.code, 0, r.err);
  assert.equal(r.lines[0], `Tracing ${title} operations`);
  assert.match(r.lines[1]!, /^TIME\s+COMM\s+PID\s+T\s+BYTES\s+OFF_KB\s+LAT\(ms\)\s+FILENAME$/);
  const mine = ours(r.out);
  const show = `\n${r.out}`;
  for (const f of mine) assert.equal(f[1], "dd", show);
  const of = (t: string, bytes = "4096") => mine.filter((f) => f[3] === t && f[4] === bytes).map((f) => Number(f[5]));
  assert.deepEqual(of("W"), KB, `eight writes at their offsets${show}`);
  assert.deepEqual(of("R"), KB, `eight reads at their offsets${show}`);
  assert.equal(mine.filter((f) => f[3] === "O").length, 2, `two opens${show}`);
  assert.equal(mine.filter((f) => f[3] === "S").length, 1, `one fsync${show}`);
  // Every other line of the file is dd's last read at the end (0 bytes).
  assert.equal(mine.filter((f) => f[3] === "R" && f[4] !== "4096").every((f) => f[4] === "0"), true, show);
  return r.lines;
}
