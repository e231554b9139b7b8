// SPDX-License-Identifier: MIT
// open(), openat() and openat2() calls by command name (metric: opens_total).
// A per-CPU LRU hash: no atomic on the count, no cache line bouncing between CPUs.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct comm_key {
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 10240);
	__type(key, struct comm_key);
	__type(value, u64);
} opens_total SEC(".maps");

static __always_inline int count_open(void)
{
	struct comm_key key = {};
	u64 one = 1, *n;

	bpf_get_current_comm(&key.comm, sizeof(key.comm));
	n = bpf_map_lookup_elem(&opens_total, &key);
	if (n)
		*n += 1;
	else
		bpf_map_update_elem(&opens_total, &key, &one, BPF_NOEXIST);
	return 0;
}

SEC("tp/syscalls/sys_enter_open")
int on_open(void *ctx) { return count_open(); }

SEC("tp/syscalls/sys_enter_openat")
int on_openat(void *ctx) { return count_open(); }

SEC("tp/syscalls/sys_enter_openat2")
int on_openat2(void *ctx) { return count_open(); }

char LICENSE[] SEC("license") = "GPL";
