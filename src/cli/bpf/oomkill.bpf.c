// SPDX-License-Identifier: MIT
// oomkill: OOM kills from oom:mark_victim, which runs in the task whose
// allocation triggered the kill; the victim is in the tracepoint's fields.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <tsbpf.h>

#define TASK_COMM_LEN 16

struct event {
	u32 tpid;
	u32 vpid;
	u64 total_vm_kb;
	u64 rss_kb;
	char tcomm[TASK_COMM_LEN];
	char vcomm[TASK_COMM_LEN];
};
const struct event *unused_event __attribute__((unused));

TSBPF_EVENTS(events, 256 * 1024);

/* The 6.18 layout; older kernels' mark_victim has the pid only (comm then stays empty). */
SEC("tracepoint/oom/mark_victim")
int mark_victim(struct trace_event_raw_mark_victim *ctx)
{
	struct event e = {};

	e.tpid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(e.tcomm, sizeof(e.tcomm));
	e.vpid = ctx->pid;
	if (bpf_core_field_exists(ctx->__data_loc_comm)) {
		u32 loc = ctx->__data_loc_comm;

		bpf_probe_read_kernel_str(e.vcomm, sizeof(e.vcomm), (void *)ctx + (loc & 0xffff));
		e.total_vm_kb = ctx->total_vm;
		e.rss_kb = ctx->anon_rss + ctx->file_rss + ctx->shmem_rss;
	}
	tsbpf_events_output(ctx, events, &e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
