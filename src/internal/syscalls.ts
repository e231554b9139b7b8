// Syscall numbers and names, for tools that see raw_syscalls' `id` (syscount) and
// for the exporter. The kernel does not expose the number behind a name: tracefs
// lists syscalls:sys_enter_NAME events without their numbers, and
// sys_call_table / the syscall metadata are data symbols that kallsyms shows
// only with CONFIG_KALLSYMS_ALL (not on this host). So the numbers come from
// the uapi table (arch/x86/entry/syscalls/syscall_64.tbl, as linux-libc-dev's
// <asm/unistd_64.h> prints it), built in up to 469 (file_setattr, 6.17) and
// extended at run time from the installed <asm/unistd_64.h> when that is newer.
// The tracepoint names that differ from the syscall names (newfstat for fstat...)
// are mapped both ways (tracepointName/syscallNumber).
import { readFileSync } from "node:fs";

// x86_64 numbers 0..469, in order; "-" marks a number no syscall has.
const X86_64 = `
  read write open close stat fstat lstat poll lseek mmap mprotect munmap brk rt_sigaction rt_sigprocmask
  rt_sigreturn ioctl pread64 pwrite64 readv writev access pipe select sched_yield mremap msync mincore madvise
  shmget shmat shmctl dup dup2 pause nanosleep getitimer alarm setitimer getpid sendfile socket connect accept
  sendto recvfrom sendmsg recvmsg shutdown bind listen getsockname getpeername socketpair setsockopt getsockopt
  clone fork vfork execve exit wait4 kill uname semget semop semctl shmdt msgget msgsnd msgrcv msgctl fcntl
  flock fsync fdatasync truncate ftruncate getdents getcwd chdir fchdir rename mkdir rmdir creat link unlink
  symlink readlink chmod fchmod chown fchown lchown umask gettimeofday getrlimit getrusage sysinfo times ptrace
  getuid syslog getgid setuid setgid geteuid getegid setpgid getppid getpgrp setsid setreuid setregid getgroups
  setgroups setresuid getresuid setresgid getresgid getpgid setfsuid setfsgid getsid capget capset
  rt_sigpending rt_sigtimedwait rt_sigqueueinfo rt_sigsuspend sigaltstack utime mknod uselib personality ustat
  statfs fstatfs sysfs getpriority setpriority sched_setparam sched_getparam sched_setscheduler
  sched_getscheduler sched_get_priority_max sched_get_priority_min sched_rr_get_interval mlock munlock mlockall
  munlockall vhangup modify_ldt pivot_root _sysctl prctl arch_prctl adjtimex setrlimit chroot sync acct
  settimeofday mount umount2 swapon swapoff reboot sethostname setdomainname iopl ioperm create_module
  init_module delete_module get_kernel_syms query_module quotactl nfsservctl getpmsg putpmsg afs_syscall
  tuxcall security gettid readahead setxattr lsetxattr fsetxattr getxattr lgetxattr fgetxattr listxattr
  llistxattr flistxattr removexattr lremovexattr fremovexattr tkill time futex sched_setaffinity
  sched_getaffinity set_thread_area io_setup io_destroy io_getevents io_submit io_cancel get_thread_area
  lookup_dcookie epoll_create epoll_ctl_old epoll_wait_old remap_file_pages getdents64 set_tid_address
  restart_syscall semtimedop fadvise64 timer_create timer_settime timer_gettime timer_getoverrun timer_delete
  clock_settime clock_gettime clock_getres clock_nanosleep exit_group epoll_wait epoll_ctl tgkill utimes
  vserver mbind set_mempolicy get_mempolicy mq_open mq_unlink mq_timedsend mq_timedreceive mq_notify
  mq_getsetattr kexec_load waitid add_key request_key keyctl ioprio_set ioprio_get inotify_init
  inotify_add_watch inotify_rm_watch migrate_pages openat mkdirat mknodat fchownat futimesat newfstatat
  unlinkat renameat linkat symlinkat readlinkat fchmodat faccessat pselect6 ppoll unshare set_robust_list
  get_robust_list splice tee sync_file_range vmsplice move_pages utimensat epoll_pwait signalfd timerfd_create
  eventfd fallocate timerfd_settime timerfd_gettime accept4 signalfd4 eventfd2 epoll_create1 dup3 pipe2
  inotify_init1 preadv pwritev rt_tgsigqueueinfo perf_event_open recvmmsg fanotify_init fanotify_mark prlimit64
  name_to_handle_at open_by_handle_at clock_adjtime syncfs sendmmsg setns getcpu process_vm_readv
  process_vm_writev kcmp finit_module sched_setattr sched_getattr renameat2 seccomp getrandom memfd_create
  kexec_file_load bpf execveat userfaultfd membarrier mlock2 copy_file_range preadv2 pwritev2 pkey_mprotect
  pkey_alloc pkey_free statx io_pgetevents rseq uretprobe uprobe - - - - - - - - - - - - - - - - - - - - - - -
  - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - -
  - - - - - - - - - pidfd_send_signal io_uring_setup io_uring_enter io_uring_register open_tree move_mount
  fsopen fsconfig fsmount fspick pidfd_open clone3 close_range openat2 pidfd_getfd faccessat2 process_madvise
  epoll_pwait2 mount_setattr quotactl_fd landlock_create_ruleset landlock_add_rule landlock_restrict_self
  memfd_secret process_mrelease futex_waitv set_mempolicy_home_node cachestat fchmodat2 map_shadow_stack
  futex_wake futex_wait futex_requeue statmount listmount lsm_get_self_attr lsm_set_self_attr lsm_list_modules
  mseal setxattrat getxattrat listxattrat removexattrat open_tree_attr file_getattr file_setattr`;

