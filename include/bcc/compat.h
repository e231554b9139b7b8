/* tsbpf: what kernel headers give BCC programs and vmlinux.h (types only) lacks.
 *
 * Included by tsbpf's BCC front end after vmlinux.h and libbpf's headers,
 * before the user's text. Where a value depends on the kernel it is derived
 * from vmlinux.h (BTF enums, struct layouts) or from LINUX_VERSION_CODE, which
 * the front end sets from the running kernel; the rest are ABI constants that
 * do not change between kernels (errnos, open flags, socket options).
 * Inline helpers read kernel memory with CO-RE reads themselves.
 */
#ifndef __TSBPF_BCC_COMPAT_H
#define __TSBPF_BCC_COMPAT_H

#include <bpf/bpf_endian.h>

#ifndef KERNEL_VERSION
#define KERNEL_VERSION(a, b, c) (((a) << 16) + ((b) << 8) + ((c) > 255 ? 255 : (c)))
#endif

/* ---- generic kernel macros ---- */
#ifndef likely
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#endif
#ifndef READ_ONCE
#define READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))
#endif
#ifndef offsetof
#define offsetof(type, member) __builtin_offsetof(type, member)
#endif
#ifndef container_of
#define container_of(ptr, type, member) ((type *)((void *)(ptr) - offsetof(type, member)))
#endif
#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif
/* linux/minmax.h, linux/math64.h, linux/time64.h (biolatpcts) */
#ifndef min_t
#define min_t(type, x, y) ({ type __tsbpf_min1 = (x); type __tsbpf_min2 = (y); __tsbpf_min1 < __tsbpf_min2 ? __tsbpf_min1 : __tsbpf_min2; })
#define max_t(type, x, y) ({ type __tsbpf_max1 = (x); type __tsbpf_max2 = (y); __tsbpf_max1 > __tsbpf_max2 ? __tsbpf_max1 : __tsbpf_max2; })
#endif
#ifndef min
#define min(x, y) ({ __typeof__(x) __tsbpf_a = (x); __typeof__(y) __tsbpf_b = (y); __tsbpf_a < __tsbpf_b ? __tsbpf_a : __tsbpf_b; })
#define max(x, y) ({ __typeof__(x) __tsbpf_a = (x); __typeof__(y) __tsbpf_b = (y); __tsbpf_a > __tsbpf_b ? __tsbpf_a : __tsbpf_b; })
#endif
#define clamp_t(type, v, lo, hi) min_t(type, max_t(type, v, lo), hi)
#define div_u64(dividend, divisor) ((u64)(dividend) / (u32)(divisor))
#define div64_u64(dividend, divisor) ((u64)(dividend) / (u64)(divisor))
#define do_div(n, base) ({ u32 __tsbpf_base = (base); u32 __tsbpf_rem = (u64)(n) % __tsbpf_base; (n) = (u64)(n) / __tsbpf_base; __tsbpf_rem; })
#ifndef NSEC_PER_SEC
#define MSEC_PER_SEC 1000L
#define USEC_PER_MSEC 1000L
#define NSEC_PER_USEC 1000L
#define NSEC_PER_MSEC 1000000L
#define USEC_PER_SEC 1000000L
#define NSEC_PER_SEC 1000000000L
#endif

#define MAX_ERRNO 4095
#define IS_ERR_VALUE(x) ((unsigned long)(void *)(x) >= (unsigned long)-MAX_ERRNO)
#define IS_ERR(ptr) IS_ERR_VALUE(ptr)
#define PTR_ERR(ptr) ((long)(ptr))
#define IS_ERR_OR_NULL(ptr) (!(ptr) || IS_ERR_VALUE(ptr))
#define MKDEV(ma, mi) (((ma) << MINORBITS) | (mi))

/* ---- memory layout ---- */
#ifndef PAGE_SHIFT
#define PAGE_SHIFT 12
#endif
#if defined(__TARGET_ARCH_x86)
/* x86_64's direct map base without KASLR (4-level); KASLR moves it up, so "ip > PAGE_OFFSET" still tells kernel text */
#define __PAGE_OFFSET_BASE_L4 0xffff888000000000UL
#define __PAGE_OFFSET_BASE_L5 0xff11000000000000UL
#define PAGE_OFFSET __PAGE_OFFSET_BASE_L4
#define THREAD_SIZE (4096UL << 2)
#elif defined(__TARGET_ARCH_arm64)
#define PAGE_OFFSET 0xffff000000000000UL
#define THREAD_SIZE (4096UL << 2)
#endif

/* ---- files ---- */
/* The dentry's inline name: its size comes from struct dentry itself */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 14, 0)
#define DNAME_INLINE_LEN sizeof(((struct dentry *)0)->d_shortname.string)
#else
#define DNAME_INLINE_LEN sizeof(((struct dentry *)0)->d_iname)
#endif
#define DISK_NAME_LEN 32
#define BDEVNAME_SIZE 32

