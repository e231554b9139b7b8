// SPDX-License-Identifier: MIT
// drsnoop: reclaim done by the allocating task itself. vmscan's
// direct_reclaim_begin/end bracket global direct reclaim (BCC's drsnoop traces
// these); memcg_reclaim_begin/end bracket the reclaim a task does when its
// memory cgroup reaches its limit, the same stall inside a container.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <tsbpf.h>

#define TASK_COMM_LEN 16
#define NO_UID ((u32)-1)

const volatile u32 targ_pid = 0;
const volatile u32 targ_tid = 0;
const volatile u32 targ_uid = NO_UID;

struct event {
	u64 ts;
	u64 delta_ns;
	u64 nr_reclaimed;
	u32 pid;
	u32 tid;
	u32 uid;
	u8 memcg;
	char comm[TASK_COMM_LEN];
};
const struct event *unused_event __attribute__((unused));

TSBPF_EVENTS(events, 256 * 1024);

/* Reclaim in progress, by thread: when it began. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, u64);
} starts SEC(".maps");

static __always_inline int begin(void)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 pid = id >> 32, tid = (u32)id;
	u64 ts;

	if (targ_tid && tid != targ_tid)
		return 0;
	if (targ_pid && pid != targ_pid)
		return 0;
	if (targ_uid != NO_UID && (u32)bpf_get_current_uid_gid() != targ_uid)
		return 0;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&starts, &tid, &ts, BPF_ANY);
	return 0;
}

static __always_inline int end(void *ctx, u64 nr_reclaimed, bool memcg)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	u64 *ts = bpf_map_lookup_elem(&starts, &tid);
	struct event e = {};

	if (!ts)
		return 0;
	e.ts = bpf_ktime_get_ns();
	e.delta_ns = e.ts - *ts;
	bpf_map_delete_elem(&starts, &tid);
	e.nr_reclaimed = nr_reclaimed;
	e.pid = id >> 32;
	e.tid = tid;
	e.uid = (u32)bpf_get_current_uid_gid();
	e.memcg = memcg;
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	tsbpf_events_output(ctx, events, &e, sizeof(e));
	return 0;
}

SEC("tracepoint/vmscan/mm_vmscan_direct_reclaim_begin")
int direct_begin(void *ctx)
{
	return begin();
}

SEC("tracepoint/vmscan/mm_vmscan_direct_reclaim_end")
int direct_end(struct trace_event_raw_mm_vmscan_direct_reclaim_end_template *ctx)
{
	return end(ctx, ctx->nr_reclaimed, false);
}

SEC("tracepoint/vmscan/mm_vmscan_memcg_reclaim_begin")
int memcg_begin(void *ctx)
{
	return begin();
}

SEC("tracepoint/vmscan/mm_vmscan_memcg_reclaim_end")
int memcg_end(struct trace_event_raw_mm_vmscan_direct_reclaim_end_template *ctx)
{
	return end(ctx, ctx->nr_reclaimed, true);
}

char LICENSE[] SEC("license") = "GPL";
