// SPDX-License-Identifier: MIT
// bashreadline: the lines bash reads interactively, from a uretprobe on
// readline() (its return value is the line).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <tsbpf.h>

#define TASK_COMM_LEN 16
#define MAX_LINE 80

struct event {
	u32 pid;
	char comm[TASK_COMM_LEN];
	char str[MAX_LINE];
};
const struct event *unused_event __attribute__((unused));

TSBPF_EVENTS(events, 256 * 1024);

SEC("uretprobe")
int readline_exit(struct pt_regs *ctx)
{
	struct event e = {};
	const char *line = (const char *)PT_REGS_RC(ctx);

	if (!line)
		return 0;
	e.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	bpf_probe_read_user_str(e.str, sizeof(e.str), line);
	tsbpf_events_output(ctx, events, &e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
