// SPDX-License-Identifier: MIT
// vfsstat: counts of VFS calls by kind, read and cleared each interval. BCC hooks
// vfs_read, vfs_write... with kprobes; here the syscalls that reach them, through
// their tracepoints: reads and writes of every flavour, fsync, opens, and at exit
// the files an open created (FMODE_CREATED), unlinks, mkdirs and rmdirs that succeeded.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <tsbpf_thread.h>
#include "fdfile.h"

enum stat_types { S_READ = 1, S_WRITE, S_FSYNC, S_OPEN, S_CREATE, S_UNLINK, S_MKDIR, S_RMDIR, S_MAXSTAT };

#define AT_REMOVEDIR 0x200

const volatile u32 targ_pid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, S_MAXSTAT);
	__type(key, u32);
	__type(value, u64);
} stats SEC(".maps");

/* The kind an unlinkat() will count as, by thread, until its exit. */
TSBPF_THREAD_MAP(pending, u32, 10240);

static __always_inline bool wanted(void)
{
	return !targ_pid || (bpf_get_current_pid_tgid() >> 32) == targ_pid;
}

static __always_inline int count(u32 key)
{
	u64 *v;

	if (!wanted())
		return 0;
	v = bpf_map_lookup_elem(&stats, &key);
	if (v)
		(*v)++;
	return 0;
}

static __always_inline int expect(u32 key)
{
	if (wanted())
		tsbpf_thread_save(&pending, &key);
	return 0;
}

static __always_inline int settle(long ret)
{
	u32 *key = tsbpf_thread_find(&pending);

	if (!key)
		return 0;
	if (ret == 0)
		count(*key);
	tsbpf_thread_forget(&pending);
	return 0;
}

static __always_inline int opened(long fd)
{
	count(S_OPEN);
	if (fd >= 0 && wanted() && fd_created_file(fd))
		count(S_CREATE);
	return 0;
}

#define ENTER(name, key)						\
	SEC("tracepoint/syscalls/sys_enter_" #name)			\
	int enter_##name(struct trace_event_raw_sys_enter *ctx)		\
	{								\
		return count(key);					\
	}

ENTER(read, S_READ)
ENTER(readv, S_READ)
ENTER(pread64, S_READ)
ENTER(preadv, S_READ)
ENTER(preadv2, S_READ)
ENTER(write, S_WRITE)
ENTER(writev, S_WRITE)
ENTER(pwrite64, S_WRITE)
ENTER(pwritev, S_WRITE)
ENTER(pwritev2, S_WRITE)
ENTER(fsync, S_FSYNC)
ENTER(fdatasync, S_FSYNC)

FD_OPEN_EXITS(opened)

#define SETTLED(name, key)						\
	SEC("tracepoint/syscalls/sys_enter_" #name)			\
	int enter_##name(struct trace_event_raw_sys_enter *ctx)		\
	{								\
		return expect(key);					\
	}								\
	SEC("tracepoint/syscalls/sys_exit_" #name)			\
	int exit_##name(struct trace_event_raw_sys_exit *ctx)		\
	{								\
		return settle(ctx->ret);				\
	}

SETTLED(unlink, S_UNLINK)
SETTLED(mkdir, S_MKDIR)
SETTLED(mkdirat, S_MKDIR)
SETTLED(rmdir, S_RMDIR)

SEC("tracepoint/syscalls/sys_enter_unlinkat")
int enter_unlinkat(struct trace_event_raw_sys_enter *ctx)
{
	return expect(ctx->args[2] & AT_REMOVEDIR ? S_RMDIR : S_UNLINK);
}

SEC("tracepoint/syscalls/sys_exit_unlinkat")
int exit_unlinkat(struct trace_event_raw_sys_exit *ctx)
{
	return settle(ctx->ret);
}

char LICENSE[] SEC("license") = "GPL";
