// Every tsbpf subcommand, by name. Modules load only when their command runs.
import { command } from "./main.ts";

command("hello", "the seed's hello world: a line for every clone() (Ctrl-C to stop)", () => import("./hello.ts"));
command("execsnoop", "trace exec() syscalls: PCOMM, PID, PPID, RET, ARGS (BCC's execsnoop)", () => import("./execsnoop.ts"));
command("opensnoop", "trace open() family syscalls: PID, COMM, FD, ERR, PATH (BCC's opensnoop)", () => import("./opensnoop.ts"));
command("trace", "print a line per hit of tracepoints and u(ret)probes, with a filter and a printf format (BCC's trace)", () => import("./trace.ts"));
command("vm", "run a command in a Debian kernel under QEMU (tsbpf vm run -- CMD; tsbpf vm kernels)", () => import("./vm.ts"));
command("gen", "TypeScript from an object's BTF: typed skeletons (gen skeleton prog.bpf.o) and interfaces (gen types)", () => import("./gen.ts"));
command("tcpconnect", "trace TCP active connections: PID, COMM, IP, SADDR, DADDR, DPORT (BCC's tcpconnect)", () => import("./tcpconnect.ts"));
command("tcpaccept", "trace TCP passive connections: PID, COMM, IP, RADDR, RPORT, LADDR, LPORT (BCC's tcpaccept)", () => import("./tcpaccept.ts"));
command("tcplife", "trace TCP sessions as they close: PID, COMM, addresses, ports, TX_KB, RX_KB, MS (BCC's tcplife)", () => import("./tcplife.ts"));
command("tcpstates", "trace TCP state changes: SKADDR, addresses, OLDSTATE -> NEWSTATE, MS (BCC's tcpstates)", () => import("./tcpstates.ts"));
command("tcpretrans", "trace TCP retransmits: TIME, PID, IP, LADDR:LPORT T> RADDR:RPORT, STATE (BCC's tcpretrans)", () => import("./tcpretrans.ts"));
command("exitsnoop", "trace process exits: PCOMM, PID, PPID, TID, AGE(s), EXIT_CODE (BCC's exitsnoop)", () => import("./exitsnoop.ts"));
command("killsnoop", "trace signals sent by kill(): TIME, PID, COMM, SIG, TPID, RESULT (BCC's killsnoop)", () => import("./killsnoop.ts"));
command("oomkill", "trace OOM killer kills: the triggering task and the victim (BCC's oomkill)", () => import("./oomkill.ts"));
command("memleak", "outstanding allocations by stack, every interval: user (-p, libc uprobes) or kernel (kmem tracepoints) (BCC's memleak)", () => import("./memleak.ts"));
command("bashreadline", "print commands typed into bash: TIME, PID, COMMAND (BCC's bashreadline)", () => import("./bashreadline.ts"));
command("threadsnoop", "trace pthread_create(): TIME(ms), PID, COMM, FUNC (BCC's threadsnoop)", () => import("./threadsnoop.ts"));
command("tcptop", "TCP throughput by process and connection, top-style: PID, COMM, LADDR, RADDR, RX_KB, TX_KB (BCC's tcptop)", () => import("./tcptop.ts"));
