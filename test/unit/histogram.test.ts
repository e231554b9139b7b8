// Histograms printed byte for byte as BCC prints them: against numbers and
// lines taken from BCC's tools/*_example.txt (biolatency -D and -F, runqlat,
// cpudist, runqlen -T, softirqs -d), against Debian's python3-bpfcc table code
// on random value sets (when it can be imported), and end to end through a BPF
// program that fills slots with include/tsbpf_hist.h in the kernel.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { UsageError } from "../../src/errors.ts";
import {
  FOREVER,
  LINEAR_SLOTS,
  LOG2_SLOTS,
  bucketize,
  clockTime,
  formatLinearHist,
  formatLog2Hist,
  histogramJson,
  intervalHeader,
  intervalTicks,
  linearHistLines,
  log2HistLines,
  log2l,
  parseIntervalArgs,
  pythonRepr,
} from "../../src/histogram/index.ts";
import { packageRoot } from "../../src/internal/package.ts";

// [slot, count] pairs and the lines BCC printed for them (from BCC's example files).
const EXAMPLES: { counts: [number, number][]; lines: string[] }[] = [
  // bio-D xvdb: section ["Bucket disk","'xvdb'"] valType "usecs"
  {
    counts: [[8,1],[9,33],[10,36],[11,58],[12,51],[13,21],[14,2]],
    lines: [
      "     usecs               : count     distribution",
      "         0 -> 1          : 0        |                                        |",
      "         2 -> 3          : 0        |                                        |",
      "         4 -> 7          : 0        |                                        |",
      "         8 -> 15         : 0        |                                        |",
      "        16 -> 31         : 0        |                                        |",
      "        32 -> 63         : 0        |                                        |",
      "        64 -> 127        : 0        |                                        |",
      "       128 -> 255        : 1        |                                        |",
      "       256 -> 511        : 33       |**********************                  |",
      "       512 -> 1023       : 36       |************************                |",
      "      1024 -> 2047       : 58       |****************************************|",
      "      2048 -> 4095       : 51       |***********************************     |",
      "      4096 -> 8191       : 21       |**************                          |",
      "      8192 -> 16383      : 2        |*                                       |",
    ],
  },
  // bio-D xvdc: section ["Bucket disk","'xvdc'"] valType "usecs"
  {
    counts: [[8,1],[9,38],[10,42],[11,66],[12,40],[13,14]],
    lines: [
      "     usecs               : count     distribution",
      "         0 -> 1          : 0        |                                        |",
      "         2 -> 3          : 0        |                                        |",
      "         4 -> 7          : 0        |                                        |",
      "         8 -> 15         : 0        |                                        |",
      "        16 -> 31         : 0        |                                        |",
      "        32 -> 63         : 0        |                                        |",
      "        64 -> 127        : 0        |                                        |",
      "       128 -> 255        : 1        |                                        |",
      "       256 -> 511        : 38       |***********************                 |",
      "       512 -> 1023       : 42       |*************************               |",
      "      1024 -> 2047       : 66       |****************************************|",
      "      2048 -> 4095       : 40       |************************                |",
      "      4096 -> 8191       : 14       |********                                |",
    ],
  },
  // bio-D xvda1: section ["Bucket disk","'xvda1'"] valType "usecs"
  {
    counts: [[9,18],[10,67],[11,35],[12,71],[13,65],[14,65],[15,20],[16,7]],
    lines: [
      "     usecs               : count     distribution",
      "         0 -> 1          : 0        |                                        |",
      "         2 -> 3          : 0        |                                        |",
      "         4 -> 7          : 0        |                                        |",
      "         8 -> 15         : 0        |                                        |",
      "        16 -> 31         : 0        |                                        |",
      "        32 -> 63         : 0        |                                        |",
      "        64 -> 127        : 0        |                                        |",
      "       128 -> 255        : 0        |                                        |",
      "       256 -> 511        : 18       |**********                              |",
      "       512 -> 1023       : 67       |*************************************   |",
      "      1024 -> 2047       : 35       |*******************                     |",
      "      2048 -> 4095       : 71       |****************************************|",
      "      4096 -> 8191       : 65       |************************************    |",
      "      8192 -> 16383      : 65       |************************************    |",
      "     16384 -> 32767      : 20       |***********                             |",
      "     32768 -> 65535      : 7        |***                                     |",
    ],
  },
  // bio-F Read: section ["flags","Read"] valType "msecs"
  {
    counts: [[1,180],[2,519],[3,60],[4,123],[5,68],[7,2],[8,12],[10,1]],
    lines: [
      "     msecs               : count     distribution",
      "         0 -> 1          : 180      |*************                           |",
      "         2 -> 3          : 519      |****************************************|",
      "         4 -> 7          : 60       |****                                    |",
      "         8 -> 15         : 123      |*********                               |",
      "        16 -> 31         : 68       |*****                                   |",
      "        32 -> 63         : 0        |                                        |",
      "        64 -> 127        : 2        |                                        |",
      "       128 -> 255        : 12       |                                        |",
      "       256 -> 511        : 0        |                                        |",
      "       512 -> 1023       : 1        |                                        |",
    ],
  },
  // bio-F Sync-Write: section ["flags","Sync-Write"] valType "msecs"
  {
    counts: [[1,5]],
    lines: [
      "     msecs               : count     distribution",
      "         0 -> 1          : 5        |****************************************|",
    ],
  },
  // bio-F Flush: section ["flags","Flush"] valType "msecs"
  {
    counts: [[1,2]],
    lines: [
      "     msecs               : count     distribution",
      "         0 -> 1          : 2        |****************************************|",
    ],
  },
  // runqlat: section null valType "usecs"
  {
    counts: [[1,233],[2,742],[3,203],[4,173],[5,24],[7,30],[8,6],[9,3],[10,5],[11,27],[12,30],[13,20],[14,29],[15,809],[16,64]],
    lines: [
      "     usecs               : count     distribution",
      "         0 -> 1          : 233      |***********                             |",
      "         2 -> 3          : 742      |************************************    |",
      "         4 -> 7          : 203      |**********                              |",
      "         8 -> 15         : 173      |********                                |",
      "        16 -> 31         : 24       |*                                       |",
      "        32 -> 63         : 0        |                                        |",
      "        64 -> 127        : 30       |*                                       |",
      "       128 -> 255        : 6        |                                        |",
      "       256 -> 511        : 3        |                                        |",
      "       512 -> 1023       : 5        |                                        |",
      "      1024 -> 2047       : 27       |*                                       |",
      "      2048 -> 4095       : 30       |*                                       |",
      "      4096 -> 8191       : 20       |                                        |",
      "      8192 -> 16383      : 29       |*                                       |",
      "     16384 -> 32767      : 809      |****************************************|",
      "     32768 -> 65535      : 64       |***                                     |",
    ],
  },
  // cpudist: section null valType "usecs"
  {
    counts: [[2,1],[6,3],[7,1],[8,1],[10,2],[11,4],[12,3],[13,70],[14,867],[15,141],[16,8],[18,1],[19,2],[20,3]],
    lines: [
      "     usecs               : count     distribution",
      "         0 -> 1          : 0        |                                        |",
      "         2 -> 3          : 1        |                                        |",
      "         4 -> 7          : 0        |                                        |",
      "         8 -> 15         : 0        |                                        |",
      "        16 -> 31         : 0        |                                        |",
      "        32 -> 63         : 3        |                                        |",
      "        64 -> 127        : 1        |                                        |",
      "       128 -> 255        : 1        |                                        |",
      "       256 -> 511        : 0        |                                        |",
      "       512 -> 1023       : 2        |                                        |",
      "      1024 -> 2047       : 4        |                                        |",
      "      2048 -> 4095       : 3        |                                        |",
      "      4096 -> 8191       : 70       |***                                     |",
      "      8192 -> 16383      : 867      |****************************************|",
      "     16384 -> 32767      : 141      |******                                  |",
      "     32768 -> 65535      : 8        |                                        |",
      "     65536 -> 131071     : 0        |                                        |",
      "    131072 -> 262143     : 1        |                                        |",
      "    262144 -> 524287     : 2        |                                        |",
      "    524288 -> 1048575    : 3        |                                        |",
    ],
  },
  // runqlen: section null valType "runqlen"
  {
    counts: [[0,640],[1,136],[2,13],[3,1],[10,1]],
    lines: [
      "     runqlen       : count     distribution",
      "        0          : 640      |****************************************|",
      "        1          : 136      |********                                |",
      "        2          : 13       |                                        |",
      "        3          : 1        |                                        |",
      "        4          : 0        |                                        |",
      "        5          : 0        |                                        |",
      "        6          : 0        |                                        |",
      "        7          : 0        |                                        |",
      "        8          : 0        |                                        |",
      "        9          : 0        |                                        |",
      "        10         : 1        |                                        |",
    ],
  },
  // softirq net_tx_action: section ["softirq","net_tx_action"] valType "usecs"
  {
    counts: [[9,440],[10,27613],[11,5728],[12,439],[13,53],[14,2]],
    lines: [
      "     usecs               : count     distribution",
      "         0 -> 1          : 0        |                                        |",
      "         2 -> 3          : 0        |                                        |",
      "         4 -> 7          : 0        |                                        |",
      "         8 -> 15         : 0        |                                        |",
      "        16 -> 31         : 0        |                                        |",
      "        32 -> 63         : 0        |                                        |",
      "        64 -> 127        : 0        |                                        |",
      "       128 -> 255        : 0        |                                        |",
      "       256 -> 511        : 440      |                                        |",
      "       512 -> 1023       : 27613    |****************************************|",
      "      1024 -> 2047       : 5728     |********                                |",
      "      2048 -> 4095       : 439      |                                        |",
      "      4096 -> 8191       : 53       |                                        |",
      "      8192 -> 16383      : 2        |                                        |",
    ],
  },
  // softirq net_rx_action: section ["softirq","net_rx_action"] valType "usecs"
  {
    counts: [[10,6],[11,35],[12,3562],[13,7023],[14,8770],[15,1780],[16,216],[17,4]],
    lines: [
      "     usecs               : count     distribution",
      "         0 -> 1          : 0        |                                        |",
      "         2 -> 3          : 0        |                                        |",
      "         4 -> 7          : 0        |                                        |",
      "         8 -> 15         : 0        |                                        |",
      "        16 -> 31         : 0        |                                        |",
      "        32 -> 63         : 0        |                                        |",
      "        64 -> 127        : 0        |                                        |",
      "       128 -> 255        : 0        |                                        |",
      "       256 -> 511        : 0        |                                        |",
      "       512 -> 1023       : 6        |                                        |",
      "      1024 -> 2047       : 35       |                                        |",
      "      2048 -> 4095       : 3562     |****************                        |",
      "      4096 -> 8191       : 7023     |********************************        |",
      "      8192 -> 16383      : 8770     |****************************************|",
      "     16384 -> 32767      : 1780     |********                                |",
      "     32768 -> 65535      : 216      |                                        |",
      "     65536 -> 131071     : 4        |                                        |",
    ],
  },
];

