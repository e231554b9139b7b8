// Prometheus's text format written into one buffer kept from scrape to scrape:
// strings are copied in, integers written digit by digit, so a scrape of
// 10,000 series leaves almost no garbage behind (the heap, and so the RSS,
// grew by tens of MiB when every line was a new string).
import type { Snapshot } from "./reader.ts";

export class TextWriter {
  #buf = Buffer.allocUnsafeSlow(64 * 1024);
  #len = 0;

  reset(): void {
    this.#len = 0;
  }

  #room(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#len + n) size *= 2;
    const next = Buffer.allocUnsafeSlow(size);
    this.#buf.copy(next, 0, 0, this.#len);
    this.#buf = next;
  }

  str(s: string): void {
    this.#room(s.length * 3);
    this.#len += this.#buf.write(s, this.#len, "utf8");
  }

  byte(c: number): void {
    this.#room(1);
    this.#buf[this.#len++] = c;
  }

  /** A value as prom-client writes it: integers in full, others as JavaScript prints them. */
  num(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) return this.str(v === Infinity ? "+Inf" : v === -Infinity ? "-Inf" : String(v));
    this.#room(16);
    const buf = this.#buf;
    let digits = 1;
    for (let x = v; x >= 10; x = Math.floor(x / 10)) digits++;
    let at = this.#len + digits;
    this.#len = at;
    let x = v;
    do {
      buf[--at] = 48 + (x % 10);
      x = Math.floor(x / 10);
    } while (x > 0);
  }

  /** A copy of what was written (the buffer itself is reused by the next scrape). */
  take(): Buffer {
    return Buffer.from(this.#buf.subarray(0, this.#len));
  }
}

const NL = 10, SP = 32, LB = 123, RB = 125, COMMA = 44;

/** One metric of a snapshot, as prom-client would write it. */
export function writeMetric(w: TextWriter, snap: Snapshot): void {
  const m = snap.metric;
  const name = m.name;
  w.str(`# HELP ${name} ${m.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}\n# TYPE ${name} ${m.kind}\n`);
  if (m.kind !== "histogram") {
    for (const s of snap.series) sample(w, name, "", s.text, s.v[0]);
    return;
  }
  const bucket = `${name}_bucket{`;
  const le = snap.bounds.map((b) => `le="${String(b)}"} `);
  const nb = le.length;
  for (const s of snap.series) {
    let c = 0;
    for (let i = 0; i <= nb; i++) {
      c += s.v[i];
      w.str(bucket);
      if (s.text) {
        w.str(s.text);
        w.byte(COMMA);
      }
      w.str(i < nb ? le[i] : 'le="+Inf"} ');
      w.num(c);
      w.byte(NL);
    }
    sample(w, name, "_sum", s.text, s.v[nb + 1]);
    sample(w, name, "_count", s.text, c);
  }
}

/** name{labels} value: one line. */
function sample(w: TextWriter, name: string, suffix: string, labels: string, value: number): void {
  w.str(name);
  if (suffix) w.str(suffix);
  if (labels) {
    w.byte(LB);
    w.str(labels);
    w.byte(RB);
  }
  w.byte(SP);
  w.num(value);
  w.byte(NL);
}
