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
command("biolatency", "block I/O latency histograms: -D per disk, -F per flags, -Q with queue time (BCC's biolatency)", () => import("./biolatency.ts"));
command("biosnoop", "trace block I/O: TIME(s) COMM PID DISK T SECTOR BYTES LAT(ms) (BCC's biosnoop)", () => import("./biosnoop.ts"));
command("bitesize", "block I/O size histograms per process name (BCC's bitesize)", () => import("./bitesize.ts"));
command("biotop", "block I/O by process, top-style: PID COMM D MAJ MIN DISK I/O Kbytes AVGms (BCC's biotop)", () => import("./biotop.ts"));
command("statsnoop", "trace stat() family syscalls: PID COMM FD ERR PATH (BCC's statsnoop)", () => import("./statsnoop.ts"));
command("mountsnoop", "trace mount() and umount() syscalls: COMM PID TID MNT_NS CALL (BCC's mountsnoop)", () => import("./mountsnoop.ts"));
command("vfsstat", "VFS calls per second: READ/s WRITE/s FSYNC/s OPEN/s CREATE/s ... (BCC's vfsstat)", () => import("./vfsstat.ts"));
command("filetop", "file reads and writes by thread, top-style: TID COMM READS WRITES R_Kb W_Kb T FILE (BCC's filetop)", () => import("./filetop.ts"));
command("filelife", "trace short-lived files: TIME PID COMM AGE(s) FILE (BCC's filelife)", () => import("./filelife.ts"));
command("ext4slower", "ext4 reads, writes, opens and fsyncs slower than a threshold (BCC's ext4slower)", () => import("./ext4slower.ts"));
command("cachestat", "page cache hits, misses and dirties per interval (BCC's cachestat)", () => import("./cachestat.ts"));
