// SPDX-License-Identifier: MIT
// vfsstat: counts of VFS calls by kind, read and cleared each interval. BCC hooks
// vfs_read, vfs_write... with kprobes; here the syscalls that reach them, through
// their tracepoints: reads and writes of every flavour, fsync, opens, and at exit
// the files an open created (FMODE_CREATED), unlinks, mkdirs and rmdirs that succeeded.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "fdfile.h"

enum stat_types { S_READ = 1, S_WRITE, S_FSYNC, S_OPEN, S_CREATE, S_UNLINK, S_MKDIR, S_RMDIR, S_MAXSTAT };

#define FMODE_CREATED 0x100000
#define AT_REMOVEDIR 0x200

const volatile u32 targ_pid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, S_MAXSTAT);
	__type(key, u32);
	__type(value, u64);
} stats SEC(".maps");

/* The kind an unlinkat() will count as, by thread, until its exit. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, u32);
} pending SEC(".maps");

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
	u32 tid = (u32)bpf_get_current_pid_tgid();

	if (wanted())
		bpf_map_update_elem(&pending, &tid, &key, BPF_ANY);
	return 0;
}

static __always_inline int settle(long ret)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	u32 *key = bpf_map_lookup_elem(&pending, &tid);

	if (!key)
		return 0;
	if (ret == 0)
		count(*key);
	bpf_map_delete_elem(&pending, &tid);
	return 0;
}

static __always_inline int opened(long fd)
{
	struct file *file;

	count(S_OPEN);
	if (fd < 0 || !wanted())
		return 0;
	file = fd_file(fd);
	if (file && (BPF_CORE_READ(file, f_mode) & FMODE_CREATED))
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

#define OPEN_EXIT(name)							\
	SEC("tracepoint/syscalls/sys_exit_" #name)			\
	int exit_##name(struct trace_event_raw_sys_exit *ctx)		\
	{								\
		return opened(ctx->ret);				\
	}

OPEN_EXIT(open)
OPEN_EXIT(openat)
OPEN_EXIT(openat2)
OPEN_EXIT(creat)

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
