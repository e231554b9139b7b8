// SPDX-License-Identifier: MIT
// mountsnoop: mount(), umount() and the new mount API (fsopen, fsconfig, fsmount,
// move_mount), one record per call at its exit with the arguments read at entry.
// syscalls:sys_enter_*/sys_exit_* tracepoints; BCC uses kprobes on the same syscalls.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <tsbpf.h>

#define TASK_COMM_LEN 16
#define STR_LEN 256

enum call { CALL_MOUNT, CALL_UMOUNT, CALL_FSOPEN, CALL_FSCONFIG, CALL_FSMOUNT, CALL_MOVE_MOUNT };

const volatile u32 targ_pid = 0;

struct args {
	u32 call;
	s32 i1, i2;
	u64 flags, flags2;
	const char *s[4];
};

struct event {
	u64 ts;
	u32 pid;
	u32 tid;
	u32 ppid;
	u32 mnt_ns;
	s32 ret;
	u32 call;
	s32 i1;
	s32 i2;
	u64 flags;
	u64 flags2;
	char comm[TASK_COMM_LEN];
	char pcomm[TASK_COMM_LEN];
	char s1[STR_LEN];
	char s2[STR_LEN];
	char s3[STR_LEN];
	char s4[STR_LEN];
};
const struct event *unused_event __attribute__((unused));

TSBPF_EVENTS(events, 1024 * 1024);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u32);
	__type(value, struct args);
} start SEC(".maps");

/* The event is too big for the stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct event);
} scratch SEC(".maps");

static __always_inline int enter(struct args *a)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;

	if (targ_pid && (id >> 32) != targ_pid)
		return 0;
	bpf_map_update_elem(&start, &tid, a, BPF_ANY);
	return 0;
}

static __always_inline void read_str(char *dst, const char *src)
{
	if (src)
		bpf_probe_read_user_str(dst, STR_LEN, src);
	else
		dst[0] = 0;
}

static __always_inline int leave(void *ctx, long ret)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id, zero = 0;
	struct args *a = bpf_map_lookup_elem(&start, &tid);
	struct task_struct *task;
	struct event *e;

	if (!a)
		return 0;
	e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		goto done;
	task = (struct task_struct *)bpf_get_current_task();
	e->ts = bpf_ktime_get_ns();
	e->pid = id >> 32;
	e->tid = tid;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->mnt_ns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	e->ret = ret;
	e->call = a->call;
	e->i1 = a->i1;
	e->i2 = a->i2;
	e->flags = a->flags;
	e->flags2 = a->flags2;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	BPF_CORE_READ_STR_INTO(&e->pcomm, task, real_parent, comm);
	read_str(e->s1, a->s[0]);
	read_str(e->s2, a->s[1]);
	read_str(e->s3, a->s[2]);
	read_str(e->s4, a->s[3]);
	tsbpf_events_output(ctx, events, e, sizeof(*e));
done:
	bpf_map_delete_elem(&start, &tid);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_mount")
int enter_mount(struct trace_event_raw_sys_enter *ctx)
{
	/* mount(source, target, fstype, flags, data) */
	struct args a = { .call = CALL_MOUNT, .flags = ctx->args[3] };

	a.s[0] = (const char *)ctx->args[0];
	a.s[1] = (const char *)ctx->args[1];
	a.s[2] = (const char *)ctx->args[2];
	a.s[3] = (const char *)ctx->args[4];
	return enter(&a);
}

SEC("tracepoint/syscalls/sys_enter_umount")
int enter_umount(struct trace_event_raw_sys_enter *ctx)
{
	/* umount2(target, flags) */
	struct args a = { .call = CALL_UMOUNT, .flags = ctx->args[1] };

	a.s[0] = (const char *)ctx->args[0];
	return enter(&a);
}

SEC("tracepoint/syscalls/sys_enter_fsopen")
int enter_fsopen(struct trace_event_raw_sys_enter *ctx)
{
	/* fsopen(fs_name, flags) */
	struct args a = { .call = CALL_FSOPEN, .flags = ctx->args[1] };

	a.s[0] = (const char *)ctx->args[0];
	return enter(&a);
}

SEC("tracepoint/syscalls/sys_enter_fsconfig")
int enter_fsconfig(struct trace_event_raw_sys_enter *ctx)
{
	/* fsconfig(fd, cmd, key, value, aux): value is a string for SET_STRING, SET_PATH(_EMPTY) */
	struct args a = { .call = CALL_FSCONFIG, .i1 = ctx->args[0], .flags = ctx->args[1], .i2 = ctx->args[4] };
	u32 cmd = ctx->args[1];

	a.s[0] = (const char *)ctx->args[2];
	if (cmd == 1 || cmd == 3 || cmd == 4)
		a.s[1] = (const char *)ctx->args[3];
	return enter(&a);
}

SEC("tracepoint/syscalls/sys_enter_fsmount")
int enter_fsmount(struct trace_event_raw_sys_enter *ctx)
{
	/* fsmount(fs_fd, flags, attr_flags) */
	struct args a = { .call = CALL_FSMOUNT, .i1 = ctx->args[0], .flags = ctx->args[1], .flags2 = ctx->args[2] };

	return enter(&a);
}

SEC("tracepoint/syscalls/sys_enter_move_mount")
int enter_move_mount(struct trace_event_raw_sys_enter *ctx)
{
	/* move_mount(from_dfd, from_pathname, to_dfd, to_pathname, flags) */
	struct args a = { .call = CALL_MOVE_MOUNT, .i1 = ctx->args[0], .i2 = ctx->args[2], .flags = ctx->args[4] };

	a.s[0] = (const char *)ctx->args[1];
	a.s[1] = (const char *)ctx->args[3];
	return enter(&a);
}

#define EXIT(name)							\
	SEC("tracepoint/syscalls/sys_exit_" #name)			\
	int exit_##name(struct trace_event_raw_sys_exit *ctx)		\
	{								\
		return leave(ctx, ctx->ret);				\
	}

EXIT(mount)
EXIT(umount)
EXIT(fsopen)
EXIT(fsconfig)
EXIT(fsmount)
EXIT(move_mount)

char LICENSE[] SEC("license") = "GPL";
