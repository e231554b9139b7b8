// Every tsbpf subcommand, by name. Modules load only when their command runs.
import { command } from "./main.ts";

command("hello", "the seed's hello world: a line for every clone() (Ctrl-C to stop)", () => import("./hello.ts"));
command("execsnoop", "trace exec() syscalls: PCOMM, PID, PPID, RET, ARGS (BCC's execsnoop)", () => import("./execsnoop.ts"));
command("opensnoop", "trace open() family syscalls: PID, COMM, FD, ERR, PATH (BCC's opensnoop)", () => import("./opensnoop.ts"));
command("trace", "print a line per hit of tracepoints and u(ret)probes, with a filter and a printf format (BCC's trace)", () => import("./trace.ts"));
command("vm", "run a command in a Debian kernel under QEMU (tsbpf vm run -- CMD; tsbpf vm kernels)", () => import("./vm.ts"));
command("gen", "TypeScript from an object's BTF: typed skeletons (gen skeleton prog.bpf.o) and interfaces (gen types)", () => import("./gen.ts"));
command("xdpdrop", "drop the packets arriving on an interface with XDP and count them per IP protocol (BCC's xdp_drop_count)", () => import("./xdpdrop.ts"));
command("tcdump", "bytes and packets per flow at tc egress or ingress of an interface", () => import("./tcdump.ts"));
command("sockfilter", "HTTP request and response lines on an interface, through a socket filter (BCC's http-parse)", () => import("./sockfilter.ts"));
