/*
 * OS Walk: reads of unchanged files served on fuse-native's FUSE threads.
 *
 * fuse-native hands every request to the one JavaScript thread and waits for the answer; for
 * reads that costs a thread switch, a JS call and garbage per 128 KiB, and the JS thread was
 * the bottleneck of sequential reads (BENCHMARKS.md). So when a file is opened and its
 * content is exactly a committed version, the overlay gives this code the version's chunk
 * list ("plan", keyed by the open file handle). A read then finds its chunks in the node's
 * chunk store, checks each one once per load (oswalk-chunk-check.c), and copies from it, all on
 * the FUSE thread that took the request; loader threads read ahead of a sequential reader.
 *
 * Anything this code cannot do it leaves to JavaScript, unchanged: a chunk that is not in the
 * local store (the fetcher gets it from a peer), a chunk whose bytes do not match its hash
 * (the store quarantines it and the fetcher gets a good copy), any I/O error. The overlay
 * drops a handle's plan before the content of its file changes, so a read that starts after a
 * write returned never sees the old version.
 *
 * Included by fuse-native.c (patches/fuse-native-2.2.6.patch).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>

#include "oswalk-chunk-check.c"
#include "oswalk-xattrs.c"
#include "oswalk-passthrough.c"
#include "oswalk-locks.c"
#include "oswalk-attrs.c"

#define OW_ALIGN 4096
/* Chunks loaded ahead of a sequential reader, by this many loader threads: each load is one
 * synchronous read, so the loaders are the reads in flight. Measured on the 2-core VM
 * (BENCHMARKS.md): 2 loaders kept a cold 1 GiB read at 1.0-1.1 GB/s, waiting on the disk;
 * 4 gave 1.3-1.45, 6 with 12 ahead 1.41 (median of 10), 8 with 32 ahead 1.48. */
#define OW_AHEAD 32
#define OW_LOADERS 8
/* Chunks kept per handle: the one being read, read-ahead, and a few behind for readers that
 * jump back a little. At most 4 MiB each (the chunker's maximum); OW_MEMORY_SOFT_LIMIT bounds
 * them all. */
#define OW_SLOTS 40
#define OW_NEAR (1u << 20)
#define OW_BUCKETS 1024
/* Past this many bytes of loaded chunks in all plans, plans keep only the chunk in use. */
#define OW_MEMORY_SOFT_LIMIT (256u << 20)
#define OW_ENTRY_SIZE (OW_HASH_SIZE + 4)

typedef struct {
  uint64_t offset;
  uint32_t size;
  unsigned char hash[OW_HASH_SIZE];
} ow_chunk_t;

enum { OW_EMPTY = 0, OW_LOADING, OW_READY };

typedef struct {
  int64_t index;
  int state;
  /* Readers copying from buf with the plan unlocked: the slot is not reused meanwhile. */
  int readers;
  unsigned char *buf;
} ow_slot_t;

typedef struct ow_plan {
  struct ow_plan *next;
  uint64_t fh;
  atomic_int refs;
  /* Out of the table: queued read-ahead is skipped. */
  atomic_int dropped;
  /* Bytes this plan's reads returned (the overlay keeps a file read whole in its file cache). */
  atomic_uint_fast64_t served;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  char *dir;
  uint64_t size;
  uint32_t n;
  ow_chunk_t *chunks;
  /* OSWALK_VERIFY_READS=sha256 when the plan was made. */
  int sha_always;
  ow_slot_t slots[OW_SLOTS];
  /* Where the last read ended, and the chunk being read: sequential reading is worth reading ahead. */
  uint64_t last_end;
  int64_t current;
  /* Read-ahead has been queued for chunks below this index. */
  int64_t ahead_to;
} ow_plan_t;

typedef struct ow_job {
  struct ow_job *next;
  ow_plan_t *plan;
  int64_t index;
} ow_job_t;

static pthread_mutex_t ow_table_lock = PTHREAD_MUTEX_INITIALIZER;
static ow_plan_t *ow_table[OW_BUCKETS];

static pthread_mutex_t ow_queue_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ow_queue_cond = PTHREAD_COND_INITIALIZER;
static ow_job_t *ow_queue_head = NULL;
static ow_job_t *ow_queue_tail = NULL;
static pthread_once_t ow_loaders_once = PTHREAD_ONCE_INIT;

