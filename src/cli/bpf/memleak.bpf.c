// SPDX-License-Identifier: MIT
// memleak: outstanding allocations by stack. User mode: uprobes on the
// allocator's malloc/calloc/realloc/free (the size at entry, the address at
// return); kernel mode: the kmem tracepoints (kmalloc, kmem_cache_alloc and
// the page allocator's mm_page_alloc, keyed by pfn) or, with --percpu, the
// percpu ones. An allocation is forgotten when its address is freed; what
// remains, summed per stack, is the report. combined_allocs keeps the same sums
// per stack as they happen (--combined-only reads only that).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h> /* BPF_KPROBE: libbpf 1.1 has no BPF_UPROBE; the same for uprobes */
#include <tsbpf.h>

#define TASK_COMM_LEN 16

const volatile u64 min_size = 0;
const volatile u64 max_size = (u64)-1;
const volatile bool user_stacks = true;
const volatile u64 sample_every_n = 1;
const volatile bool trace_all = false;
const volatile bool wa_missing_free = false;
const volatile u64 page_size = 4096;

struct alloc_info {
	u64 size;
	u64 ts;
	s64 stack_id;
};
const struct alloc_info *unused_alloc_info __attribute__((unused));

struct combined_info {
	u64 total_size;
	u64 number_of_allocs;
};
const struct combined_info *unused_combined_info __attribute__((unused));

/* -t: one record per call. */
enum trace_kind { ALLOC_ENTER, ALLOC_EXIT, FREE_ENTER };
struct call_event {
	u64 ts;
	u64 size;
	u64 addr;
	u32 pid;
	u32 tid;
	u32 kind;
	char comm[TASK_COMM_LEN];
};
const struct call_event *unused_call_event __attribute__((unused));

TSBPF_EVENTS(events, 4 * 1024 * 1024);

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
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u64);
	__type(value, struct combined_info);
} combined_allocs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 10240);
	__uint(key_size, sizeof(u32));
	__uint(value_size, 127 * sizeof(u64));
} stack_traces SEC(".maps");

static __always_inline void trace(void *ctx, u32 kind, u64 size, u64 addr)
{
	u64 id = bpf_get_current_pid_tgid();
	struct call_event e = { .ts = bpf_ktime_get_ns(), .size = size, .addr = addr, .pid = id >> 32, .tid = (u32)id, .kind = kind };

	bpf_get_current_comm(e.comm, sizeof(e.comm));
	tsbpf_events_output(ctx, events, &e, sizeof(e));
}

/* Whether this allocation is one to keep: its size in range, and every N-th (BCC: by timestamp). */
static __always_inline bool wanted(u64 size)
{
	if (size < min_size || size > max_size)
		return false;
	if (sample_every_n > 1 && bpf_ktime_get_ns() % sample_every_n != 0)
		return false;
	return true;
}

static __always_inline void combined_add(u64 stack_id, u64 size)
{
	struct combined_info zero = {}, *c = bpf_map_lookup_elem(&combined_allocs, &stack_id);

	if (!c) {
		bpf_map_update_elem(&combined_allocs, &stack_id, &zero, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&combined_allocs, &stack_id);
		if (!c)
			return;
	}
	__sync_fetch_and_add(&c->total_size, size);
	__sync_fetch_and_add(&c->number_of_allocs, 1);
}

static __always_inline void combined_del(u64 stack_id, u64 size)
{
	struct combined_info *c = bpf_map_lookup_elem(&combined_allocs, &stack_id);

	if (!c)
		return;
	if (c->number_of_allocs > 1) {
		__sync_fetch_and_sub(&c->total_size, size);
		__sync_fetch_and_sub(&c->number_of_allocs, 1);
	} else {
		bpf_map_delete_elem(&combined_allocs, &stack_id);
	}
}

static __always_inline int free_enter(void *ctx, u64 addr)
{
	struct alloc_info *info = bpf_map_lookup_elem(&allocs, &addr);

	if (!info)
		return 0;
	combined_del(info->stack_id, info->size);
	if (trace_all)
		trace(ctx, FREE_ENTER, info->size, addr);
	bpf_map_delete_elem(&allocs, &addr);
	return 0;
}

