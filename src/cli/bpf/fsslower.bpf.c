// SPDX-License-Identifier: MIT
// fsslower (ext4slower, xfsslower, btrfsslower): a file system's reads, writes,
// opens and fsyncs slower than a threshold. One object for every file system:
// the file system is a parameter (its super block's magic, fs_magic; for the
// kprobes, the functions they are attached to, chosen by the tool).
// With kprobes (as BCC): the file system's read_iter, write_iter, open and fsync
// functions, kprobe at entry and kretprobe at return.
// Without kprobes: the syscalls that reach them, through their tracepoints, timed
// from entry to exit, kept when the file behind the fd is on the file system (for
// opens, the fd returned).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <tsbpf.h>
#include <tsbpf_thread.h>
#include "fdfile.h"

#define TASK_COMM_LEN 16
#define DNAME_LEN 64

enum trace_types { TRACE_READ, TRACE_WRITE, TRACE_OPEN, TRACE_FSYNC };

const volatile u64 min_ns = 0;
const volatile u32 targ_pid = 0;
const volatile u64 fs_magic = 0xEF53; /* EXT4_SUPER_MAGIC; XFS 0x58465342, BTRFS 0x9123683E */

struct call {
	u64 ts;
	u64 offset;
	struct file *file;
	u32 type;
};

struct event {
	u64 ts_us;
	u64 delta_us;
	u32 type;
	s32 size;
	u64 offset;
	u32 pid;
	char task[TASK_COMM_LEN];
	char file[DNAME_LEN];
};
const struct event *unused_event __attribute__((unused));

TSBPF_EVENTS(events, 1024 * 1024);

TSBPF_THREAD_MAP(calls, struct call, 10240);

static __always_inline bool on_fs(struct file *file)
{
	return file && BPF_CORE_READ(file, f_inode, i_sb, s_magic) == fs_magic;
}

static __always_inline bool wanted(void)
{
	return !targ_pid || (bpf_get_current_pid_tgid() >> 32) == targ_pid;
}

/* A read, write or fsync on fd; pos < 0: the file's own position. */
static __always_inline int enter_fd(long fd, u32 type, s64 pos)
{
	struct call c = { .type = type };
	struct file *file;

	if (!wanted())
		return 0;
	file = fd_file(fd);
	if (!on_fs(file))
		return 0;
	c.file = file;
	/* through the local: a CO-RE read must not take its path through struct call */
	c.offset = pos >= 0 ? pos : BPF_CORE_READ(file, f_pos);
	c.ts = bpf_ktime_get_ns();
	tsbpf_thread_save(&calls, &c);
	return 0;
}

/* The file system's own function was entered with this file (kprobe path). */
static __always_inline int enter_file(struct file *file, u32 type, s64 pos)
{
	struct call c = { .type = type };

	if (!wanted() || !on_fs(file))
		return 0;
	c.file = file;
	c.offset = pos;
	c.ts = bpf_ktime_get_ns();
	tsbpf_thread_save(&calls, &c);
	return 0;
}

static __always_inline int open_started(void)
{
	struct call c = { .type = TRACE_OPEN };

	if (!wanted())
		return 0;
	c.ts = bpf_ktime_get_ns();
	tsbpf_thread_save(&calls, &c);
	return 0;
}

static __always_inline int leave(void *ctx, long ret)
{
	struct call *c = tsbpf_thread_find(&calls);
	struct event e = {};
	struct file *file;
	u64 delta;

	if (!c)
		return 0;
	delta = bpf_ktime_get_ns() - c->ts;
	if (delta < min_ns)
		goto done;
	file = c->file;
	if (c->type == TRACE_OPEN && !file) {
		file = ret >= 0 ? fd_file(ret) : NULL;
		if (!on_fs(file))
			goto done;
	}
	e.ts_us = bpf_ktime_get_ns() / 1000;
	e.delta_us = delta / 1000;
	e.type = c->type;
	e.size = c->type == TRACE_READ || c->type == TRACE_WRITE ? ret : 0;
	e.offset = c->offset;
	e.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(e.task, sizeof(e.task));
	bpf_probe_read_kernel_str(e.file, sizeof(e.file), BPF_CORE_READ(file, f_path.dentry, d_name.name));
	tsbpf_events_output(ctx, events, &e, sizeof(e));
done:
	tsbpf_thread_forget(&calls);
	return 0;
}

#define FD_CALL(name, type, pos)					\
	SEC("tracepoint/syscalls/sys_enter_" #name)			\
	int enter_##name(struct trace_event_raw_sys_enter *ctx)		\
	{								\
		return enter_fd(ctx->args[0], type, pos);		\
	}								\
	SEC("tracepoint/syscalls/sys_exit_" #name)			\
	int exit_##name(struct trace_event_raw_sys_exit *ctx)		\
	{								\
		return leave(ctx, ctx->ret);				\
	}

FD_CALL(read, TRACE_READ, -1)
FD_CALL(readv, TRACE_READ, -1)
FD_CALL(pread64, TRACE_READ, (s64)ctx->args[3])
FD_CALL(preadv, TRACE_READ, (s64)ctx->args[3])
FD_CALL(write, TRACE_WRITE, -1)
FD_CALL(writev, TRACE_WRITE, -1)
FD_CALL(pwrite64, TRACE_WRITE, (s64)ctx->args[3])
FD_CALL(pwritev, TRACE_WRITE, (s64)ctx->args[3])
FD_CALL(fsync, TRACE_FSYNC, 0)
FD_CALL(fdatasync, TRACE_FSYNC, 0)

#define OPEN_CALL(name)							\
	SEC("tracepoint/syscalls/sys_enter_" #name)			\
	int enter_##name(struct trace_event_raw_sys_enter *ctx)		\
	{								\
		return open_started();					\
	}								\
	SEC("tracepoint/syscalls/sys_exit_" #name)			\
	int exit_##name(struct trace_event_raw_sys_exit *ctx)		\
	{								\
		return leave(ctx, ctx->ret);				\
	}

OPEN_CALL(open)
OPEN_CALL(openat)
OPEN_CALL(openat2)
OPEN_CALL(creat)

/*
 * The kprobe path: attached by the tool to the file system's functions
 * (xfs_file_read_iter, btrfs_sync_file...). read_iter/write_iter(kiocb, iov_iter),
 * open(inode, file), fsync(file, start, end, datasync).
 */
SEC("kprobe")
int BPF_KPROBE(fs_read_entry, struct kiocb *iocb)
{
	return enter_file(BPF_CORE_READ(iocb, ki_filp), TRACE_READ, BPF_CORE_READ(iocb, ki_pos));
}

SEC("kprobe")
int BPF_KPROBE(fs_write_entry, struct kiocb *iocb)
{
	return enter_file(BPF_CORE_READ(iocb, ki_filp), TRACE_WRITE, BPF_CORE_READ(iocb, ki_pos));
}

SEC("kprobe")
int BPF_KPROBE(fs_open_entry, struct inode *inode, struct file *file)
{
	return enter_file(file, TRACE_OPEN, 0);
}

SEC("kprobe")
int BPF_KPROBE(fs_fsync_entry, struct file *file)
{
	return enter_file(file, TRACE_FSYNC, 0);
}

/* One return probe for all four: the entry's call says what it was. */
SEC("kretprobe")
int BPF_KRETPROBE(fs_return, long ret)
{
	return leave(ctx, ret);
}

char LICENSE[] SEC("license") = "GPL";
