// SPDX-License-Identifier: MIT
// execsnoop: every execve() with its parent, result and argv. The arguments are
// read at entry (the old image's memory still holds them) and sent at exit,
// when the result and the new command name are known.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <tsbpf.h>
#include <tsbpf_hist.h>

#define TASK_COMM_LEN 16
#define ARGSIZE 128            /* bytes per argument, as BCC */
#define TOTAL_MAX_ARGS 60      /* the most --max-args can ask for */
#define FULL_MAX_ARGS_ARR (TOTAL_MAX_ARGS * ARGSIZE)
#define LAST_ARG (FULL_MAX_ARGS_ARR - ARGSIZE)
#define NO_UID ((u32)-1)

const volatile u32 max_args = 20;
const volatile u32 targ_uid = NO_UID;
/* BCC shows failed execs only with -x. */
const volatile bool ignore_failed = true;
const volatile u32 targ_ppid = 0;
const volatile char targ_comm[TASK_COMM_LEN] = {};
/* The exporter's mode (execs_total): exit_execve alone counts successful execs by the new command name, no events (count_execs is the cheaper hook for the same count). */
const volatile bool targ_count = false;

struct exec_header {
	u64 ts;
	u32 pid;
	u32 ppid;
	u32 uid;
	s32 ret;
	/* Arguments read; one more than max_args when there were more. */
	u32 args_count;
	u32 args_size;
	char comm[TASK_COMM_LEN];
};

/* A record is the header and then args_size bytes of NUL-separated arguments. */
struct event {
	struct exec_header h;
	char args[FULL_MAX_ARGS_ARR];
};
const struct exec_header *unused_header __attribute__((unused));

TSBPF_EVENTS(events, 4 * 1024 * 1024);

/* Too big for the BPF stack: events are built in this map, keyed by process. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, struct event);
} execs SEC(".maps");

static const struct event empty_event = {};

struct comm_key {
	char comm[TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 10240);
	__type(key, struct comm_key);
	__type(value, u64);
} comm_counts SEC(".maps");

static __always_inline int count_exec(void)
{
	struct comm_key key = {};

	if (!tsbpf_comm_contains(targ_comm))
		return 0;
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	tsbpf_hist_increment(&comm_counts, &key);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_execve")
int enter_execve(struct trace_event_raw_sys_enter *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 pid = id >> 32;
	u32 uid = (u32)bpf_get_current_uid_gid();
	const char *const *argv = (const char *const *)ctx->args[1];
	struct task_struct *task;
	struct event *event;
	const char *arg;
	long n;
	u32 ppid;

	if (targ_uid != NO_UID && targ_uid != uid)
		return 0;
	task = (struct task_struct *)bpf_get_current_task();
	ppid = BPF_CORE_READ(task, real_parent, tgid);
	if (targ_ppid && targ_ppid != ppid)
		return 0;
	if (bpf_map_update_elem(&execs, &pid, &empty_event, BPF_NOEXIST))
		return 0;
	event = bpf_map_lookup_elem(&execs, &pid);
	if (!event)
		return 0;

	event->h.pid = pid;
	event->h.uid = uid;
	event->h.ppid = ppid;

	/* The path being executed, then argv[1..]: as BCC's and libbpf-tools' execsnoop. */
	n = bpf_probe_read_user_str(event->args, ARGSIZE, (const char *)ctx->args[0]);
	if (n < 0)
		return 0;
	event->h.args_size = n;
	event->h.args_count = 1;
	for (u32 i = 1; i < TOTAL_MAX_ARGS && i < max_args; i++) {
		if (bpf_probe_read_user(&arg, sizeof(arg), &argv[i]) || !arg)
			return 0;
		if (event->h.args_size > LAST_ARG)
			return 0;
		n = bpf_probe_read_user_str(&event->args[event->h.args_size], ARGSIZE, arg);
		if (n < 0)
			return 0;
		event->h.args_count++;
		event->h.args_size += n;
	}
	/* One more pointer that is not NULL: there were more arguments than max_args. */
	if (!bpf_probe_read_user(&arg, sizeof(arg), &argv[max_args]) && arg)
		event->h.args_count++;
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_execve")
int exit_execve(struct trace_event_raw_sys_exit *ctx)
{
	/* A thread that execs becomes its process's leader: the exit sees the pid as its tid. */
	u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct event *event;
	long ret = ctx->ret;
	u32 size;

	if (targ_count)
		return ret < 0 ? 0 : count_exec();
	event = bpf_map_lookup_elem(&execs, &pid);
	if (!event)
		return 0;
	if ((ignore_failed && ret < 0) || !tsbpf_comm_contains(targ_comm))
		goto done;
	event->h.ts = bpf_ktime_get_ns();
	event->h.ret = ret;
	bpf_get_current_comm(event->h.comm, sizeof(event->h.comm));
	size = sizeof(event->h) + event->h.args_size;
	if (size <= sizeof(*event))
		tsbpf_events_output(ctx, events, event, size);
done:
	bpf_map_delete_elem(&execs, &pid);
	return 0;
}

/*
 * The exporter's count (execs_total): a successful exec by the new command name
 * at sched_process_exec, which runs once per exec. exit_execve with targ_count
 * counts the same, but a syscalls:sys_exit_* event puts a probe on every
 * syscall's exit: the exporter's default config attaches this one. Also counts
 * execveat(). The tool never loads it.
 */
SEC("raw_tp/sched_process_exec")
int count_execs(void *ctx)
{
	return count_exec();
}

char LICENSE[] SEC("license") = "GPL";
