// SPDX-License-Identifier: MIT
// threadsnoop: pthread_create() calls, from a uprobe on libc's pthread_create
// (the start routine is its third argument).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <tsbpf.h>

#define TASK_COMM_LEN 16

struct event {
	u64 ts;
	u64 start;
	u32 pid;
	char comm[TASK_COMM_LEN];
};
const struct event *unused_event __attribute__((unused));

TSBPF_EVENTS(events, 256 * 1024);

SEC("uprobe")
int BPF_KPROBE(pthread_create_enter, void *thread, void *attr, void *start)
{
	struct event e = {};

	e.ts = bpf_ktime_get_ns();
	e.start = (u64)start;
	e.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	tsbpf_events_output(ctx, events, &e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
