// tsbpf native layer: thin N-API wrappers around bpf(), perf_event_open(),
// ioctl(), close(), mmap()/munmap() and a libuv fd poller. No policy lives here;
// attr layouts, retries and friendly errors are in TypeScript (see
// src/internal/sys/native.ts for the contract).
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

// ---------------------------------------------------------------- helpers

// On an N-API failure, make sure JavaScript sees an exception, not undefined.
static napi_value fail(napi_env env) {
  bool pending = false;
  const napi_extended_error_info *e = NULL;
  napi_is_exception_pending(env, &pending);
  if (!pending) {
    napi_get_last_error_info(env, &e);
    napi_throw_error(env, NULL, e && e->error_message ? e->error_message : "N-API call failed");
  }
  return NULL;
}

#define CHECK(call)                                                            \
  do {                                                                         \
    if ((call) != napi_ok) return fail(env);                                   \
  } while (0)

// Kernel-internal codes that bpf() leaks to user space have no libc name.
#ifndef ENOTSUPP
#define ENOTSUPP 524
#endif

static const char *errno_name(int e) {
  switch (e) {
#define E(n) case n: return #n;
    E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG) E(ENOEXEC)
    E(EBADF) E(ECHILD) E(EAGAIN) E(ENOMEM) E(EACCES) E(EFAULT) E(EBUSY)
    E(EEXIST) E(EXDEV) E(ENODEV) E(ENOTDIR) E(EISDIR) E(EINVAL) E(ENFILE)
    E(EMFILE) E(ENOTTY) E(ETXTBSY) E(EFBIG) E(ENOSPC) E(ESPIPE) E(EROFS)
    E(EMLINK) E(EPIPE) E(EDOM) E(ERANGE) E(EDEADLK) E(ENAMETOOLONG) E(ENOLCK)
    E(ENOSYS) E(ENOTEMPTY) E(ELOOP) E(ENOMSG) E(EIDRM) E(ENODATA) E(ETIME)
    E(ENOLINK) E(EPROTO) E(EBADMSG) E(EOVERFLOW) E(EBADFD) E(EILSEQ)
    E(EUSERS) E(ENOTSOCK) E(EMSGSIZE) E(EPROTONOSUPPORT) E(EOPNOTSUPP)
    E(EAFNOSUPPORT) E(EADDRINUSE) E(EADDRNOTAVAIL) E(ENETDOWN)
    E(ENETUNREACH) E(ECONNRESET) E(ENOBUFS) E(EISCONN) E(ENOTCONN)
    E(ETIMEDOUT) E(ECONNREFUSED) E(EHOSTUNREACH) E(EALREADY) E(EINPROGRESS)
    E(ESTALE) E(EDQUOT) E(ECANCELED) E(ENOKEY) E(EKEYEXPIRED)
    E(EKEYREVOKED) E(EKEYREJECTED) E(EOWNERDEAD) E(ENOTRECOVERABLE)
    E(ERFKILL) E(EHWPOISON) E(ENOTSUPP)
#undef E
    default: return NULL;
  }
}

// Throws Error{message: "<syscall>: <strerror> (<code>)", errno, code, syscall}.
static napi_value throw_errno(napi_env env, const char *syscall_name, int e) {
  char code[16], msg[256];
  const char *name = errno_name(e);
  if (name) snprintf(code, sizeof code, "%s", name);
  else snprintf(code, sizeof code, "E%d", e);
  const char *text = e == ENOTSUPP ? "Operation is not supported" : strerror(e);
  snprintf(msg, sizeof msg, "%s: %s (%s)", syscall_name, text, code);

  napi_value vcode, vmsg, err, verrno, vsys;
  CHECK(napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &vcode));
  CHECK(napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &vmsg));
  CHECK(napi_create_error(env, vcode, vmsg, &err));  // also sets err.code
  CHECK(napi_create_int32(env, e, &verrno));
  CHECK(napi_create_string_utf8(env, syscall_name, NAPI_AUTO_LENGTH, &vsys));
  CHECK(napi_set_named_property(env, err, "errno", verrno));
  CHECK(napi_set_named_property(env, err, "syscall", vsys));
  napi_throw(env, err);
  return NULL;
}

