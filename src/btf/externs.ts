// What libbpf's bpf_object__collect_externs does to an object's BTF before the
// kernel sees it: the kernel refuses extern VARs and FUNCs inside a DATASEC, so
// .kconfig's variables become allocated ones at their offsets in the .kconfig
// map, and .ksyms' entries become 4-byte int variables (a kfunc's entry points
// at one added dummy VAR; the FUNC itself turns global, its unnamed parameters
// get a name).
import { BtfError } from "./error.ts";
import type { Spec } from "./spec.ts";

const KIND_INT = 1;
const KIND_VAR = 14;
const VAR_GLOBAL_ALLOCATED = 1;
const FUNC_GLOBAL = 1;

export interface ExternLayout {
  /** Offsets of .kconfig variables in the .kconfig map, by name. */
  kconfigOffsets: ReadonlyMap<string, number>;
  /** Size of the .kconfig map's value. */
  kconfigSize: number;
}

/**
 * A copy of `spec.raw` with .kconfig and .ksyms made loadable (see above).
 * `spec.raw` is returned as it is when the object has neither.
 */
export function fixupExternDatasecs(spec: Spec, layout: ExternLayout): Uint8Array {
  const kconfig = spec.typesByName(".kconfig").find((t) => t.kind === "datasec");
  const ksyms = spec.typesByName(".ksyms").find((t) => t.kind === "datasec");
  if (kconfig?.kind !== "datasec" && ksyms?.kind !== "datasec") return spec.raw;

  // Types and strings to append: a 32-bit int when the object has none, a dummy VAR for kfuncs.
  const extraTypes: number[][] = [];
  const extraStrings: string[] = [];
  const strLen = spec.header.strLen;
  const addString = (s: string): number => {
    const at = strLen + extraStrings.reduce((n, x) => n + Buffer.byteLength(x) + 1, 0);
    extraStrings.push(s);
    return at;
  };
  let nextId = spec.typeCount;
  let intId = 0;
  let dummyVarId = 0;
  let dummyNameOff = 0;
  if (ksyms?.kind === "datasec") {
    intId = spec.types.find((t) => t.kind === "int" && t.bits === 32)?.id ?? 0;
    if (!intId) {
      intId = nextId++;
      extraTypes.push([addString("int"), (KIND_INT << 24) >>> 0, 4, (1 << 24) | 32]);
    }
    if (ksyms.vars.some((v) => v.type.kind === "func")) {
      dummyNameOff = addString("dummy_ksym");
      dummyVarId = nextId++;
      extraTypes.push([dummyNameOff, (KIND_VAR << 24) >>> 0, intId, VAR_GLOBAL_ALLOCATED]);
    }
  }

  const h = spec.header;
  const raw = spec.raw;
  const typeBytes = extraTypes.length * 16;
  const strBytes = extraStrings.reduce((n, x) => n + Buffer.byteLength(x) + 1, 0);
  const out = new Uint8Array(h.hdrLen + h.typeLen + typeBytes + h.strLen + strBytes);
  out.set(raw.subarray(0, h.hdrLen), 0);
  out.set(raw.subarray(h.hdrLen + h.typeOff, h.hdrLen + h.typeOff + h.typeLen), h.hdrLen);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  let at = h.hdrLen + h.typeLen;
  for (const rec of extraTypes) {
    rec.forEach((word, i) => view.setUint32(at + i * 4, word >>> 0, true));
    at += 16;
  }
  out.set(raw.subarray(h.hdrLen + h.strOff, h.hdrLen + h.strOff + h.strLen), at);
  at += h.strLen;
  for (const s of extraStrings) {
    const bytes = new TextEncoder().encode(s);
    out.set(bytes, at);
    at += bytes.length + 1;
  }
  view.setUint32(8, 0, true); // type_off
  view.setUint32(12, h.typeLen + typeBytes, true);
  view.setUint32(16, h.typeLen + typeBytes, true); // str_off
  view.setUint32(20, h.strLen + strBytes, true);
  const delta = h.hdrLen - (h.hdrLen + h.typeOff); // old record offsets -> new ones
  const pos = (id: number) => spec.typeOffset(id) + delta;

  if (ksyms?.kind === "datasec") {
    const sec = pos(ksyms.id);
    ksyms.vars.forEach((v, i) => {
      const entry = sec + 12 + i * 12;
      const t = v.type;
      if (t.kind === "func") {
        const proto = t.proto;
        const p = pos(proto.id);
        proto.params.forEach((param, j) => {
          if (param.type.kind !== "void" && param.name === "") view.setUint32(p + 12 + j * 8, dummyNameOff, true);
        });
        view.setUint32(entry, dummyVarId, true);
        const info = view.getUint32(pos(t.id) + 4, true);
        view.setUint32(pos(t.id) + 4, ((info & ~0xffff) | FUNC_GLOBAL) >>> 0, true);
      } else {
        view.setUint32(pos(t.id) + 8, intId, true);
        view.setUint32(pos(t.id) + 12, VAR_GLOBAL_ALLOCATED, true);
      }
      view.setUint32(entry + 4, i * 4, true);
      view.setUint32(entry + 8, 4, true);
    });
    view.setUint32(sec + 8, ksyms.vars.length * 4, true);
  }

  if (kconfig?.kind === "datasec") {
    const sec = pos(kconfig.id);
    const entries = kconfig.vars.map((v) => {
      const offset = layout.kconfigOffsets.get(v.type.name);
      if (offset === undefined) throw new BtfError(`BTF: .kconfig variable ${v.type.name} has no extern symbol`);
      if (v.type.kind === "var") view.setUint32(pos(v.type.id) + 12, VAR_GLOBAL_ALLOCATED, true);
      return { typeId: v.type.id, offset, size: v.size };
    });
    entries.sort((a, b) => a.offset - b.offset);
    entries.forEach((e, i) => {
      view.setUint32(sec + 12 + i * 12, e.typeId, true);
      view.setUint32(sec + 16 + i * 12, e.offset, true);
      view.setUint32(sec + 20 + i * 12, e.size, true);
    });
    view.setUint32(sec + 8, layout.kconfigSize, true);
  }
  return out;
}

