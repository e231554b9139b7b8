/* SPDX-License-Identifier: MIT */
/*
 * The struct file behind a descriptor of the current task (task->files->fdt->fd[fd]),
 * for tools that see a syscall's fd where BCC's kprobes saw the file itself:
 * filetop, vfsstat, ext4slower.
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

#endif