static __always_inline void record(void *ctx, u64 addr, u64 size)
{
	struct alloc_info info = { .size = size, .ts = bpf_ktime_get_ns() };

	info.stack_id = bpf_get_stackid(ctx, &stack_traces, user_stacks ? BPF_F_USER_STACK : 0);
	bpf_map_update_elem(&allocs, &addr, &info, BPF_ANY);
	combined_add(info.stack_id, size);
	if (trace_all)
		trace(ctx, ALLOC_EXIT, size, addr);
}

/* A kernel allocation seen whole at its tracepoint. */
static __always_inline int kernel_alloc(void *ctx, u64 addr, u64 size)
{
	if (!wanted(size))
		return 0;
	if (wa_missing_free)
		free_enter(ctx, addr);
	if (trace_all)
		trace(ctx, ALLOC_ENTER, size, 0);
	record(ctx, addr, size);
	return 0;
}

static __always_inline int alloc_enter(void *ctx, u64 size)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();

	if (!wanted(size))
		return 0;
	bpf_map_update_elem(&sizes, &tid, &size, BPF_ANY);
	if (trace_all)
		trace(ctx, ALLOC_ENTER, size, 0);
	return 0;
}

/* The allocation the thread's pending call made: at `addr`, or none (0). */
static __always_inline int alloc_done(struct pt_regs *ctx, u64 addr)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	u64 *size = bpf_map_lookup_elem(&sizes, &tid);

	if (!size)
		return 0;
	if (addr)
		record(ctx, addr, *size);
	bpf_map_delete_elem(&sizes, &tid);
	return 0;
}

static __always_inline int alloc_exit(struct pt_regs *ctx)
{
	return alloc_done(ctx, PT_REGS_RC(ctx));
}

SEC("uprobe")
int BPF_KPROBE(malloc_enter, size_t size)
{
	return alloc_enter(ctx, size);
}

SEC("uretprobe")
int malloc_exit(struct pt_regs *ctx)
{
	return alloc_exit(ctx);
}

SEC("uprobe")
int BPF_KPROBE(calloc_enter, size_t nmemb, size_t size)
{
	return alloc_enter(ctx, nmemb * size);
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
	free_enter(ctx, (u64)ptr);
	return alloc_enter(ctx, size);
}

SEC("uretprobe")
int realloc_exit(struct pt_regs *ctx)
{
	return alloc_exit(ctx);
}

SEC("uprobe")
int BPF_KPROBE(free_enter_u, void *ptr)
{
	return free_enter(ctx, (u64)ptr);
}

/* BCC's other allocators: mmap/munmap, and the aligned ones (each attached where libc has it). */
SEC("uprobe")
int BPF_KPROBE(mmap_enter, void *addr, size_t length)
{
	return alloc_enter(ctx, length);
}

SEC("uretprobe")
int mmap_exit(struct pt_regs *ctx)
{
	u64 addr = PT_REGS_RC(ctx);

	return alloc_done(ctx, addr == (u64)-1 ? 0 : addr); /* MAP_FAILED */
}

SEC("uprobe")
int BPF_KPROBE(munmap_enter, void *addr)
{
	return free_enter(ctx, (u64)addr);
}

