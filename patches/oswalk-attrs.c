/*
 * OS Walk: the attributes a directory listing carried, answered on the FUSE threads.
 *
 * `ls -l`, find -ls, cp -a and rsync stat every name of a directory they just read. libfuse 2
 * has no readdirplus, so each stat is a LOOKUP, and each would be a hop to the JavaScript thread
 * and back (about 70 µs, most of it the hop), plus one more for `ls -l`'s security.selinux. The
 * listing already holds every name's attributes (ops.ts direntStats, from the metadata cache),
 * so readdir keeps them here and getattr, getxattr and listxattr of those names are answered
 * without JavaScript: what readdirplus gives libfuse 3.
 *
 * Never staler than the JavaScript side: every entry belongs to one generation, and the
 * generation moves
 *  - at the start and at the end of every FUSE operation that may change anything (all but the
 *    ones that only look: ow_op_looks), so an entry kept before or during a change is never
 *    answered after it;
 *  - whenever the metadata cache learns of a change (another node's commit, Redis back after
 *    an outage: oswalk_attrs_forget from overlay/cache.ts);
 * and a path whose atime alone moved (a read, here or elsewhere: relatime) is dropped alone
 * (oswalk_attrs_forget_path): the first `ls -l` of a directory moves the directory's atime,
 * which must not throw away what its listing just kept. Both run on the JavaScript thread, as
 * readdir's keeping does, so a forget comes after the keeping of what it forgets or before the
 * listing read it;
 * and a listing that began in one generation keeps nothing if it ended in another. An entry
 * also lapses after OW_ATTRS_TTL_NS, well within the metadata cache's own age limit.
 *
 * Included by oswalk-fast-read.c.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define OW_ATTRS_BUCKETS 65536
/* A directory of more names than this keeps the first ones: memory stays bounded. */
#define OW_ATTRS_MAX 262144
#define OW_ATTRS_TTL_NS (5ULL * 1000000000ULL)

typedef struct ow_attrs_entry {
  struct ow_attrs_entry *next;
  struct stat st;
  uint64_t expires;
  /* The entry has no extended attribute at all. */
  int no_xattrs;
  char path[];
} ow_attrs_entry_t;

static ow_attrs_entry_t *ow_attrs_table[OW_ATTRS_BUCKETS];
static pthread_mutex_t ow_attrs_mutex = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint64_t ow_attrs_gen = 1;
/* The generation the table's entries belong to (under the mutex). */
static uint64_t ow_attrs_table_gen = 0;
static size_t ow_attrs_count = 0;
static _Atomic uint64_t ow_attrs_hits = 0;

static uint64_t ow_attrs_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

static uint32_t ow_attrs_hash(const char *s) {
  uint32_t h = 2166136261u;
  for (; *s; s++) h = (h ^ (uint8_t) *s) * 16777619u;
  return h % OW_ATTRS_BUCKETS;
}

/* Under the mutex: drop every entry. */
static void ow_attrs_clear_locked(void) {
  if (ow_attrs_count == 0) return;
  for (size_t i = 0; i < OW_ATTRS_BUCKETS; i++) {
    for (ow_attrs_entry_t *e = ow_attrs_table[i]; e;) {
      ow_attrs_entry_t *next = e->next;
      free(e);
      e = next;
    }
    ow_attrs_table[i] = NULL;
  }
  ow_attrs_count = 0;
}

static inline void ow_attrs_bump(void) {
  atomic_fetch_add(&ow_attrs_gen, 1);
}

static inline uint64_t ow_attrs_generation(void) {
  return atomic_load(&ow_attrs_gen);
}

/* Under the mutex: the entry for path, if it is of the current generation and not lapsed. */
static ow_attrs_entry_t *ow_attrs_find_locked(const char *path) {
  if (ow_attrs_table_gen != ow_attrs_generation()) return NULL;
  for (ow_attrs_entry_t *e = ow_attrs_table[ow_attrs_hash(path)]; e; e = e->next) {
    if (strcmp(e->path, path) == 0) return e->expires > ow_attrs_now() ? e : NULL;
  }
  return NULL;
}

/* getattr: 1 with *st filled when the last listing of path's directory answers it. */
static int ow_attrs_get(const char *path, struct stat *st) {
  pthread_mutex_lock(&ow_attrs_mutex);
  ow_attrs_entry_t *e = ow_attrs_find_locked(path);
  if (e) *st = e->st;
  pthread_mutex_unlock(&ow_attrs_mutex);
  if (e) atomic_fetch_add(&ow_attrs_hits, 1);
  return e != NULL;
}