static napi_value type_error(napi_env env, const char *msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

#define GET_ARGS(n)                                                            \
  size_t argc = (n);                                                           \
  napi_value argv[(n) > 0 ? (n) : 1], self;                                    \
  CHECK(napi_get_cb_info(env, info, &argc, argv, &self, NULL));                \
  (void)self

#define ARG_I32(i, var)                                                        \
  int32_t var;                                                                 \
  if (napi_get_value_int32(env, argv[i], &var) != napi_ok)                     \
    return type_error(env, "argument " #i " (" #var ") must be a number")

#define ARG_I64(i, var)                                                        \
  int64_t var;                                                                 \
  if (napi_get_value_int64(env, argv[i], &var) != napi_ok)                     \
    return type_error(env, "argument " #i " (" #var ") must be a number")

// The kernel reads and writes the attr in place, so we pass the Uint8Array's
// own memory (already adjusted for byteOffset), never a copy.
static bool get_bytes(napi_env env, napi_value v, void **data, size_t *len) {
  bool is_ta = false;
  napi_typedarray_type type;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) return false;
  if (napi_get_typedarray_info(env, v, &type, len, data, NULL, NULL) != napi_ok)
    return false;
  return type == napi_uint8_array || type == napi_uint8_clamped_array;
}

static napi_value make_number(napi_env env, int64_t n) {
  napi_value v;
  CHECK(napi_create_int64(env, n, &v));
  return v;
}

// ---------------------------------------------------------------- syscalls

static napi_value Bpf(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  ARG_I32(0, cmd);
  void *attr;
  size_t len;
  if (!get_bytes(env, argv[1], &attr, &len))
    return type_error(env, "attr must be a Uint8Array");
  long r = syscall(__NR_bpf, cmd, attr, (unsigned int)len);
  if (r < 0) return throw_errno(env, "bpf", errno);
  return make_number(env, r);
}

static napi_value PerfEventOpen(napi_env env, napi_callback_info info) {
  GET_ARGS(5);
  void *attr;
  size_t len;
  if (!get_bytes(env, argv[0], &attr, &len))
    return type_error(env, "attr must be a Uint8Array");
  ARG_I32(1, pid);
  ARG_I32(2, cpu);
  ARG_I32(3, group_fd);
  ARG_I64(4, flags);
  // The kernel reads attr.size bytes (0 means 64, PERF_ATTR_SIZE_VER0); refuse
  // to let it read past the end of the JavaScript buffer.
  uint32_t size = 0;
  if (len >= 8) memcpy(&size, (char *)attr + 4, 4);
  if (len < 8 || (size ? size : 64) > len) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE",
                           "perf_event_attr.size exceeds the attr buffer");
    return NULL;
  }
  long r = syscall(__NR_perf_event_open, attr, pid, cpu, group_fd,
                   (unsigned long)flags);
  if (r < 0) return throw_errno(env, "perf_event_open", errno);
  return make_number(env, r);
}

static napi_value Ioctl(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  ARG_I32(0, fd);
  uint32_t request;  // e.g. 0x40042408 does not fit an int32
  if (napi_get_value_uint32(env, argv[1], &request) != napi_ok)
    return type_error(env, "request must be a number");
  ARG_I64(2, arg);
  int r = ioctl(fd, (unsigned long)request, (unsigned long)arg);
  if (r < 0) return throw_errno(env, "ioctl", errno);
  return make_number(env, r);
}

static napi_value Close(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  ARG_I32(0, fd);
  // On Linux the fd is released even when close() reports EINTR; retrying
  // could close an unrelated, newly opened fd, and reporting it would mislead.
  if (close(fd) < 0 && errno != EINTR) return throw_errno(env, "close", errno);
  return NULL;
}

// ---------------------------------------------------------------- mmap

