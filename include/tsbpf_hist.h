/* SPDX-License-Identifier: MIT */
/*
 * tsbpf_hist.h — histogram slots for BPF programs, as BCC numbers them.
 *
 * The user side (src/histogram: formatLog2Hist, formatLinearHist) prints the
 * maps these fill exactly as BCC's print_log2_hist / print_linear_hist:
 *
 *     #include "vmlinux.h"
 *     #include <bpf/bpf_helpers.h>
 *     #include <tsbpf_hist.h>
 *
 *     TSBPF_HIST(dist, __u32, 64);                // slot -> count
 *     ...
 *     __u32 slot = tsbpf_log2l(delta_us);
 *     tsbpf_hist_increment(&dist, &slot);
 *
 * Per-key sections (biolatency -D, runqlat -P): a key struct whose first field
 * is the section and whose second is the slot, e.g.
 *     struct pid_key { __u32 pid; __u32 slot; };  TSBPF_HIST(dist, struct pid_key, 10240);
 *
 * The slot functions need only __u32/__u64 (vmlinux.h or <linux/types.h>);
 * the map macros need <bpf/bpf_helpers.h> before this header.
 */
#ifndef __TSBPF_HIST_H
#define __TSBPF_HIST_H

/* floor(log2(v)) for v > 0, 0 for 0: BCC's bpf_log2, branch-free for the verifier. */
static __always_inline __u32 tsbpf_log2(__u32 v)
{
	__u32 r, shift;

	r = (v > 0xFFFF) << 4; v >>= r;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r;
}

/*
 * BCC's bpf_log2l: the log2 histogram slot of v, floor(log2(v)) + 1 (1..64),
 * and 1 for 0 as for 1: slot 1 prints as "0 -> 1", slot s > 1 counts
 * [2^(s-1), 2^s - 1]. libbpf-tools' log2l() is one less (no + 1); these slots
 * are BCC's, which the printer expects.
 */
static __always_inline __u32 tsbpf_log2l(__u64 v)
{
	__u32 hi = v >> 32;

	if (hi)
		return tsbpf_log2(hi) + 32 + 1;
	return tsbpf_log2((__u32)v) + 1;
}

/* A linear histogram's slot: (v - base) / step, clamped to max_slot (the last slot counts everything above). */
static __always_inline __u32 tsbpf_linear_slot(__u64 v, __u64 base, __u64 step, __u32 max_slot)
{
	__u64 slot;

	if (v < base)
		return 0;
	slot = (v - base) / (step ? step : 1);
	return slot > max_slot ? max_slot : (__u32)slot;
}

/* Slots a log2 histogram can use (BCC's log2_index_max). */
#define TSBPF_LOG2_SLOTS 65

#ifdef __uint
/*
 * A histogram map: key -> __u64 count. A hash, so that only the slots that were
 * hit are read back; `entries` bounds slots times sections.
 */
#define TSBPF_HIST(name, key_type, entries) \
	struct { \
		__uint(type, BPF_MAP_TYPE_HASH); \
		__uint(max_entries, entries); \
		__type(key, key_type); \
		__type(value, __u64); \
	} name SEC(".maps")

/* Adds `n` to the count under *key, creating it at 0 the first time. */
static __always_inline void tsbpf_hist_add(void *map, const void *key, __u64 n)
{
	__u64 zero = 0, *count;

	count = bpf_map_lookup_elem(map, key);
	if (!count) {
		/* BPF_NOEXIST: another CPU may have created it meanwhile; either way, look again. */
		bpf_map_update_elem(map, key, &zero, 1 /* BPF_NOEXIST */);
		count = bpf_map_lookup_elem(map, key);
		if (!count)
			return;
	}
	__sync_fetch_and_add(count, n);
}

#define tsbpf_hist_increment(map, key) tsbpf_hist_add((map), (key), 1)
#endif /* __uint */

#endif /* __TSBPF_HIST_H */
