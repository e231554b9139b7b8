// SPDX-License-Identifier: MIT
// Block I/O latency, issue to completion, as a log2 histogram in microseconds
// keyed by device and operation (metric: bio_latency_seconds).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <tsbpf_hist.h>

#define MAX_SLOT 27 /* 2^27 us: 134 s; slower requests count in the last slot */
#define REQ_OP_MASK 0xff
#define MINORBITS 20

struct bio_key {
	u32 dev;  /* userspace dev_t encoding (new_encode_dev), as ebpf_exporter's majorminor */
	u32 op;   /* REQ_OP_* */
	u64 slot; /* floor(log2(us)) + 1; MAX_SLOT + 1 holds the sum of microseconds */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct request *);
	__type(value, u64);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct bio_key);
	__type(value, u64);
} bio_latency_seconds SEC(".maps");

SEC("tp_btf/block_rq_issue")
int BPF_PROG(bio_issue, struct request *rq)
{
	u64 ts = bpf_ktime_get_ns();

	bpf_map_update_elem(&start, &rq, &ts, BPF_ANY);
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(bio_complete, struct request *rq, int error, unsigned int nr_bytes)
{
	u64 *tsp = bpf_map_lookup_elem(&start, &rq);
	struct gendisk *disk;
	struct bio_key key = {};
	u64 us;
	u32 major, minor;

	if (!tsp)
		return 0;
	us = (bpf_ktime_get_ns() - *tsp) / 1000;
	bpf_map_delete_elem(&start, &rq);

	disk = BPF_CORE_READ(rq, q, disk);
	major = BPF_CORE_READ(disk, major);
	minor = BPF_CORE_READ(disk, first_minor);
	key.dev = (minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12);
	key.op = BPF_CORE_READ(rq, cmd_flags) & REQ_OP_MASK;
	key.slot = tsbpf_log2l(us);
	if (key.slot > MAX_SLOT)
		key.slot = MAX_SLOT;
	tsbpf_hist_increment(&bio_latency_seconds, &key);
	key.slot = MAX_SLOT + 1;
	tsbpf_hist_add(&bio_latency_seconds, &key, us);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
