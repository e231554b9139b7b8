// BCC text with KFUNC_PROBE / KRETFUNC_PROBE / LSM_PROBE (fentry, fexit and LSM programs the
// host's lockdown refuses), translated by the dialect. test/vm/vm.test.ts compiles the
// translation on the host (GUEST_PROGRAMS.bcc_kfunc) and test/guest/dialect.guest.ts loads it
// in the guests. The translation is sync (no clang): the AST pass has nothing to do here,
// the probes' arguments are BTF pointers read directly.
import { translate } from "../../src/bcc/dialect.ts";

export const BCC_KFUNC = `
const volatile u32 target_tgid = 0;
BPF_ARRAY(counts, u64, 4);
KFUNC_PROBE(do_sys_openat2, int dfd, const char __user *filename)
{
    if ((bpf_get_current_pid_tgid() >> 32) != target_tgid) return 0;
    counts.atomic_increment(0);
    return 0;
}
KRETFUNC_PROBE(do_sys_openat2, int dfd, const char __user *filename, struct open_how *how, long ret)
{
    if ((bpf_get_current_pid_tgid() >> 32) != target_tgid) return 0;
    counts.atomic_increment(ret < 0 ? 2 : 1);
    return 0;
}
LSM_PROBE(file_open, struct file *file)
{
    if ((bpf_get_current_pid_tgid() >> 32) != target_tgid) return 0;
    counts.atomic_increment(3);
    return 0;
}
`;

/** The libbpf C of BCC_KFUNC, for the guest kernels (kprobes there; nothing here depends on the version). */
export function bccKfuncObjectText(): string {
  return translate(BCC_KFUNC, { file: "bcc_kfunc.c", kprobes: true, tracepointFormat: () => undefined, kernelHasStruct: () => false }).code;
}