/* getxattr, listxattr: 1 when path is known to have no extended attribute. */
static int ow_attrs_none(const char *path) {
  pthread_mutex_lock(&ow_attrs_mutex);
  ow_attrs_entry_t *e = ow_attrs_find_locked(path);
  int none = e != NULL && e->no_xattrs;
  pthread_mutex_unlock(&ow_attrs_mutex);
  if (none) atomic_fetch_add(&ow_attrs_hits, 1);
  return none;
}

/* The namespaces the mount keeps (src/state/xattrs.ts XATTR_PREFIXES): others are JavaScript's to refuse. */
static int ow_attrs_kept_name(const char *name) {
  return strncmp(name, "user.", 5) == 0 || strncmp(name, "trusted.", 8) == 0 || strncmp(name, "security.", 9) == 0;
}

/*
 * readdir: keep dir/name's attributes, listed while the generation was `gen`. st_mode 0 is a
 * name the listing had no attributes for (direntStats' unknown), or '.', '..': not kept.
 */
static void ow_attrs_put(uint64_t gen, const char *dir, const char *name, const struct stat *st, int no_xattrs) {
  if (st->st_mode == 0 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) return;
  size_t dlen = strlen(dir);
  int root = dlen == 1 && dir[0] == '/';
  size_t len = (root ? 0 : dlen) + 1 + strlen(name);
  pthread_mutex_lock(&ow_attrs_mutex);
  if (gen != ow_attrs_generation()) {
    pthread_mutex_unlock(&ow_attrs_mutex);
    return;
  }
  if (ow_attrs_table_gen != gen) {
    ow_attrs_clear_locked();
    ow_attrs_table_gen = gen;
  }
  ow_attrs_entry_t *e = ow_attrs_count < OW_ATTRS_MAX ? malloc(sizeof(ow_attrs_entry_t) + len + 1) : NULL;
  if (e) {
    memcpy(e->path, dir, root ? 0 : dlen);
    e->path[root ? 0 : dlen] = '/';
    strcpy(e->path + (root ? 0 : dlen) + 1, name);
    e->st = *st;
    e->no_xattrs = no_xattrs;
    e->expires = ow_attrs_now() + OW_ATTRS_TTL_NS;
    uint32_t h = ow_attrs_hash(e->path);
    /* A second listing of the same directory within one generation: the newer entry shadows. */
    e->next = ow_attrs_table[h];
    ow_attrs_table[h] = e;
    ow_attrs_count++;
  }
  pthread_mutex_unlock(&ow_attrs_mutex);
}

/* oswalk_attrs_forget(): the metadata cache learnt of a change; nothing kept so far is answered. */
NAPI_METHOD(oswalk_attrs_forget) {
  ow_attrs_bump();
  return NULL;
}

/* oswalk_attrs_forget_path(path): only path's attributes changed (its atime). */
NAPI_METHOD(oswalk_attrs_forget_path) {
  NAPI_ARGV(1)
  NAPI_ARGV_UTF8_MALLOC(path, 0)
  pthread_mutex_lock(&ow_attrs_mutex);
  for (ow_attrs_entry_t **at = &ow_attrs_table[ow_attrs_hash(path)]; *at;) {
    ow_attrs_entry_t *e = *at;
    if (strcmp(e->path, path) == 0) {
      *at = e->next;
      free(e);
      ow_attrs_count--;
    } else {
      at = &e->next;
    }
  }
  pthread_mutex_unlock(&ow_attrs_mutex);
  free(path);
  return NULL;
}

/* oswalk_attrs_stats(): [answers given here, entries kept] (for the FS process's stats). */
NAPI_METHOD(oswalk_attrs_stats) {
  pthread_mutex_lock(&ow_attrs_mutex);
  double kept = (double) ow_attrs_count;
  pthread_mutex_unlock(&ow_attrs_mutex);
  napi_value result, hits, count;
  napi_create_array_with_length(env, 2, &result);
  napi_create_double(env, (double) atomic_load(&ow_attrs_hits), &hits);
  napi_create_double(env, kept, &count);
  napi_set_element(env, result, 0, hits);
  napi_set_element(env, result, 1, count);
  return result;
}
