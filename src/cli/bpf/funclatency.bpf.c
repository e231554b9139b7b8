// SPDX-License-Identifier: MIT
// funclatency: time from a function's entry to its return, per thread, as a
// log2 histogram (one for all functions, or one per function with -F: each
// return probe's link carries its function's index as the BPF cookie).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <tsbpf_hist.h>

const volatile u32 targ_tgid = 0;      /* -p */
const volatile u64 unit_div = 1;       /* 1 ns, 1000 us (-u), 1000000 ms (-m) */
const volatile bool per_function = false; /* -F */

struct hist_key {
	u32 func;
	u32 slot;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, u64); /* thread << 32 | function: nested matched functions each keep their start */
	__type(value, u64);
	__uint(max_entries, 10240);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct hist_key);
	__type(value, u64);
	__uint(max_entries, 65536);
} dist SEC(".maps");

/* [0]: total nanoseconds, [1]: calls (BCC's avg) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, u32);
	__type(value, u64);
	__uint(max_entries, 2);
} avg SEC(".maps");

SEC("uprobe")
int func_entry(struct pt_regs *ctx)
{
	u64 id = bpf_get_current_pid_tgid(), ts;
	u64 key = (id << 32) | (u32)bpf_get_attach_cookie(ctx);

	if (targ_tgid && (id >> 32) != targ_tgid)
		return 0;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &key, &ts, BPF_ANY);
	return 0;
}

SEC("uretprobe")
int func_return(struct pt_regs *ctx)
{
	u64 id = bpf_get_current_pid_tgid(), delta, *tsp, *v;
	u32 func = (u32)bpf_get_attach_cookie(ctx), zero = 0, idx = 1;
	u64 skey = (id << 32) | func;
	struct hist_key key = {};

	tsp = bpf_map_lookup_elem(&start, &skey);
	if (!tsp)
		return 0;
	delta = bpf_ktime_get_ns() - *tsp;
	bpf_map_delete_elem(&start, &skey);
	v = bpf_map_lookup_elem(&avg, &zero);
	if (v)
		__sync_fetch_and_add(v, delta);
	v = bpf_map_lookup_elem(&avg, &idx);
	if (v)
		__sync_fetch_and_add(v, 1);
	key.func = per_function ? func : 0;
	key.slot = tsbpf_log2l(delta / unit_div);
	tsbpf_hist_increment(&dist, &key);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