// One per mapping. Two owners, hence refs = 2: the ArrayBuffer's backing store
// (its finalizer) and the napi_wrap on the ArrayBuffer object (released by
// munmap or by the wrap's finalizer). Whoever comes first unmaps; the struct
// lives until both are gone, so neither can see freed memory.
typedef struct {
  void *addr;
  size_t len;
  bool unmapped;
  int refs;
} mapping_t;

static const napi_type_tag mapping_tag = {0x7473627066006d6dULL, 0x6d61707069006e67ULL};

static void mapping_release(mapping_t *m) {
  if (--m->refs == 0) free(m);
}

static void mapping_unmap(mapping_t *m) {
  if (!m->unmapped) munmap(m->addr, m->len);
  m->unmapped = true;
}

// The backing store is gone: no JavaScript can reach the memory any more.
static void mapping_store_finalize(napi_env env, void *data, void *hint) {
  (void)env, (void)data;
  mapping_unmap(hint);
  mapping_release(hint);
}

static void mapping_wrap_finalize(napi_env env, void *data, void *hint) {
  (void)env, (void)hint;
  mapping_release(data);
}

static napi_value Mmap(napi_env env, napi_callback_info info) {
  GET_ARGS(4);
  ARG_I32(0, fd);
  ARG_I64(1, length);
  ARG_I32(2, prot);
  ARG_I64(3, offset);
  if (length <= 0) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "length must be positive");
    return NULL;
  }
  void *addr = mmap(NULL, (size_t)length, prot, MAP_SHARED, fd, (off_t)offset);
  if (addr == MAP_FAILED) return throw_errno(env, "mmap", errno);

  mapping_t *m = malloc(sizeof *m);
  if (!m) {
    munmap(addr, (size_t)length);
    return throw_errno(env, "mmap", ENOMEM);
  }
  *m = (mapping_t){addr, (size_t)length, false, 1};
  napi_value ab;
  if (napi_create_external_arraybuffer(env, addr, m->len, mapping_store_finalize,
                                       m, &ab) != napi_ok) {
    munmap(addr, m->len);
    free(m);
    return fail(env);
  }
  // From here the backing store's finalizer owns the mapping.
  CHECK(napi_type_tag_object(env, ab, &mapping_tag));
  m->refs++;
  if (napi_wrap(env, ab, m, mapping_wrap_finalize, NULL, NULL) != napi_ok) {
    m->refs--;
    return fail(env);
  }
  return ab;
}

static napi_value Munmap(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  bool is_ab = false, tagged = false, detached = false;
  napi_is_arraybuffer(env, argv[0], &is_ab);
  if (is_ab) napi_check_object_type_tag(env, argv[0], &mapping_tag, &tagged);
  if (!tagged) return type_error(env, "buffer was not returned by mmap()");
  mapping_t *m;
  if (napi_unwrap(env, argv[0], (void **)&m) != napi_ok) return NULL;  // done before
  // Detach first so that no JavaScript view can touch the memory once it is
  // gone. If the buffer was already detached (e.g. transferred elsewhere), the
  // memory now belongs to another ArrayBuffer: leave it to that one's finalizer.
  CHECK(napi_is_detached_arraybuffer(env, argv[0], &detached));
  if (!detached) {
    CHECK(napi_detach_arraybuffer(env, argv[0]));
    mapping_unmap(m);
  }
  CHECK(napi_remove_wrap(env, argv[0], NULL));
  mapping_release(m);  // the wrap's reference
  return NULL;
}

static napi_value AddressOf(napi_env env, napi_callback_info info) {
  GET_ARGS(1);
  bool yes = false;
  void *data = NULL;
  if (napi_is_arraybuffer(env, argv[0], &yes) == napi_ok && yes) {
    CHECK(napi_get_arraybuffer_info(env, argv[0], &data, NULL));
  } else if (napi_is_typedarray(env, argv[0], &yes) == napi_ok && yes) {
    // data is already advanced by byteOffset.
    CHECK(napi_get_typedarray_info(env, argv[0], NULL, NULL, &data, NULL, NULL));
  } else if (napi_is_dataview(env, argv[0], &yes) == napi_ok && yes) {
    CHECK(napi_get_dataview_info(env, argv[0], NULL, &data, NULL, NULL));
  } else {
    return type_error(env, "expected an ArrayBuffer, TypedArray or DataView");
  }
  napi_value v;
  CHECK(napi_create_bigint_uint64(env, (uint64_t)(uintptr_t)data, &v));
  return v;
}

