// SPDX-License-Identifier: MIT
// opensnoop: every open(), openat() and openat2() with its result. The filters
// are constants set before load, so the kernel drops what is not wanted and the
// verifier removes the checks that are off.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <tsbpf.h>

#define TASK_COMM_LEN 16
#define NAME_MAX 255
#define NO_UID ((u32)-1)

const volatile u32 targ_pid = 0;
const volatile u32 targ_tid = 0;
const volatile u32 targ_uid = NO_UID;
const volatile bool targ_failed = false;
/* A substring of the command name (-n); empty matches every process. */
const volatile char targ_comm[TASK_COMM_LEN] = {};
/* -f: opens with any of these flag bits, or in any of these access modes (bit 1 << mode). */
const volatile u32 targ_flags = 0;
const volatile u32 targ_accmodes = 0;

struct args {
	const char *fname;
	s32 flags;
	u32 mode;
};

struct event {
	u64 ts;
	u32 pid;
	u32 tid;
	u32 uid;
	s32 ret;
	s32 flags;
	u32 mode;
	char comm[TASK_COMM_LEN];
	char fname[NAME_MAX + 1];
};
/* clang emits BTF only for types that a global uses: this one lets user space decode events. */
const struct event *unused_event __attribute__((unused));

TSBPF_EVENTS(events, 4 * 1024 * 1024);

/* Arguments at syscall entry, by thread, until its exit. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, struct args);
} start SEC(".maps");

static __always_inline int enter(const char *fname, s32 flags, u32 mode)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 pid = id >> 32, tid = (u32)id;
	struct args args = { .fname = fname, .flags = flags, .mode = mode };

	if (targ_pid && targ_pid != pid)
		return 0;
	if (targ_tid && targ_tid != tid)
		return 0;
	if (targ_uid != NO_UID && targ_uid != (u32)bpf_get_current_uid_gid())
		return 0;
	if (!tsbpf_comm_contains(targ_comm))
		return 0;
	if ((targ_flags || targ_accmodes) && !(flags & targ_flags) && !(targ_accmodes & (1u << (flags & 3))))
		return 0;
	bpf_map_update_elem(&start, &tid, &args, BPF_ANY);
	return 0;
}

static __always_inline int leave(void *ctx, long ret)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	struct args *args = bpf_map_lookup_elem(&start, &tid);
	struct event event = {};
	long len;

	if (!args)
		return 0;
	if (targ_failed && ret >= 0)
		goto done;
	event.ts = bpf_ktime_get_ns();
	event.pid = id >> 32;
	event.tid = tid;
	event.uid = (u32)bpf_get_current_uid_gid();
	event.ret = ret;
	event.flags = args->flags;
	event.mode = args->mode;
	bpf_get_current_comm(event.comm, sizeof(event.comm));
	len = bpf_probe_read_user_str(event.fname, sizeof(event.fname), args->fname);
	/* Only the path's bytes (with its NUL) go out: a typical record is a third of the
	 * struct, so the ring holds three times as many before a slow reader loses any. */
	if (len < 1)
		len = 1;
	if (len > sizeof(event.fname))
		len = sizeof(event.fname);
	tsbpf_events_output(ctx, events, &event, offsetof(struct event, fname) + len);
done:
	bpf_map_delete_elem(&start, &tid);
	return 0;
}

/* open(2) exists on x86_64 but not on arm64 or riscv: the tool skips what is missing. */
SEC("tracepoint/syscalls/sys_enter_open")
int enter_open(struct trace_event_raw_sys_enter *ctx)
{
	return enter((const char *)ctx->args[0], (s32)ctx->args[1], (u32)ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_enter_openat")
int enter_openat(struct trace_event_raw_sys_enter *ctx)
{
	return enter((const char *)ctx->args[1], (s32)ctx->args[2], (u32)ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_enter_openat2")
int enter_openat2(struct trace_event_raw_sys_enter *ctx)
{
	struct open_how how = {};

	bpf_probe_read_user(&how, sizeof(how), (void *)ctx->args[2]);
	return enter((const char *)ctx->args[1], (s32)how.flags, (u32)how.mode);
}

SEC("tracepoint/syscalls/sys_exit_open")
int exit_open(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx, ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_openat")
int exit_openat(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx, ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int exit_openat2(struct trace_event_raw_sys_exit *ctx)
{
	return leave(ctx, ctx->ret);
}

char LICENSE[] SEC("license") = "GPL";
