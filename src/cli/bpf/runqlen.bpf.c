// SPDX-License-Identifier: MIT
// runqlen: the length of the CPU's run queue, sampled by a cpu-clock perf event
// on every CPU (99 Hz), as a linear histogram. The length is the runqueue's
// nr_running reached from the current task (task->se.cfs_rq->rq) through CO-RE:
// tsbpf has no __ksym externs yet, so bpf_per_cpu_ptr(&runqueues, cpu) is out.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <tsbpf_hist.h>

/* The last linear slot: longer queues count there. */
#define MAX_SLOT 1024

struct cpu_key {
	u32 cpu;
	u32 slot;
};
const struct cpu_key *unused_cpu_key __attribute__((unused));

const volatile bool targ_per_cpu = false;

TSBPF_HIST(dist, u32, MAX_SLOT + 1);
TSBPF_HIST(dist_cpu, struct cpu_key, 65536);

/* cfs_rq's own counts: nr_queued since 6.14, nr_running before. */
struct cfs_rq___old {
	unsigned int nr_running;
} __attribute__((preserve_access_index));

static __always_inline u32 queue_length(struct task_struct *task)
{
	struct cfs_rq *cfs = BPF_CORE_READ(task, se.cfs_rq);

	/* With group scheduling a task's cfs_rq may be its group's: the rq behind it counts every task of the CPU. */
	if (bpf_core_field_exists(cfs->rq))
		return BPF_CORE_READ(cfs, rq, nr_running);
	if (bpf_core_field_exists(cfs->nr_queued))
		return BPF_CORE_READ(cfs, nr_queued);
	return BPF_CORE_READ((struct cfs_rq___old *)cfs, nr_running);
}

SEC("perf_event")
int do_sample(struct bpf_perf_event_data *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	u32 len = queue_length(task);

	/* The running task is counted unless it is the idle task: len 0 is an idle or uncontended CPU. */
	if (len > 0 && BPF_CORE_READ(task, pid) != 0)
		len--;
	if (len > MAX_SLOT)
		len = MAX_SLOT;
	if (targ_per_cpu) {
		struct cpu_key key = { .cpu = bpf_get_smp_processor_id(), .slot = len };

		tsbpf_hist_increment(&dist_cpu, &key);
	} else {
		tsbpf_hist_increment(&dist, &len);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