/* Cleared when the store's filesystem refuses O_DIRECT (tmpfs before Linux 6.6, some FUSE and
 * network filesystems): buffered reads from then on. */
static atomic_int ow_direct = 1;
static atomic_size_t ow_memory = 0;

static atomic_uint_fast64_t ow_stat_reads = 0;
static atomic_uint_fast64_t ow_stat_bytes = 0;
static atomic_uint_fast64_t ow_stat_loads = 0;
static atomic_uint_fast64_t ow_stat_fallbacks = 0;

static void ow_plan_unref (ow_plan_t *p) {
  if (atomic_fetch_sub(&p->refs, 1) != 1) return;
  for (int s = 0; s < OW_SLOTS; s++) {
    if (p->slots[s].buf != NULL) {
      atomic_fetch_sub(&ow_memory, p->chunks[p->slots[s].index].size);
      free(p->slots[s].buf);
    }
  }
  pthread_mutex_destroy(&p->lock);
  pthread_cond_destroy(&p->cond);
  free(p->chunks);
  free(p->dir);
  free(p);
}

static ow_plan_t *ow_plan_get (uint64_t fh) {
  pthread_mutex_lock(&ow_table_lock);
  ow_plan_t *p = ow_table[fh % OW_BUCKETS];
  while (p != NULL && p->fh != fh) p = p->next;
  if (p != NULL) atomic_fetch_add(&p->refs, 1);
  pthread_mutex_unlock(&ow_table_lock);
  return p;
}

/* Takes fh's plan out of the table (readers that hold it finish with it); returns the bytes its
 * reads returned. */
static uint64_t ow_plan_remove (uint64_t fh) {
  pthread_mutex_lock(&ow_table_lock);
  ow_plan_t **at = &ow_table[fh % OW_BUCKETS];
  while (*at != NULL && (*at)->fh != fh) at = &(*at)->next;
  ow_plan_t *p = *at;
  if (p != NULL) *at = p->next;
  pthread_mutex_unlock(&ow_table_lock);
  if (p == NULL) return 0;
  atomic_store(&p->dropped, 1);
  uint64_t served = atomic_load(&p->served);
  ow_plan_unref(p);
  return served;
}

static int ow_open_chunk (const char *dir, const unsigned char *hash, int flags) {
  static const char *areas[] = { "own", "cache", "own" };
  static const char hexdigits[] = "0123456789abcdef";
  char hex[2 * OW_HASH_SIZE + 1];
  for (int i = 0; i < OW_HASH_SIZE; i++) {
    hex[2 * i] = hexdigits[hash[i] >> 4];
    hex[2 * i + 1] = hexdigits[hash[i] & 15];
  }
  hex[2 * OW_HASH_SIZE] = 0;
  char path[4096];
  /* Own, then cache, then own again: a promotion (cache -> own rename) between the first two
   * looks must not read as "absent" (as ChunkStore.get). */
  for (int a = 0; a < 3; a++) {
    int n = snprintf(path, sizeof(path), "%s/%s/%.2s/%.2s/%s", dir, areas[a], hex, hex + 2, hex);
    if (n < 0 || (size_t) n >= sizeof(path)) return -1;
    int fd = open(path, flags | O_RDONLY | O_CLOEXEC);
    if (fd >= 0 || errno != ENOENT) return fd;
  }
  return -1;
}

/* Reads and verifies chunk i; NULL when it is absent, unreadable or does not match its hash.
 * `streaming`: read-ahead for a sequential reader, whose bytes the mount's page cache keeps, so
 * the chunk file is read around the page cache (O_DIRECT: no second copy in memory, less CPU).
 * A reader's own load goes through the page cache, where a random reader finds hot chunks. */