const text = (lines: string[]) => lines.map((l) => l + "\n").join("");
const [bioD1, bioD2, bioD3, bioF1, bioF2, bioF3, runqlat, cpudist, runqlen, soft1, soft2] = EXAMPLES as [
  (typeof EXAMPLES)[0], (typeof EXAMPLES)[0], (typeof EXAMPLES)[0], (typeof EXAMPLES)[0], (typeof EXAMPLES)[0], (typeof EXAMPLES)[0],
  (typeof EXAMPLES)[0], (typeof EXAMPLES)[0], (typeof EXAMPLES)[0], (typeof EXAMPLES)[0], (typeof EXAMPLES)[0],
];

describe("BCC's example output", () => {
  test("runqlat and cpudist: one log2 histogram from slot -> count entries", () => {
    assert.equal(formatLog2Hist(runqlat.counts, { valType: "usecs" }), text(runqlat.lines));
    // Values as a BpfMap of u64 gives them (bigint), and per-CPU arrays, sum to the same.
    const perCpu = cpudist.counts.map(([s, c]) => [BigInt(s), [BigInt(c - 1), 1n]] as const);
    assert.equal(formatLog2Hist(perCpu, { valType: "usecs" }), text(cpudist.lines));
  });

  test("biolatency -D: a section per disk, the bucket printed as Python's repr ('xvdb')", () => {
    const entries: [{ disk: string; slot: number }, number][] = [];
    for (const [disk, ex] of [["xvdb", bioD1], ["xvdc", bioD2], ["xvda1", bioD3]] as const) {
      for (const [slot, count] of ex.counts) entries.push([{ disk, slot }, count]);
    }
    const expected = [bioD1, bioD2, bioD3].map((ex, i) => text(["", `Bucket disk = '${["xvdb", "xvdc", "xvda1"][i]}'`, ...ex.lines])).join("");
    assert.equal(formatLog2Hist(entries, { valType: "usecs", sectionHeader: "Bucket disk" }), expected);
  });

  test("biolatency -F and softirqs -d: section_print_fn names the bucket", () => {
    const flags = new Map([[0, "Read"], [2049, "Sync-Write"], [4096, "Flush"]]);
    const entries = [bioF1, bioF2, bioF3].flatMap((ex, i) => ex.counts.map(([slot, c]) => [{ flags: [0, 2049, 4096][i]!, slot: BigInt(slot) }, BigInt(c)] as const));
    assert.equal(
      formatLog2Hist(entries, { valType: "msecs", sectionHeader: "flags", sectionPrintFn: (f: number) => flags.get(f)! }),
      text(["", "flags = Read", ...bioF1.lines, "", "flags = Sync-Write", ...bioF2.lines, "", "flags = Flush", ...bioF3.lines]),
    );
    const vecs = ["hi", "timer", "net_tx_action", "net_rx_action"];
    // Entries in another order than printed: bucket_sort_fn orders the sections.
    const soft = [...soft2.counts.map(([s, c]) => [{ vec: 3, slot: s }, c] as const), ...soft1.counts.map(([s, c]) => [{ vec: 2, slot: s }, c] as const)];
    assert.equal(
      formatLog2Hist(soft, { valType: "usecs", sectionHeader: "softirq", sectionPrintFn: (v: number) => vecs[v]!, bucketSortFn: (b: number[]) => [...b].sort() }),
      text(["", "softirq = net_tx_action", ...soft1.lines, "", "softirq = net_rx_action", ...soft2.lines]),
    );
  });

  test("runqlen -T 1: a linear histogram after the interval header", () => {
    const at = new Date(2024, 0, 1, 19, 51, 35);
    assert.equal(intervalHeader(true, at) + formatLinearHist(runqlen.counts, { valType: "runqlen" }), text(["", "19:51:35", ...runqlen.lines]));
    assert.equal(intervalHeader(false, at), "\n");
  });
});

