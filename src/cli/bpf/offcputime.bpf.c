// SPDX-License-Identifier: MIT
// offcputime: at each context switch the thread leaving the CPU gets its stacks
// taken and a start time; when it comes back, the time it was away is added to
// the total of (thread, stacks). sched_switch through tp_btf where the kernel
// has BTF, raw_tp otherwise (the tool loads one of the two).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <tsbpf_stack.h>

#define PF_KTHREAD 0x00200000

const volatile u32 targ_tgid = 0;        /* -p */
const volatile u32 targ_tid = 0;         /* -t */
const volatile bool user_threads_only = false;   /* -u */
const volatile bool kernel_threads_only = false; /* -k */
const volatile bool user_stacks_only = false;    /* -U */
const volatile bool kernel_stacks_only = false;  /* -K */
const volatile u64 min_block_us = 1;     /* -m */
const volatile u64 max_block_us = (u64)-1; /* -M */
const volatile long targ_state = -1;     /* --state */

struct key_t {
	u32 pid;
	u32 tgid;
	s32 user_stack_id;
	s32 kernel_stack_id;
	char name[TASK_COMM_LEN];
};

struct start_t {
	u64 ts;
	struct key_t key;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, u32);
	__type(value, struct start_t);
	__uint(max_entries, 10240);
} start SEC(".maps");

TSBPF_STACKS(stacks, 16384);

/* (thread, stacks) -> microseconds off CPU */
TSBPF_HIST(counts, struct key_t, 10240);

/* task_struct.state became __state in 5.14 */
struct task_struct___pre514 {
	long state;
} __attribute__((preserve_access_index));

static __always_inline long task_state(struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return BPF_CORE_READ(t, __state);
	return BPF_CORE_READ((struct task_struct___pre514 *)t, state);
}

static __always_inline bool wanted(struct task_struct *t, u32 tgid, u32 pid)
{
	u32 flags = BPF_CORE_READ(t, flags);

	if (pid == 0)
		return false; /* the idle task */
	if (targ_tgid && tgid != targ_tgid)
		return false;
	if (targ_tid && pid != targ_tid)
		return false;
	if (user_threads_only && (flags & PF_KTHREAD))
		return false;
	if (kernel_threads_only && !(flags & PF_KTHREAD))
		return false;
	if (targ_state == 0 && task_state(t) != 0)
		return false;
	if (targ_state > 0 && !(task_state(t) & targ_state))
		return false; /* states are bit masks (2: TASK_UNINTERRUPTIBLE) */
	return true;
}

static __always_inline int on_switch(void *ctx, struct task_struct *prev, struct task_struct *next)
{
	u32 pid = BPF_CORE_READ(prev, pid), tgid = BPF_CORE_READ(prev, tgid);
	struct start_t s = {}, *sp;
	u64 delta;

	if (wanted(prev, tgid, pid)) {
		s.ts = bpf_ktime_get_ns();
		s.key.pid = pid;
		s.key.tgid = tgid;
		tsbpf_stack_ids(ctx, &stacks, !user_stacks_only, !kernel_stacks_only && !(BPF_CORE_READ(prev, flags) & PF_KTHREAD),
				&s.key.kernel_stack_id, &s.key.user_stack_id);
		BPF_CORE_READ_STR_INTO(&s.key.name, prev, comm);
		bpf_map_update_elem(&start, &pid, &s, BPF_ANY);
	}

	pid = BPF_CORE_READ(next, pid);
	sp = bpf_map_lookup_elem(&start, &pid);
	if (!sp)
		return 0;
	delta = (bpf_ktime_get_ns() - sp->ts) / 1000;
	if (delta >= min_block_us && delta <= max_block_us)
		tsbpf_hist_add(&counts, &sp->key, delta);
	bpf_map_delete_elem(&start, &pid);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(ctx, prev, next);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(sched_switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(ctx, prev, next);
}

char LICENSE[] SEC("license") = "GPL";
