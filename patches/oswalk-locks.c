/*
 * oswalk-locks.c: flock(2) and fcntl(2) record locks, answered by JavaScript (src/overlay/locks.ts),
 * which holds them in the cluster's lock table in Redis so that a lock taken through one node's
 * mount excludes the same lock taken through every other node's.
 *
 * Without a lock or flock operation libfuse leaves locking to the kernel, which keeps it on the
 * node (the mount looked lockable, and was not across nodes). fuse-native knows neither
 * operation; rather than grow its op table (and the patch), fuse_new is wrapped (see the macro at
 * the end): the mount's operations get ow_lock and ow_flock once JavaScript has registered its
 * handler with oswalk_locks_handler(fn).
 *
 * A FUSE thread that asks waits for the answer: for an F_SETLKW or a blocking flock that is as
 * long as the lock is held elsewhere, so it never blocks the JavaScript thread. Requests go to
 * JavaScript through a thread-safe function; the answer comes back with oswalk_lock_reply(id,
 * res, ...). The waiting thread looks every 100 ms whether the kernel interrupted the request (a
 * signal reached the waiting process; SIGKILL included: the kernel then waits for our answer
 * uninterruptibly) and passes that on once, as a cancel; JavaScript then answers -EINTR, or 0
 * if the lock was granted first. Every request gets exactly one answer: the thread's request
 * lives on its stack until then.
 *
 * fn(id, kind, path, owner, pid, cmd, type, start, end, fh) for a request, where kind is 0
 * (fcntl record lock), 1 (flock) or 3 (the open file fh, through which record locks were taken,
 * is closed for good: see ow_locks_release); owner is the kernel's lock owner (BigInt: the process's files for
 * record locks, the open file for flock); cmd is F_GETLK / F_SETLK / F_SETLKW for record locks,
 * 0 (non-blocking) or 1 (blocking) for flock; type is F_RDLCK / F_WRLCK / F_UNLCK (flock:
 * LOCK_SH as F_RDLCK, LOCK_EX as F_WRLCK, LOCK_UN as F_UNLCK); start and end are byte offsets,
 * end inclusive, -1 for "to the end of the file". fn(id, 2) cancels request id.
 * oswalk_lock_reply(id, res[, type, start, end, pid]): res is 0 or -errno; the rest is F_GETLK's
 * answer (type F_UNLCK: no conflicting lock).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>

typedef struct ow_lock_req {
  uint32_t id;
  int kind;
  const char *path;
  uint64_t owner;
  uint32_t pid;
  int cmd;
  int type;
  double start;
  double end;
  /* The open file (the overlay's file handle) the request came through. */
  double fh;
  /* The answer, set by oswalk_lock_reply under ow_locks_mutex. */
  int done;
  int res;
  int out_type;
  double out_start;
  double out_end;
  uint32_t out_pid;
  pthread_cond_t cond;
  struct ow_lock_req *next;
} ow_lock_req;

/* A message to JavaScript: a request, or the cancel of one (by id: the request may be answered,
 * and gone, by the time a cancel is read). */
typedef struct {
  ow_lock_req *req;
  uint32_t cancel_id;
} ow_lock_msg;

static napi_threadsafe_function ow_locks_fn;
static int ow_locks_enabled;
static pthread_mutex_t ow_locks_mutex = PTHREAD_MUTEX_INITIALIZER;
/* Requests waiting for their answer, by id. */
static ow_lock_req *ow_locks_waiting;
static uint32_t ow_locks_next_id;

