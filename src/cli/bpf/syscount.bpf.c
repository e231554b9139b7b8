// SPDX-License-Identifier: MIT
// syscount: syscalls counted by number or by process at raw_syscalls:sys_exit,
// with their total latency from raw_syscalls:sys_enter when asked (-L).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

const volatile u32 targ_pid = 0;
const volatile u32 targ_tid = 0;
const volatile u32 targ_ppid = 0;
const volatile bool targ_failed = false;
/* -e: only syscalls that return -targ_errno (0: any). */
const volatile s32 targ_errno = 0;
/* --syscall: only this number (-1: every syscall). */
const volatile s32 targ_nr = -1;
const volatile bool targ_by_process = false;
const volatile bool targ_latency = false;

struct data {
	u64 count;
	u64 total_ns;
};
const struct data *unused_data __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u64);
	__type(value, u64);
} start SEC(".maps");

/* syscall number (or process ID with -P) -> count and time. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, struct data);
} data SEC(".maps");

static __always_inline bool wanted(u64 id, long nr)
{
	u32 pid = id >> 32, tid = (u32)id;

	if (targ_nr >= 0 && nr != targ_nr)
		return false;
	if (targ_pid && pid != targ_pid)
		return false;
	if (targ_tid && tid != targ_tid)
		return false;
	if (targ_ppid) {
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();

		if (BPF_CORE_READ(task, real_parent, tgid) != targ_ppid)
			return false;
	}
	return true;
}

SEC("tracepoint/raw_syscalls/sys_enter")
int sys_enter(struct trace_event_raw_sys_enter *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u64 ts;

	if (!wanted(id, ctx->id))
		return 0;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &id, &ts, BPF_ANY);
	return 0;
}

SEC("tracepoint/raw_syscalls/sys_exit")
int sys_exit(struct trace_event_raw_sys_exit *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	struct data zero = {}, *val;
	u64 delta = 0, *tsp;
	u32 key;

	if (!wanted(id, ctx->id))
		return 0;
	if (targ_latency) {
		tsp = bpf_map_lookup_elem(&start, &id);
		if (!tsp)
			return 0;
		delta = bpf_ktime_get_ns() - *tsp;
		bpf_map_delete_elem(&start, &id);
	}
	if (targ_failed && ctx->ret >= 0)
		return 0;
	if (targ_errno && ctx->ret != -targ_errno)
		return 0;
	key = targ_by_process ? (u32)(id >> 32) : (u32)ctx->id;
	val = bpf_map_lookup_elem(&data, &key);
	if (!val) {
		bpf_map_update_elem(&data, &key, &zero, BPF_NOEXIST);
		val = bpf_map_lookup_elem(&data, &key);
		if (!val)
			return 0;
	}
	__sync_fetch_and_add(&val->count, 1);
	if (targ_latency)
		__sync_fetch_and_add(&val->total_ns, delta);
	return 0;
}

/*
 * The exporter's counts (tsbpf exporter; the tool never loads count_enter):
 * syscalls_total, every syscall by number, per CPU, at raw_tp/sys_enter; with
 * targ_count_opens, opens_total too, open()/openat()/openat2()/creat() by
 * command name, in the same program. A raw tracepoint copies no record and a
 * per-CPU map needs no atomic; one program for both counts, so that every
 * syscall pays one run of the BPF dispatch, not two. No filters: the exporter
 * counts everything.
 */
#define MAX_SYSCALLS 1024
#define TASK_COMM_LEN 16
/* x86_64 numbers (the exporter's default config is for x86_64 hosts). */
#define NR_open 2
#define NR_creat 85
#define NR_openat 257
#define NR_openat2 437

const volatile bool targ_count_opens = false;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_SYSCALLS);
	__type(key, u32);
	__type(value, u64);
} counts_by_nr SEC(".maps");

/* The key of open_counts: the comm, which the string decoder reads. */
struct comm_key {
	char comm[TASK_COMM_LEN];
};

/*
 * Per CPU: no atomic, no line bouncing. Not LRU: an LRU lookup costs more (about
 * 40 ns here), and evicting a command would make its counter go backwards; past
 * 10,240 commands new ones are not counted (the exporter's series limit is lower).
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 10240);
	__type(key, struct comm_key);
	__type(value, u64);
} open_counts SEC(".maps");

/*
 * Opens wait in a per-CPU cache, one command's count, and go into open_counts
 * when another command opens on that CPU, at the first syscall of a later
 * jiffy, or when the CPU switches tasks (flush_opens): a flood of opens from one
 * command costs a few loads and compares each, not a hash lookup (about 80 ns
 * here, where every call and return is costly), and a count reaches the map
 * within a tick while the CPU runs, at once when the task sleeps or exits.
 * BPF on a syscall tracepoint runs with preemption off (before 6.13 as every
 * tracepoint callback; since, the faultable syscall tracepoints' BPF wrapper
 * turns it off), so flush_opens never runs in the middle of a count_enter run
 * on the same CPU. A kernel that ran them preemptible could lose or double a
 * batch, as a preempted per-CPU "+= 1" can lose a count.
 */
struct open_cache {
	u64 comm[TASK_COMM_LEN / 8];
	u64 pending;
	u64 jiffies;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct open_cache);
} open_cache SEC(".maps");

static __always_inline void flush_cache(struct open_cache *c)
{
	u64 *n;

	if (!c->pending)
		return;
	n = bpf_map_lookup_elem(&open_counts, c->comm);
	if (n)
		*n += c->pending;
	else
		bpf_map_update_elem(&open_counts, c->comm, &c->pending, BPF_NOEXIST);
	c->pending = 0;
}

/*
 * The comm is read straight from the task (bpf_get_current_task_btf and
 * bpf_jiffies64 are inlined), not by bpf_get_current_comm(), a helper call and a
 * string copy. The kernel pads comm with NULs (set_task_comm): equal names are
 * equal keys.
 */
static __always_inline void count_open(bool is_open)
{
	u32 zero = 0;
	struct open_cache *c = bpf_map_lookup_elem(&open_cache, &zero);
	const u64 *comm;
	u64 now, c0, c1;

	if (!c)
		return;
	now = bpf_jiffies64();
	if (!is_open) {
		if (c->pending && c->jiffies != now)
			flush_cache(c);
		return;
	}
	comm = (const u64 *)bpf_get_current_task_btf()->comm;
	c0 = comm[0];
	c1 = comm[1];
	if (c->comm[0] == c0 && c->comm[1] == c1 && c->jiffies == now) {
		c->pending++;
		return;
	}
	flush_cache(c);
	c->comm[0] = c0;
	c->comm[1] = c1;
	c->jiffies = now;
	c->pending = 1;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(count_enter, struct pt_regs *regs, long id)
{
	u32 key = id;
	u64 *n = bpf_map_lookup_elem(&counts_by_nr, &key);

	if (n)
		*n += 1;
	if (targ_count_opens)
		count_open(id == NR_openat || id == NR_open || id == NR_openat2 || id == NR_creat);
	return 0;
}

/* The exporter attaches it with count_enter when targ_count_opens is set. */
SEC("raw_tp/sched_switch")
int flush_opens(void *ctx)
{
	u32 zero = 0;
	struct open_cache *c = bpf_map_lookup_elem(&open_cache, &zero);

	if (c)
		flush_cache(c);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
