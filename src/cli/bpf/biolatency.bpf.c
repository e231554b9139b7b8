// SPDX-License-Identifier: MIT
// biolatency: block I/O latency as a log2 histogram, from issue (or, with -Q,
// from insert into the queue) to completion; per disk (-D) or per request flags
// (-F). tp_btf hooks on the block tracepoints, which hand over the request.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <tsbpf_hist.h>
#include <tsbpf_latency.h>
#include "block.h"

const volatile bool targ_queued = false;
const volatile bool targ_per_disk = false;
const volatile bool targ_per_flag = false;
const volatile bool targ_ms = false;
const volatile u32 targ_dev = 0;
/*
 * The exporter's mode (tsbpf exporter, bio_latency_seconds): {disk, operation,
 * slot} in hist_disk_op, slots clamped to targ_max_slot and the microseconds
 * summed at targ_max_slot + 1 (ebpf_exporter's layout); 0: the tool's maps.
 */
const volatile u32 targ_max_slot = 0;

struct section_key {
	u32 section;
	u32 slot;
};

TSBPF_STARTS(start, struct request *, 10240);

/* Without -D and -F: slot -> count; with either: {disk or flags, slot} -> count. */
TSBPF_HIST(hist, u32, TSBPF_LOG2_SLOTS);
TSBPF_HIST(hist_sections, struct section_key, 4096);

struct disk_op_key {
	u32 dev;  /* user space's dev_t encoding (new_encode_dev), as ebpf_exporter's majorminor decoder reads it */
	u32 op;   /* REQ_OP_* */
	u32 slot;
};
TSBPF_HIST(hist_disk_op, struct disk_op_key, 4096);

static __always_inline int trace_start(struct request *rq, bool insert)
{
	if (targ_dev && rq_dev(rq) != targ_dev)
		return 0;
	/* With -Q, a request that went through a queue keeps its insert time. */
	if (!insert && targ_queued && bpf_map_lookup_elem(&start, &rq))
		return 0;
	tsbpf_start(&start, &rq);
	return 0;
}

SEC("tp_btf/block_rq_insert")
int BPF_PROG(block_rq_insert, struct request *rq)
{
	if (!targ_queued)
		return 0;
	return trace_start(rq, true);
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(block_rq_issue, struct request *rq)
{
	return trace_start(rq, false);
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(block_rq_complete, struct request *rq, int error, unsigned int nr_bytes)
{
	s64 ns = tsbpf_elapsed(&start, &rq);
	u64 delta;
	u32 slot;

	if (ns < 0)
		return 0;
	delta = ns;
	delta /= targ_ms ? 1000000 : 1000;
	slot = tsbpf_log2l(delta);
	if (targ_max_slot) {
		u32 dev = rq_dev(rq), major = dev >> MINORBITS, minor = dev & ((1 << MINORBITS) - 1);
		struct disk_op_key key = {
			.dev = (minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12),
			.op = BPF_CORE_READ(rq, cmd_flags) & REQ_OP_MASK,
		};

		tsbpf_exporter_observe(&hist_disk_op, &key, &key.slot, slot, targ_max_slot, delta);
	} else if (targ_per_disk || targ_per_flag) {
		struct section_key key = { .slot = slot };

		key.section = targ_per_disk ? rq_dev(rq) : BPF_CORE_READ(rq, cmd_flags);
		tsbpf_hist_increment(&hist_sections, &key);
	} else {
		tsbpf_hist_increment(&hist, &slot);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
