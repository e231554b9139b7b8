// SPDX-License-Identifier: MIT
// filelife: files created and deleted while tracing, with their age. BCC hooks
// vfs_create/security_inode_create and vfs_unlink with kprobes. Without kprobes:
// a creation is an open/openat/openat2/creat whose file the open created
// (FMODE_CREATED at the syscall's exit, any file system), keyed by its inode;
// a deletion is a kprobe on vfs_unlink where the kernel has kprobes (any file
// system, as BCC), else tp_btf/ext4_unlink_enter, which hands over the dentry
// (ext4 only: no other file system has an unlink tracepoint).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <tsbpf.h>
#include "fdfile.h"

#define TASK_COMM_LEN 16
#define DNAME_LEN 64

const volatile u32 targ_pid = 0;

struct event {
	u64 delta_ns;
	u32 pid;
	char task[TASK_COMM_LEN];
	char file[DNAME_LEN];
};
const struct event *unused_event __attribute__((unused));

TSBPF_EVENTS(events, 256 * 1024);

/* Creation time by inode. LRU: files that live on must not fill it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct inode *);
	__type(value, u64);
} birth SEC(".maps");

static __always_inline bool wanted(void)
{
	return !targ_pid || (bpf_get_current_pid_tgid() >> 32) == targ_pid;
}

static __always_inline int opened(long fd)
{
	struct file *file = fd_created_file(fd);
	struct inode *inode;
	u64 ts;

	if (!file)
		return 0;
	inode = BPF_CORE_READ(file, f_inode);
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&birth, &inode, &ts, BPF_ANY);
	return 0;
}

FD_OPEN_EXITS(opened)

static __always_inline int unlinking(void *ctx, struct dentry *dentry)
{
	struct inode *inode = BPF_CORE_READ(dentry, d_inode);
	struct event e = {};
	u64 *tsp;

	tsp = bpf_map_lookup_elem(&birth, &inode);
	if (!tsp)
		return 0;
	if (!wanted())
		goto done;
	e.delta_ns = bpf_ktime_get_ns() - *tsp;
	e.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(e.task, sizeof(e.task));
	bpf_probe_read_kernel_str(e.file, sizeof(e.file), BPF_CORE_READ(dentry, d_name.name));
	tsbpf_events_output(ctx, events, &e, sizeof(e));
done:
	bpf_map_delete_elem(&birth, &inode);
	return 0;
}

SEC("tp_btf/ext4_unlink_enter")
int BPF_PROG(ext4_unlink_enter, struct inode *parent, struct dentry *dentry)
{
	return unlinking(ctx, dentry);
}

/* vfs_unlink(idmap or user namespace, dir, dentry, delegated_inode) since 5.12. */
SEC("kprobe/vfs_unlink")
int BPF_KPROBE(vfs_unlink, void *idmap, struct inode *dir, struct dentry *dentry)
{
	return unlinking(ctx, dentry);
}

char LICENSE[] SEC("license") = "GPL";
