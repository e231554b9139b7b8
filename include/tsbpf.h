/* SPDX-License-Identifier: MIT */
/*
 * tsbpf.h — tsbpf's own C header for BPF programs.
 *
 * The compiler driver (src/compile) puts this directory on the include path,
 * next to the generated vmlinux.h and libbpf's <bpf/...> headers, so programs
 * can `#include <tsbpf.h>` (after vmlinux.h and <bpf/bpf_helpers.h>).
 */
#ifndef __TSBPF_H
#define __TSBPF_H

/*
 * Ring buffer records that could not be written: counted, never lost silently.
 *
 * A full ring buffer makes bpf_ringbuf_reserve() return NULL and
 * bpf_ringbuf_output() fail, and the record is gone; unlike a perf buffer the
 * ring has no LOST record to tell the reader. Every tsbpf_* ring helper below
 * counts such failures here, one u64 per CPU (no atomics shared between CPUs,
 * and the counter is touched only on the failure path). User space reads it as
 * the lost count of a ring buffer reader: `openEvents()` finds it by name, a
 * `RingBufReader` takes it as `lostCounter: coll.map("tsbpf_lost")`.
 * It counts for every ring buffer of the object together.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} tsbpf_lost SEC(".maps");

static __always_inline void tsbpf_count_lost(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&tsbpf_lost, &zero);

	/* Atomic only against a nested program (an NMI) on this same CPU. */
	if (n)
		__sync_fetch_and_add(n, 1);
}

/* bpf_ringbuf_output() that counts a record it could not write. */
static __always_inline long tsbpf_ringbuf_output(void *ringbuf, void *data, __u64 size, __u64 flags)
{
	long err = bpf_ringbuf_output(ringbuf, data, size, flags);

	if (err)
		tsbpf_count_lost();
	return err;
}

/* bpf_ringbuf_reserve() that counts a record it could not reserve. */
static __always_inline void *tsbpf_ringbuf_reserve(void *ringbuf, __u64 size, __u64 flags)
{
	void *record = bpf_ringbuf_reserve(ringbuf, size, flags);

	if (!record)
		tsbpf_count_lost();
	return record;
}

/*
 * Batched ring buffer wake-ups.
 *
 * With flags 0, every record that finds the reader caught up wakes it, and the
 * wake-up costs the reader more than reading the record. These variants submit
 * with BPF_RB_NO_WAKEUP, except for the one record that makes the unread data
 * cross `wakeup_bytes`, which wakes the reader with BPF_RB_FORCE_WAKEUP. The
 * reader must also drain on a timer (tsbpf's readers: `latencyMs`), so that
 * records below the threshold still arrive within that bound.
 * `wakeup_bytes` 0 means flags 0: the kernel's own wake-up per record.
 */
static __always_inline __u64 tsbpf__ringbuf_wakeup_flag(void *ringbuf, __u64 size, __u64 wakeup_bytes)
{
	__u64 avail, after;

	if (!wakeup_bytes)
		return 0;
	avail = bpf_ringbuf_query(ringbuf, 0 /* BPF_RB_AVAIL_DATA */);
	/* 8 bytes of record header per record, rounded up to 8 */
	after = avail + ((size + 8 + 7) & ~7ULL);
	return (avail < wakeup_bytes && after >= wakeup_bytes) ? 2 /* BPF_RB_FORCE_WAKEUP */ : 1 /* BPF_RB_NO_WAKEUP */;
}

/* bpf_ringbuf_output() that wakes the reader once per `wakeup_bytes` of data (and counts failures). */
static __always_inline long tsbpf_ringbuf_output_batched(void *ringbuf, void *data, __u64 size, __u64 wakeup_bytes)
{
	return tsbpf_ringbuf_output(ringbuf, data, size, tsbpf__ringbuf_wakeup_flag(ringbuf, size, wakeup_bytes));
}

/*
 * bpf_ringbuf_submit() of a record from tsbpf_ringbuf_reserve(ringbuf, size, 0), batched likewise.
 * (Reserve failures were counted by tsbpf_ringbuf_reserve(); a submit cannot fail.)
 */
#define tsbpf_ringbuf_submit_batched(record, ringbuf, size, wakeup_bytes) \
	bpf_ringbuf_submit((record), tsbpf__ringbuf_wakeup_flag((ringbuf), (size), (wakeup_bytes)))

/*
 * An event channel that is a ring buffer where the kernel has one (5.8+) and a
 * perf buffer otherwise, as libbpf-tools' compat.bpf.h does, decided at load:
 *
 *     TSBPF_EVENTS(events, 256 * 1024);
 *     ...
 *     tsbpf_events_output(ctx, events, &event, sizeof(event));
 *
 * The loader (`chooseEventTransport()` in src/events/channel.ts) turns the map
 * into a perf event array and sets `events_is_ringbuf` to false when it must;
 * the verifier then never walks the branch that would call a ring buffer helper
 * on it. It may also set `events_wakeup_bytes` (batched wake-ups, 0: one per
 * record; the perf reader gets the same as its wakeup watermark). Ring buffer
 * and perf buffer outputs that fail are counted in tsbpf_lost (the kernel's
 * perf LOST records come only with a later record that fits).
 */
