/* SPDX-License-Identifier: MIT */
/*
 * The struct file behind a descriptor of the current task (task->files->fdt->fd[fd]),
 * for tools that see a syscall's fd where BCC's kprobes saw the file itself:
 * filetop, vfsstat, ext4slower; and the files opens created (vfsstat, filelife).
 */
#ifndef __TSBPF_TOOLS_FDFILE_H
#define __TSBPF_TOOLS_FDFILE_H

#include <bpf/bpf_core_read.h>

static __always_inline struct file *fd_file(long fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds, *file = NULL;

	if (fd < 0 || !fdt || (u64)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
	return file;
}

#define FMODE_CREATED 0x100000

/* The file behind the fd an open returned, if that open created it (FMODE_CREATED), else NULL. */
static __always_inline struct file *fd_created_file(long fd)
{
	struct file *file = fd_file(fd);

	return file && (BPF_CORE_READ(file, f_mode) & FMODE_CREATED) ? file : NULL;
}

/* exit_NAME: the exit of each open syscall, calling fn(the fd it returned); a tool loads those whose tracepoint exists. */
#define FD_OPEN_EXIT(name, fn)						\
	SEC("tracepoint/syscalls/sys_exit_" #name)			\
	int exit_##name(struct trace_event_raw_sys_exit *ctx)		\
	{								\
		return fn(ctx->ret);					\
	}
#define FD_OPEN_EXITS(fn) FD_OPEN_EXIT(open, fn) FD_OPEN_EXIT(openat, fn) FD_OPEN_EXIT(openat2, fn) FD_OPEN_EXIT(creat, fn)

#endif
