// BCC's packet and socket table kinds (issue 17) through the dialect, without a kernel:
// the map each macro declares and the helper each method becomes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { translate } from "../../src/bcc/dialect.ts";
import { BccError } from "../../src/bcc/errors.ts";

const tr = (text: string) => translate(text, { file: "pkt.c", kprobes: false, tracepointFormat: () => undefined });
// Method arguments come back token by token ("& k", "ctx -> f"): close those up.
const squash = (s: string) => s.replace(/\s+/g, " ").replace(/& /g, "&").replace(/ -> /g, "->");

test("BPF_DEVMAP, BPF_CPUMAP, BPF_XSKMAP: redirect maps with BCC's key/leaf types, .redirect_map() is bpf_redirect_map", () => {
  const t = tr(`
BPF_DEVMAP(tx, 4);
BPF_CPUMAP(cpus, 2);
BPF_XSKMAP(xsks, 8);
int f(struct xdp_md *ctx) { if (ctx->ingress_ifindex == 1) return cpus.redirect_map(0, 0); return tx.redirect_map(ctx->rx_queue_index, XDP_PASS) + xsks.redirect_map(1, 0); }
`);
  const code = squash(t.code);
  assert.match(code, /struct \{ __uint\(type, BPF_MAP_TYPE_DEVMAP\); __uint\(max_entries, 4\); __type\(key, u32\); __type\(value, int\); \} tx SEC\("\.maps"\)/);
  assert.match(code, /__uint\(type, BPF_MAP_TYPE_CPUMAP\); __uint\(max_entries, 2\); __type\(key, u32\); __type\(value, u32\); \} cpus/);
  assert.match(code, /__uint\(type, BPF_MAP_TYPE_XSKMAP\); __uint\(max_entries, 8\); __type\(key, u32\); __type\(value, int\); \} xsks/);
  assert.match(code, /bpf_redirect_map\(&cpus, 0, 0\)/);
  assert.match(code, /bpf_redirect_map\(&tx, ctx->rx_queue_index, XDP_PASS\)/);
  assert.deepEqual([...t.tables.values()].map((x) => x.kind), ["devmap", "cpumap", "xskmap"]);
});

test("BPF_SOCKMAP and BPF_SOCKHASH: update/delete and the sock_*_update / *_redirect_hash helpers with the map second", () => {
  const t = tr(`
struct key { u32 a, b; };
BPF_SOCKMAP(sm, 2);
BPF_SOCKHASH(sh, struct key, 64);
BPF_SOCKHASH(sh2);
int ops(struct bpf_sock_ops *skops) { u32 k = 0; struct key hk = {}; sm.sock_map_update(skops, &k, BPF_ANY); return sh.sock_hash_update(skops, &hk, BPF_NOEXIST); }
int msg(struct sk_msg_md *m) { struct key hk = {}; return sh.msg_redirect_hash(m, &hk, BPF_F_INGRESS); }
int skb(struct __sk_buff *s) { u32 k = 1; sh2.delete(&k); return sh2.sk_redirect_hash(s, &k, 0); }
`);
  const code = squash(t.code);
  assert.match(code, /BPF_MAP_TYPE_SOCKMAP\); __uint\(max_entries, 2\); __type\(key, u32\); __type\(value, int\); \} sm/);
  assert.match(code, /BPF_MAP_TYPE_SOCKHASH\); __uint\(max_entries, 64\); __type\(key, struct key\); __type\(value, int\); \} sh /);
  assert.match(code, /BPF_MAP_TYPE_SOCKHASH\); __uint\(max_entries, 10240\); __type\(key, u32\)/);
  assert.match(code, /bpf_sock_map_update\(skops, &sm, &k, BPF_ANY\)/);
  assert.match(code, /bpf_sock_hash_update\(skops, &sh, &hk, BPF_NOEXIST\)/);
  assert.match(code, /bpf_msg_redirect_hash\(m, &sh, &hk, BPF_F_INGRESS\)/);
  assert.match(code, /bpf_sk_redirect_hash\(s, &sh2, &k, 0\)/);
  assert.match(code, /bpf_map_delete_elem\(&sh2, &k\)/);
});

test("BPF_SK_STORAGE, BPF_TASK_STORAGE, BPF_INODE_STORAGE: no size, BPF_F_NO_PREALLOC, typed *_storage_get", () => {
  const t = tr(`
struct val { u64 n; };
BPF_SK_STORAGE(sks, struct val);
BPF_TASK_STORAGE(tks, u64);
BPF_INODE_STORAGE(iks, int);
int f(struct __sk_buff *skb) {
  struct bpf_sock *sk = skb->sk;
  if (!sk) return 1;
  struct val *v = sks.sk_storage_get(sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
  if (v) v->n++;
  sks.sk_storage_delete(sk);
  return 1;
}
`);
  const code = squash(t.code);
  assert.match(code, /struct \{ __uint\(type, BPF_MAP_TYPE_SK_STORAGE\); __type\(key, int\); __type\(value, struct val\); __uint\(map_flags, BPF_F_NO_PREALLOC\); \} sks/);
  assert.match(code, /BPF_MAP_TYPE_TASK_STORAGE\); __type\(key, int\); __type\(value, u64\); __uint\(map_flags, BPF_F_NO_PREALLOC\); \} tks/);
  assert.match(code, /BPF_MAP_TYPE_INODE_STORAGE\); __type\(key, int\); __type\(value, int\)/);
  assert.match(code, /\(\(__typeof__\(struct val\) \*\)bpf_sk_storage_get\(&sks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE\)\)/);
  assert.match(code, /bpf_sk_storage_delete\(&sks, sk\)/);
  assert.doesNotMatch(code, /max_entries[^;]*\} sks/);
});

test("a method a packet table does not have names the ones it has", () => {
  assert.throws(
    () => tr(`BPF_DEVMAP(tx, 4);\nint f(struct xdp_md *ctx) { u32 k = 0; return tx.update(&k, &k); }`),
    (e: unknown) => e instanceof BccError && /\.update\(\) on a devmap table.*\.redirect_map\(\)/.test(e.message),
  );
  assert.throws(() => tr(`BPF_TASK_STORAGE(t, u64);\nint f(void *ctx) { return t.task_storage_get(0, 0); }`), (e: unknown) => e instanceof BccError && /expects 3 arguments/.test(e.message));
});