describe("slots and edge cases", () => {
  test("log2l numbers slots as BCC's bpf_log2l", () => {
    assert.deepEqual([0, 1, 2, 3, 4, 7, 8, 1023, 1024].map(log2l), [1, 1, 2, 2, 3, 3, 4, 10, 11]);
    assert.equal(log2l(2n ** 32n - 1n), 32);
    assert.equal(log2l(2n ** 32n), 33);
    assert.equal(log2l(2n ** 64n - 1n), 64);
    assert.equal(log2l(-1), 64); // taken as a u64, as in C
  });

  test("empty and slot-0-only histograms print nothing, as BCC", () => {
    assert.equal(formatLog2Hist([]), "");
    assert.equal(formatLog2Hist([[0, 5]]), "");
    assert.equal(formatLinearHist([]), "");
    assert.equal(formatLinearHist([[0, 5]], { valType: "x" }), text(["     x             : count     distribution", "        0          : 5        |****************************************|"]));
  });

  test("slots above 32 switch to 20-digit columns and a 20-star bar", () => {
    const lines = log2HistLines(Object.assign(new Array(LOG2_SLOTS).fill(0), { 1: 1, 64: 2 }), "nsecs");
    assert.equal(lines[0], "               nsecs                         : count     distribution");
    assert.equal(lines[1], "                   0 -> 1                    : 1        |**********          |");
    assert.equal(lines.at(-1), " 9223372036854775808 -> 18446744073709551615 : 2        |********************|");
  });

  test("strip_leading_zero drops the empty slots before the first count, in both kinds", () => {
    assert.deepEqual(log2HistLines([0, 0, 0, 4, 0, 2], "v", true).slice(1).map((l) => l.slice(0, 26)), ["         4 -> 7          :", "         8 -> 15         :", "        16 -> 31         :"]);
    assert.equal(linearHistLines([0, 0, 3, 0, 1], "v", true).length, 4);
  });

  test("bad input is a UsageError that says what is wrong", () => {
    assert.throws(() => formatLog2Hist([[65, 1]]), (e: unknown) => e instanceof UsageError && /slot 65 is outside 0\.\.64/.test(e.message));
    assert.throws(() => formatLinearHist([[LINEAR_SLOTS, 1]]), UsageError);
    assert.throws(() => formatLog2Hist([[1, "x"]]), /not an integer/);
    assert.throws(() => formatLog2Hist([[1, 1], [{ a: 1, slot: 2 }, 1]]), /mix/);
  });

  test("pythonRepr matches Python's repr for the buckets BCC prints", () => {
    assert.equal(pythonRepr("sda"), "'sda'");
    assert.equal(pythonRepr("it's"), `"it's"`);
    assert.equal(pythonRepr(new Uint8Array([115, 100, 0])), "b'sd\\x00'");
    assert.equal(pythonRepr(1234n), "1234");
  });

  test("bucketize counts raw values into BCC's slots", () => {
    assert.deepEqual(bucketize([0, 1, 5, 6, 7, 1000]), [[1, 2n], [3, 3n], [10, 1n]]);
    assert.deepEqual(bucketize([3, 3, 1], "linear"), [[1, 1n], [3, 2n]]);
  });
});

