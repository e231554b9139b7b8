// SPDX-License-Identifier: MIT
// profile: a perf_event program run by a sampling event (cpu-clock by default)
// on each CPU; it counts (process, kernel stack, user stack) in the kernel, so
// user space reads one entry per distinct stack, not one per sample.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define TASK_COMM_LEN 16
#define EFAULT 14

const volatile u32 targ_tgid = 0;    /* -p */
const volatile u32 targ_tid = 0;     /* -L */
const volatile bool include_idle = false; /* -I */
const volatile bool user_only = false;    /* -U */
const volatile bool kernel_only = false;  /* -K */

struct key_t {
	u32 pid;
	s32 kernel_stack_id;
	s32 user_stack_id;
	char name[TASK_COMM_LEN];
};

/* max_entries are set by the tool (--stack-storage-size, --hash-storage-size) */
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
	__uint(max_entries, 40960);
} counts SEC(".maps");

SEC("perf_event")
int do_perf_event(struct bpf_perf_event_data *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tgid = id >> 32, tid = (u32)id;
	struct key_t key = {};
	u64 one = 1, *n;

	if (!include_idle && tid == 0)
		return 0;
	if (targ_tgid && tgid != targ_tgid)
		return 0;
	if (targ_tid && tid != targ_tid)
		return 0;
	key.pid = tgid;
	bpf_get_current_comm(key.name, sizeof(key.name));
	key.kernel_stack_id = user_only ? -1 : bpf_get_stackid(ctx, &stacks, 0);
	key.user_stack_id = kernel_only ? -1 : bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
	/* A sample in user mode has no kernel stack (EFAULT), one in a kernel thread no user stack: not errors. */
	n = bpf_map_lookup_elem(&counts, &key);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
