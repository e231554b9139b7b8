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
 * Batched ring buffer wake-ups.
 *
 * With flags 0, every record that finds the reader caught up wakes it, and the
 * wake-up costs the reader more than reading the record. These variants submit
 * with BPF_RB_NO_WAKEUP, except for the one record that makes the unread data
 * cross `wakeup_bytes`, which wakes the reader with BPF_RB_FORCE_WAKEUP. The
 * reader must also drain on a timer (tsbpf's readers: `latencyMs`), so that
 * records below the threshold still arrive within that bound.
 */
static __always_inline __u64 tsbpf__ringbuf_wakeup_flag(void *ringbuf, __u64 size, __u64 wakeup_bytes)
{
	__u64 avail = bpf_ringbuf_query(ringbuf, 0 /* BPF_RB_AVAIL_DATA */);
	/* 8 bytes of record header per record, rounded up to 8 */
	__u64 after = avail + ((size + 8 + 7) & ~7ULL);
	return (avail < wakeup_bytes && after >= wakeup_bytes) ? 2 /* BPF_RB_FORCE_WAKEUP */ : 1 /* BPF_RB_NO_WAKEUP */;
}

/* bpf_ringbuf_output() that wakes the reader once per `wakeup_bytes` of data. */
static __always_inline long tsbpf_ringbuf_output_batched(void *ringbuf, void *data, __u64 size, __u64 wakeup_bytes)
{
	return bpf_ringbuf_output(ringbuf, data, size, tsbpf__ringbuf_wakeup_flag(ringbuf, size, wakeup_bytes));
}

/* bpf_ringbuf_submit() of a record from bpf_ringbuf_reserve(ringbuf, size, 0), batched likewise. */
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
 * The loader (`openEvents()` in src/events) turns the map into a perf event
 * array and sets `events_is_ringbuf` to false when it must; the verifier then
 * never walks the branch that would call a ring buffer helper on it.
 */
#define TSBPF_EVENTS(name, ringbuf_bytes) \
	const volatile bool name##_is_ringbuf = true; \
	struct { \
		__uint(type, BPF_MAP_TYPE_RINGBUF); \
		__uint(max_entries, ringbuf_bytes); \
	} name SEC(".maps")

static __always_inline long tsbpf__events_output(void *ctx, void *map, bool ringbuf, void *data, __u64 size)
{
	if (ringbuf)
		return bpf_ringbuf_output(map, data, size, 0);
	return bpf_perf_event_output(ctx, map, BPF_F_CURRENT_CPU, data, size);
}

#define tsbpf_events_output(ctx, name, data, size) \
	tsbpf__events_output((ctx), &name, name##_is_ringbuf, (data), (size))

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

#endif /* __TSBPF_H */
