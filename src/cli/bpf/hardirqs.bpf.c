// SPDX-License-Identifier: MIT
// hardirqs: time (or count) of hard interrupt handlers by action name, from the
// irq:irq_handler_entry/exit tracepoints: totals or log2 histograms.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <tsbpf_hist.h>
#include "irq.h"

#define NAME_LEN 32
#define IRQ_NONE 0

struct entry {
	u64 ts;
	char name[NAME_LEN];
};

struct name_key {
	char name[NAME_LEN];
};
const struct name_key *unused_name_key __attribute__((unused));

struct hist_key {
	char name[NAME_LEN];
	u32 slot;
};
const struct hist_key *unused_hist_key __attribute__((unused));

IRQ_STARTS(start, struct entry);

/* action name -> total ns, or count. */
TSBPF_HIST(totals, struct name_key, 1024);
TSBPF_HIST(dist, struct hist_key, 10240);

SEC("tracepoint/irq/irq_handler_entry")
int handler_entry(struct trace_event_raw_irq_handler_entry *ctx)
{
	struct entry_key key;
	struct entry entry = {};
	u32 loc = ctx->__data_loc_name;

	if (!irq_key(&key))
		return 0;
	/* __data_loc: the low 16 bits are the string's offset in the record. */
	bpf_probe_read_kernel_str(entry.name, sizeof(entry.name), (void *)ctx + (loc & 0xffff));
	entry.ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &key, &entry, BPF_ANY);
	return 0;
}

SEC("tracepoint/irq/irq_handler_exit")
int handler_exit(struct trace_event_raw_irq_handler_exit *ctx)
{
	struct entry_key key;
	struct entry *entry;
	u64 delta;

	if (!irq_key(&key))
		return 0;
	entry = bpf_map_lookup_elem(&start, &key);
	if (!entry)
		return 0;
	/* IRQ_NONE: the handler said the interrupt was not its device's. */
	if (ctx->ret != IRQ_NONE) {
		delta = bpf_ktime_get_ns() - entry->ts;
		if (targ_mode == 2) {
			struct hist_key hkey = {};

			__builtin_memcpy(hkey.name, entry->name, NAME_LEN);
			hkey.slot = tsbpf_log2l(delta / targ_factor);
			tsbpf_hist_increment(&dist, &hkey);
		} else {
			struct name_key nkey = {};

			__builtin_memcpy(nkey.name, entry->name, NAME_LEN);
			tsbpf_hist_add(&totals, &nkey, targ_mode == 1 ? 1 : delta);
		}
	}
	bpf_map_delete_elem(&start, &key);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
