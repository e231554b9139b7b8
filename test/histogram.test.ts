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
import { UsageError } from "../src/errors.ts";
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
} from "../src/histogram/index.ts";
import { packageRoot } from "../src/internal/package.ts";

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