/* posix_memalign returns 0 and writes the block's address to *memptr: kept from entry to return. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, u64);
} memptrs SEC(".maps");

SEC("uprobe")
int BPF_KPROBE(posix_memalign_enter, void **memptr, size_t alignment, size_t size)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	u64 where = (u64)memptr;

	bpf_map_update_elem(&memptrs, &tid, &where, BPF_ANY);
	return alloc_enter(ctx, size);
}

SEC("uretprobe")
int posix_memalign_exit(struct pt_regs *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	u64 *where = bpf_map_lookup_elem(&memptrs, &tid);
	u64 addr = 0;

	if (!where)
		return 0;
	if (PT_REGS_RC(ctx) != 0 || bpf_probe_read_user(&addr, sizeof(addr), (void *)*where))
		addr = 0;
	bpf_map_delete_elem(&memptrs, &tid);
	return alloc_done(ctx, addr);
}

SEC("uprobe")
int BPF_KPROBE(aligned_alloc_enter, size_t alignment, size_t size)
{
	return alloc_enter(ctx, size);
}

SEC("uprobe")
int BPF_KPROBE(valloc_enter, size_t size)
{
	return alloc_enter(ctx, size);
}

SEC("uprobe")
int BPF_KPROBE(memalign_enter, size_t alignment, size_t size)
{
	return alloc_enter(ctx, size);
}

SEC("uprobe")
int BPF_KPROBE(pvalloc_enter, size_t size)
{
	return alloc_enter(ctx, size);
}

/* The return of aligned_alloc, valloc, memalign and pvalloc (malloc_exit's own links mark "attached"). */
SEC("uretprobe")
int aligned_exit(struct pt_regs *ctx)
{
	return alloc_exit(ctx);
}

SEC("tracepoint/kmem/kmalloc")
int kmalloc(struct trace_event_raw_kmalloc *ctx)
{
	return ctx->ptr ? kernel_alloc(ctx, (u64)ctx->ptr, ctx->bytes_alloc) : 0;
}

SEC("tracepoint/kmem/kfree")
int kfree(struct trace_event_raw_kfree *ctx)
{
	return free_enter(ctx, (u64)ctx->ptr);
}

SEC("tracepoint/kmem/kmem_cache_alloc")
int kmem_cache_alloc(struct trace_event_raw_kmem_cache_alloc *ctx)
{
	return ctx->ptr ? kernel_alloc(ctx, (u64)ctx->ptr, ctx->bytes_alloc) : 0;
}

SEC("tracepoint/kmem/kmem_cache_free")
int kmem_cache_free(struct trace_event_raw_kmem_cache_free *ctx)
{
	return free_enter(ctx, (u64)ctx->ptr);
}

/* Before 6.1 the _node allocations have tracepoints of their own; the same fields lead. */
struct kmalloc_node_args {
	u64 common;
	unsigned long call_site;
	const void *ptr;
	size_t bytes_req;
	size_t bytes_alloc;
};

SEC("tracepoint/kmem/kmalloc_node")
int kmalloc_node(struct kmalloc_node_args *ctx)
{
	return ctx->ptr ? kernel_alloc(ctx, (u64)ctx->ptr, ctx->bytes_alloc) : 0;
}

SEC("tracepoint/kmem/kmem_cache_alloc_node")
int kmem_cache_alloc_node(struct kmalloc_node_args *ctx)
{
	return ctx->ptr ? kernel_alloc(ctx, (u64)ctx->ptr, ctx->bytes_alloc) : 0;
}

/* Pages by page frame number: both of the page allocator's interfaces give it here. */
SEC("tracepoint/kmem/mm_page_alloc")
int mm_page_alloc(struct trace_event_raw_mm_page_alloc *ctx)
{
	if (ctx->pfn == (unsigned long)-1)
		return 0;
	return kernel_alloc(ctx, ctx->pfn, page_size << ctx->order);
}

SEC("tracepoint/kmem/mm_page_free")
int mm_page_free(struct trace_event_raw_mm_page_free *ctx)
{
	return free_enter(ctx, ctx->pfn);
}

SEC("tracepoint/percpu/percpu_alloc_percpu")
int percpu_alloc(struct trace_event_raw_percpu_alloc_percpu *ctx)
{
	return ctx->ptr ? kernel_alloc(ctx, (u64)ctx->ptr, ctx->size) : 0;
}

SEC("tracepoint/percpu/percpu_free_percpu")
int percpu_free(struct trace_event_raw_percpu_free_percpu *ctx)
{
	return free_enter(ctx, (u64)ctx->ptr);
}

char LICENSE[] SEC("license") = "GPL";