describe("JSON", () => {
  test("BCC's print_json_hist shape: intervals, counts, the section under its header's name", () => {
    const json = histogramJson("log2", [[{ pid: 42, slot: 1 }, 3], [{ pid: 42, slot: 3 }, 1n], [{ pid: 7, slot: 2 }, 5]], { valType: "usecs", sectionHeader: "pid" });
    assert.deepEqual(json, [
      { val_type: "usecs", pid: 42, data: [
        { "interval-start": 0, "interval-end": 1, count: 3 },
        { "interval-start": 2, "interval-end": 3, count: 0 },
        { "interval-start": 4, "interval-end": 7, count: 1 },
      ] },
      { val_type: "usecs", pid: 7, data: [
        { "interval-start": 0, "interval-end": 1, count: 0 },
        { "interval-start": 2, "interval-end": 3, count: 5 },
      ] },
    ]);
    const [wide] = histogramJson("log2", [[64, 2n ** 60n]], { timestamp: new Date(2024, 1, 3, 4, 5, 6) });
    assert.equal(wide!.ts, "2024-02-03 04:05:06");
    assert.deepEqual(wide!.data.at(-1), { "interval-start": "9223372036854775808", "interval-end": "18446744073709551615", count: "1152921504606846976" });
    assert.deepEqual(histogramJson("linear", [[2, 1]])[0]!.data.map((d) => d["interval-start"]), [0, 1, 2]);
    assert.doesNotThrow(() => JSON.stringify(json));
  });
});