// ---------------------------------------------------------------- watch

// One per watcher. Freed when both the uv handle is closed (on_close) and the
// JS wrapper is finalized; so close() may be called any number of times, from
// inside the callback too, and GC without close() still closes the handle.
// While started, `self` is a strong reference: an active watcher is not
// collected (like a socket), whether or not it refs the loop.
typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_ref self;
  napi_async_context actx;
  napi_async_cleanup_hook_handle hook;
  bool started, closing;
  int refs;
} watcher_t;

static const napi_type_tag watcher_tag = {0x7473627066007761ULL, 0x7463686572000000ULL};

static void watcher_release(watcher_t *w) {
  if (--w->refs == 0) free(w);
}

static void on_close(uv_handle_t *h) {
  watcher_t *w = h->data;
  napi_remove_async_cleanup_hook(w->hook);
  watcher_release(w);
}

static void watcher_close(watcher_t *w) {
  if (w->closing) return;
  w->closing = true;
  w->started = false;
  uv_close((uv_handle_t *)&w->poll, on_close);
  napi_delete_reference(w->env, w->callback);
  napi_delete_reference(w->env, w->self);
  napi_async_destroy(w->env, w->actx);
}

// Runs when the environment shuts down (e.g. a Worker exits), so that its loop
// is not closed while our handle is still open.
static void cleanup_hook(napi_async_cleanup_hook_handle handle, void *arg) {
  (void)handle;
  watcher_close(arg);
}

static void watcher_finalize(napi_env env, void *data, void *hint) {
  (void)env, (void)hint;
  watcher_close(data);
  watcher_release(data);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  watcher_t *w = h->data;
  if (w->closing || !w->started) return;
  napi_env env = w->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, argv[3];
  if (napi_get_reference_value(env, w->callback, &cb) == napi_ok &&
      napi_get_reference_value(env, w->self, &recv) == napi_ok && recv &&
      napi_create_int32(env, status, &argv[0]) == napi_ok &&
      napi_get_boolean(env, status == 0 && (events & UV_READABLE), &argv[1]) == napi_ok &&
      napi_get_boolean(env, status == 0 && (events & UV_WRITABLE), &argv[2]) == napi_ok) {
    // make_callback runs nextTicks/microtasks afterwards, like any Node callback.
    if (napi_make_callback(env, w->actx, recv, cb, 3, argv, NULL) != napi_ok) {
      bool pending = false;
      napi_value exc;
      // Report a throwing callback as an uncaught exception, never swallow it.
      if (napi_is_exception_pending(env, &pending) == napi_ok && pending &&
          napi_get_and_clear_last_exception(env, &exc) == napi_ok)
        napi_fatal_exception(env, exc);
    }
  }
  napi_close_handle_scope(env, scope);
}

static watcher_t *this_watcher(napi_env env, napi_value self) {
  bool tagged = false;
  watcher_t *w = NULL;
  napi_check_object_type_tag(env, self, &watcher_tag, &tagged);
  if (!tagged || napi_unwrap(env, self, (void **)&w) != napi_ok) {
    type_error(env, "not an FdWatcher");
    return NULL;
  }
  return w;
}

