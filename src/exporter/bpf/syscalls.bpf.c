// SPDX-License-Identifier: MIT
// Syscalls by number (metric: syscalls_total). A per-CPU array: no hash, no
// atomic, one slot per syscall number, the cheapest count on the hottest hook.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define MAX_SYSCALLS 1024

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_SYSCALLS);
	__type(key, u32);
	__type(value, u64);
} syscalls_total SEC(".maps");

SEC("raw_tp/sys_enter")
int BPF_PROG(sys_enter, struct pt_regs *regs, long id)
{
	u32 key = id;
	u64 *n = bpf_map_lookup_elem(&syscalls_total, &key);

	if (n)
		*n += 1;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
