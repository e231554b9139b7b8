/* SPDX-License-Identifier: MIT */
/*
 * What hardirqs and softirqs share: the constants src/cli/irqtool.ts sets (mode,
 * histogram unit, CPU filter) and the interrupts in progress, kept per thread
 * and CPU from the entry tracepoint to the exit one (an interrupt that arrives
 * while a CPU is idle runs as pid 0 on each CPU).
 */
#ifndef __TSBPF_TOOLS_IRQ_H
#define __TSBPF_TOOLS_IRQ_H

/* 0: total time; 1: counts (-C); 2: histograms of time (-d). */
const volatile u32 targ_mode = 0;
/* -d: the histogram's unit in ns (1000 for usecs, 1 with -N). */
const volatile u64 targ_factor = 1000;
/* -c: only this CPU (-1: all). */
const volatile s32 targ_cpu = -1;

struct entry_key {
	u32 tid;
	u32 cpu;
};

/* entry_key -> the tool's struct entry: the interrupt in progress on that thread and CPU. */
#define IRQ_STARTS(name, entry_type) \
	struct { \
		__uint(type, BPF_MAP_TYPE_HASH); \
		__uint(max_entries, 10240); \
		__type(key, struct entry_key); \
		__type(value, entry_type); \
	} name SEC(".maps")

/* The key of this thread and CPU; false when -c leaves this CPU out. */
static __always_inline bool irq_key(struct entry_key *key)
{
	key->tid = (u32)bpf_get_current_pid_tgid();
	key->cpu = bpf_get_smp_processor_id();
	return targ_cpu < 0 || key->cpu == (u32)targ_cpu;
}

#endif