describe("interval loop", () => {
  test("[interval [count]] as BCC parses them", () => {
    assert.deepEqual(parseIntervalArgs([]), { interval: FOREVER, count: FOREVER, periodic: false });
    assert.deepEqual(parseIntervalArgs(["5", "3"]), { interval: 5, count: 3, periodic: true });
    assert.throws(() => parseIntervalArgs(["0"]), UsageError);
    assert.throws(() => parseIntervalArgs(["1.5"]), /positive whole number/);
    assert.throws(() => parseIntervalArgs(["1", "2", "3"]), UsageError);
    assert.match(clockTime(), /^\d\d:\d\d:\d\d$/);
  });

  test("ticks count down, and an abort ends the wait with a last tick", async () => {
    const seen: [number, boolean][] = [];
    for await (const t of intervalTicks({ interval: 0.01, count: 3 })) seen.push([t.index, t.last]);
    assert.deepEqual(seen, [[1, false], [2, false], [3, true]]);
    const stop = new AbortController();
    const ticks: boolean[] = [];
    setImmediate(() => stop.abort());
    for await (const t of intervalTicks({ interval: FOREVER, count: FOREVER, signal: stop.signal })) ticks.push(t.last);
    assert.deepEqual(ticks, [true]);
  });
});

// Debian's python3-bpfcc: its table printing needs no kernel headers, only the
// module. The unbound print_log2_hist/print_linear_hist run on a stand-in table.
const PYTHON = "/usr/bin/python3";
const BCC_DRIVER = String.raw`
import sys, json, io, contextlib, ctypes as ct
from bcc.table import _print_log2_hist, _print_linear_hist, TableBase
class V:
    def __init__(self, v): self.value = v
class IntKey(ct.Structure): _fields_ = [("bucket", ct.c_uint64), ("slot", ct.c_uint32)]
class StrKey(ct.Structure): _fields_ = [("bucket", ct.c_char * 16), ("slot", ct.c_uint32)]
class Fake:
    decode_c_struct = TableBase.decode_c_struct
    def __init__(self, key, items): self.Key = key; self._items = items
    def items(self): return self._items
out = []
for c in json.load(sys.stdin):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        if "vals" in c:
            (_print_log2_hist if c["kind"] == "log2" else _print_linear_hist)(c["vals"], c["valType"], c["strip"])
        else:
            strs = isinstance(c["items"][0][0], str)
            key = StrKey if strs else IntKey
            t = Fake(key, [(key(b.encode() if strs else b, s), V(n)) for b, s, n in c["items"]])
            fn = TableBase.print_log2_hist if c["kind"] == "log2" else TableBase.print_linear_hist
            fn(t, c["valType"], c["header"], None, (lambda b: b.decode()) if strs else None, c["strip"])
    out.append(buf.getvalue())
print(json.dumps(out))
`;

