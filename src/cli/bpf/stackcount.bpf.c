// SPDX-License-Identifier: MIT
// stackcount: counts the stacks that reach any hook (uprobes, tracepoints,
// kprobes where the kernel has them), by process; the tool attaches the
// program of each kind to every target the pattern matched.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define TASK_COMM_LEN 16

const volatile u32 targ_tgid = 0;  /* -p */
const volatile s32 targ_cpu = -1;  /* -c */
const volatile bool kernel_stack = true;
const volatile bool user_stack = true;

struct key_t {
	u32 tgid;
	s32 kernel_stack_id;
	s32 user_stack_id;
	char name[TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(key_size, sizeof(u32));
	__uint(value_size, 127 * sizeof(u64));
	__uint(max_entries, 16384);
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct key_t);
	__type(value, u64);
	__uint(max_entries, 16384);
} counts SEC(".maps");

static __always_inline int count(void *ctx)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct key_t key = {};
	u64 one = 1, *n;

	if (targ_tgid && tgid != targ_tgid)
		return 0;
	if (targ_cpu >= 0 && bpf_get_smp_processor_id() != (u32)targ_cpu)
		return 0;
	key.tgid = tgid;
	bpf_get_current_comm(key.name, sizeof(key.name));
	key.kernel_stack_id = kernel_stack ? bpf_get_stackid(ctx, &stacks, 0) : -1;
	key.user_stack_id = user_stack ? bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK) : -1;
	n = bpf_map_lookup_elem(&counts, &key);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST);
	return 0;
}

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
