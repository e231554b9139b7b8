// SPDX-License-Identifier: MIT
// bitesize: block I/O sizes as a log2 histogram of Kbytes per process name, from
// the block:block_rq_issue tracepoint (its bytes and comm fields), as BCC does.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <tsbpf.h>
#include <tsbpf_hist.h>

#define TASK_COMM_LEN 16

const volatile char targ_comm[TASK_COMM_LEN] = {};
const volatile u32 targ_pid = 0;

struct proc_key {
	char name[TASK_COMM_LEN];
	u32 slot;
};

TSBPF_HIST(dist, struct proc_key, 10240);

SEC("tracepoint/block/block_rq_issue")
int block_rq_issue(struct trace_event_raw_block_rq *ctx)
{
	struct proc_key key = {};

	if (targ_pid && (bpf_get_current_pid_tgid() >> 32) != targ_pid)
		return 0;
	if (!tsbpf_comm_contains(targ_comm))
		return 0;
	key.slot = tsbpf_log2l(BPF_CORE_READ(ctx, bytes) / 1024);
	bpf_probe_read_kernel_str(key.name, sizeof(key.name), ctx->comm);
	tsbpf_hist_increment(&dist, &key);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
