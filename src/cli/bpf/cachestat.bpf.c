// SPDX-License-Identifier: MIT
// cachestat: page cache accesses, additions and dirtied pages, read and cleared
// each interval. BCC counts calls of add_to_page_cache_lru, mark_page_accessed,
// account_page_dirtied and mark_buffer_dirty with kprobes. Without kprobes:
//   adds:     filemap:mm_filemap_add_to_page_cache (pages: 1 << order);
//   accesses: tp_btf/mm_filemap_get_pages, the pages a read asks of the cache
//             (clamped to the file's size; the same read's later batches not
//             counted again), and filemap:mm_filemap_fault for mmap faults;
//   dirties:  writeback:writeback_dirty_folio.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

enum { NF_ADD, NF_ACCESS, NF_DIRTY, NF_MAX };

#define PAGE_SHIFT 12

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NF_MAX);
	__type(key, u32);
	__type(value, u64);
} counts SEC(".maps");

/* The read a thread is in: its file and last page, so its later batches are not counted again. */
struct read_at {
	struct address_space *mapping;
	u64 last;
	u64 next;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, struct read_at);
} reads SEC(".maps");

static __always_inline void add(u32 key, u64 n)
{
	u64 *v = bpf_map_lookup_elem(&counts, &key);

	if (v)
		*v += n;
}

struct trace_event_raw_mm_filemap_op_page_cache___order {
	unsigned char order;
} __attribute__((preserve_access_index));

SEC("tracepoint/filemap/mm_filemap_add_to_page_cache")
int add_to_page_cache(struct trace_event_raw_mm_filemap_op_page_cache *ctx)
{
	struct trace_event_raw_mm_filemap_op_page_cache___order *o = (void *)ctx;
	u32 order = 0;

	if (bpf_core_field_exists(o->order))
		order = BPF_CORE_READ(o, order) & 31;
	add(NF_ADD, 1ULL << order);
	return 0;
}

SEC("tp_btf/mm_filemap_get_pages")
int BPF_PROG(get_pages, struct address_space *mapping, unsigned long index, unsigned long last_index)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct read_at *prev = bpf_map_lookup_elem(&reads, &tid);
	struct read_at now = { .mapping = mapping, .last = last_index, .next = index };
	s64 size = BPF_CORE_READ(mapping, host, i_size);
	u64 end;

	/* A later batch of the read already counted: same file, same end, further on. */
	if (prev && prev->mapping == mapping && prev->last == last_index && index > prev->next && index <= last_index) {
		prev->next = index;
		return 0;
	}
	bpf_map_update_elem(&reads, &tid, &now, BPF_ANY);
	if (size <= 0)
		return 0;
	end = (u64)(size - 1) >> PAGE_SHIFT;
	if (last_index < end)
		end = last_index;
	if (index > end)
		return 0;
	add(NF_ACCESS, end - index + 1);
	return 0;
}

SEC("tracepoint/filemap/mm_filemap_fault")
int filemap_fault(void *ctx)
{
	add(NF_ACCESS, 1);
	return 0;
}

SEC("tracepoint/writeback/writeback_dirty_folio")
int dirty_folio(void *ctx)
{
	add(NF_DIRTY, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
