// The TCP tools' shared user-space pieces (src/cli/tcp-shared.ts, src/cli/task-filter.ts):
// the constants their C takes and the columns tcplife and tcpstates print alike.
import { test } from "node:test";
import assert from "node:assert/strict";
import { endsColumns, endsFields, endsHeader, localRemotePortConstants, portConstants, portsConstant, sinceFirst } from "../../src/cli/tcp-shared.ts";
import { taskFilter } from "../../src/cli/task-filter.ts";
import { UsageError } from "../../src/errors.ts";
import type { Collection } from "../../src/collection.ts";

const v4 = { family: 2, lport: 40000, rport: 80, laddr: [127, 0, 0, 1, ...Array(12).fill(0)], raddr: [10, 1, 2, 3, ...Array(12).fill(0)] };
const v6 = { family: 10, lport: 443, rport: 51000, laddr: [...Array(15).fill(0), 1], raddr: [0x20, 0x01, 0x0d, 0xb8, ...Array(11).fill(0), 2] };

test("port lists become the 8-slot arrays and counts of tsbpf_port_wanted", () => {
  assert.deepEqual(portsConstant([]), [0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(portConstants("80,443", "-P/--port"), { targ_ports: [80, 443, 0, 0, 0, 0, 0, 0], targ_nports: 2 });
  assert.deepEqual(localRemotePortConstants({ remoteport: "22" }), {
    targ_lports: [0, 0, 0, 0, 0, 0, 0, 0], targ_nlports: 0, targ_rports: [22, 0, 0, 0, 0, 0, 0, 0], targ_nrports: 1,
  });
  assert.throws(() => localRemotePortConstants({ localport: "1,2,3,4,5,6,7,8,9" }), /-L\/--localport: at most 8 ports/);
  assert.throws(() => portConstants("70000", "-P/--port"), (err) => err instanceof UsageError && /"70000" is not a port/.test(err.message));
});

test("a connection's ends: columns under their header, and JSON fields in CSV order", () => {
  assert.equal(endsHeader(15), "LADDR           LPORT RADDR           RPORT");
  assert.equal(endsColumns(v4, 15), "127.0.0.1       40000 10.1.2.3        80   ");
  assert.equal(endsColumns(v4, 15).length, endsHeader(15).length);
  assert.equal(endsColumns(v6, 39), `${"::1".padEnd(39)} 443   ${"2001:db8::2".padEnd(39)} 51000`);
  assert.deepEqual(endsFields(v6), { ip: 6, laddr: "::1", lport: 443, raddr: "2001:db8::2", rport: 51000 });
  assert.deepEqual(Object.keys(endsFields(v4)), ["ip", "laddr", "lport", "raddr", "rport"]);
});

test("sinceFirst counts seconds from the first timestamp it sees", () => {
  const s = sinceFirst();
  assert.equal(s(5_000_000_000n), 0);
  assert.equal(s(6_500_000_000n), 1.5);
});

test("no --cgroupmap or --mntnsmap: the filter is off and fills nothing", () => {
  const f = taskFilter({});
  assert.deepEqual(f.constants, { targ_cgroups: false, targ_mntns: false });
  const touched: string[] = [];
  f.fill({ map: (name: string) => (touched.push(name), undefined) } as unknown as Collection);
  assert.deepEqual(touched, []);
});
