// The benchmark's program: one event per openat of the flood process, as the
// C reference (../shared/bench/ref.bpf.c) sends it, through a ring buffer
// (flags 0, or batched wake-ups) or a perf buffer. Failed outputs are counted
// so that losses are measured, never assumed.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <tsbpf.h>

char LICENSE[] SEC("license") = "GPL";

const volatile u32 target_tgid = 0;
const volatile u64 wakeup_bytes = 1 << 20;

struct event { u64 ts; u32 pid; u32 uid; s32 flags; char comm[16]; char fname[256]; };
const struct event *unused_event __attribute__((unused));

struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 16 << 20); } rb SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY); __uint(key_size, 4); __uint(value_size, 4); } pb SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 1); __type(key, u32); __type(value, struct event); } scratch SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 1); __type(key, u32); __type(value, u64); } failed SEC(".maps");

static __always_inline struct event *fill(struct trace_event_raw_sys_enter *ctx) {
    u64 id = bpf_get_current_pid_tgid();
    if (target_tgid && (id >> 32) != target_tgid) return 0;
    u32 zero = 0;
    struct event *e = bpf_map_lookup_elem(&scratch, &zero);
    if (!e) return 0;
    e->ts = bpf_ktime_get_ns(); e->pid = id >> 32; e->uid = bpf_get_current_uid_gid();
    e->flags = (s32)ctx->args[2];
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    bpf_probe_read_user_str(e->fname, sizeof(e->fname), (void *)ctx->args[1]);
    return e;
}

static __always_inline void count_failure(long err) {
    u32 zero = 0;
    u64 *n = bpf_map_lookup_elem(&failed, &zero);
    if (err && n) *n += 1;
}

SEC("tp/syscalls/sys_enter_openat")
int on_open_rb(struct trace_event_raw_sys_enter *ctx) {
    struct event *e = fill(ctx);
    if (e) count_failure(bpf_ringbuf_output(&rb, e, sizeof(*e), 0));
    return 0;
}

SEC("tp/syscalls/sys_enter_openat")
int on_open_rb_batched(struct trace_event_raw_sys_enter *ctx) {
    struct event *e = fill(ctx);
    if (e) count_failure(tsbpf_ringbuf_output_batched(&rb, e, sizeof(*e), wakeup_bytes));
    return 0;
}

SEC("tp/syscalls/sys_enter_openat")
int on_open_pb(struct trace_event_raw_sys_enter *ctx) {
    struct event *e = fill(ctx);
    if (e) count_failure(bpf_perf_event_output(ctx, &pb, BPF_F_CURRENT_CPU, e, sizeof(*e)));
    return 0;
}
