/* SPDX-License-Identifier: MIT */
/*
 * tsbpf_thread.h — a value kept per thread from a call's entry to its exit (a
 * syscall's enter and exit tracepoints, a kprobe and its kretprobe), keyed by
 * the thread id, since a thread is in one such call at a time:
 *
 *     #include "vmlinux.h"
 *     #include <bpf/bpf_helpers.h>
 *     #include <tsbpf_thread.h>
 *
 *     TSBPF_THREAD_MAP(start, struct args, 10240);
 *     ...entry:  tsbpf_thread_save(&start, &args);
 *     ...exit:   struct args *a = tsbpf_thread_find(&start);
 *                if (!a) return 0;   // its entry was not seen (or filtered out)
 *                ...
 *                tsbpf_thread_forget(&start);
 */
#ifndef __TSBPF_THREAD_H
#define __TSBPF_THREAD_H

/* thread id -> value_type */
#define TSBPF_THREAD_MAP(name, value_type, entries) \
	struct { \
		__uint(type, BPF_MAP_TYPE_HASH); \
		__uint(max_entries, entries); \
		__type(key, __u32); \
		__type(value, value_type); \
	} name SEC(".maps")

static __always_inline __u32 tsbpf__thread_id(void)
{
	return (__u32)bpf_get_current_pid_tgid();
}

/* Keeps *value for this thread (replacing what an unfinished call left). */
static __always_inline long tsbpf_thread_save(void *map, const void *value)
{
	__u32 tid = tsbpf__thread_id();

	return bpf_map_update_elem(map, &tid, value, 0 /* BPF_ANY */);
}

/* This thread's value, or NULL. */
static __always_inline void *tsbpf_thread_find(void *map)
{
	__u32 tid = tsbpf__thread_id();

	return bpf_map_lookup_elem(map, &tid);
}

/* Drops this thread's value: after its last use, since tsbpf_thread_find() points into it. */
static __always_inline void tsbpf_thread_forget(void *map)
{
	__u32 tid = tsbpf__thread_id();

	bpf_map_delete_elem(map, &tid);
}

#endif /* __TSBPF_THREAD_H */
