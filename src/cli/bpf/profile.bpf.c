// SPDX-License-Identifier: MIT
// profile: a perf_event program run by a sampling event (cpu-clock by default)
// on each CPU; it counts (process, kernel stack, user stack) in the kernel, so
// user space reads one entry per distinct stack, not one per sample.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <tsbpf_stack.h>

const volatile u32 targ_tgid = 0;    /* -p */
const volatile u32 targ_tid = 0;     /* -L */
const volatile bool include_idle = false; /* -I */
const volatile bool user_only = false;    /* -U */
const volatile bool kernel_only = false;  /* -K */

/* max_entries are set by the tool (--stack-storage-size, --hash-storage-size) */
TSBPF_STACKS(stacks, 16384);
TSBPF_STACK_COUNTS(counts, 40960);

SEC("perf_event")
int do_perf_event(struct bpf_perf_event_data *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tgid = id >> 32, tid = (u32)id;

	if (!include_idle && tid == 0)
		return 0;
	if (targ_tgid && tgid != targ_tgid)
		return 0;
	if (targ_tid && tid != targ_tid)
		return 0;
	/* A sample in user mode has no kernel stack (EFAULT), one in a kernel thread no user stack: not errors. */
	tsbpf_count_stack(ctx, &stacks, &counts, tgid, !user_only, !kernel_only, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