#define O_ACCMODE 00000003
#define O_RDONLY 00000000
#define O_WRONLY 00000001
#define O_RDWR 00000002
#define O_CREAT 00000100
#define O_EXCL 00000200
#define O_NOCTTY 00000400
#define O_TRUNC 00001000
#define O_APPEND 00002000
#define O_NONBLOCK 00004000
#define O_DSYNC 00010000
#define FASYNC 00020000
#if defined(__TARGET_ARCH_arm64)
#define O_DIRECTORY 00040000
#define O_NOFOLLOW 00100000
#define O_DIRECT 00200000
#define O_LARGEFILE 00400000
#else
#define O_DIRECT 00040000
#define O_LARGEFILE 00100000
#define O_DIRECTORY 00200000
#define O_NOFOLLOW 00400000
#endif
#define O_NOATIME 01000000
#define O_CLOEXEC 02000000
#define __O_SYNC 04000000
#define O_SYNC (__O_SYNC | O_DSYNC)
#define O_PATH 010000000
#define __O_TMPFILE 020000000
#define O_TMPFILE (__O_TMPFILE | O_DIRECTORY)
#define O_NDELAY O_NONBLOCK

#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define S_IFLNK 0120000
#define S_IFREG 0100000
#define S_IFBLK 0060000
#define S_IFDIR 0040000
#define S_IFCHR 0020000
#define S_IFIFO 0010000
#define S_ISUID 0004000
#define S_ISGID 0002000
#define S_ISVTX 0001000
#define S_ISLNK(m) (((m) & S_IFMT) == S_IFLNK)
#define S_ISREG(m) (((m) & S_IFMT) == S_IFREG)
#define S_ISDIR(m) (((m) & S_IFMT) == S_IFDIR)
#define S_ISCHR(m) (((m) & S_IFMT) == S_IFCHR)
#define S_ISBLK(m) (((m) & S_IFMT) == S_IFBLK)
#define S_ISFIFO(m) (((m) & S_IFMT) == S_IFIFO)
#define S_ISSOCK(m) (((m) & S_IFMT) == S_IFSOCK)

#define FMODE_READ 0x1
#define FMODE_WRITE 0x2
#define FMODE_EXEC 0x20
#define FMODE_CREATED 0x100000
#define READ 0
#define WRITE 1

/* ---- block layer: REQ_* flags from the kernel's own enum req_flag_bits ---- */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(4, 10, 0)
/* the first flag bit follows the op bits */
#define REQ_OP_BITS __REQ_FAILFAST_DEV
#define REQ_OP_MASK ((1 << REQ_OP_BITS) - 1)
#define REQ_FAILFAST_DEV (1ULL << __REQ_FAILFAST_DEV)
#define REQ_FAILFAST_TRANSPORT (1ULL << __REQ_FAILFAST_TRANSPORT)
#define REQ_FAILFAST_DRIVER (1ULL << __REQ_FAILFAST_DRIVER)
#define REQ_SYNC (1ULL << __REQ_SYNC)
#define REQ_META (1ULL << __REQ_META)
#define REQ_PRIO (1ULL << __REQ_PRIO)
#define REQ_NOMERGE (1ULL << __REQ_NOMERGE)
#define REQ_IDLE (1ULL << __REQ_IDLE)
#define REQ_INTEGRITY (1ULL << __REQ_INTEGRITY)
#define REQ_FUA (1ULL << __REQ_FUA)
#define REQ_PREFLUSH (1ULL << __REQ_PREFLUSH)
#define REQ_RAHEAD (1ULL << __REQ_RAHEAD)
#define REQ_BACKGROUND (1ULL << __REQ_BACKGROUND)
#define REQ_NOWAIT (1ULL << __REQ_NOWAIT)
#endif

/* ---- networking ---- */
#define ntohs(x) bpf_ntohs(x)
#define htons(x) bpf_htons(x)
#define ntohl(x) bpf_ntohl(x)
#define htonl(x) bpf_htonl(x)
#define be16_to_cpu(x) bpf_ntohs(x)
#define be32_to_cpu(x) bpf_ntohl(x)
#define cpu_to_be16(x) bpf_htons(x)
#define cpu_to_be32(x) bpf_htonl(x)

#define SOL_SOCKET 1
#define SCM_RIGHTS 0x01
#define SCM_CREDENTIALS 0x02
#define AF_UNSPEC 0
#define AF_NETLINK 16
#define AF_PACKET 17
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_ARP 0x0806
#define ETH_HLEN 14

/* struct in6_addr's (include/uapi/linux/in6.h) */
#define s6_addr in6_u.u6_addr8
#define s6_addr16 in6_u.u6_addr16
#define s6_addr32 in6_u.u6_addr32