static void ow_locks_call_js(napi_env env, napi_value fn, void *context, void *data) {
  ow_lock_msg *m = (ow_lock_msg *) data;
  if (env != NULL) {
    napi_value argv[10], undefined;
    napi_get_undefined(env, &undefined);
    if (m->req == NULL) {
      napi_create_uint32(env, m->cancel_id, &argv[0]);
      napi_create_int32(env, 2, &argv[1]);
      napi_call_function(env, undefined, fn, 2, argv, NULL);
    } else {
      ow_lock_req *r = m->req;
      napi_create_uint32(env, r->id, &argv[0]);
      napi_create_int32(env, r->kind, &argv[1]);
      napi_create_string_utf8(env, r->path != NULL ? r->path : "", NAPI_AUTO_LENGTH, &argv[2]);
      napi_create_bigint_uint64(env, r->owner, &argv[3]);
      napi_create_uint32(env, r->pid, &argv[4]);
      napi_create_int32(env, r->cmd, &argv[5]);
      napi_create_int32(env, r->type, &argv[6]);
      napi_create_double(env, r->start, &argv[7]);
      napi_create_double(env, r->end, &argv[8]);
      napi_create_double(env, r->fh, &argv[9]);
      napi_call_function(env, undefined, fn, 10, argv, NULL);
    }
  }
  free(m);
}

/* Sends r to JavaScript and waits for its answer, passing an interrupt on as a cancel. */
static int ow_locks_ask(ow_lock_req *r) {
  ow_lock_msg *m = calloc(1, sizeof *m);
  if (m == NULL) return -ENOMEM;
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&r->cond, &attr);
  pthread_condattr_destroy(&attr);
  pthread_mutex_lock(&ow_locks_mutex);
  r->id = ++ow_locks_next_id;
  r->next = ow_locks_waiting;
  ow_locks_waiting = r;
  pthread_mutex_unlock(&ow_locks_mutex);
  m->req = r;
  if (napi_call_threadsafe_function(ow_locks_fn, m, napi_tsfn_blocking) != napi_ok) {
    free(m);
    r->done = 1;
    r->res = -EIO;
  }
  int cancelled = 0;
  pthread_mutex_lock(&ow_locks_mutex);
  while (!r->done) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += 100 * 1000 * 1000;
    if (until.tv_nsec >= 1000000000) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&r->cond, &ow_locks_mutex, &until);
    if (!r->done && !cancelled && fuse_interrupted()) {
      cancelled = 1;
      ow_lock_msg *c = calloc(1, sizeof *c);
      if (c != NULL) {
        c->cancel_id = r->id;
        pthread_mutex_unlock(&ow_locks_mutex);
        if (napi_call_threadsafe_function(ow_locks_fn, c, napi_tsfn_blocking) != napi_ok) free(c);
        pthread_mutex_lock(&ow_locks_mutex);
      }
    }
  }
  for (ow_lock_req **p = &ow_locks_waiting; *p != NULL; p = &(*p)->next) {
    if (*p == r) {
      *p = r->next;
      break;
    }
  }
  pthread_mutex_unlock(&ow_locks_mutex);
  pthread_cond_destroy(&r->cond);
  return r->res;
}

/*
 * A lock was granted: what the kernel caches of the file (its pages and attributes) may be
 * older than what the last holder, on another node, published when it let go; the holder must
 * read it fresh. JavaScript brought its own view up to date before answering; this drops the
 * kernel's, before the answer lets the caller go on.
 */
static void ow_locks_taken(uint64_t nodeid) {
  if (ow_chan != NULL && nodeid != 0) fuse_lowlevel_notify_inval_inode(ow_chan, nodeid, 0, 0);
}

/*
 * Open files (file handles) through which record locks were asked for. Linux ends a process's
 * record locks at a flush, which names the process; an OFD lock (F_OFD_SETLK) is owned by the
 * open file, whose last close reaches the filesystem as a release that names no lock owner. So
 * the release of a handle in this set asks JavaScript to let go of what was taken through it
 * and is still held (process locks were let go by the flush before). Few at a time: a handle is
 * here from its first lock request until its release.
 */
static pthread_mutex_t ow_locked_mutex = PTHREAD_MUTEX_INITIALIZER;
static uint64_t *ow_locked_fhs;
static size_t ow_locked_n, ow_locked_cap;

