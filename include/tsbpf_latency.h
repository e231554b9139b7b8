/* SPDX-License-Identifier: MIT */
/*
 * tsbpf_latency.h — latencies from one hook to another: the start times of
 * things in flight (a request, a task waiting to run), and ebpf_exporter's
 * layout of a latency histogram.
 *
 *     #include <tsbpf_latency.h>                      // after <bpf/bpf_helpers.h>
 *
 *     TSBPF_STARTS(start, struct request *, 10240);   // key -> ns
 *     ...first hook:  tsbpf_start(&start, &rq);
 *     ...last hook:   s64 ns = tsbpf_elapsed(&start, &rq);
 *                     if (ns < 0) return 0;           // its start was not seen
 */
#ifndef __TSBPF_LATENCY_H
#define __TSBPF_LATENCY_H

#include <tsbpf_hist.h>

/* key -> u64 ns: the same map as a histogram's, read by no one but the program. */
#define TSBPF_STARTS(name, key_type, entries) TSBPF_HIST(name, key_type, entries)

/* Now is when *key started (again, if it had). */
static __always_inline void tsbpf_start(void *starts, const void *key)
{
	__u64 ts = bpf_ktime_get_ns();

	bpf_map_update_elem(starts, key, &ts, 0 /* BPF_ANY */);
}

/* Nanoseconds since *key started, which is forgotten; negative when no start was seen (or the clock went back). */
static __always_inline __s64 tsbpf_elapsed(void *starts, const void *key)
{
	__u64 *tsp = bpf_map_lookup_elem(starts, key);
	__s64 delta;

	if (!tsp)
		return -1;
	delta = bpf_ktime_get_ns() - *tsp;
	bpf_map_delete_elem(starts, key);
	return delta;
}

/*
 * ebpf_exporter's exp2 histogram (the exporter's builtin programs): one more in
 * slot min(slot, max_slot), and `value` added to the sum kept at max_slot + 1.
 * `slot_field` is the slot in *key (the key itself for a plain __u32 slot).
 */
static __always_inline void tsbpf_exporter_observe(void *hist, void *key, __u32 *slot_field, __u32 slot, __u32 max_slot, __u64 value)
{
	*slot_field = slot > max_slot ? max_slot : slot;
	tsbpf_hist_increment(hist, key);
	*slot_field = max_slot + 1;
	tsbpf_hist_add(hist, key, value);
}

#endif /* __TSBPF_LATENCY_H */