/* struct sock's short names for its sock_common fields (include/net/sock.h) */
#define sk_node __sk_common.skc_node
#define sk_nulls_node __sk_common.skc_nulls_node
#define sk_refcnt __sk_common.skc_refcnt
#define sk_tx_queue_mapping __sk_common.skc_tx_queue_mapping
#define sk_hash __sk_common.skc_hash
#define sk_portpair __sk_common.skc_portpair
#define sk_num __sk_common.skc_num
#define sk_dport __sk_common.skc_dport
#define sk_addrpair __sk_common.skc_addrpair
#define sk_daddr __sk_common.skc_daddr
#define sk_rcv_saddr __sk_common.skc_rcv_saddr
#define sk_family __sk_common.skc_family
#define sk_state __sk_common.skc_state
#define sk_reuse __sk_common.skc_reuse
#define sk_reuseport __sk_common.skc_reuseport
#define sk_ipv6only __sk_common.skc_ipv6only
#define sk_net_refcnt __sk_common.skc_net_refcnt
#define sk_bound_dev_if __sk_common.skc_bound_dev_if
#define sk_bind_node __sk_common.skc_bind_node
#define sk_prot __sk_common.skc_prot
#define sk_net __sk_common.skc_net
#define sk_v6_daddr __sk_common.skc_v6_daddr
#define sk_v6_rcv_saddr __sk_common.skc_v6_rcv_saddr
#define sk_cookie __sk_common.skc_cookie
#define sk_incoming_cpu __sk_common.skc_incoming_cpu
#define sk_flags __sk_common.skc_flags
#define sk_rxhash __sk_common.skc_rxhash
/* struct inet_sock's (include/net/inet_sock.h) */
#define inet_daddr sk.__sk_common.skc_daddr
#define inet_rcv_saddr sk.__sk_common.skc_rcv_saddr
#define inet_dport sk.__sk_common.skc_dport
#define inet_num sk.__sk_common.skc_num
/* struct inet_timewait_sock's and request_sock's */
#define tw_family __tw_common.skc_family
#define tw_state __tw_common.skc_state
#define tw_dport __tw_common.skc_dport
#define tw_num __tw_common.skc_num
#define ir_rmt_port req.__req_common.skc_dport
#define ir_num req.__req_common.skc_num
#define ir_rmt_addr req.__req_common.skc_daddr
#define ir_loc_addr req.__req_common.skc_rcv_saddr

/* A socket as its protocol's struct (include/linux/tcp.h, net/inet_sock.h,
 * net/inet_connection_sock.h): each begins with the one before, so the pointer is the same.
 * Macros, not functions: the cast keeps `sk`'s kernel pointer visible to the read rewriter */
#define inet_sk(sk) ((struct inet_sock *)(sk))
#define inet_csk(sk) ((struct inet_connection_sock *)(sk))
#define tcp_sk(sk) ((struct tcp_sock *)(sk))

/* The socket's recorded receive queue (include/linux/skbuff.h) */
static __always_inline bool skb_rx_queue_recorded(const struct sk_buff *skb)
{
  return BPF_CORE_READ(skb, queue_mapping) != 0;
}

/* ---- memory ---- */
/* the n-th page of a folio (memmap is contiguous within a folio) */
#define folio_page(folio, n) ((struct page *)(folio) + (n))

/* ---- scatterlists (include/linux/scatterlist.h) ---- */
#define SG_CHAIN 0x01UL
#define SG_END 0x02UL
#define SG_PAGE_LINK_MASK (SG_CHAIN | SG_END)
static __always_inline bool sg_is_chain(struct scatterlist *sg)
{
  return BPF_CORE_READ(sg, page_link) & SG_CHAIN;
}
static __always_inline bool sg_is_last(struct scatterlist *sg)
{
  return BPF_CORE_READ(sg, page_link) & SG_END;
}

/* ---- errnos (include/uapi/asm-generic/errno-base.h, errno.h) ---- */
#define EPERM 1
#define ENOENT 2
#define ESRCH 3
#define EINTR 4
#define EIO 5
#define ENXIO 6
#define E2BIG 7
#define ENOEXEC 8
#define EBADF 9
#define ECHILD 10
#define EAGAIN 11
#define EWOULDBLOCK EAGAIN
#define ENOMEM 12
#define EACCES 13
#define EFAULT 14
#define ENOTBLK 15
#define EBUSY 16
#define EEXIST 17
#define EXDEV 18
#define ENODEV 19
#define ENOTDIR 20
#define EISDIR 21
#define EINVAL 22
#define ENFILE 23
#define EMFILE 24
#define ENOTTY 25
#define ETXTBSY 26
#define EFBIG 27
#define ENOSPC 28
#define ESPIPE 29
#define EROFS 30
#define EMLINK 31
#define EPIPE 32
#define EDOM 33
#define ERANGE 34
#define EDEADLK 35
#define ENAMETOOLONG 36
#define ENOLCK 37
#define ENOSYS 38
#define ENOTEMPTY 39
#define ELOOP 40
#define ENODATA 61
#define ETIME 62
#define EOVERFLOW 75
#define ENOTSOCK 88
#define EOPNOTSUPP 95
#define EAFNOSUPPORT 97
#define EADDRINUSE 98
#define EADDRNOTAVAIL 99
#define ENETDOWN 100
#define ENETUNREACH 101
#define ECONNABORTED 103
#define ECONNRESET 104
#define ENOBUFS 105
#define EISCONN 106
#define ENOTCONN 107
#define ETIMEDOUT 110
#define ECONNREFUSED 111
#define EHOSTUNREACH 113
#define EALREADY 114
#define EINPROGRESS 115
#define ECANCELED 125

#endif /* __TSBPF_BCC_COMPAT_H */
