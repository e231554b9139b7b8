// SPDX-License-Identifier: MIT
// filetop: reads and writes by thread and file, read and cleared each interval.
// BCC hooks vfs_read/vfs_write with kprobes; here the read and write syscalls
// (read, readv, pread64, preadv, preadv2 and the writes alike) through their
// tracepoints: the fd is kept at entry, and at exit the file behind it is named
// (its dentry) and the bytes moved (the syscall's result) are counted.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "fdfile.h"

#define TASK_COMM_LEN 16
#define NAME_LEN 64
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define S_IFREG 0100000

const volatile u32 targ_pid = 0;
const volatile bool regular_file_only = true;

struct info_t {
	u64 inode;
	u32 dev;
	u32 rdev;
	u32 pid;
	u32 name_len;
	char comm[TASK_COMM_LEN];
	char name[NAME_LEN];
	char type;
};

struct val_t {
	u64 reads;
	u64 writes;
	u64 rbytes;
	u64 wbytes;
};

struct call {
	s32 fd;
	u32 is_read;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct info_t);
	__type(value, struct val_t);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, struct call);
} calls SEC(".maps");

/* info_t is too big to zero on the stack next to everything else. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct info_t);
} scratch SEC(".maps");

static __always_inline int enter(long fd, bool is_read)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	struct call c = { .fd = fd, .is_read = is_read };

	if (targ_pid && (id >> 32) != targ_pid)
		return 0;
	bpf_map_update_elem(&calls, &tid, &c, BPF_ANY);
	return 0;
}

static __always_inline int leave(long ret)
{
	u32 tid = (u32)bpf_get_current_pid_tgid(), zero = 0;
	struct call *c = bpf_map_lookup_elem(&calls, &tid);
	struct val_t *valp, fresh = {};
	struct info_t *info;
	struct file *file;
	struct dentry *de;
	struct inode *inode;
	u32 mode, len;

	if (!c)
		return 0;
	if (ret < 0)
		goto done;
	file = fd_file(c->fd);
	info = bpf_map_lookup_elem(&scratch, &zero);
	if (!file || !info)
		goto done;
	de = BPF_CORE_READ(file, f_path.dentry);
	inode = BPF_CORE_READ(file, f_inode);
	len = BPF_CORE_READ(de, d_name.len);
	mode = BPF_CORE_READ(inode, i_mode);
	if (len == 0 || (regular_file_only && (mode & S_IFMT) != S_IFREG))
		goto done;
	__builtin_memset(info, 0, sizeof(*info));
	info->pid = tid;
	info->inode = BPF_CORE_READ(inode, i_ino);
	info->dev = BPF_CORE_READ(inode, i_sb, s_dev);
	info->rdev = BPF_CORE_READ(inode, i_rdev);
	info->name_len = len;
	bpf_get_current_comm(info->comm, sizeof(info->comm));
	bpf_probe_read_kernel_str(info->name, sizeof(info->name), BPF_CORE_READ(de, d_name.name));
	info->type = (mode & S_IFMT) == S_IFREG ? 'R' : (mode & S_IFMT) == S_IFSOCK ? 'S' : 'O';
	valp = bpf_map_lookup_elem(&counts, info);
	if (!valp) {
		bpf_map_update_elem(&counts, info, &fresh, BPF_NOEXIST);
		valp = bpf_map_lookup_elem(&counts, info);
		if (!valp)
			goto done;
	}
	if (c->is_read) {
		__sync_fetch_and_add(&valp->reads, 1);
		__sync_fetch_and_add(&valp->rbytes, ret);
	} else {
		__sync_fetch_and_add(&valp->writes, 1);
		__sync_fetch_and_add(&valp->wbytes, ret);
	}
done:
	bpf_map_delete_elem(&calls, &tid);
	return 0;
}

#define RW(name, is_read)						\
	SEC("tracepoint/syscalls/sys_enter_" #name)			\
	int enter_##name(struct trace_event_raw_sys_enter *ctx)		\
	{								\
		return enter(ctx->args[0], is_read);			\
	}								\
	SEC("tracepoint/syscalls/sys_exit_" #name)			\
	int exit_##name(struct trace_event_raw_sys_exit *ctx)		\
	{								\
		return leave(ctx->ret);					\
	}

RW(read, true)
RW(readv, true)
RW(pread64, true)
RW(preadv, true)
RW(preadv2, true)
RW(write, false)
RW(writev, false)
RW(pwrite64, false)
RW(pwritev, false)
RW(pwritev2, false)

char LICENSE[] SEC("license") = "GPL";
