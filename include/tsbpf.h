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

#endif /* __TSBPF_H */