static unsigned char *ow_load (ow_plan_t *p, int64_t i, int streaming) {
  const ow_chunk_t *c = &p->chunks[i];
  size_t span = ((size_t) c->size + OW_ALIGN - 1) / OW_ALIGN * OW_ALIGN;
  unsigned char *buf = NULL;
  if (posix_memalign((void **) &buf, OW_ALIGN, span == 0 ? OW_ALIGN : span) != 0) return NULL;
  int direct = streaming && atomic_load(&ow_direct);
  int fd = ow_open_chunk(p->dir, c->hash, direct ? O_DIRECT : 0);
  if (fd < 0 && direct && errno == EINVAL) {
    atomic_store(&ow_direct, 0);
    direct = 0;
    fd = ow_open_chunk(p->dir, c->hash, 0);
  }
  if (fd < 0) {
    free(buf);
    return NULL;
  }
  size_t got = 0;
  /* With O_DIRECT a short read that ends off a block boundary is the end of the file. */
  while (got < c->size && (!direct || got % OW_ALIGN == 0)) {
    ssize_t n = pread(fd, buf + got, direct ? span - got : c->size - got, (off_t) got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && direct && errno == EINVAL && got == 0) {
      /* Opened, but refused at read time (some filesystems check only then). */
      atomic_store(&ow_direct, 0);
      direct = 0;
      if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_DIRECT) == 0) continue;
    }
    if (n <= 0) break;
    got += (size_t) n;
  }
  int ok = got == c->size && ow_chunk_check(fd, buf, c->size, c->hash, p->sha_always) != OW_CHECK_FAILED;
  close(fd);
  if (!ok) {
    free(buf);
    return NULL;
  }
  atomic_fetch_add(&ow_stat_loads, 1);
  atomic_fetch_add(&ow_memory, c->size);
  return buf;
}

static ow_slot_t *ow_find (ow_plan_t *p, int64_t i) {
  for (int s = 0; s < OW_SLOTS; s++) {
    if (p->slots[s].state != OW_EMPTY && p->slots[s].index == i) return &p->slots[s];
  }
  return NULL;
}

static void ow_slot_clear (ow_plan_t *p, ow_slot_t *s) {
  if (s->buf != NULL) {
    atomic_fetch_sub(&ow_memory, p->chunks[s->index].size);
    free(s->buf);
  }
  s->buf = NULL;
  s->state = OW_EMPTY;
  s->index = -1;
}

/* A slot to load chunk i into (plan lock held): an empty one, else the ready chunk furthest
 * behind `i`, else (for a reader, not for read-ahead) the one furthest ahead. NULL when every
 * slot is loading or being copied from. */
static ow_slot_t *ow_victim (ow_plan_t *p, int64_t i, int for_reader) {
  ow_slot_t *behind = NULL, *ahead = NULL;
  for (int s = 0; s < OW_SLOTS; s++) {
    ow_slot_t *x = &p->slots[s];
    if (x->state == OW_EMPTY) return x;
    if (x->state != OW_READY || x->readers > 0) continue;
    if (x->index < i && (behind == NULL || x->index < behind->index)) behind = x;
    if (x->index > i && (ahead == NULL || x->index > ahead->index)) ahead = x;
  }
  if (behind != NULL) return behind;
  return for_reader ? ahead : NULL;
}

/* Loads chunk i into slot s (plan lock held; released while reading). Returns whether the chunk
 * is ready. */
static int ow_fill (ow_plan_t *p, ow_slot_t *s, int64_t i, int streaming) {
  s->index = i;
  s->state = OW_LOADING;
  pthread_mutex_unlock(&p->lock);
  unsigned char *buf = ow_load(p, i, streaming);
  pthread_mutex_lock(&p->lock);
  s->buf = buf;
  if (buf == NULL) ow_slot_clear(p, s);
  else s->state = OW_READY;
  pthread_cond_broadcast(&p->cond);
  return buf != NULL;
}

/* Chunk i ready in a slot (plan lock held throughout, released while loading), or NULL. */
static ow_slot_t *ow_acquire (ow_plan_t *p, int64_t i) {
  for (;;) {
    ow_slot_t *s = ow_find(p, i);
    if (s != NULL && s->state == OW_READY) return s;
    if (s == NULL && (s = ow_victim(p, i, 1)) != NULL) {
      /* Absent, or a load by another thread failed: one try here, then JavaScript answers. */
      ow_slot_clear(p, s);
      return ow_fill(p, s, i, 0) ? s : NULL;
    }
    pthread_cond_wait(&p->cond, &p->lock);
  }
}

