// SPDX-License-Identifier: MIT
// memleak: outstanding allocations by stack. User mode: uprobes on the
// allocator's malloc/calloc/realloc/free (the size at entry, the address at
// return); kernel mode: the kmem tracepoints. An allocation is forgotten when
// its address is freed; what remains, summed per stack, is the report.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h> /* BPF_KPROBE: libbpf 1.1 has no BPF_UPROBE; the same for uprobes */

const volatile u64 min_size = 0;
const volatile u64 max_size = (u64)-1;
const volatile bool user_stacks = true;

struct alloc_info {
	u64 size;
	u64 ts;
	s64 stack_id;
};
const struct alloc_info *unused_alloc_info __attribute__((unused));

/* The size asked for, by thread, from entry to return. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, u64);
} sizes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1000000);
	__type(key, u64);
	__type(value, struct alloc_info);
} allocs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 10240);
	__uint(key_size, sizeof(u32));
	__uint(value_size, 127 * sizeof(u64));
} stack_traces SEC(".maps");

static __always_inline int alloc_enter(u64 size)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();

	if (size < min_size || size > max_size)
		return 0;
	bpf_map_update_elem(&sizes, &tid, &size, BPF_ANY);
	return 0;
}

static __always_inline void record(void *ctx, u64 addr, u64 size)
{
	struct alloc_info info = { .size = size, .ts = bpf_ktime_get_ns() };

	info.stack_id = bpf_get_stackid(ctx, &stack_traces, user_stacks ? BPF_F_USER_STACK : 0);
	bpf_map_update_elem(&allocs, &addr, &info, BPF_ANY);
}

static __always_inline int alloc_exit(struct pt_regs *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	u64 addr = PT_REGS_RC(ctx);
	u64 *size = bpf_map_lookup_elem(&sizes, &tid);

	if (!size)
		return 0;
	if (addr)
		record(ctx, addr, *size);
	bpf_map_delete_elem(&sizes, &tid);
	return 0;
}

static __always_inline int free_enter(u64 addr)
{
	bpf_map_delete_elem(&allocs, &addr);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(malloc_enter, size_t size)
{
	return alloc_enter(size);
}

SEC("uretprobe")
int malloc_exit(struct pt_regs *ctx)
{
	return alloc_exit(ctx);
}

SEC("uprobe")
int BPF_KPROBE(calloc_enter, size_t nmemb, size_t size)
{
	return alloc_enter(nmemb * size);
}

SEC("uretprobe")
int calloc_exit(struct pt_regs *ctx)
{
	return alloc_exit(ctx);
}

/* realloc: the old block is gone (or moved), the new one is an allocation. */
SEC("uprobe")
int BPF_KPROBE(realloc_enter, void *ptr, size_t size)
{
	free_enter((u64)ptr);
	return alloc_enter(size);
}

SEC("uretprobe")
int realloc_exit(struct pt_regs *ctx)
{
	return alloc_exit(ctx);
}

SEC("uprobe")
int BPF_KPROBE(free_enter_u, void *ptr)
{
	return free_enter((u64)ptr);
}

SEC("tracepoint/kmem/kmalloc")
int kmalloc(struct trace_event_raw_kmalloc *ctx)
{
	if (ctx->ptr && ctx->bytes_alloc >= min_size && ctx->bytes_alloc <= max_size)
		record(ctx, (u64)ctx->ptr, ctx->bytes_alloc);
	return 0;
}

SEC("tracepoint/kmem/kfree")
int kfree(struct trace_event_raw_kfree *ctx)
{
	return free_enter((u64)ctx->ptr);
}

SEC("tracepoint/kmem/kmem_cache_alloc")
int kmem_cache_alloc(struct trace_event_raw_kmem_cache_alloc *ctx)
{
	if (ctx->ptr && ctx->bytes_alloc >= min_size && ctx->bytes_alloc <= max_size)
		record(ctx, (u64)ctx->ptr, ctx->bytes_alloc);
	return 0;
}

SEC("tracepoint/kmem/kmem_cache_free")
int kmem_cache_free(struct trace_event_raw_kmem_cache_free *ctx)
{
	return free_enter((u64)ctx->ptr);
}

char LICENSE[] SEC("license") = "GPL";