function bccImportable(): boolean {
  const probe = () => spawnSync(PYTHON, ["-c", "import bcc.table"], { encoding: "utf8" }).status === 0;
  if (probe()) return true;
  // As root on Debian, the test installs what it needs (the package is only Python and libbcc).
  if (process.getuid?.() === 0 && spawnSync("apt-get", ["install", "-y", "-q", "python3-bpfcc"], { stdio: "ignore", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } }).status === 0) return probe();
  return false;
}

// A small seeded generator, so that a failure names a case that can be re-run.
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

type PyCase = { kind: "log2" | "linear"; valType: string; strip: boolean } & ({ vals: number[] } | { items: [number | string, number, number][]; header: string });

function randomCases(seed: number, n: number): PyCase[] {
  const r = random(seed);
  const int = (max: number) => Math.floor(r() * max);
  const count = () => (r() < 0.3 ? 0 : int(10 ** (1 + int(r() < 0.1 ? 15 : 6))));
  const cases: PyCase[] = [];
  const valTypes = ["usecs", "msecs", "nsecs", "kbytes", "value", "a-long-label-for-this-column-here"];
  for (let i = 0; i < n; i++) {
    const kind = r() < 0.7 ? "log2" : "linear";
    const top = kind === "log2" ? (r() < 0.25 ? 33 + int(32) : int(33)) : int(60);
    const vals = new Array(kind === "log2" ? LOG2_SLOTS : LINEAR_SLOTS).fill(0);
    const from = int(top + 1);
    for (let s = from; s <= top; s++) vals[s] = count();
    if (r() < 0.5) vals[top] = 1 + int(1000);
    const valType = valTypes[int(valTypes.length)]!;
    const strip = r() < 0.4;
    if (r() < 0.7) {
      cases.push({ kind, valType, strip, vals });
    } else {
      const strs = r() < 0.5;
      const items: [number | string, number, number][] = [];
      for (let b = 0; b < 1 + int(4); b++) {
        const bucket = strs ? ["sda", "nvme0n1", "it's", "xvda1"][b]! : int(100000);
        vals.forEach((v, s) => v && r() < 0.8 && items.push([bucket, s, v]));
      }
      if (items.length) cases.push({ kind, valType, strip, items, header: strs ? "disk" : "pid" });
    }
  }
  return cases;
}

