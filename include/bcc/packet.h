/* The constants and packet loads BCC's packet programs use, for programs built
 * against vmlinux.h (which has no kernel headers' macros).
 *
 * From BTF (vmlinux.h) already: IPPROTO_IP..IPPROTO_MPTCP (enum in linux/in.h),
 * XDP_ABORTED/DROP/PASS/TX/REDIRECT (enum xdp_action), TCX_*. Defined here,
 * because they are macros in the uapi headers and so not in BTF: ETH_*,
 * TC_ACT_*, TC_H_*, the IPv6 extension-header IPPROTO_* of linux/in6.h,
 * XDP_FLAGS_*. Each is guarded: a program's own #define wins.
 *
 * load_byte/load_half/load_word are LLVM's BPF intrinsics (legacy ld_abs/ld_ind
 * loads, which socket filters and tc allow; they return host order), and
 * bpf_dext_pkt/bpf_dins_pkt are BCC's bitfield reads and writes on them: what
 * tsbpf's BCC front end turns `hdr->field` on a <bcc/proto.h> cursor into
 * (src/bcc/packetreads.ts).
 */
#ifndef __TSBPF_BCC_PACKET_H
#define __TSBPF_BCC_PACKET_H

/* linux/if_ether.h */
#ifndef ETH_ALEN
#define ETH_ALEN 6
#endif
#ifndef ETH_HLEN
#define ETH_HLEN 14
#endif
#ifndef ETH_ZLEN
#define ETH_ZLEN 60
#endif
#ifndef ETH_DATA_LEN
#define ETH_DATA_LEN 1500
#endif
#ifndef ETH_FRAME_LEN
#define ETH_FRAME_LEN 1514
#endif
#ifndef ETH_P_LOOP
#define ETH_P_LOOP 0x0060
#endif
#ifndef ETH_P_ALL
#define ETH_P_ALL 0x0003
#endif
#ifndef ETH_P_IP
#define ETH_P_IP 0x0800
#endif
#ifndef ETH_P_ARP
#define ETH_P_ARP 0x0806
#endif
#ifndef ETH_P_8021Q
#define ETH_P_8021Q 0x8100
#endif
#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif
#ifndef ETH_P_IPV6
#define ETH_P_IPV6 0x86DD
#endif
#ifndef ETH_P_MPLS_UC
#define ETH_P_MPLS_UC 0x8847
#endif
#ifndef ETH_P_MPLS_MC
#define ETH_P_MPLS_MC 0x8848
#endif
#ifndef ETH_P_TEB
#define ETH_P_TEB 0x6558
#endif

/* linux/in6.h: macros there, so not in BTF (linux/in.h's IPPROTO_* are an enum, in vmlinux.h) */
#ifndef IPPROTO_HOPOPTS
#define IPPROTO_HOPOPTS 0
#endif
#ifndef IPPROTO_ROUTING
#define IPPROTO_ROUTING 43
#endif
#ifndef IPPROTO_FRAGMENT
#define IPPROTO_FRAGMENT 44
#endif
#ifndef IPPROTO_ICMPV6
#define IPPROTO_ICMPV6 58
#endif
#ifndef IPPROTO_NONE
#define IPPROTO_NONE 59
#endif
#ifndef IPPROTO_DSTOPTS
#define IPPROTO_DSTOPTS 60
#endif
#ifndef IPPROTO_MH
#define IPPROTO_MH 135
#endif

/* linux/pkt_cls.h: tc actions */
#ifndef TC_ACT_UNSPEC
#define TC_ACT_UNSPEC (-1)
#define TC_ACT_OK 0
#define TC_ACT_RECLASSIFY 1
#define TC_ACT_SHOT 2
#define TC_ACT_PIPE 3
#define TC_ACT_STOLEN 4
#define TC_ACT_QUEUED 5
#define TC_ACT_REPEAT 6
#define TC_ACT_REDIRECT 7
#define TC_ACT_TRAP 8
#endif

/* linux/pkt_sched.h: tc handles */
#ifndef TC_H_MAJ_MASK
#define TC_H_MAJ_MASK (0xFFFF0000U)
#define TC_H_MIN_MASK (0x0000FFFFU)
#define TC_H_MAJ(h) ((h) & TC_H_MAJ_MASK)
#define TC_H_MIN(h) ((h) & TC_H_MIN_MASK)
#define TC_H_MAKE(maj, min) (((maj) & TC_H_MAJ_MASK) | ((min) & TC_H_MIN_MASK))
#define TC_H_UNSPEC (0U)
#define TC_H_ROOT (0xFFFFFFFFU)
#define TC_H_INGRESS (0xFFFFFFF1U)
#define TC_H_CLSACT TC_H_INGRESS
#define TC_H_MIN_PRIORITY 0xFFE0U
#define TC_H_MIN_INGRESS 0xFFF2U
#define TC_H_MIN_EGRESS 0xFFF3U
#endif

