// The BPF programs the guest tests load: compiled on the host (the guest has no
// clang) by test/vm.test.ts, passed in as .o files. They use only pt_regs, BTF
// function arguments and simple helpers, so one object runs on 6.1, 6.12 and
// the host alike without CO-RE (x86_64 pt_regs has not changed).

import { PACKET_PROGRAMS } from "./packet-programs.ts";
import { bccKfuncObjectText } from "./dialect-programs.ts";

const HEADERS = `#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
char LICENSE[] SEC("license") = "GPL";
`;

/** Paths the probed children open start with this (the programs record only those). */
export const PROBE_PREFIX = "/tmp/tsbpf-vm-probe";

/** Where the guest finds the compiled objects (`--file DIR:GUEST_OBJECTS`). */
export const GUEST_OBJECTS = "/tmp/tsbpf-guest-objects";

const MATCH = `
#define PREFIX "${PROBE_PREFIX}"
static __always_inline int has_prefix(const char *s) {
  const char p[] = PREFIX;
#pragma unroll
  for (int i = 0; i < sizeof(p) - 1; i++)
    if (s[i] != p[i]) return 0;
  return 1;
}
`;

/**
 * kprobe and kretprobe on the openat syscall's wrapper, plus a ksyscall program
 * (a kprobe on the same function, found by syscall name). Per process: the opens of
 * PROBE_PREFIX paths seen on entry (and the last such name), and on return how many
 * openat calls failed with ENOENT.
 */
export const KPROBE = `${HEADERS}${MATCH}
struct open_seen { u64 count; char name[64]; };
struct ret_seen { u64 count; u64 enoent; s64 last; };
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4096); __type(key, u32); __type(value, struct open_seen); } entries SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4096); __type(key, u32); __type(value, struct ret_seen); } returns SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4096); __type(key, u32); __type(value, u64); } ksyscall_hits SEC(".maps");

/* __x64_sys_openat(const struct pt_regs *regs): the syscall's arguments are in the inner regs. */
static __always_inline const char *openat_filename(struct pt_regs *ctx) {
  struct pt_regs *regs = (struct pt_regs *)ctx->di;
  const char *name = 0;
  bpf_probe_read_kernel(&name, sizeof(name), &regs->si);
  return name;
}

SEC("kprobe/__x64_sys_openat")
int on_openat(struct pt_regs *ctx) {
  char buf[64] = {};
  bpf_probe_read_user_str(buf, sizeof(buf), openat_filename(ctx));
  if (!has_prefix(buf)) return 0;
  u32 tgid = bpf_get_current_pid_tgid() >> 32;
  struct open_seen fresh = {}, *seen = bpf_map_lookup_elem(&entries, &tgid);
  if (!seen) {
    bpf_map_update_elem(&entries, &tgid, &fresh, BPF_NOEXIST);
    seen = bpf_map_lookup_elem(&entries, &tgid);
    if (!seen) return 0;
  }
  __sync_fetch_and_add(&seen->count, 1);
  __builtin_memcpy(seen->name, buf, sizeof(buf));
  return 0;
}

SEC("kretprobe/__x64_sys_openat")
int on_openat_return(struct pt_regs *ctx) {
  u32 tgid = bpf_get_current_pid_tgid() >> 32;
  s64 ret = ctx->ax;
  struct ret_seen fresh = {}, *seen = bpf_map_lookup_elem(&returns, &tgid);
  if (!seen) {
    bpf_map_update_elem(&returns, &tgid, &fresh, BPF_NOEXIST);
    seen = bpf_map_lookup_elem(&returns, &tgid);
    if (!seen) return 0;
  }
  __sync_fetch_and_add(&seen->count, 1);
  if (ret == -2) __sync_fetch_and_add(&seen->enoent, 1);
  seen->last = ret;
  return 0;
}

SEC("ksyscall/openat")
int on_ksyscall(struct pt_regs *ctx) {
  char buf[64] = {};
  bpf_probe_read_user_str(buf, sizeof(buf), openat_filename(ctx));
  if (!has_prefix(buf)) return 0;
  u32 tgid = bpf_get_current_pid_tgid() >> 32;
  u64 one = 1, *n = bpf_map_lookup_elem(&ksyscall_hits, &tgid);
  if (n) __sync_fetch_and_add(n, 1);
  else bpf_map_update_elem(&ksyscall_hits, &tgid, &one, BPF_ANY);
  return 0;
}
`;

/** fentry and fexit on do_sys_openat2, for one process: calls, and the last return value. */
export const FENTRY = `${HEADERS}
const volatile u32 target_tgid = 0;
u64 fentry_hits = 0, fexit_hits = 0;
s64 fexit_last = 0;

SEC("fentry/do_sys_openat2")
int BPF_PROG(on_entry, int dfd, const char *filename) {
  if ((bpf_get_current_pid_tgid() >> 32) == target_tgid) __sync_fetch_and_add(&fentry_hits, 1);
  return 0;
}

SEC("fexit/do_sys_openat2")
int BPF_PROG(on_exit, int dfd, const char *filename, struct open_how *how, long ret) {
  if ((bpf_get_current_pid_tgid() >> 32) != target_tgid) return 0;
  __sync_fetch_and_add(&fexit_hits, 1);
  fexit_last = ret;
  return 0;
}
`;

