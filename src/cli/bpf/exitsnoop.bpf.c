// SPDX-License-Identifier: MIT
// exitsnoop: process (or thread) exits from sched:sched_process_exit, with the
// exit status and age read from the exiting task (CO-RE).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <tsbpf.h>

#define TASK_COMM_LEN 16

const volatile u32 targ_pid = 0;
const volatile bool targ_failed = false;
const volatile bool targ_threads = false;

struct event {
	u64 start_time;
	u64 exit_time;
	u32 pid;
	u32 tid;
	u32 ppid;
	u32 exit_code;
	char comm[TASK_COMM_LEN];
};
const struct event *unused_event __attribute__((unused));

TSBPF_EVENTS(events, 1024 * 1024);

SEC("tracepoint/sched/sched_process_exit")
int process_exit(void *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 pid = id >> 32, tid = (u32)id;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct event e = {};

	if (!targ_threads && pid != tid)
		return 0;
	if (targ_pid && targ_pid != pid)
		return 0;
	e.exit_code = BPF_CORE_READ(task, exit_code);
	if (targ_failed && e.exit_code == 0)
		return 0;
	e.start_time = BPF_CORE_READ(task, start_time);
	e.exit_time = bpf_ktime_get_ns();
	e.pid = pid;
	e.tid = tid;
	e.ppid = BPF_CORE_READ(task, real_parent, tgid);
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	tsbpf_events_output(ctx, events, &e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
