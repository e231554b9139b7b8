// SPDX-License-Identifier: MIT
// sslsniff: the plaintext of TLS reads and writes, from uprobes on the TLS
// libraries' record functions (OpenSSL SSL_read/SSL_write and their _ex forms,
// GnuTLS gnutls_record_recv/send, NSS PR_Read/PR_Write/PR_Recv/PR_Send). The
// entry keeps the buffer by thread; the return knows how much was moved and
// copies that much (at most MAX_BUF_SIZE bytes) into the event.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <tsbpf.h>

#define TASK_COMM_LEN 16
#define MAX_BUF_SIZE 8192
#define NO_UID ((u32)-1)
#define RW_READ 0
#define RW_WRITE 1
#define RW_HANDSHAKE 2

const volatile u32 targ_pid = 0;
const volatile u32 targ_uid = NO_UID;

struct event {
	u64 timestamp_ns;
	u64 delta_ns;
	u32 pid;
	u32 tid;
	u32 uid;
	u32 len;
	s32 rw;
	u32 buf_filled;
	char comm[TASK_COMM_LEN];
	u8 buf[MAX_BUF_SIZE];
};
const struct event *unused_event __attribute__((unused));

struct call {
	u64 ts;
	u64 buf;
	u64 done; /* the _ex forms: where the byte count goes */
};

TSBPF_EVENTS(events, 4 * 1024 * 1024);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, struct call);
} calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, u64);
} handshakes SEC(".maps");

/* An event is 8 KiB: too big for the stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct event);
} scratch SEC(".maps");

static __always_inline bool wanted(u64 id)
{
	if (targ_pid && (id >> 32) != targ_pid)
		return false;
	if (targ_uid != NO_UID && (u32)bpf_get_current_uid_gid() != targ_uid)
		return false;
	return true;
}

static __always_inline int enter(const void *buf, const void *done)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	struct call c = { .ts = bpf_ktime_get_ns(), .buf = (u64)buf, .done = (u64)done };

	if (!wanted(id))
		return 0;
	bpf_map_update_elem(&calls, &tid, &c, BPF_ANY);
	return 0;
}

static __always_inline struct event *new_event(u64 id, s32 rw, u64 delta)
{
	u32 zero = 0;
	struct event *e = bpf_map_lookup_elem(&scratch, &zero);

	if (!e)
		return NULL;
	e->timestamp_ns = bpf_ktime_get_ns();
	e->delta_ns = delta;
	e->pid = id >> 32;
	e->tid = (u32)id;
	e->uid = (u32)bpf_get_current_uid_gid();
	e->rw = rw;
	e->buf_filled = 0;
	e->len = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	return e;
}

/* ret: the function's return value; ex: the _ex form (1 on success, the count at c->done). */
static __always_inline int leave(void *ctx, s64 ret, s32 rw, bool ex)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	struct call *c = bpf_map_lookup_elem(&calls, &tid);
	struct event *e;
	u64 len = ret;
	u32 n;

	if (!c)
		return 0;
	if (ex) {
		len = 0;
		if (ret == 1 && c->done)
			bpf_probe_read_user(&len, sizeof(len), (void *)c->done);
	}
	if ((s64)len <= 0 || ret <= 0)
		goto out;
	e = new_event(id, rw, bpf_ktime_get_ns() - c->ts);
	if (!e)
		goto out;
	e->len = len;
	n = len < MAX_BUF_SIZE ? len : MAX_BUF_SIZE;
	if (!bpf_probe_read_user(e->buf, n, (void *)c->buf))
		e->buf_filled = 1;
	tsbpf_events_output(ctx, events, e, sizeof(*e));
out:
	bpf_map_delete_elem(&calls, &tid);
	return 0;
}

/* SSL_read(ssl, buf, num), SSL_write, gnutls_record_recv(session, data, size), send;
 * PR_Read(fd, buf, amount), PR_Write, PR_Recv(fd, buf, amount, flags, timeout), PR_Send. */
SEC("uprobe")
int BPF_KPROBE(rw_enter, void *s, const void *buf)
{
	return enter(buf, NULL);
}

/* SSL_read_ex(ssl, buf, num, size_t *readbytes), SSL_write_ex(ssl, buf, num, size_t *written). */
SEC("uprobe")
int BPF_KPROBE(rw_ex_enter, void *s, const void *buf, size_t num, size_t *done)
{
	return enter(buf, done);
}

SEC("uretprobe")
int read_exit(struct pt_regs *ctx)
{
	return leave(ctx, (s32)PT_REGS_RC(ctx), RW_READ, false); /* int, as BCC (GnuTLS: ssize_t, a record at most) */
}

SEC("uretprobe")
int write_exit(struct pt_regs *ctx)
{
	return leave(ctx, (s32)PT_REGS_RC(ctx), RW_WRITE, false);
}

SEC("uretprobe")
int read_ex_exit(struct pt_regs *ctx)
{
	return leave(ctx, (s32)PT_REGS_RC(ctx), RW_READ, true);
}

SEC("uretprobe")
int write_ex_exit(struct pt_regs *ctx)
{
	return leave(ctx, (s32)PT_REGS_RC(ctx), RW_WRITE, true);
}

SEC("uprobe")
int handshake_enter(struct pt_regs *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	u64 ts = bpf_ktime_get_ns();

	if (!wanted(id))
		return 0;
	bpf_map_update_elem(&handshakes, &tid, &ts, BPF_ANY);
	return 0;
}

/* SSL_do_handshake's result (1: done) as LEN, with its latency. */
SEC("uretprobe")
int handshake_exit(struct pt_regs *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	u64 *ts = bpf_map_lookup_elem(&handshakes, &tid);
	struct event *e;

	if (!ts)
		return 0;
	e = new_event(id, RW_HANDSHAKE, bpf_ktime_get_ns() - *ts);
	bpf_map_delete_elem(&handshakes, &tid);
	if (!e)
		return 0;
	e->len = (u32)(s32)PT_REGS_RC(ctx);
	tsbpf_events_output(ctx, events, e, sizeof(*e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
