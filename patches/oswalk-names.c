/*
 * OS Walk: names the namespace cannot hold are refused with EILSEQ before libfuse sees them.
 *
 * The namespace keeps names as UTF-8 text, and fuse-native hands every path to JavaScript
 * through napi_create_string_utf8, which turns each byte that is not UTF-8 into U+FFFD: two
 * names that differ in such bytes would become one, and a write to one would overwrite the
 * other. So every request that carries a name (a lookup, a create of any kind, a rename or
 * link target, an extended attribute's name, and a symlink's target, kept as text too) is
 * checked here, on the FUSE thread that read it from the device, and one that is not valid
 * UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF) is answered
 * EILSEQ at once. Nothing else of the filesystem changes: every name it has is valid.
 *
 * Included by oswalk-passthrough.c, whose channel reads the requests.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

/* Opcodes of <linux/fuse.h> whose requests carry names. */
#define OW_FUSE_LOOKUP 1
#define OW_FUSE_SYMLINK 6
#define OW_FUSE_MKNOD 8
#define OW_FUSE_MKDIR 9
#define OW_FUSE_UNLINK 10
#define OW_FUSE_RMDIR 11
#define OW_FUSE_RENAME 12
#define OW_FUSE_LINK 13
#define OW_FUSE_SETXATTR 21
#define OW_FUSE_GETXATTR 22
#define OW_FUSE_REMOVEXATTR 24
#define OW_FUSE_CREATE 35
#define OW_FUSE_RENAME2 45

/* 1 when s[0..len) is UTF-8 as RFC 3629 defines it. */
static int ow_utf8_valid (const unsigned char *s, size_t len) {
  size_t i = 0;
  while (i < len) {
    unsigned char c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) n = 1;
    else if (c == 0xE0) { n = 2; lo = 0xA0; }
    else if (c == 0xED) { n = 2; hi = 0x9F; }
    else if (c >= 0xE1 && c <= 0xEF) n = 2;
    else if (c == 0xF0) { n = 3; lo = 0x90; }
    else if (c == 0xF4) { n = 3; hi = 0x8F; }
    else if (c >= 0xF1 && c <= 0xF3) n = 3;
    else return 0;
    if (i + n >= len) return 0;
    if (s[i + 1] < lo || s[i + 1] > hi) return 0;
    for (size_t k = 2; k <= n; k++) {
      if (s[i + k] < 0x80 || s[i + k] > 0xBF) return 0;
    }
    i += n + 1;
  }
  return 1;
}

/*
 * The NUL-terminated strings of a request body, from offset `at`: `count` of them, each checked.
 * 1 when all are valid UTF-8, or when the body is not laid out as expected (libfuse then
 * answers it as before).
 */
static int ow_names_valid (const char *body, size_t size, size_t at, int count) {
  for (int k = 0; k < count; k++) {
    if (at >= size) return 1;
    const char *end = memchr(body + at, '\0', size - at);
    if (end == NULL) return 1;
    size_t len = (size_t) (end - (body + at));
    if (!ow_utf8_valid((const unsigned char *) body + at, len)) return 0;
    at += len + 1;
  }
  return 1;
}

/*
 * 1 when a request read from the device names something the namespace cannot hold exactly.
 * Offsets are those of the fixed part before the names, as the kernel sends it to a daemon of
 * protocol 7.19 (libfuse 2.9).
 */
static int ow_request_badly_named (const char *buf, size_t size, size_t header, uint32_t opcode) {
  const char *body = buf + header;
  size_t n = size - header;
  switch (opcode) {
    case OW_FUSE_LOOKUP:
    case OW_FUSE_UNLINK:
    case OW_FUSE_RMDIR:
    case OW_FUSE_REMOVEXATTR:
      return !ow_names_valid(body, n, 0, 1);
    case OW_FUSE_SYMLINK:
      /* the link's name, then its target */
      return !ow_names_valid(body, n, 0, 2);
    case OW_FUSE_MKNOD:
    case OW_FUSE_CREATE:
      /* fuse_mknod_in, fuse_create_in: 16 bytes */
      return !ow_names_valid(body, n, 16, 1);
    case OW_FUSE_MKDIR:
    case OW_FUSE_LINK:
    case OW_FUSE_SETXATTR:
    case OW_FUSE_GETXATTR:
      /* fuse_mkdir_in, fuse_link_in, fuse_setxattr_in, fuse_getxattr_in: 8 bytes */
      return !ow_names_valid(body, n, 8, 1);
    case OW_FUSE_RENAME:
      /* fuse_rename_in (8 bytes), the old name, the new one */
      return !ow_names_valid(body, n, 8, 2);
    case OW_FUSE_RENAME2:
      return !ow_names_valid(body, n, 16, 2);
    default:
      return 0;
  }
}

/* Answers request `unique` with -err on the device. */
static void ow_reply_error (int fd, uint64_t unique, int err) {
  struct { uint32_t len; int32_t error; uint64_t unique; } out = { sizeof(out), -err, unique };
  /* ENOENT: the request was interrupted meanwhile; nothing else can be done about a failure. */
  ssize_t res = write(fd, &out, sizeof(out));
  (void) res;
}