test("random value sets print as Debian's python3-bpfcc prints them", (t) => {
  if (!bccImportable()) {
    t.skip(`${PYTHON} cannot import bcc.table (apt-get install python3-bpfcc)`);
    return;
  }
  const cases = randomCases(14, 400);
  const run = spawnSync(PYTHON, ["-c", BCC_DRIVER], { input: JSON.stringify(cases), encoding: "utf8", maxBuffer: 64 << 20 });
  assert.equal(run.status, 0, run.stderr);
  const expected = JSON.parse(run.stdout) as string[];
  assert.equal(expected.length, cases.length);
  let sections = 0;
  cases.forEach((c, i) => {
    const format = c.kind === "log2" ? formatLog2Hist : formatLinearHist;
    const entries = "vals" in c ? c.vals.map((v, s) => [s, v] as const).filter(([, v]) => v) : c.items.map(([bucket, slot, n]) => [{ bucket, slot }, n] as const);
    const opts = "vals" in c ? { valType: c.valType, stripLeadingZero: c.strip } : { valType: c.valType, stripLeadingZero: c.strip, sectionHeader: c.header };
    if (!("vals" in c)) sections++;
    assert.equal(format(entries, opts), expected[i], `case ${i}: ${JSON.stringify(c).slice(0, 300)}`);
  });
  assert.ok(sections > 50, `${sections} sectioned cases`);
});

test("tsbpf_hist.h: tsbpf_log2l is BCC's bpf_log2l, compiled for the host and compared with log2l", (t) => {
  const cc = ["cc", "gcc", "clang"].find((c) => spawnSync(c, ["--version"]).status === 0);
  if (!cc) return t.skip("no C compiler for the host");
  const dir = mkdtempSync(join(tmpdir(), "tsbpf-hist-"));
  try {
    writeFileSync(join(dir, "t.c"), `#include <linux/types.h>
#include <stdio.h>
#include <stdlib.h>
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif
#include "tsbpf_hist.h"
int main(void) { unsigned long long v; while (scanf("%llu", &v) == 1) printf("%u %u\\n", tsbpf_log2l(v), tsbpf_linear_slot(v, 10, 5, 7)); return 0; }
`);
    const build = spawnSync(cc, ["-O2", "-Wall", "-Werror", "-I", join(packageRoot, "include"), "-o", join(dir, "t"), join(dir, "t.c")], { encoding: "utf8" });
    assert.equal(build.status, 0, build.stderr);
    const values: bigint[] = [0n, 1n, 2n, 3n, 9n, 10n, 14n, 15n, 44n, 45n, 46n, 1000n];
    for (let k = 0n; k < 64n; k++) values.push((1n << k) - 1n, 1n << k, (1n << k) + 1n);
    values.push(2n ** 64n - 1n);
    const run = spawnSync(join(dir, "t"), { input: values.join("\n"), encoding: "utf8" });
    const got = run.stdout.trim().split("\n");
    const linear = (v: bigint) => (v < 10n ? 0 : Math.min(Number((v - 10n) / 5n), 7));
    assert.deepEqual(got, values.map((v) => `${log2l(v)} ${linear(v)}`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