/**
 * kfuncs that only a module's BTF has (nf_conntrack's bpf_xdp_ct_lookup/bpf_ct_release):
 * the load passes the module BTF's fd in fd_array. Run by BPF_PROG_TEST_RUN on the
 * netns' loopback device, where no connection is tracked: the lookup's error is kept.
 * bpf_ct_opts is 12 bytes on 6.1 and 16 on 6.12 (the test sets opts_len from the module's BTF).
 */
export const MODBTF_CT = `${HEADERS}#include <bpf/bpf_endian.h>
struct nf_conn;
struct bpf_ct_opts___tsbpf { s32 netns_id; s32 error; u8 l4proto; u8 dir; u8 rest[6]; };
extern struct nf_conn *bpf_xdp_ct_lookup(struct xdp_md *xdp_ctx, struct bpf_sock_tuple *bpf_tuple, u32 tuple__sz,
                                         struct bpf_ct_opts___tsbpf *opts, u32 opts__sz) __ksym;
extern void bpf_ct_release(struct nf_conn *ct) __ksym;
const volatile u32 opts_len = 12;
int runs, found, lookup_error = 1;

SEC("xdp")
int ct_lookup(struct xdp_md *ctx) {
  struct bpf_sock_tuple tup = {};
  struct bpf_ct_opts___tsbpf opts = { .netns_id = -1, .l4proto = 6 /* TCP */ };
  tup.ipv4.saddr = bpf_htonl(0x7f000001);
  tup.ipv4.daddr = bpf_htonl(0x7f000001);
  tup.ipv4.sport = bpf_htons(40000);
  tup.ipv4.dport = bpf_htons(40001);
  struct nf_conn *ct = bpf_xdp_ct_lookup(ctx, &tup, sizeof(tup.ipv4), &opts, opts_len);
  runs++;
  if (ct) {
    found = 1;
    bpf_ct_release(ct);
  } else {
    lookup_error = opts.error;
  }
  return XDP_PASS;
}
`;

/**
 * A typed per-CPU __ksym that only a module's BTF has (x_tables' xt_recseq): the
 * ld_imm64 carries the module BTF's fd. Both reads start at 1; a seqcount outside
 * a write section is even.
 */
export const MODBTF_KSYM = `${HEADERS}
extern const seqcount_t xt_recseq __ksym;
int ksym_runs;
u32 seq0 = 1, this_seq = 1;

SEC("xdp")
int ksym_read(struct xdp_md *ctx) {
  /* Copied, not dereferenced: 6.1's verifier refuses loads through a typedef'd BTF pointer ("not a struct"). */
  const seqcount_t *s = bpf_per_cpu_ptr(&xt_recseq, 0);
  if (s) bpf_probe_read_kernel(&seq0, sizeof(seq0), s);
  bpf_probe_read_kernel(&this_seq, sizeof(this_seq), bpf_this_cpu_ptr(&xt_recseq));
  ksym_runs++;
  return XDP_PASS;
}
`;

/**
 * A CO-RE read of a type only a module's BTF has: veth's private struct behind a
 * net_device (netdev_priv: the device plus its size aligned to 32), read in a
 * kprobe on veth_open when a veth is set up; the peer's ifindex is kept.
 */
export const MODBTF_VETH = `${HEADERS}#include <bpf/bpf_core_read.h>
struct veth_priv___tsbpf { struct net_device *peer; } __attribute__((preserve_access_index));
const volatile int watch_ifindex = 0;
int opens, peer_ifindex;

SEC("kprobe/veth_open")
int BPF_KPROBE(on_veth_open, struct net_device *dev) {
  if (BPF_CORE_READ(dev, ifindex) != watch_ifindex) return 0;
  u64 priv = (u64)dev + ((bpf_core_type_size(struct net_device) + 31) & ~31);
  struct net_device *peer = BPF_CORE_READ((struct veth_priv___tsbpf *)priv, peer);
  peer_ifindex = BPF_CORE_READ(peer, ifindex);
  opens++;
  return 0;
}
`;

/** Every object the guest tests need: file name (without .o) -> C source. */
export const GUEST_PROGRAMS: Record<string, string> = {
  kprobe: KPROBE, fentry: FENTRY, bcc_kfunc: bccKfuncObjectText(), ...PACKET_PROGRAMS,
  modbtf_ct: MODBTF_CT, modbtf_ksym: MODBTF_KSYM, modbtf_veth: MODBTF_VETH,
};
