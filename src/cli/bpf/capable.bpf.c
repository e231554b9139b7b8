// SPDX-License-Identifier: MIT
// capable: security capability checks, at the entry of cap_capable() (the
// commoncap LSM's check, which every capable()/ns_capable() reaches). No
// tracepoint reports capability checks, so this needs fentry (tried first)
// or a kprobe; the two programs share one body.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <tsbpf.h>

#define TASK_COMM_LEN 16
#define CAP_OPT_NOAUDIT 0x2
#define CAP_OPT_INSETID 0x4

const volatile u32 targ_pid = 0;
const volatile u32 self_pid = 0;
const volatile bool targ_verbose = false;
const volatile bool kernel_stacks = false;
const volatile bool user_stacks = false;
const volatile bool targ_unique = false;

struct event {
	u32 pid;
	u32 tid;
	u32 uid;
	s32 cap;
	s32 audit;
	s32 insetid;
	s64 kernel_stack_id;
	s64 user_stack_id;
	char comm[TASK_COMM_LEN];
};
const struct event *unused_event __attribute__((unused));

struct repeat {
	s32 cap;
	u32 pid;
	u64 cgroup;
	s64 kernel_stack_id;
	s64 user_stack_id;
};

TSBPF_EVENTS(events, 256 * 1024);

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 2048);
	__uint(key_size, sizeof(u32));
	__uint(value_size, 127 * sizeof(u64));
} stacks SEC(".maps");

/* --unique: what was reported already. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct repeat);
	__type(value, u8);
} seen SEC(".maps");

/* --cgroupmap / --mntnsmap: ids to trace, filled from the user's pinned maps. */
TSBPF_TASK_FILTER();

static __always_inline int check(void *ctx, int cap, unsigned int opts)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 pid = id >> 32;
	struct event e = {};
	u8 one = 1;

	if (pid == self_pid || (targ_pid && pid != targ_pid))
		return 0;
	e.audit = (opts & CAP_OPT_NOAUDIT) == 0;
	if (!targ_verbose && !e.audit)
		return 0;
	if (!tsbpf_task_wanted())
		return 0;
	e.pid = pid;
	e.tid = (u32)id;
	e.uid = (u32)bpf_get_current_uid_gid();
	e.cap = cap;
	e.insetid = (opts & CAP_OPT_INSETID) != 0;
	e.kernel_stack_id = kernel_stacks ? bpf_get_stackid(ctx, &stacks, 0) : -1;
	e.user_stack_id = user_stacks ? bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK) : -1;
	if (targ_unique) {
		struct repeat r = { .cap = cap, .kernel_stack_id = e.kernel_stack_id, .user_stack_id = e.user_stack_id };

		if (targ_cgroups)
			r.cgroup = bpf_get_current_cgroup_id();
		else
			r.pid = pid;
		if (bpf_map_update_elem(&seen, &r, &one, BPF_NOEXIST))
			return 0;
	}
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	tsbpf_events_output(ctx, events, &e, sizeof(e));
	return 0;
}

SEC("fentry/cap_capable")
int BPF_PROG(cap_fentry, const struct cred *cred, struct user_namespace *ns, int cap, unsigned int opts)
{
	return check(ctx, cap, opts);
}

SEC("kprobe/cap_capable")
int BPF_KPROBE(cap_kprobe, const struct cred *cred, struct user_namespace *ns, int cap, unsigned int opts)
{
	return check(ctx, cap, opts);
}

char LICENSE[] SEC("license") = "GPL";