#define TSBPF_EVENTS(name, ringbuf_bytes) \
	const volatile bool name##_is_ringbuf = true; \
	const volatile __u64 name##_wakeup_bytes = 0; \
	struct { \
		__uint(type, BPF_MAP_TYPE_RINGBUF); \
		__uint(max_entries, ringbuf_bytes); \
	} name SEC(".maps")

static __always_inline long tsbpf__events_output(void *ctx, void *map, bool ringbuf, __u64 wakeup_bytes, void *data, __u64 size)
{
	long err;

	if (ringbuf)
		return tsbpf_ringbuf_output_batched(map, data, size, wakeup_bytes);
	/* Counted here too: the kernel's LOST records come only with a later record that fits. */
	err = bpf_perf_event_output(ctx, map, BPF_F_CURRENT_CPU, data, size);
	if (err)
		tsbpf_count_lost();
	return err;
}

#define tsbpf_events_output(ctx, name, data, size) \
	tsbpf__events_output((ctx), &name, name##_is_ringbuf, name##_wakeup_bytes, (data), (size))

/*
 * Whether the current task's command name contains `needle` (a NUL-terminated
 * constant, usually a `const volatile char[16]` set before load); an empty
 * needle matches every task. For tools' -n NAME filters.
 */
static __always_inline bool tsbpf_comm_contains(const volatile char *needle)
{
	char comm[16];

	if (!needle[0])
		return true;
	bpf_get_current_comm(comm, sizeof(comm));
	for (int i = 0; i < 16; i++) {
		bool match = true;

		for (int j = 0; j < 16; j++) {
			char want = needle[j];

			if (!want)
				break;
			if (i + j >= 16 || comm[i + j] != want) {
				match = false;
				break;
			}
		}
		if (match)
			return true;
		if (!comm[i])
			break;
	}
	return false;
}

/*
 * BCC's --cgroupmap PATH and --mntnsmap PATH: trace only the tasks whose cgroup
 * id, or mount namespace inode number (as in /proc/PID/ns/mnt), is a key of a
 * hash map the user pinned. At file scope,
 *
 *     TSBPF_TASK_FILTER();
 *     ...
 *     if (!tsbpf_task_wanted())
 *             return 0;
 *
 * declares the constants `targ_cgroups` and `targ_mntns` (set before load: the
 * filter is on), the hash maps `cgroups` and `mntns` (u64 id -> u8, 1024 ids
 * each, which user space fills with the pinned maps' keys before it attaches)
 * and tsbpf_task_wanted(), which says whether the current task passes both.
 * The tools' user-space side is src/cli/task-filter.ts. Needs
 * <bpf/bpf_core_read.h> (the mount namespace is read with CO-RE).
 */
#define TSBPF_TASK_FILTER() \
	const volatile bool targ_cgroups = false; \
	const volatile bool targ_mntns = false; \
	struct { \
		__uint(type, BPF_MAP_TYPE_HASH); \
		__uint(max_entries, 1024); \
		__type(key, __u64); \
		__type(value, __u8); \
	} cgroups SEC(".maps"); \
	struct { \
		__uint(type, BPF_MAP_TYPE_HASH); \
		__uint(max_entries, 1024); \
		__type(key, __u64); \
		__type(value, __u8); \
	} mntns SEC(".maps"); \
	static __always_inline bool tsbpf_task_wanted(void) \
	{ \
		if (targ_cgroups) { \
			__u64 cg = bpf_get_current_cgroup_id(); \
			if (!bpf_map_lookup_elem(&cgroups, &cg)) \
				return false; \
		} \
		if (targ_mntns) { \
			struct task_struct *task = (struct task_struct *)bpf_get_current_task(); \
			__u64 ns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum); \
			if (!bpf_map_lookup_elem(&mntns, &ns)) \
				return false; \
		} \
		return true; \
	}

/*
 * A port list filter: at most TSBPF_MAX_PORTS ports in a `const volatile
 * __u16 list[TSBPF_MAX_PORTS]` set before load, `n` of them used; an empty list
 * (n 0) lets every port through. For tools' -P/-L/-D PORTS options.
 */
#define TSBPF_MAX_PORTS 8

static __always_inline bool tsbpf_port_wanted(const volatile __u16 *list, __u32 n, __u16 port)
{
	if (!n)
		return true;
	for (int i = 0; i < TSBPF_MAX_PORTS; i++)
		if (i < n && list[i] == port)
			return true;
	return false;
}

#endif /* __TSBPF_H */
