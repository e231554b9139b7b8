// SPDX-License-Identifier: MIT
// cpudist: how long tasks run on a CPU before they switch out (or, with -O, how
// long they stay off it), as log2 histograms, from sched_switch. Built for
// tp_btf and for raw_tp, as runqlat.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <tsbpf_hist.h>

const volatile u32 targ_tgid = 0;
const volatile bool targ_offcpu = false;
const volatile bool targ_ms = false;
const volatile bool targ_idle = false;
/* 0: one histogram; 1: per process (-P); 2: per thread (-L). */
const volatile u32 targ_by = 0;

/* The idle tasks are all pid 0: one entry per CPU for them. */
struct entry_key {
	u32 pid;
	u32 cpu;
};

struct section_key {
	u32 id;
	u32 slot;
};
const struct section_key *unused_section_key __attribute__((unused));

struct ext {
	u64 total;
	u64 count;
};
const struct ext *unused_ext __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct entry_key);
	__type(value, u64);
} start SEC(".maps");

TSBPF_HIST(dist, u32, TSBPF_LOG2_SLOTS);
TSBPF_HIST(dist_by, struct section_key, 10240);

/* -e: the total and count behind the histogram. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct ext);
} extension SEC(".maps");

static __always_inline bool wanted(u32 tgid, u32 pid)
{
	if (targ_tgid && tgid != targ_tgid)
		return false;
	return pid || targ_idle;
}

static __always_inline void store_start(u32 tgid, u32 pid, u32 cpu, u64 ts)
{
	struct entry_key key = { .pid = pid, .cpu = pid ? 0xffffffff : cpu };

	if (wanted(tgid, pid))
		bpf_map_update_elem(&start, &key, &ts, BPF_ANY);
}

static __always_inline void update_hist(u32 tgid, u32 pid, u32 cpu, u64 ts)
{
	struct entry_key key = { .pid = pid, .cpu = pid ? 0xffffffff : cpu };
	u32 zero = 0;
	struct ext *ext;
	u64 *tsp, delta;

	if (!wanted(tgid, pid))
		return;
	tsp = bpf_map_lookup_elem(&start, &key);
	/* A clock step between the two events: drop it. */
	if (!tsp || ts < *tsp)
		return;
	delta = (ts - *tsp) / (targ_ms ? 1000000 : 1000);
	if (targ_by) {
		struct section_key skey = { .id = targ_by == 1 ? tgid : pid, .slot = tsbpf_log2l(delta) };

		tsbpf_hist_increment(&dist_by, &skey);
	} else {
		u32 slot = tsbpf_log2l(delta);

		tsbpf_hist_increment(&dist, &slot);
	}
	ext = bpf_map_lookup_elem(&extension, &zero);
	if (ext) {
		__sync_fetch_and_add(&ext->total, delta);
		__sync_fetch_and_add(&ext->count, 1);
	}
}

static __always_inline int switched(struct task_struct *prev, struct task_struct *next)
{
	u64 ts = bpf_ktime_get_ns();
	u32 cpu = bpf_get_smp_processor_id();
	u32 prev_pid = BPF_CORE_READ(prev, pid), prev_tgid = BPF_CORE_READ(prev, tgid);
	u32 next_pid = BPF_CORE_READ(next, pid), next_tgid = BPF_CORE_READ(next, tgid);

	if (targ_offcpu) {
		store_start(prev_tgid, prev_pid, cpu, ts);
		update_hist(next_tgid, next_pid, cpu, ts);
	} else {
		update_hist(prev_tgid, prev_pid, cpu, ts);
		store_start(next_tgid, next_pid, cpu, ts);
	}
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(btf_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return switched(prev, next);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(raw_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return switched(prev, next);
}

char LICENSE[] SEC("license") = "GPL";
