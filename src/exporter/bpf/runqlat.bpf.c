// SPDX-License-Identifier: MIT
// Run-queue latency: wakeup to switch-in, as a log2 histogram in microseconds
// (metric: run_queue_latency_seconds).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <tsbpf_hist.h>

#define MAX_SLOT 26
#define TASK_RUNNING 0

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, u64);
} wakeup SEC(".maps");

/* slot -> count; MAX_SLOT + 1 holds the sum of microseconds. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_SLOT + 2);
	__type(key, u32);
	__type(value, u64);
} run_queue_latency_seconds SEC(".maps");

static __always_inline void enqueue(struct task_struct *p)
{
	u32 pid = BPF_CORE_READ(p, pid);
	u64 ts;

	if (!pid)
		return;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&wakeup, &pid, &ts, BPF_ANY);
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(rq_wakeup, struct task_struct *p)
{
	enqueue(p);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(rq_wakeup_new, struct task_struct *p)
{
	enqueue(p);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(rq_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	u32 pid, slot;
	u64 *tsp, *n, us;

	/* A preempted task goes straight back on the run queue. */
	if (BPF_CORE_READ(prev, __state) == TASK_RUNNING)
		enqueue(prev);
	pid = BPF_CORE_READ(next, pid);
	tsp = bpf_map_lookup_elem(&wakeup, &pid);
	if (!tsp)
		return 0;
	us = (bpf_ktime_get_ns() - *tsp) / 1000;
	bpf_map_delete_elem(&wakeup, &pid);
	slot = tsbpf_log2l(us);
	if (slot > MAX_SLOT)
		slot = MAX_SLOT;
	n = bpf_map_lookup_elem(&run_queue_latency_seconds, &slot);
	if (n)
		*n += 1;
	slot = MAX_SLOT + 1;
	n = bpf_map_lookup_elem(&run_queue_latency_seconds, &slot);
	if (n)
		*n += us;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
