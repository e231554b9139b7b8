/* SPDX-License-Identifier: MIT */
/*
 * tsbpf_stack.h — stack traces for BPF programs, as BCC's stack tools take them
 * (profile, stackcount, offcputime):
 *
 *     #include "vmlinux.h"
 *     #include <bpf/bpf_helpers.h>
 *     #include <tsbpf_stack.h>
 *
 *     TSBPF_STACKS(stacks, 16384);                       // stack id -> frames
 *     TSBPF_STACK_COUNTS(counts, 40960);                 // struct tsbpf_stack_key -> count
 *     ...
 *     tsbpf_count_stack(ctx, &stacks, &counts, tgid, kernel, user, 1);
 *
 * User space reads the counts back with stackCounts() and names the frames with
 * symbolizeStacks() (src/cli/stacktool.ts). A tool with a key of its own fills
 * its ids with tsbpf_stack_ids().
 */
#ifndef __TSBPF_STACK_H
#define __TSBPF_STACK_H

#include <tsbpf_hist.h>

/* Frames kept per stack: the kernel's PERF_MAX_STACK_DEPTH. */
#define TSBPF_STACK_DEPTH 127

#ifndef TASK_COMM_LEN
#define TASK_COMM_LEN 16
#endif

/* A stack trace map; the tools let --stack-storage-size set max_entries before load. */
#define TSBPF_STACKS(name, entries) \
	struct { \
		__uint(type, BPF_MAP_TYPE_STACK_TRACE); \
		__uint(key_size, sizeof(__u32)); \
		__uint(value_size, TSBPF_STACK_DEPTH * sizeof(__u64)); \
		__uint(max_entries, entries); \
	} name SEC(".maps")

/* A process, its two stacks and its command name: BCC's key for counting stacks. */
struct tsbpf_stack_key {
	__u32 pid;
	__s32 kernel_stack_id;
	__s32 user_stack_id;
	char name[TASK_COMM_LEN];
};

#define TSBPF_STACK_COUNTS(name, entries) TSBPF_HIST(name, struct tsbpf_stack_key, entries)

/*
 * The kernel and user stack ids of this moment, -1 for a side not asked for.
 * A negative id is bpf_get_stackid's error: -EFAULT only says there is no such
 * stack (a sample in user mode has no kernel stack, a kernel thread no user
 * stack), which user space does not count as missed; -EEXIST is a collision.
 */
static __always_inline void tsbpf_stack_ids(void *ctx, void *stacks, bool kernel, bool user, __s32 *kernel_id, __s32 *user_id)
{
	*kernel_id = kernel ? bpf_get_stackid(ctx, stacks, 0) : -1;
	*user_id = user ? bpf_get_stackid(ctx, stacks, BPF_F_USER_STACK) : -1;
}

/* Adds `n` to the count of (pid, this task's command name, its stacks now). */
static __always_inline void tsbpf_count_stack(void *ctx, void *stacks, void *counts, __u32 pid, bool kernel, bool user, __u64 n)
{
	struct tsbpf_stack_key key = { .pid = pid };

	bpf_get_current_comm(key.name, sizeof(key.name));
	tsbpf_stack_ids(ctx, stacks, kernel, user, &key.kernel_stack_id, &key.user_stack_id);
	tsbpf_hist_add(counts, &key, n);
}

#endif /* __TSBPF_STACK_H */