static void *ow_loader (void *arg) {
  (void) arg;
  /* So that top -H and /proc tell them from the FUSE threads. */
  pthread_setname_np(pthread_self(), "oswalk-loader");
  for (;;) {
    pthread_mutex_lock(&ow_queue_lock);
    while (ow_queue_head == NULL) pthread_cond_wait(&ow_queue_cond, &ow_queue_lock);
    ow_job_t *job = ow_queue_head;
    ow_queue_head = job->next;
    if (ow_queue_head == NULL) ow_queue_tail = NULL;
    pthread_mutex_unlock(&ow_queue_lock);

    ow_plan_t *p = job->plan;
    pthread_mutex_lock(&p->lock);
    /* Skipped when the reader got there first, moved on, or memory is short. */
    if (!atomic_load(&p->dropped) && ow_find(p, job->index) == NULL && job->index > p->current && atomic_load(&ow_memory) < OW_MEMORY_SOFT_LIMIT) {
      ow_slot_t *s = ow_victim(p, p->current, 0);
      if (s != NULL) {
        ow_slot_clear(p, s);
        ow_fill(p, s, job->index, 1);
      }
    }
    pthread_mutex_unlock(&p->lock);
    ow_plan_unref(p);
    free(job);
  }
  return NULL;
}

static void ow_start_loaders (void) {
  for (int t = 0; t < OW_LOADERS; t++) {
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_create(&thread, &attr, ow_loader, NULL);
    pthread_attr_destroy(&attr);
  }
}

/* Queue read-ahead of chunks [from, to) (plan lock held). */
static void ow_read_ahead (ow_plan_t *p, int64_t from, int64_t to) {
  for (int64_t i = from; i < to; i++) {
    ow_job_t *job = malloc(sizeof(ow_job_t));
    if (job == NULL) return;
    atomic_fetch_add(&p->refs, 1);
    job->plan = p;
    job->index = i;
    job->next = NULL;
    pthread_mutex_lock(&ow_queue_lock);
    if (ow_queue_tail != NULL) ow_queue_tail->next = job;
    else ow_queue_head = job;
    ow_queue_tail = job;
    pthread_cond_signal(&ow_queue_cond);
    pthread_mutex_unlock(&ow_queue_lock);
  }
}

