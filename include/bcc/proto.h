/* tsbpf: BCC's <bcc/proto.h>, accepted so that the many tracing programs that
 * include it (and use nothing from it) compile. Its packet vocabulary
 * (ethernet_t, ip_t, tcp_t... with BCC's packet rewriter) belongs to tsbpf's
 * packet programs, not here. */
#ifndef __TSBPF_BCC_PROTO_H
#define __TSBPF_BCC_PROTO_H
#define BPF_PACKET_HEADER __attribute__((packed))
#endif