/** Tracepoint names (syscalls:sys_enter_NAME) that are not the syscall's name, on x86_64. */
const TRACEPOINT_ALIASES: Readonly<Record<string, string>> = {
  stat: "newstat",
  fstat: "newfstat",
  lstat: "newlstat",
  uname: "newuname",
  sendfile: "sendfile64",
  umount2: "umount",
};

const HEADERS = ["/usr/include/x86_64-linux-gnu/asm/unistd_64.h", "/usr/include/asm/unistd_64.h"];

let table: Map<number, string> | undefined;
let byName: Map<string, number> | undefined;

/** `#define __NR_name N` lines of a uapi header. */
export function parseUnistd(text: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const m of text.matchAll(/^#define __NR_(\w+)\s+(\d+)\s*$/gm)) out.set(Number(m[2]), m[1]!);
  return out;
}

/** Number -> name for this machine's architecture (empty where neither the built-in table nor a header serves). */
export function syscallTable(): ReadonlyMap<number, string> {
  if (table) return table;
  table = new Map();
  if (process.arch === "x64") {
    X86_64.trim().split(/\s+/).forEach((name, nr) => {
      if (name !== "-") table!.set(nr, name);
    });
    for (const path of HEADERS) {
      let text: string;
      try {
        text = readFileSync(path, "utf8");
      } catch {
        continue;
      }
      // Only numbers the built-in table lacks: a header may be older than the table.
      for (const [nr, name] of parseUnistd(text)) if (!table.has(nr)) table.set(nr, name);
      break;
    }
  } else {
    // asm-generic numbering (arm64, riscv64...): whatever the installed header says.
    try {
      const text = readFileSync("/usr/include/asm-generic/unistd.h", "utf8");
      for (const m of text.matchAll(/^#define __NR(?:3264)?_(\w+)\s+(\d+)\s*$/gm)) table.set(Number(m[2]), m[1]!);
    } catch {
      // no header: numbers print as [unknown: N]
    }
  }
  return table;
}

/** The syscall's name, or undefined. */
export function syscallName(nr: number): string | undefined {
  return syscallTable().get(nr);
}

/** BCC's syscall_name(): the name, or "[unknown: N]". */
export function syscallLabel(nr: number): string {
  return syscallName(nr) ?? `[unknown: ${nr}]`;
}

/** The number of a syscall, by its name or its tracepoint's name ("newfstat"); undefined if unknown. */
export function syscallNumber(name: string): number | undefined {
  if (!byName) {
    byName = new Map();
    for (const [nr, n] of syscallTable()) byName.set(n, nr);
    for (const [n, alias] of Object.entries(TRACEPOINT_ALIASES)) {
      const nr = byName.get(n);
      if (nr !== undefined && !byName.has(alias)) byName.set(alias, nr);
    }
  }
  return byName.get(name);
}

/** The name of a syscall's syscalls:sys_enter_* / sys_exit_* tracepoints (x86_64). */
export function tracepointName(name: string): string {
  return (process.arch === "x64" ? TRACEPOINT_ALIASES[name] : undefined) ?? name;
}

/** Every known syscall name, sorted (syscount -l). */
export function syscallNames(): string[] {
  return [...new Set(syscallTable().values())].sort();
}
