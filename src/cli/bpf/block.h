/* SPDX-License-Identifier: MIT */
/*
 * What the block tools (biolatency, biosnoop, biotop) share: a request's disk as
 * a dev_t (major << 20 | minor, named in user space from /sys/class/block), and
 * the tp_btf hooks' argument lists. The request is the key from insert or issue
 * to completion: the same pointer for the whole life of one I/O.
 */
#ifndef __TSBPF_TOOLS_BLOCK_H
#define __TSBPF_TOOLS_BLOCK_H

#include <bpf/bpf_core_read.h>

#define MINORBITS 20
#define REQ_OP_MASK 0xff
#define REQ_OP_WRITE 1

static __always_inline u32 rq_dev(struct request *rq)
{
	struct gendisk *disk = BPF_CORE_READ(rq, q, disk);

	if (!disk)
		return 0;
	return ((u32)BPF_CORE_READ(disk, major) << MINORBITS) | (u32)BPF_CORE_READ(disk, first_minor);
}

static __always_inline bool rq_is_write(struct request *rq)
{
	return (BPF_CORE_READ(rq, cmd_flags) & REQ_OP_MASK) == REQ_OP_WRITE;
}

#endif