static int64_t ow_chunk_at (ow_plan_t *p, uint64_t offset) {
  int64_t lo = 0, hi = (int64_t) p->n - 1;
  while (lo < hi) {
    int64_t mid = (lo + hi + 1) / 2;
    if (p->chunks[mid].offset <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/* Bytes read into buf, or -1: not served here, JavaScript answers the request. */
static int ow_read (uint64_t fh, char *buf, size_t len, off_t offset) {
  ow_plan_t *p = ow_plan_get(fh);
  if (p == NULL) return -1;
  uint64_t start = (uint64_t) offset;
  if (start >= p->size) {
    ow_plan_unref(p);
    return 0;
  }
  uint64_t end = start + len < p->size ? start + len : p->size;
  int result = (int) (end - start);
  pthread_mutex_lock(&p->lock);
  /* The kernel's read-ahead sends several requests at once, which FUSE threads may take out
   * of order: near the last one's end counts as sequential. */
  int sequential = start + OW_NEAR >= p->last_end && start <= p->last_end + OW_NEAR;
  int64_t i = ow_chunk_at(p, start);
  for (uint64_t pos = start; pos < end; i++) {
    p->current = i;
    ow_slot_t *s = ow_acquire(p, i);
    if (s == NULL) {
      result = -1;
      break;
    }
    const ow_chunk_t *c = &p->chunks[i];
    uint64_t upto = c->offset + c->size < end ? c->offset + c->size : end;
    /* The copy runs unlocked, so that the kernel's concurrent requests and the loaders do not
     * queue behind it (2-3 % faster cold reads, median of 10). */
    s->readers++;
    pthread_mutex_unlock(&p->lock);
    memcpy(buf + (pos - start), s->buf + (pos - c->offset), upto - pos);
    pthread_mutex_lock(&p->lock);
    /* A reader waiting for a slot to load into may take this one now. */
    if (--s->readers == 0) pthread_cond_broadcast(&p->cond);
    pos = upto;
  }
  if (result >= 0) {
    p->last_end = end;
    if (sequential) {
      int64_t limit = i + OW_AHEAD < (int64_t) p->n ? i + OW_AHEAD : (int64_t) p->n;
      int64_t from = p->ahead_to > i && p->ahead_to <= limit ? p->ahead_to : i;
      if (from < limit && atomic_load(&ow_memory) < OW_MEMORY_SOFT_LIMIT) {
        ow_read_ahead(p, from, limit);
        p->ahead_to = limit;
      }
    }
    if (atomic_load(&ow_memory) >= OW_MEMORY_SOFT_LIMIT) {
      for (int s = 0; s < OW_SLOTS; s++) {
        if (p->slots[s].state == OW_READY && p->slots[s].readers == 0 && p->slots[s].index != p->current) ow_slot_clear(p, &p->slots[s]);
      }
    }
  }
  pthread_mutex_unlock(&p->lock);
  if (result >= 0) atomic_fetch_add(&p->served, (uint64_t) result);
  ow_plan_unref(p);
  if (result >= 0) {
    atomic_fetch_add(&ow_stat_reads, 1);
    atomic_fetch_add(&ow_stat_bytes, (uint64_t) result);
  } else {
    atomic_fetch_add(&ow_stat_fallbacks, 1);
  }
  return result;
}

/* oswalk_fast_read_add(fh, storeDir, chunks): chunks is n entries of a SHA-256 (32 bytes) and a
 * size (uint32, little-endian), in file order. Replaces the handle's plan. Returns false when
 * this addon cannot serve reads (no SHA-256 in the process). */
NAPI_METHOD(oswalk_fast_read_add) {
  NAPI_ARGV(3)
  NAPI_ARGV_UINT32(fh, 0)
  NAPI_ARGV_UTF8_MALLOC(dir, 1)
  NAPI_ARGV_BUFFER(table, 2)
  if (SHA256 == NULL || table_len % OW_ENTRY_SIZE != 0) {
    free(dir);
    NAPI_RETURN_UINT32(0)
  }
  ow_plan_t *p = calloc(1, sizeof(ow_plan_t));
  uint32_t n = (uint32_t) (table_len / OW_ENTRY_SIZE);
  ow_chunk_t *chunks = calloc(n == 0 ? 1 : n, sizeof(ow_chunk_t));
  if (p == NULL || chunks == NULL) {
    free(p);
    free(chunks);
    free(dir);
    NAPI_RETURN_UINT32(0)
  }
  uint64_t offset = 0;
  for (uint32_t i = 0; i < n; i++) {
    const unsigned char *e = (const unsigned char *) table + (size_t) i * OW_ENTRY_SIZE;
    memcpy(chunks[i].hash, e, OW_HASH_SIZE);
    chunks[i].size = (uint32_t) e[32] | ((uint32_t) e[33] << 8) | ((uint32_t) e[34] << 16) | ((uint32_t) e[35] << 24);
    chunks[i].offset = offset;
    offset += chunks[i].size;
  }
  p->fh = fh;
  atomic_init(&p->refs, 1);
  pthread_mutex_init(&p->lock, NULL);
  pthread_cond_init(&p->cond, NULL);
  p->dir = dir;
  p->size = offset;
  p->n = n;
  p->chunks = chunks;
  p->sha_always = ow_sha_always();
  p->current = -1;
  for (int s = 0; s < OW_SLOTS; s++) p->slots[s].index = -1;
  pthread_once(&ow_loaders_once, ow_start_loaders);
  ow_plan_remove(fh);
  pthread_mutex_lock(&ow_table_lock);
  p->next = ow_table[fh % OW_BUCKETS];
  ow_table[fh % OW_BUCKETS] = p;
  pthread_mutex_unlock(&ow_table_lock);
  NAPI_RETURN_UINT32(1)
}

/* oswalk_fast_read_pread(fh, buffer, position): what a FUSE read of fh would get (bytes, or -1
 * when JavaScript would answer), for tests of this file without a mount. */
NAPI_METHOD(oswalk_fast_read_pread) {
  NAPI_ARGV(3)
  NAPI_ARGV_UINT32(fh, 0)
  NAPI_ARGV_BUFFER(buf, 1)
  double position;
  if (napi_get_value_double(env, argv[2], &position) != napi_ok || position < 0) {
    napi_throw_error(env, "EINVAL", "position must be a number >= 0");
    return NULL;
  }
  NAPI_RETURN_INT32(ow_read(fh, buf, buf_len, (off_t) position))
}

/* oswalk_fast_read_drop(fh): stop serving fh; the bytes its reads were given here. */
NAPI_METHOD(oswalk_fast_read_drop) {
  NAPI_ARGV(1)
  NAPI_ARGV_UINT32(fh, 0)
  napi_value result;
  napi_create_double(env, (double) ow_plan_remove(fh), &result);
  return result;
}

/* oswalk_fast_read_served(fh): the bytes fh's reads were given here so far (0: not served here). */
NAPI_METHOD(oswalk_fast_read_served) {
  NAPI_ARGV(1)
  NAPI_ARGV_UINT32(fh, 0)
  ow_plan_t *p = ow_plan_get(fh);
  double served = p == NULL ? 0 : (double) atomic_load(&p->served);
  if (p != NULL) ow_plan_unref(p);
  napi_value result;
  napi_create_double(env, served, &result);
  return result;
}

/* Counters since the process started: reads and bytes served here, chunks loaded (and
 * checked: by their CRC or by SHA-256), reads handed to JavaScript; and the bytes of chunks
 * held now. */
static void ow_set_number (napi_env env, napi_value obj, const char *name, double value) {
  napi_value v;
  napi_create_double(env, value, &v);
  napi_set_named_property(env, obj, name, v);
}

NAPI_METHOD(oswalk_fast_read_stats) {
  napi_value result;
  napi_create_object(env, &result);
  ow_set_number(env, result, "reads", (double) atomic_load(&ow_stat_reads));
  ow_set_number(env, result, "bytes", (double) atomic_load(&ow_stat_bytes));
  ow_set_number(env, result, "chunkLoads", (double) atomic_load(&ow_stat_loads));
  ow_set_number(env, result, "fallbacks", (double) atomic_load(&ow_stat_fallbacks));
  ow_set_number(env, result, "memoryBytes", (double) atomic_load(&ow_memory));
  ow_set_number(env, result, "crcChecks", (double) atomic_load(&ow_stat_crc_checks));
  ow_set_number(env, result, "shaChecks", (double) atomic_load(&ow_stat_sha_checks));
  return result;
}

/* What the addon's NAPI_INIT exports of this file, oswalk-chunk-check.c, oswalk-xattrs.c,
 * oswalk-passthrough.c, oswalk-locks.c and oswalk-attrs.c (the patch names only this macro, so
 * new functions need no new patch). */
#define OSWALK_EXPORT_FUNCTIONS \
  NAPI_EXPORT_FUNCTION(oswalk_fast_read_add) \
  NAPI_EXPORT_FUNCTION(oswalk_fast_read_drop) \
  NAPI_EXPORT_FUNCTION(oswalk_fast_read_served) \
  NAPI_EXPORT_FUNCTION(oswalk_fast_read_pread) \
  NAPI_EXPORT_FUNCTION(oswalk_fast_read_stats) \
  NAPI_EXPORT_FUNCTION(oswalk_chunk_seal) \
  NAPI_EXPORT_FUNCTION(oswalk_chunk_sealed) \
  NAPI_EXPORT_FUNCTION(oswalk_chunk_forget_pages) \
  NAPI_EXPORT_FUNCTION(oswalk_xattrs_read) \
  NAPI_EXPORT_FUNCTION(oswalk_backing_open) \
  NAPI_EXPORT_FUNCTION(oswalk_backing_close) \
  NAPI_EXPORT_FUNCTION(oswalk_open_reply) \
  NAPI_EXPORT_FUNCTION(oswalk_locks_handler) \
  NAPI_EXPORT_FUNCTION(oswalk_lock_reply) \
  NAPI_EXPORT_FUNCTION(oswalk_attrs_forget) \
  NAPI_EXPORT_FUNCTION(oswalk_attrs_forget_path) \
  NAPI_EXPORT_FUNCTION(oswalk_attrs_stats)
