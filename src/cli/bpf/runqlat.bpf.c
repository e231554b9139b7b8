// SPDX-License-Identifier: MIT
// runqlat: the time a task waits on a run queue, from its wakeup (or its
// preemption while still runnable) to its next turn on a CPU, as log2 histograms.
// The same handlers are built for tp_btf (BTF-typed arguments, 5.5+) and for
// raw_tp (4.17+): the tool loads one set.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <tsbpf_hist.h>
#include <tsbpf_latency.h>

#define TASK_RUNNING 0

const volatile u32 targ_tgid = 0;
const volatile bool targ_ms = false;
/* 0: one histogram; 1: per process (-P); 2: per thread (-L); 3: per PID namespace (--pidnss). */
const volatile u32 targ_by = 0;
/*
 * The exporter's mode (tsbpf exporter, run_queue_latency_seconds): with targ_by 0,
 * slots clamped to targ_max_slot and the microseconds summed at targ_max_slot + 1
 * in dist (ebpf_exporter's layout); 0: the tool's slots.
 */
const volatile u32 targ_max_slot = 0;

struct section_key {
	u32 id;
	u32 slot;
};
const struct section_key *unused_section_key __attribute__((unused));

TSBPF_STARTS(start, u32, 10240);

TSBPF_HIST(dist, u32, TSBPF_LOG2_SLOTS);
TSBPF_HIST(dist_by, struct section_key, 10240);

/* Before 5.14 the field was `long state`. */
struct task_struct___o {
	volatile long state;
} __attribute__((preserve_access_index));

static __always_inline long task_state(struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return BPF_CORE_READ(t, __state);
	return BPF_CORE_READ((struct task_struct___o *)t, state);
}

/* The inode number of the task's PID namespace: task_active_pid_ns(), pid->numbers[pid->level].ns. */
static __always_inline u32 pid_namespace(struct task_struct *task)
{
	struct pid *pid = BPF_CORE_READ(task, thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);
	struct upid upid;

	bpf_core_read(&upid, sizeof(upid), &pid->numbers[level]);
	return BPF_CORE_READ(upid.ns, ns.inum);
}

static __always_inline int enqueue(struct task_struct *p)
{
	u32 tgid = BPF_CORE_READ(p, tgid), pid = BPF_CORE_READ(p, pid);

	if (!pid || (targ_tgid && tgid != targ_tgid))
		return 0;
	tsbpf_start(&start, &pid);
	return 0;
}

static __always_inline int switched(struct task_struct *prev, struct task_struct *next)
{
	u32 pid;
	s64 delta;

	/* Preempted while runnable: it waits on the run queue from now. */
	if (task_state(prev) == TASK_RUNNING)
		enqueue(prev);
	pid = BPF_CORE_READ(next, pid);
	delta = tsbpf_elapsed(&start, &pid);
	if (delta < 0)
		return 0;
	delta /= targ_ms ? 1000000 : 1000;
	if (targ_by) {
		struct section_key key = { .slot = tsbpf_log2l(delta) };

		if (targ_by == 1)
			key.id = BPF_CORE_READ(next, tgid);
		else if (targ_by == 2)
			key.id = pid;
		else
			key.id = pid_namespace(next);
		tsbpf_hist_increment(&dist_by, &key);
	} else {
		u32 slot = tsbpf_log2l(delta);

		if (targ_max_slot)
			tsbpf_exporter_observe(&dist, &slot, &slot, slot, targ_max_slot, delta);
		else
			tsbpf_hist_increment(&dist, &slot);
	}
	return 0;
}

/* The same three programs as tp_btf (btf_*) and raw_tp (raw_*): the tool loads one set. */
#define SCHED_PROGRAMS(prefix, kind)									\
	SEC(#kind "/sched_wakeup")									\
	int BPF_PROG(prefix##_wakeup, struct task_struct *p)						\
	{												\
		return enqueue(p);									\
	}												\
	SEC(#kind "/sched_wakeup_new")									\
	int BPF_PROG(prefix##_wakeup_new, struct task_struct *p)					\
	{												\
		return enqueue(p);									\
	}												\
	SEC(#kind "/sched_switch")									\
	int BPF_PROG(prefix##_switch, bool preempt, struct task_struct *prev, struct task_struct *next)	\
	{												\
		return switched(prev, next);								\
	}

SCHED_PROGRAMS(btf, tp_btf)
SCHED_PROGRAMS(raw, raw_tp)

char LICENSE[] SEC("license") = "GPL";
