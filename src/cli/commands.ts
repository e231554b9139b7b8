// Every tsbpf subcommand, by name. Modules load only when their command runs.
import { command } from "./main.ts";

command("hello", "the seed's hello world: a line for every clone() (Ctrl-C to stop)", () => import("./hello.ts"));
command("execsnoop", "trace exec() syscalls: PCOMM, PID, PPID, RET, ARGS (BCC's execsnoop)", () => import("./execsnoop.ts"));
command("opensnoop", "trace open() family syscalls: PID, COMM, FD, ERR, PATH (BCC's opensnoop)", () => import("./opensnoop.ts"));
command("trace", "print a line per hit of tracepoints and u(ret)probes, with a filter and a printf format (BCC's trace)", () => import("./trace.ts"));
command("vm", "run a command in a Debian kernel under QEMU (tsbpf vm run -- CMD; tsbpf vm kernels)", () => import("./vm.ts"));
command("gen", "TypeScript from an object's BTF: typed skeletons (gen skeleton prog.bpf.o) and interfaces (gen types)", () => import("./gen.ts"));
command("profile", "sample stack traces on every CPU at a frequency: BCC's multi-line, folded or a flame graph (BCC's profile)", () => import("./profile.ts"));
command("offcputime", "off-CPU time (blocked, sleeping) summed by kernel and user stack (BCC's offcputime)", () => import("./offcputime.ts"));
command("funccount", "count calls of functions and tracepoints matching a pattern: c:mall*, t:syscalls:sys_enter_* (BCC's funccount)", () => import("./funccount.ts"));
command("stackcount", "count the stacks that reach functions or tracepoints matching a pattern (BCC's stackcount)", () => import("./stackcount.ts"));
command("funclatency", "time functions from entry to return as a log2 histogram: c:read, kernel functions with kprobes (BCC's funclatency)", () => import("./funclatency.ts"));