static void ow_locked_add(uint64_t fh) {
  pthread_mutex_lock(&ow_locked_mutex);
  size_t i = 0;
  while (i < ow_locked_n && ow_locked_fhs[i] != fh) i++;
  if (i == ow_locked_n) {
    if (ow_locked_n == ow_locked_cap) {
      size_t cap = ow_locked_cap ? ow_locked_cap * 2 : 64;
      uint64_t *grown = realloc(ow_locked_fhs, cap * sizeof *grown);
      if (grown != NULL) {
        ow_locked_fhs = grown;
        ow_locked_cap = cap;
      }
    }
    if (ow_locked_n < ow_locked_cap) ow_locked_fhs[ow_locked_n++] = fh;
  }
  pthread_mutex_unlock(&ow_locked_mutex);
}

/* Whether fh was in the set (it is not any more). */
static int ow_locked_take(uint64_t fh) {
  int found = 0;
  pthread_mutex_lock(&ow_locked_mutex);
  for (size_t i = 0; i < ow_locked_n; i++) {
    if (ow_locked_fhs[i] == fh) {
      ow_locked_fhs[i] = ow_locked_fhs[--ow_locked_n];
      found = 1;
      break;
    }
  }
  pthread_mutex_unlock(&ow_locked_mutex);
  return found;
}

/* Whether anyone has asked this mount for a record lock yet. libfuse unlocks the closing
 * process's record locks at every close of every file (a flush); until some program has locked
 * anything, that is answered here, without a trip to JavaScript. */
static atomic_int ow_record_locks_asked;

static int ow_lock(const char *path, struct fuse_file_info *fi, int cmd, struct flock *lock) {
  if (cmd != F_GETLK) {
    if (lock->l_type != F_UNLCK) atomic_store(&ow_record_locks_asked, 1);
    else if (!atomic_load(&ow_record_locks_asked)) return 0;
  }
  ow_lock_req r;
  memset(&r, 0, sizeof r);
  r.kind = 0;
  r.path = path;
  r.owner = fi != NULL ? fi->lock_owner : 0;
  r.fh = fi != NULL ? (double) fi->fh : 0;
  if (fi != NULL && cmd != F_GETLK && lock->l_type != F_UNLCK) ow_locked_add(fi->fh);
  /* libfuse sets l_pid to the caller's pid for F_SETLK(W); F_GETLK's caller is the context's. */
  r.pid = cmd == F_GETLK ? (uint32_t) fuse_get_context()->pid : (uint32_t) lock->l_pid;
  r.cmd = cmd;
  r.type = lock->l_type;
  /* libfuse always hands over SEEK_SET ranges; a length of 0 means "to the end of the file". */
  r.start = (double) lock->l_start;
  r.end = lock->l_len == 0 ? -1 : (double) (lock->l_start + lock->l_len - 1);
  uint64_t nodeid = ow_req_nodeid;
  int res = ow_locks_ask(&r);
  if (res == 0 && lock->l_type != F_UNLCK && cmd != F_GETLK) ow_locks_taken(nodeid);
  if (res == 0 && cmd == F_GETLK) {
    lock->l_type = r.out_type;
    lock->l_whence = SEEK_SET;
    if (r.out_type != F_UNLCK) {
      lock->l_start = (off_t) r.out_start;
      lock->l_len = r.out_end < 0 ? 0 : (off_t) (r.out_end - r.out_start + 1);
      lock->l_pid = (pid_t) r.out_pid;
    }
  }
  return res;
}

static int ow_flock(const char *path, struct fuse_file_info *fi, int op) {
  ow_lock_req r;
  memset(&r, 0, sizeof r);
  r.kind = 1;
  r.path = path;
  r.owner = fi != NULL ? fi->lock_owner : 0;
  r.fh = fi != NULL ? (double) fi->fh : 0;
  r.pid = (uint32_t) fuse_get_context()->pid;
  r.cmd = (op & LOCK_NB) ? 0 : 1;
  int what = op & ~LOCK_NB;
  r.type = what == LOCK_SH ? F_RDLCK : what == LOCK_EX ? F_WRLCK : F_UNLCK;
  r.start = 0;
  r.end = -1;
  uint64_t nodeid = ow_req_nodeid;
  int res = ow_locks_ask(&r);
  if (res == 0 && r.type != F_UNLCK) ow_locks_taken(nodeid);
  return res;
}

