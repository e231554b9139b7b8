// SPDX-License-Identifier: MIT
// gethostlatency: name lookups through libc (getaddrinfo, gethostbyname,
// gethostbyname2). A uprobe at entry keeps the name and the time by thread; the
// uretprobe emits the lookup with its latency.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <tsbpf.h>

#define TASK_COMM_LEN 16
#define HOST_LEN 80

const volatile u32 targ_pid = 0;

struct event {
	u64 delta_ns;
	u32 pid;
	u32 tid;
	char comm[TASK_COMM_LEN];
	char host[HOST_LEN];
};
const struct event *unused_event __attribute__((unused));

struct start {
	u64 ts;
	char host[HOST_LEN];
};

TSBPF_EVENTS(events, 256 * 1024);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, struct start);
} starts SEC(".maps");

SEC("uprobe")
int BPF_KPROBE(lookup_enter, const char *name)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	struct start s = {};

	if (!name)
		return 0;
	if (targ_pid && (id >> 32) != targ_pid)
		return 0;
	bpf_probe_read_user_str(s.host, sizeof(s.host), name);
	s.ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&starts, &tid, &s, BPF_ANY);
	return 0;
}

SEC("uretprobe")
int lookup_return(struct pt_regs *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	struct start *s = bpf_map_lookup_elem(&starts, &tid);
	struct event e = {};

	if (!s)
		return 0;
	e.delta_ns = bpf_ktime_get_ns() - s->ts;
	e.pid = id >> 32;
	e.tid = tid;
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	__builtin_memcpy(e.host, s->host, sizeof(e.host));
	bpf_map_delete_elem(&starts, &tid);
	tsbpf_events_output(ctx, events, &e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
