/* SPDX-License-Identifier: MIT */
/*
 * tsbpf.h — tsbpf's own C header for BPF programs.
 *
 * The compiler driver (src/compile) puts this directory on the include path,
 * next to the generated vmlinux.h and libbpf's <bpf/...> headers, so programs
 * can `#include <tsbpf.h>`. Helpers shared between tsbpf's TypeScript side and
 * BPF C code are added here as they are needed.
 */
#ifndef __TSBPF_H
#define __TSBPF_H

#endif /* __TSBPF_H */