// new FdWatcher(fd, callback): only reached through watch().
static napi_value WatcherNew(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  ARG_I32(0, fd);
  napi_valuetype t;
  CHECK(napi_typeof(env, argv[1], &t));
  if (t != napi_function) return type_error(env, "callback must be a function");
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));

  watcher_t *w = calloc(1, sizeof *w);
  if (!w) return throw_errno(env, "uv_poll_init", ENOMEM);
  int r = uv_poll_init(loop, &w->poll, fd);
  if (r < 0) {
    free(w);
    return throw_errno(env, "uv_poll_init", -r);
  }
  w->poll.data = w;
  w->env = env;
  w->refs = 2;  // the uv handle and the JS wrapper
  napi_value name;
  if (napi_create_reference(env, argv[1], 1, &w->callback) != napi_ok ||
      napi_create_reference(env, self, 0, &w->self) != napi_ok ||
      napi_create_string_utf8(env, "tsbpf:FdWatcher", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, self, name, &w->actx) != napi_ok ||
      napi_add_async_cleanup_hook(env, cleanup_hook, w, &w->hook) != napi_ok ||
      napi_type_tag_object(env, self, &watcher_tag) != napi_ok ||
      napi_wrap(env, self, w, watcher_finalize, NULL, NULL) != napi_ok) {
    // Rare (out of memory); leak the few bytes rather than half-tear down.
    return fail(env);
  }
  return self;
}

static napi_value WatcherStart(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  watcher_t *w = this_watcher(env, self);
  if (!w) return NULL;
  bool readable = false, writable = false;
  napi_get_value_bool(env, argv[0], &readable);
  napi_get_value_bool(env, argv[1], &writable);
  if (w->closing) return throw_errno(env, "uv_poll_start", EBADF);
  int events = (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0);
  int r = uv_poll_start(&w->poll, events, on_poll);
  if (r < 0) return throw_errno(env, "uv_poll_start", -r);
  if (!w->started) napi_reference_ref(env, w->self, NULL);
  w->started = true;
  return NULL;
}

static napi_value WatcherStop(napi_env env, napi_callback_info info) {
  GET_ARGS(0);
  watcher_t *w = this_watcher(env, self);
  if (!w) return NULL;
  if (w->closing || !w->started) return NULL;
  uv_poll_stop(&w->poll);
  w->started = false;
  napi_reference_unref(env, w->self, NULL);
  return NULL;
}

static napi_value WatcherClose(napi_env env, napi_callback_info info) {
  GET_ARGS(0);
  watcher_t *w = this_watcher(env, self);
  if (w) watcher_close(w);
  return NULL;
}

static napi_value WatcherRef(napi_env env, napi_callback_info info) {
  GET_ARGS(0);
  watcher_t *w = this_watcher(env, self);
  if (w && !w->closing) uv_ref((uv_handle_t *)&w->poll);
  return NULL;
}

static napi_value WatcherUnref(napi_env env, napi_callback_info info) {
  GET_ARGS(0);
  watcher_t *w = this_watcher(env, self);
  if (w && !w->closing) uv_unref((uv_handle_t *)&w->poll);
  return NULL;
}

static void delete_ref(napi_env env, void *data, void *hint) {
  (void)hint;
  napi_delete_reference(env, data);
}

static napi_value Watch(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  void *ctor_ref;
  napi_value ctor, obj;
  CHECK(napi_get_instance_data(env, &ctor_ref));
  CHECK(napi_get_reference_value(env, (napi_ref)ctor_ref, &ctor));
  CHECK(napi_new_instance(env, ctor, 2, argv, &obj));
  return obj;
}

// ---------------------------------------------------------------- sockets
// For netlink (XDP and tc on kernels without links) and raw packet sockets
// (socket filters): Node has no AF_NETLINK or AF_PACKET. Addresses and option
// values are bytes built in TypeScript (src/internal/netlink/, src/link/socket.ts).

static napi_value Socket(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  ARG_I32(0, domain);
  ARG_I32(1, type);
  ARG_I32(2, protocol);
  int fd = socket(domain, type | SOCK_CLOEXEC, protocol);
  if (fd < 0) return throw_errno(env, "socket", errno);
  return make_number(env, fd);
}

static napi_value Bind(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  ARG_I32(0, fd);
  void *addr;
  size_t len;
  if (!get_bytes(env, argv[1], &addr, &len)) return type_error(env, "addr must be a Uint8Array");
  if (bind(fd, addr, (socklen_t)len) < 0) return throw_errno(env, "bind", errno);
  return NULL;
}

