/*
 * OS Walk: how a chunk read back from the node's own store is checked.
 *
 * A chunk's bytes are checked against its SHA-256 name when they enter a store: written
 * through a mount, translated from an export directory, fetched from a peer. The store then
 * records a CRC-32 of those bytes in an extended attribute of the chunk file (OW_CRC_XATTR,
 * 4 bytes little-endian, written before the file is renamed into place), and a read served on
 * the FUSE threads checks that CRC. It catches what happens to bytes at rest (a torn write, a
 * flipped bit, a truncated file), as the CRC-32C of btrfs, Ceph and JuiceFS's cache does, at
 * 7 GB/s where SHA-256 runs at 2 (BENCHMARKS.md): during a cold read the hash was 40 % of the
 * CPU. A chunk file without the attribute (written before it existed, or on a filesystem
 * without user xattrs) or whose CRC does not match is checked against its SHA-256 name, and
 * when that matches the attribute is written (again). With OSWALK_VERIFY_READS=sha256 in the
 * environment every read is checked against the SHA-256 name.
 *
 * The CRC is zlib's (node's zlib.crc32 computes the same), from the node binary like SHA256.
 *
 * Included by oswalk-fast-read.c.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

/* From zlib and OpenSSL inside the node binary (exported for addons); weak, so an addon loaded
 * by a node without them still loads, with fast reads off (no SHA256) or every check by SHA-256
 * (no crc32). */
extern unsigned long crc32 (unsigned long crc, const unsigned char *buf, unsigned int len) __attribute__((weak));
extern unsigned char *SHA256 (const unsigned char *d, size_t n, unsigned char *md) __attribute__((weak));

#define OW_CRC_XATTR "user.oswalk.crc32"
#define OW_HASH_SIZE 32

enum { OW_CHECK_FAILED = 0, OW_CHECKED_CRC, OW_CHECKED_SHA };

static atomic_uint_fast64_t ow_stat_crc_checks = 0;
static atomic_uint_fast64_t ow_stat_sha_checks = 0;

/* zlib as built into node picks its SIMD CRC only after crc32(0, NULL, 0) checked the CPU. */
static pthread_once_t ow_crc_once = PTHREAD_ONCE_INIT;
static void ow_crc_init (void) {
  crc32(0, NULL, 0);
}

static uint32_t ow_crc (const unsigned char *buf, size_t size) {
  pthread_once(&ow_crc_once, ow_crc_init);
  return (uint32_t) crc32(0, buf, (unsigned int) size);
}

/* Records buf's CRC on the chunk file open at fd; 0 or an errno (ENOTSUP: no user xattrs there). */
static int ow_crc_seal (int fd, const unsigned char *buf, size_t size) {
  if (crc32 == NULL) return ENOTSUP;
  uint32_t v = ow_crc(buf, size);
  unsigned char le[4] = { v & 255, (v >> 8) & 255, (v >> 16) & 255, v >> 24 };
  return fsetxattr(fd, OW_CRC_XATTR, le, sizeof(le), 0) == 0 ? 0 : errno;
}

/* The CRC recorded on the chunk file open at fd, or -1 when it has none. */
static int64_t ow_crc_sealed (int fd) {
  unsigned char le[4];
  if (fgetxattr(fd, OW_CRC_XATTR, le, sizeof(le)) != sizeof(le)) return -1;
  return (int64_t) ((uint32_t) le[0] | ((uint32_t) le[1] << 8) | ((uint32_t) le[2] << 16) | ((uint32_t) le[3] << 24));
}

