// SPDX-License-Identifier: MIT
// stackcount: counts the stacks that reach any hook (uprobes, tracepoints,
// kprobes where the kernel has them), by process; the tool attaches the
// program of each kind to every target the pattern matched.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <tsbpf_stack.h>

const volatile u32 targ_tgid = 0;  /* -p */
const volatile s32 targ_cpu = -1;  /* -c */
const volatile bool kernel_stack = true;
const volatile bool user_stack = true;

TSBPF_STACKS(stacks, 16384);
TSBPF_STACK_COUNTS(counts, 16384);

static __always_inline int count(void *ctx)
{
	u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (targ_tgid && tgid != targ_tgid)
		return 0;
	if (targ_cpu >= 0 && bpf_get_smp_processor_id() != (u32)targ_cpu)
		return 0;
	tsbpf_count_stack(ctx, &stacks, &counts, tgid, kernel_stack, user_stack, 1);
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
