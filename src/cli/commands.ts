// Every tsbpf subcommand, by name. Modules load only when their command runs.
import { command } from "./main.ts";

command("hello", "the seed's hello world: a line for every clone() (Ctrl-C to stop)", () => import("./hello.ts"));
command("execsnoop", "trace exec() syscalls: PCOMM, PID, PPID, RET, ARGS (BCC's execsnoop)", () => import("./execsnoop.ts"));
command("opensnoop", "trace open() family syscalls: PID, COMM, FD, ERR, PATH (BCC's opensnoop)", () => import("./opensnoop.ts"));
command("trace", "print a line per hit of tracepoints and u(ret)probes, with a filter and a printf format (BCC's trace)", () => import("./trace.ts"));
command("vm", "run a command in a Debian kernel under QEMU (tsbpf vm run -- CMD; tsbpf vm kernels)", () => import("./vm.ts"));
command("gen", "TypeScript from an object's BTF: typed skeletons (gen skeleton prog.bpf.o) and interfaces (gen types)", () => import("./gen.ts"));
command("exporter", "eBPF maps as Prometheus metrics on :9435 and OTLP, with a useful default set (as ebpf_exporter)", () => import("./exporter.ts"));
command("syscount", "syscall counts by name or by process, with latency (BCC's syscount)", () => import("./syscount.ts"));
command("runqlat", "run queue (scheduler) latency as a histogram (BCC's runqlat)", () => import("./runqlat.ts"));
command("cpudist", "on- (or off-) CPU time per task switch as a histogram (BCC's cpudist)", () => import("./cpudist.ts"));
command("runqlen", "run queue length sampled at 99 Hz, as a histogram (BCC's runqlen)", () => import("./runqlen.ts"));
command("hardirqs", "hard interrupt handler time or counts, by action (BCC's hardirqs)", () => import("./hardirqs.ts"));
command("softirqs", "soft interrupt time or counts, by vector (BCC's softirqs)", () => import("./softirqs.ts"));
