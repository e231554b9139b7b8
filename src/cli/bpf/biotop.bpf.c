// SPDX-License-Identifier: MIT
// biotop: block I/O per process, disk and direction: count, bytes and total
// latency, read and cleared by user space each interval. Same hooks as biosnoop.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "block.h"

#define TASK_COMM_LEN 16

const volatile u32 targ_pid = 0;
/* Whether block_io_start is attached: it starts each request's entry, else issue does. */
const volatile bool have_io_start = true;

struct who {
	u64 ts;
	u32 pid;
	char name[TASK_COMM_LEN];
};

struct info_t {
	u32 pid;
	u32 rwflag;
	u32 major;
	u32 minor;
	char name[TASK_COMM_LEN];
};

struct val_t {
	u64 bytes;
	u64 us;
	u32 io;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 10240);
	__type(key, struct request *);
	__type(value, struct who);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct info_t);
	__type(value, struct val_t);
} counts SEC(".maps");

/* As biosnoop: block_io_start starts a new entry even where a stale one (a merged request) is left. */
static __always_inline struct who *who_of(struct request *rq, bool fresh_start)
{
	struct who *w = fresh_start ? NULL : bpf_map_lookup_elem(&start, &rq);
	struct who fresh = {};

	if (w)
		return w;
	fresh.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(fresh.name, sizeof(fresh.name));
	bpf_map_update_elem(&start, &rq, &fresh, BPF_ANY);
	return bpf_map_lookup_elem(&start, &rq);
}

SEC("tp_btf/block_io_start")
int BPF_PROG(block_io_start, struct request *rq)
{
	who_of(rq, true);
	return 0;
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(block_rq_issue, struct request *rq)
{
	struct who *w = who_of(rq, !have_io_start);

	if (w)
		w->ts = bpf_ktime_get_ns();
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(block_rq_complete, struct request *rq, int error, unsigned int nr_bytes)
{
	struct who *w = bpf_map_lookup_elem(&start, &rq);
	struct info_t info = {};
	struct val_t zero = {}, *v;
	u32 dev;

	if (!w)
		return 0;
	if (!w->ts || (targ_pid && w->pid != targ_pid))
		goto done;
	dev = rq_dev(rq);
	info.pid = w->pid;
	info.rwflag = rq_is_write(rq);
	info.major = dev >> MINORBITS;
	info.minor = dev & ((1 << MINORBITS) - 1);
	__builtin_memcpy(info.name, w->name, sizeof(info.name));
	v = bpf_map_lookup_elem(&counts, &info);
	if (!v) {
		bpf_map_update_elem(&counts, &info, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&counts, &info);
		if (!v)
			goto done;
	}
	__sync_fetch_and_add(&v->bytes, nr_bytes);
	__sync_fetch_and_add(&v->us, (bpf_ktime_get_ns() - w->ts) / 1000);
	__sync_fetch_and_add(&v->io, 1);
done:
	bpf_map_delete_elem(&start, &rq);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
