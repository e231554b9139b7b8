// SPDX-License-Identifier: MIT
// biosnoop: a line per block I/O with the process that issued it, its disk,
// direction, sector, size and latency. tp_btf hooks on the block tracepoints:
// block_io_start names the submitting process (6.5+); without it the process is
// the one current at insert or issue, as BCC's tracepoint fallback does.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <tsbpf.h>
#include "block.h"

#define TASK_COMM_LEN 16

const volatile bool targ_queued = false;
const volatile u32 targ_dev = 0;
/* Whether block_io_start is attached: it starts each request's entry, else insert does. */
const volatile bool have_io_start = true;

struct stage {
	u64 insert;
	u64 issue;
	u32 pid;
	char comm[TASK_COMM_LEN];
};

struct event {
	u64 ts;
	u64 delta;
	u64 qdelta;
	u64 sector;
	u32 len;
	u32 pid;
	u32 dev;
	u32 rwflag;
	char comm[TASK_COMM_LEN];
};
const struct event *unused_event __attribute__((unused));

TSBPF_EVENTS(events, 4 * 1024 * 1024);

/*
 * A plain hash, not an LRU: an LRU evicts an in-flight request's entry without a
 * word, and its line is gone. Here a full map fails the update, which is counted
 * as lost. Entries do not pile up: a request merged into another is deleted at
 * block_rq_merge, and a request pointer reused starts its entry afresh.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct request *);
	__type(value, struct stage);
} start SEC(".maps");

/*
 * The request's entry; `fresh` starts a new one even if one is there: requests are
 * reused. An entry found issued there is a request whose completion this program
 * never saw: its line is missing, so it is counted as lost.
 */
static __always_inline struct stage *stage_of(struct request *rq, bool fresh_start)
{
	struct stage *s = bpf_map_lookup_elem(&start, &rq);
	struct stage fresh = {};

	if (s && !fresh_start)
		return s;
	if (s && s->issue)
		tsbpf_count_lost();
	if (targ_dev && rq_dev(rq) != targ_dev) {
		if (s)
			bpf_map_delete_elem(&start, &rq);
		return NULL;
	}
	fresh.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(fresh.comm, sizeof(fresh.comm));
	if (bpf_map_update_elem(&start, &rq, &fresh, BPF_ANY)) {
		tsbpf_count_lost(); /* the map is full: this request's line cannot be made */
		return NULL;
	}
	return bpf_map_lookup_elem(&start, &rq);
}

/* Merged into another request and freed without completing: its bytes complete with the other. */
SEC("tp_btf/block_rq_merge")
int BPF_PROG(block_rq_merge, struct request *rq)
{
	bpf_map_delete_elem(&start, &rq);
	return 0;
}

/* Requeued: it will be inserted and issued again, and is not a request whose completion was missed. */
SEC("tp_btf/block_rq_requeue")
int BPF_PROG(block_rq_requeue, struct request *rq)
{
	struct stage *s = bpf_map_lookup_elem(&start, &rq);

	if (s)
		s->issue = 0;
	return 0;
}

SEC("tp_btf/block_io_start")
int BPF_PROG(block_io_start, struct request *rq)
{
	stage_of(rq, true);
	return 0;
}

SEC("tp_btf/block_rq_insert")
int BPF_PROG(block_rq_insert, struct request *rq)
{
	struct stage *s = stage_of(rq, !have_io_start);

	if (s)
		s->insert = bpf_ktime_get_ns();
	return 0;
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(block_rq_issue, struct request *rq)
{
	struct stage *s = stage_of(rq, false);

	if (s)
		s->issue = bpf_ktime_get_ns();
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(block_rq_complete, struct request *rq, int error, unsigned int nr_bytes)
{
	struct stage *s = bpf_map_lookup_elem(&start, &rq);
	struct event e = {};
	u64 now = bpf_ktime_get_ns();

	if (!s)
		return 0;
	if (!s->issue) {
		/* Inserted, never seen issued: the kernel ran no program at its issue (bench/biosnoop-gap.md). */
		if (s->insert)
			tsbpf_count_lost();
		goto done;
	}
	e.ts = now;
	e.delta = now - s->issue;
	e.qdelta = targ_queued && s->insert ? s->issue - s->insert : 0;
	e.sector = BPF_CORE_READ(rq, __sector);
	e.len = nr_bytes;
	e.pid = s->pid;
	e.dev = rq_dev(rq);
	e.rwflag = rq_is_write(rq);
	__builtin_memcpy(e.comm, s->comm, sizeof(e.comm));
	tsbpf_events_output(ctx, events, &e, sizeof(e));
done:
	bpf_map_delete_elem(&start, &rq);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
