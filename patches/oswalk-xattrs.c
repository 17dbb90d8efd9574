/*
 * OS Walk: the extended attributes of a file in an export directory, for the translate daemon
 * (node has no xattr calls of its own). Never follows a symlink: a link's own attributes are
 * the link's.
 *
 * Included by oswalk-fast-read.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

/* Bigger than any list or value the namespace keeps (4 KiB per version in all). */
#define OW_XATTR_LIST_MAX 65536
#define OW_XATTR_VALUE_MAX 65536

/* oswalk_xattrs_read(path): { name: Buffer } of the path's attributes whose names start with
 * one of the prefixes in the second argument (an array of strings); null when the filesystem
 * has no xattrs there or the path is gone. */
NAPI_METHOD(oswalk_xattrs_read) {
  NAPI_ARGV(2)
  NAPI_ARGV_UTF8_MALLOC(path, 0)
  uint32_t nprefixes = 0;
  napi_get_array_length(env, argv[1], &nprefixes);
  char *list = malloc(OW_XATTR_LIST_MAX);
  char *value = malloc(OW_XATTR_VALUE_MAX);
  napi_value result;
  napi_get_null(env, &result);
  ssize_t n = list && value ? llistxattr(path, list, OW_XATTR_LIST_MAX) : -1;
  if (n >= 0) {
    napi_create_object(env, &result);
    for (char *name = list; name < list + n; name += strlen(name) + 1) {
      int kept = 0;
      for (uint32_t i = 0; i < nprefixes && !kept; i++) {
        napi_value p;
        char prefix[64];
        size_t len = 0;
        napi_get_element(env, argv[1], i, &p);
        if (napi_get_value_string_utf8(env, p, prefix, sizeof(prefix), &len) == napi_ok && strncmp(name, prefix, len) == 0) kept = 1;
      }
      if (!kept) continue;
      ssize_t vlen = lgetxattr(path, name, value, OW_XATTR_VALUE_MAX);
      /* Gone since it was listed, or too big to keep anyway: the daemon sees it is missing. */
      if (vlen < 0) continue;
      napi_value buf;
      void *data;
      napi_create_buffer_copy(env, (size_t) vlen, value, &data, &buf);
      napi_set_named_property(env, result, name, buf);
    }
  }
  free(list);
  free(value);
  free(path);
  return result;
}
