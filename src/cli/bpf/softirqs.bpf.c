// SPDX-License-Identifier: MIT
// softirqs: time (or count) of soft interrupts by vector, from the
// irq:softirq_entry/exit tracepoints: totals or log2 histograms.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <tsbpf_hist.h>
#include "irq.h"

struct entry {
	u64 ts;
	u32 vec;
};

struct hist_key {
	u32 vec;
	u32 slot;
};
const struct hist_key *unused_hist_key __attribute__((unused));

IRQ_STARTS(start, struct entry);

/* vector -> total ns, or count. */
TSBPF_HIST(totals, u32, 64);
TSBPF_HIST(dist, struct hist_key, 4096);

SEC("tracepoint/irq/softirq_entry")
int softirq_entry(struct trace_event_raw_softirq *ctx)
{
	struct entry_key key;
	struct entry entry = { .vec = ctx->vec };

	if (!irq_key(&key))
		return 0;
	/* -C counts at entry, as BCC does. */
	if (targ_mode == 1) {
		tsbpf_hist_increment(&totals, &entry.vec);
		return 0;
	}
	entry.ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &key, &entry, BPF_ANY);
	return 0;
}

SEC("tracepoint/irq/softirq_exit")
int softirq_exit(struct trace_event_raw_softirq *ctx)
{
	struct entry_key key;
	struct entry *entry;
	u64 delta;

	if (targ_mode == 1 || !irq_key(&key))
		return 0;
	entry = bpf_map_lookup_elem(&start, &key);
	if (!entry)
		return 0;
	delta = bpf_ktime_get_ns() - entry->ts;
	if (targ_mode == 2) {
		struct hist_key hkey = { .vec = entry->vec, .slot = tsbpf_log2l(delta / targ_factor) };

		tsbpf_hist_increment(&dist, &hkey);
	} else {
		u32 vec = entry->vec;

		tsbpf_hist_add(&totals, &vec, delta);
	}
	bpf_map_delete_elem(&start, &key);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
