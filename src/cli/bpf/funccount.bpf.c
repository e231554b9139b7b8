// SPDX-License-Identifier: MIT
// funccount: one counter per probed target. One program serves every target of
// a kind: each link carries the target's index as its BPF cookie.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

const volatile u32 targ_tgid = 0; /* -p */
const volatile s32 targ_cpu = -1; /* -c */

/* target index -> calls; max_entries set by the tool to the number of targets */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, u32);
	__type(value, u64);
	__uint(max_entries, 1);
} counts SEC(".maps");

static __always_inline int count(void *ctx)
{
	u32 idx;
	u64 *n;

	if (targ_tgid && (bpf_get_current_pid_tgid() >> 32) != targ_tgid)
		return 0;
	if (targ_cpu >= 0 && bpf_get_smp_processor_id() != (u32)targ_cpu)
		return 0;
	idx = (u32)bpf_get_attach_cookie(ctx);
	n = bpf_map_lookup_elem(&counts, &idx);
	if (n)
		__sync_fetch_and_add(n, 1);
	return 0;
}

/* kprobes and uprobes (the same program type); the tool attaches it to each target */
SEC("uprobe")
int count_probe(struct pt_regs *ctx)
{
	return count(ctx);
}

SEC("tracepoint/tsbpf/any")
int count_tracepoint(void *ctx)
{
	return count(ctx);
}

char LICENSE[] SEC("license") = "GPL";
