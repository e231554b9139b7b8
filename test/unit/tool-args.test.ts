// The command-line helpers tools share (skeleton.ts parseEventToolArgs and
// parseIntervalToolArgs, stacktool.ts parseDurationToolArgs, irqtool.ts irqMode):
// what they return and the one sentence each mistake gets, in the order the
// tools checked them before the helpers. No root, no kernel.
import { test } from "node:test";
import assert from "node:assert/strict";
import { UsageError } from "../../src/errors.ts";
import { parseEventToolArgs, parseIntervalToolArgs } from "../../src/cli/skeleton.ts";
import { parseDurationToolArgs } from "../../src/cli/stacktool.ts";
import { irqMode } from "../../src/cli/irqtool.ts";

const WITH_PID = { pid: { type: "string", short: "p" }, duration: { type: "string", short: "d" }, json: { type: "boolean" } } as const;
const NO_PID = { duration: { type: "string", short: "d" }, json: { type: "boolean" } } as const;

const usage = (message: string | RegExp) => (err: unknown) => {
  assert.ok(err instanceof UsageError, String(err));
  if (typeof message === "string") assert.equal(err.message, message);
  else assert.match(err.message, message);
  return true;
};

test("parseEventToolArgs: options, -p/--pid where the tool has it, -d/--duration, no positionals", () => {
  const r = parseEventToolArgs(["-p", "12", "-d", "3", "--json"], WITH_PID, "help");
  assert.ok(r);
  assert.equal(r.pid, 12);
  assert.equal(r.duration, 3);
  assert.equal(r.o.json, true);
  const bare = parseEventToolArgs([], NO_PID, "help");
  assert.deepEqual([bare?.pid, bare?.duration], [undefined, undefined]);
  assert.throws(() => parseEventToolArgs(["x"], WITH_PID, "help"), usage('unexpected argument "x"'));
  assert.throws(() => parseEventToolArgs(["-p", "0"], WITH_PID, "help"), usage(/^-p\/--pid expects a process ID from 1 to \d+, got "0"$/));
  assert.throws(() => parseEventToolArgs(["-d", "0"], NO_PID, "help"), usage(/^-d\/--duration expects a number of seconds/));
  // The order the tools checked in: a positional first, then -p, then -d.
  assert.throws(() => parseEventToolArgs(["-d", "x", "-p", "0", "y"], WITH_PID, "help"), usage('unexpected argument "y"'));
  assert.throws(() => parseEventToolArgs(["-d", "x", "-p", "0"], WITH_PID, "help"), usage(/^-p\/--pid/));
  // A tool without -p refuses it as an unknown option.
  assert.throws(() => parseEventToolArgs(["-p", "1"], NO_PID, "help"), UsageError);
});

test("parseIntervalToolArgs: [interval [count]] (or the tool's default), then -p/--pid", () => {
  const r = parseIntervalToolArgs(["-p", "7", "2", "5"], WITH_PID, "help");
  assert.ok(r);
  assert.equal(r.pid, 7);
  assert.deepEqual(r.intervals, { interval: 2, count: 5, periodic: true });
  const once = parseIntervalToolArgs([], NO_PID, "help");
  assert.equal(once?.intervals.periodic, false);
  assert.equal(once?.pid, undefined);
  const every = parseIntervalToolArgs([], NO_PID, "help", ["1"]);
  assert.deepEqual([every?.intervals.interval, every?.intervals.periodic], [1, true]);
  assert.throws(() => parseIntervalToolArgs(["1", "2", "3"], WITH_PID, "help"), usage(/^expected at most two arguments/));
  // The intervals are checked before -p, as the tools did.
  assert.throws(() => parseIntervalToolArgs(["-p", "0", "x"], WITH_PID, "help"), usage(/interval/));
});

test("parseDurationToolArgs: at most one positional, the duration in seconds", () => {
  assert.equal(parseDurationToolArgs(["5"], NO_PID, "help")?.duration, 5);
  assert.equal(parseDurationToolArgs([], NO_PID, "help")?.duration, undefined);
  assert.throws(() => parseDurationToolArgs(["1", "2"], NO_PID, "help"), usage('unexpected argument "2"'));
  assert.throws(() => parseDurationToolArgs(["0"], NO_PID, "help"), usage(/^duration expects a number of seconds/));
});

test("irqMode: counts, nanoseconds or microseconds, histograms, and BCC's refusals", () => {
  assert.deepEqual(irqMode({}, "--count").constants, { targ_mode: 0, targ_factor: 1000n, targ_cpu: -1 });
  const ns = irqMode({ nanoseconds: true, dist: true, cpu: "1" }, "--count");
  assert.deepEqual([ns.label, ns.mode, ns.constants], ["nsecs", 2, { targ_mode: 2, targ_factor: 1n, targ_cpu: 1 }]);
  const counts = irqMode({ count: true }, "--events");
  assert.deepEqual([counts.label, counts.mode, counts.factor], ["count", 1, 1n]);
  assert.throws(() => irqMode({ count: true, dist: true }, "--events"), usage("the --events option can't be used with time-based options (-d, -N)"));
  assert.throws(() => irqMode({ cpu: "x" }, "--count"), usage(/^-c\/--cpu expects a CPU number/));
});