/* linux/if_link.h */
#ifndef XDP_FLAGS_UPDATE_IF_NOEXIST
#define XDP_FLAGS_UPDATE_IF_NOEXIST (1U << 0)
#define XDP_FLAGS_SKB_MODE (1U << 1)
#define XDP_FLAGS_DRV_MODE (1U << 2)
#define XDP_FLAGS_HW_MODE (1U << 3)
#define XDP_FLAGS_REPLACE (1U << 4)
#endif

/* Packet loads at an offset from the start of the skb's data, in host order (BCC's helpers.h). */
unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
unsigned long long load_half(void *skb, unsigned long long off) asm("llvm.bpf.load.half");
unsigned long long load_word(void *skb, unsigned long long off) asm("llvm.bpf.load.word");

static __always_inline unsigned long long load_dword(void *skb, unsigned long long off) {
  return ((unsigned long long)load_word(skb, off) << 32) | load_word(skb, off + 4);
}

#define __TSBPF_PKT_MASK(_n) ((_n) < 64 ? (1ull << (_n)) - 1 : ((unsigned long long)-1LL))

/* BCC's bpf_dext_pkt: bsz bits at bit bofs (counted from the top, network order) of the bytes at off. */
static __always_inline unsigned long long bpf_dext_pkt(void *pkt, unsigned long long off, unsigned long long bofs, unsigned long long bsz) {
  if (bofs == 0 && bsz == 8)
    return load_byte(pkt, off);
  else if (bofs + bsz <= 8)
    return load_byte(pkt, off) >> (8 - (bofs + bsz)) & __TSBPF_PKT_MASK(bsz);
  else if (bofs == 0 && bsz == 16)
    return load_half(pkt, off);
  else if (bofs + bsz <= 16)
    return load_half(pkt, off) >> (16 - (bofs + bsz)) & __TSBPF_PKT_MASK(bsz);
  else if (bofs == 0 && bsz == 32)
    return load_word(pkt, off);
  else if (bofs + bsz <= 32)
    return load_word(pkt, off) >> (32 - (bofs + bsz)) & __TSBPF_PKT_MASK(bsz);
  else if (bofs == 0 && bsz == 64)
    return load_dword(pkt, off);
  else if (bofs + bsz <= 64)
    return load_dword(pkt, off) >> (64 - (bofs + bsz)) & __TSBPF_PKT_MASK(bsz);
  return 0;
}

/* BCC's bpf_dins_pkt: stores val's low bsz bits there, in network order (bpf_skb_store_bytes: tc, not socket filters). */
static __always_inline void bpf_dins_pkt(void *pkt, unsigned long long off, unsigned long long bofs, unsigned long long bsz, unsigned long long val) {
  if (bofs == 0 && bsz == 8) {
    unsigned char v = val;
    bpf_skb_store_bytes(pkt, off, &v, 1, 0);
  } else if (bofs + bsz <= 8) {
    unsigned char v = load_byte(pkt, off);
    v &= ~(__TSBPF_PKT_MASK(bsz) << (8 - (bofs + bsz)));
    v |= ((val & __TSBPF_PKT_MASK(bsz)) << (8 - (bofs + bsz)));
    bpf_skb_store_bytes(pkt, off, &v, 1, 0);
  } else if (bofs == 0 && bsz == 16) {
    unsigned short v = __builtin_bswap16(val);
    bpf_skb_store_bytes(pkt, off, &v, 2, 0);
  } else if (bofs + bsz <= 16) {
    unsigned short v = load_half(pkt, off);
    v &= ~(__TSBPF_PKT_MASK(bsz) << (16 - (bofs + bsz)));
    v |= ((val & __TSBPF_PKT_MASK(bsz)) << (16 - (bofs + bsz)));
    v = __builtin_bswap16(v);
    bpf_skb_store_bytes(pkt, off, &v, 2, 0);
  } else if (bofs == 0 && bsz == 32) {
    unsigned int v = __builtin_bswap32(val);
    bpf_skb_store_bytes(pkt, off, &v, 4, 0);
  } else if (bofs + bsz <= 32) {
    unsigned int v = load_word(pkt, off);
    v &= ~(__TSBPF_PKT_MASK(bsz) << (32 - (bofs + bsz)));
    v |= ((val & __TSBPF_PKT_MASK(bsz)) << (32 - (bofs + bsz)));
    v = __builtin_bswap32(v);
    bpf_skb_store_bytes(pkt, off, &v, 4, 0);
  } else if (bofs == 0 && bsz == 64) {
    unsigned long long v = __builtin_bswap64(val);
    bpf_skb_store_bytes(pkt, off, &v, 8, 0);
  } else if (bofs + bsz <= 64) {
    unsigned long long v = load_dword(pkt, off);
    v &= ~(__TSBPF_PKT_MASK(bsz) << (64 - (bofs + bsz)));
    v |= ((val & __TSBPF_PKT_MASK(bsz)) << (64 - (bofs + bsz)));
    v = __builtin_bswap64(v);
    bpf_skb_store_bytes(pkt, off, &v, 8, 0);
  }
}

#endif