// sendto(fd, data, addr | null): bytes sent.
static napi_value SendTo(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  ARG_I32(0, fd);
  void *data, *addr = NULL;
  size_t len, alen = 0;
  if (!get_bytes(env, argv[1], &data, &len)) return type_error(env, "data must be a Uint8Array");
  napi_valuetype t;
  CHECK(napi_typeof(env, argv[2], &t));
  if (t != napi_null && t != napi_undefined && !get_bytes(env, argv[2], &addr, &alen))
    return type_error(env, "addr must be a Uint8Array or null");
  ssize_t r = sendto(fd, data, len, 0, addr, (socklen_t)alen);
  if (r < 0) return throw_errno(env, "sendto", errno);
  return make_number(env, r);
}

// recv(fd, buffer, flags): bytes received (the datagram's full length with MSG_TRUNC).
static napi_value Recv(napi_env env, napi_callback_info info) {
  GET_ARGS(3);
  ARG_I32(0, fd);
  void *data;
  size_t len;
  if (!get_bytes(env, argv[1], &data, &len)) return type_error(env, "buffer must be a Uint8Array");
  ARG_I32(2, flags);
  ssize_t r;
  do r = recv(fd, data, len, flags); while (r < 0 && errno == EINTR);
  if (r < 0) return throw_errno(env, "recv", errno);
  return make_number(env, r);
}

static napi_value SetSockOpt(napi_env env, napi_callback_info info) {
  GET_ARGS(4);
  ARG_I32(0, fd);
  ARG_I32(1, level);
  ARG_I32(2, name);
  void *val;
  size_t len;
  if (!get_bytes(env, argv[3], &val, &len)) return type_error(env, "value must be a Uint8Array");
  if (setsockopt(fd, level, name, val, (socklen_t)len) < 0) return throw_errno(env, "setsockopt", errno);
  return NULL;
}

// pidfd_open(pid, flags): the key of a task storage map from user space (5.3+;
// glibc 2.36 has no wrapper everywhere, so through syscall()).
static napi_value PidfdOpen(napi_env env, napi_callback_info info) {
  GET_ARGS(2);
  ARG_I32(0, pid);
  ARG_I32(1, flags);
  long fd = syscall(SYS_pidfd_open, pid, (unsigned)flags);
  if (fd < 0) return throw_errno(env, "pidfd_open", errno);
  return make_number(env, fd);
}

// ---------------------------------------------------------------- module

NAPI_MODULE_INIT() {
  napi_property_descriptor methods[] = {
      {"start", NULL, WatcherStart, NULL, NULL, NULL, napi_default, NULL},
      {"stop", NULL, WatcherStop, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, WatcherClose, NULL, NULL, NULL, napi_default, NULL},
      {"ref", NULL, WatcherRef, NULL, NULL, NULL, napi_default, NULL},
      {"unref", NULL, WatcherUnref, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value ctor;
  napi_ref ctor_ref;
  CHECK(napi_define_class(env, "FdWatcher", NAPI_AUTO_LENGTH, WatcherNew, NULL,
                          sizeof methods / sizeof methods[0], methods, &ctor));
  CHECK(napi_create_reference(env, ctor, 1, &ctor_ref));
  CHECK(napi_set_instance_data(env, ctor_ref, delete_ref, NULL));

  napi_property_descriptor fns[] = {
      {"bpf", NULL, Bpf, NULL, NULL, NULL, napi_enumerable, NULL},
      {"perfEventOpen", NULL, PerfEventOpen, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ioctl", NULL, Ioctl, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, Close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mmap", NULL, Mmap, NULL, NULL, NULL, napi_enumerable, NULL},
      {"munmap", NULL, Munmap, NULL, NULL, NULL, napi_enumerable, NULL},
      {"addressOf", NULL, AddressOf, NULL, NULL, NULL, napi_enumerable, NULL},
      {"watch", NULL, Watch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"socket", NULL, Socket, NULL, NULL, NULL, napi_enumerable, NULL},
      {"bind", NULL, Bind, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sendto", NULL, SendTo, NULL, NULL, NULL, napi_enumerable, NULL},
      {"recv", NULL, Recv, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setsockopt", NULL, SetSockOpt, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pidfdOpen", NULL, PidfdOpen, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns));
  return exports;
}