/* Whether buf (size bytes, read from the chunk file open at fd) is the chunk named hash. */
static int ow_chunk_check (int fd, const unsigned char *buf, size_t size, const unsigned char *hash, int sha_always) {
  int64_t sealed = sha_always || crc32 == NULL ? -1 : ow_crc_sealed(fd);
  if (sealed >= 0 && (uint32_t) sealed == ow_crc(buf, size)) {
    atomic_fetch_add(&ow_stat_crc_checks, 1);
    return OW_CHECKED_CRC;
  }
  unsigned char md[OW_HASH_SIZE];
  if (memcmp(SHA256(buf, size, md), hash, OW_HASH_SIZE) != 0) return OW_CHECK_FAILED;
  atomic_fetch_add(&ow_stat_sha_checks, 1);
  if (!sha_always && crc32 != NULL) ow_crc_seal(fd, buf, size);
  return OW_CHECKED_SHA;
}

/* OSWALK_VERIFY_READS=sha256: check every chunk read against its SHA-256 name. */
static int ow_sha_always (void) {
  const char *v = getenv("OSWALK_VERIFY_READS");
  return v != NULL && strcmp(v, "sha256") == 0;
}

/* The store's writes record a chunk's CRC off the thread that cuts and hashes the chunks
 * (there it cost 0.14 s per GiB written: writes 8-10 % slower, in 4 interleaved rounds). */
typedef struct {
  napi_async_work work;
  napi_ref callback;
  napi_ref bytes;
  int fd;
  const unsigned char *data;
  size_t size;
  int err;
} ow_seal_job_t;

static void ow_seal_execute (napi_env env, void *data) {
  ow_seal_job_t *job = (ow_seal_job_t *) data;
  job->err = ow_crc_seal(job->fd, job->data, job->size);
}

static void ow_seal_complete (napi_env env, napi_status status, void *data) {
  ow_seal_job_t *job = (ow_seal_job_t *) data;
  napi_value callback, global, err;
  napi_get_reference_value(env, job->callback, &callback);
  napi_get_global(env, &global);
  napi_create_int32(env, status == napi_ok ? job->err : ECANCELED, &err);
  napi_delete_reference(env, job->callback);
  napi_delete_reference(env, job->bytes);
  napi_delete_async_work(env, job->work);
  free(job);
  napi_call_function(env, global, callback, 1, &err, NULL);
}

/* oswalk_chunk_seal(fd, bytes, callback): records the CRC of bytes (being written to the chunk
 * file open at fd) on that file, on libuv's thread pool; callback(0 or an errno). */
NAPI_METHOD(oswalk_chunk_seal) {
  NAPI_ARGV(3)
  NAPI_ARGV_INT32(fd, 0)
  NAPI_ARGV_BUFFER(buf, 1)
  ow_seal_job_t *job = calloc(1, sizeof(ow_seal_job_t));
  if (job == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  job->fd = fd;
  job->data = (const unsigned char *) buf;
  job->size = buf_len;
  napi_value name;
  napi_create_string_utf8(env, "oswalk_chunk_seal", NAPI_AUTO_LENGTH, &name);
  napi_create_reference(env, argv[1], 1, &job->bytes);
  napi_create_reference(env, argv[2], 1, &job->callback);
  napi_create_async_work(env, NULL, name, ow_seal_execute, ow_seal_complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return NULL;
}

/* oswalk_chunk_sealed(fd): the CRC recorded on a chunk file, or -1. */
NAPI_METHOD(oswalk_chunk_sealed) {
  NAPI_ARGV(1)
  NAPI_ARGV_INT32(fd, 0)
  napi_value result;
  napi_create_double(env, (double) ow_crc_sealed(fd), &result);
  return result;
}

/* oswalk_chunk_forget_pages(fd): drop the page cache of a chunk file just written and synced.
 * A file written through a mount is in the mount's own page cache already (and one from an
 * export directory in that file's): its chunks' pages would hold the same bytes twice, and
 * on a VM each page new to the guest costs (BENCHMARKS.md). Readers that stream a file read
 * its chunks around the page cache too (O_DIRECT, oswalk-fast-read.c). Returns 0 or an errno. */
NAPI_METHOD(oswalk_chunk_forget_pages) {
  NAPI_ARGV(1)
  NAPI_ARGV_INT32(fd, 0)
  NAPI_RETURN_INT32(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED))
}
