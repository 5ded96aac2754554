/*
 * The two things the daemon needs that Node has not.
 *
 * 1. Send a datagram to an AF_UNIX socket by path, abstract names included
 * (a path whose first byte is NUL). sd_notify and the journal's native protocol need exactly
 * this; Node has no AF_UNIX datagram sockets. Non-blocking: a full receiver is EAGAIN, not a
 * stalled event loop.
 *   send(path: Buffer, data: Buffer) -> 0 or an errno value
 *
 * 2. Drop a file's pages from the page cache: posix_fadvise(POSIX_FADV_DONTNEED) on an open file,
 * which needs no privilege. On unified memory (the GB10) the page cache counts against what CUDA
 * reports free; the model's own weights, just read, are most of it.
 *   dropCache(fd: number) -> 0 or an errno value
 */
#define _POSIX_C_SOURCE 200112L
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static napi_value send_dgram(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  void *path = NULL, *data = NULL;
  size_t plen = 0, dlen = 0;
  napi_value result;
  struct sockaddr_un sa;
  int fd, err = 0;

  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_buffer_info(env, argv[0], &path, &plen) != napi_ok ||
      napi_get_buffer_info(env, argv[1], &data, &dlen) != napi_ok) {
    napi_throw_type_error(env, NULL, "send(path: Buffer, data: Buffer)");
    return NULL;
  }
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (plen == 0 || plen >= sizeof sa.sun_path) {
    err = ENAMETOOLONG;
  } else {
    memcpy(sa.sun_path, path, plen);
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      err = errno;
    } else {
      /* The exact length: an abstract name is not NUL-terminated. */
      socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
      if (sendto(fd, data, dlen, MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&sa, salen) < 0) err = errno;
      close(fd);
    }
  }
  napi_create_int32(env, err, &result);
  return result;
}

static napi_value drop_cache(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd = -1;
  napi_value result;

  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, "dropCache(fd: number)");
    return NULL;
  }
  /* posix_fadvise returns the error number itself (it does not set errno). */
  napi_create_int32(env, posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "send", NAPI_AUTO_LENGTH, send_dgram, NULL, &fn);
  napi_set_named_property(env, exports, "send", fn);
  napi_create_function(env, "dropCache", NAPI_AUTO_LENGTH, drop_cache, NULL, &fn);
  napi_set_named_property(env, exports, "dropCache", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