/* oswalk_locks_handler(fn): answer locks through fn from the next mount on. */
NAPI_METHOD(oswalk_locks_handler) {
  NAPI_ARGV(1)
  napi_value name;
  napi_create_string_utf8(env, "oswalk-locks", NAPI_AUTO_LENGTH, &name);
  if (ow_locks_enabled) {
    napi_throw_error(env, NULL, "oswalk_locks_handler: a handler is already registered");
    return NULL;
  }
  NAPI_STATUS_THROWS(napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, NULL, NULL, NULL, ow_locks_call_js, &ow_locks_fn))
  /* Waiting locks must not keep the process alive on their own. */
  napi_unref_threadsafe_function(env, ow_locks_fn);
  ow_locks_enabled = 1;
  return NULL;
}

/* oswalk_lock_reply(id, res[, type, start, end, pid]) → whether request id was still waiting. */
NAPI_METHOD(oswalk_lock_reply) {
  NAPI_ARGV(6)
  NAPI_ARGV_UINT32(id, 0)
  NAPI_ARGV_INT32(res, 1)
  int type = F_UNLCK;
  double start = 0, end = -1;
  uint32_t pid = 0;
  if (argc >= 6) {
    napi_get_value_int32(env, argv[2], &type);
    napi_get_value_double(env, argv[3], &start);
    napi_get_value_double(env, argv[4], &end);
    napi_get_value_uint32(env, argv[5], &pid);
  }
  int found = 0;
  pthread_mutex_lock(&ow_locks_mutex);
  for (ow_lock_req *r = ow_locks_waiting; r != NULL; r = r->next) {
    if (r->id != id || r->done) continue;
    r->res = res;
    r->out_type = type;
    r->out_start = start;
    r->out_end = end;
    r->out_pid = pid;
    r->done = 1;
    pthread_cond_signal(&r->cond);
    found = 1;
    break;
  }
  pthread_mutex_unlock(&ow_locks_mutex);
  napi_value result;
  napi_get_boolean(env, found, &result);
  return result;
}

static int (*ow_locks_next_release)(const char *, struct fuse_file_info *);

/* The last close of an open file lets go of its flock (the kernel says so with flock_release,
 * which libfuse 2.9 sets but does not act on everywhere; an unlock of an owner that holds
 * nothing is answered by JavaScript without the cluster, so a second one costs nothing), and
 * of the record locks taken through it that are still held: its OFD locks (ow_locked_add). */
static int ow_locks_release(const char *path, struct fuse_file_info *fi) {
  if (fi != NULL && fi->flock_release) ow_flock(path, fi, LOCK_UN);
  if (fi != NULL && ow_locked_take(fi->fh)) {
    ow_lock_req r;
    memset(&r, 0, sizeof r);
    r.kind = 3;
    r.path = path;
    r.fh = (double) fi->fh;
    ow_locks_ask(&r);
  }
  return ow_locks_next_release != NULL ? ow_locks_next_release(path, fi) : 0;
}

/* The mount's operations, with ow_lock and ow_flock once a handler is registered (see above). */
static struct fuse *ow_fuse_new(struct fuse_chan *ch, struct fuse_args *args, const struct fuse_operations *op, size_t op_size, void *user_data) {
  struct fuse_operations ops = *op;
  if (ow_locks_enabled) {
    ops.lock = ow_lock;
    ops.flock = ow_flock;
    ow_locks_next_release = op->release;
    ops.release = ow_locks_release;
  }
  return fuse_new(ch, args, &ops, op_size, user_data);
}
#define fuse_new ow_fuse_new
