/*
 * OS Walk: FUSE passthrough under libfuse 2, and the open flags libfuse 2 cannot set.
 *
 * Linux 6.9+ can serve an open FUSE file's reads itself from a "backing file" the daemon names
 * (FUSE_PASSTHROUGH): no request per read, and the page cache is the backing file's, in large
 * folios, where a FUSE file's own page cache is kept in 4 KiB pages and reads from it run at
 * half the speed of a local file's (BENCHMARKS.md). libfuse 2 predates it, so this wraps the
 * channel fuse_mount returns: the INIT reply (which libfuse 2 sends in the 24-byte layout of
 * protocol 7.19) is sent in the 64-byte layout asking for FUSE_PASSTHROUGH, and the reply to an
 * OPEN or CREATE whose file handle the overlay marked (oswalk_open_reply) says
 * FOPEN_PASSTHROUGH with the backing file's id.
 *
 * A kernel without passthrough ignores the flag and answers EPERM to oswalk_backing_open; the
 * overlay then does without it. The same channel refuses names that are not UTF-8
 * (oswalk-names.c).
 *
 * Included by oswalk-fast-read.c.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "oswalk-names.c"

/* From <linux/fuse.h> of Linux 6.9+ (Debian 12's headers are older). */
#define OW_FUSE_LOOKUP 1
#define OW_FUSE_GETATTR 3
#define OW_FUSE_SETATTR 4
#define OW_FUSE_SYMLINK 6
#define OW_FUSE_MKNOD 8
#define OW_FUSE_MKDIR 9
#define OW_FUSE_LINK 13
#define OW_FUSE_OPEN 14
#define OW_FUSE_INIT 26
#define OW_FUSE_CREATE 35
#define OW_FUSE_GETLK 31
#define OW_FUSE_SETLKW 33
#define OW_FUSE_INIT_EXT (1u << 30)
/* FUSE_PASSTHROUGH is bit 37 of the 64-bit flags: bit 5 of flags2. */
#define OW_FUSE_PASSTHROUGH_FLAGS2 (1u << 5)
#define OW_FOPEN_PASSTHROUGH (1u << 7)
/* The only flags the kernel takes along with FOPEN_PASSTHROUGH (FOPEN_DIRECT_IO, FOPEN_NOFLUSH,
 * FOPEN_PARALLEL_DIRECT_WRITES): others fail the open with EIO, libfuse's FOPEN_KEEP_CACHE
 * (which auto_cache sets) among them. */
#define OW_FOPEN_PASSTHROUGH_MASK (OW_FOPEN_PASSTHROUGH | (1u << 0) | (1u << 5) | (1u << 6))

typedef struct { uint32_t len; uint32_t opcode; uint64_t unique; uint64_t nodeid; uint32_t uid, gid, pid, padding; } ow_in_header_t;
typedef struct { uint32_t len; int32_t error; uint64_t unique; } ow_out_header_t;
typedef struct {
  uint32_t major, minor, max_readahead, flags;
  uint16_t max_background, congestion_threshold;
  uint32_t max_write, time_gran;
  uint16_t max_pages, map_alignment;
  uint32_t flags2, max_stack_depth;
  uint16_t request_timeout, unused[11];
} ow_init_out_t;
typedef struct { uint64_t fh; uint32_t open_flags; int32_t backing_id; } ow_open_out_t;
/* fuse_entry_out, which comes before fuse_open_out in a CREATE reply. */
#define OW_ENTRY_OUT_SIZE 128
typedef struct { int32_t fd; uint32_t flags; uint64_t padding; } ow_backing_map_t;
#define OW_DEV_IOC_BACKING_OPEN _IOW(229, 1, ow_backing_map_t)
#define OW_DEV_IOC_BACKING_CLOSE _IOW(229, 2, uint32_t)

/* Requests whose replies may need changing (INIT, OPEN, CREATE), by unique id; and the backing
 * files marked for file handles, until their OPEN/CREATE reply goes out. Few at a time: a
 * request is in the first table from the moment it is read until it is answered. */
#define OW_PENDING 256
typedef struct { uint64_t unique; uint32_t opcode; } ow_request_t;
typedef struct { uint64_t fh; int32_t backing_id; } ow_mark_t;
static pthread_mutex_t ow_pt_lock = PTHREAD_MUTEX_INITIALIZER;
static ow_request_t ow_requests[OW_PENDING];
/* Entries in ow_requests: most replies (reads) need not look. */
static atomic_int ow_requests_pending = 0;
static ow_mark_t ow_marks[OW_PENDING];
static int ow_dev_fd = -1;
/* The channel of the mount, for notifications to the kernel (oswalk-locks.c). */
static struct fuse_chan *ow_chan;
/* The request this thread serves (a thread serves the request it received, and sends its reply):
 * its unique id, its opcode, and the kernel's node id of the inode it is about, where it names
 * one as its own (the lock requests; for a LINK, the inode linked), else 0. libfuse's high-level
 * API names a file by path only, and the kernel's caches of it are dropped by node id
 * (oswalk-locks.c, ow_reply_attrs). */
static __thread uint64_t ow_req_unique;
static __thread uint32_t ow_req_opcode;
static __thread uint64_t ow_req_nodeid;

static uint64_t ow_request_nodeid (const ow_in_header_t *in, size_t len) {
  switch (in->opcode) {
    case OW_FUSE_LINK: {
      /* struct fuse_link_in { uint64_t oldnodeid; } follows the header */
      uint64_t old = 0;
      if (len >= sizeof(ow_in_header_t) + sizeof old) memcpy(&old, (const char *) in + sizeof(ow_in_header_t), sizeof old);
      return old;
    }
    default:
      return in->opcode >= OW_FUSE_GETLK && in->opcode <= OW_FUSE_SETLKW ? in->nodeid : 0;
  }
}

static void ow_request_put (uint64_t unique, uint32_t opcode) {
  pthread_mutex_lock(&ow_pt_lock);
  int free_slot = -1;
  for (int i = 0; i < OW_PENDING; i++) {
    if (ow_requests[i].unique == 0 && free_slot < 0) free_slot = i;
  }
  /* Full (replies never sent: should not happen): the oldest cannot be told apart, reuse slot 0. */
  if (free_slot >= 0) atomic_fetch_add(&ow_requests_pending, 1);
  ow_requests[free_slot < 0 ? 0 : free_slot] = (ow_request_t) { unique, opcode };
  pthread_mutex_unlock(&ow_pt_lock);
}

static uint32_t ow_request_take (uint64_t unique) {
  uint32_t opcode = 0;
  if (atomic_load(&ow_requests_pending) == 0) return 0;
  pthread_mutex_lock(&ow_pt_lock);
  for (int i = 0; i < OW_PENDING; i++) {
    if (ow_requests[i].unique == unique) {
      opcode = ow_requests[i].opcode;
      ow_requests[i].unique = 0;
      atomic_fetch_sub(&ow_requests_pending, 1);
      break;
    }
  }
  pthread_mutex_unlock(&ow_pt_lock);
  return opcode;
}

static int ow_mark_take (uint64_t fh, ow_mark_t *out) {
  int found = 0;
  pthread_mutex_lock(&ow_pt_lock);
  for (int i = 0; i < OW_PENDING; i++) {
    if (ow_marks[i].fh == fh && fh != 0) {
      *out = ow_marks[i];
      ow_marks[i].fh = 0;
      found = 1;
      break;
    }
  }
  pthread_mutex_unlock(&ow_pt_lock);
  return found;
}

static int ow_channel_receive (struct fuse_chan **chp, char *buf, size_t size) {
  struct fuse_chan *ch = *chp;
  struct fuse_session *se = fuse_chan_session(ch);
  for (;;) {
    ssize_t res = read(fuse_chan_fd(ch), buf, size);
    int err = errno;
    if (fuse_session_exited(se)) return 0;
    if (res == -1) {
      /* ENOENT: the request was interrupted, read the next one. ENODEV: unmounted. */
      if (err == ENOENT) continue;
      if (err == ENODEV) {
        fuse_session_exit(se);
        return 0;
      }
      if (err != EINTR && err != EAGAIN) perror("fuse: reading device");
      return -err;
    }
    if ((size_t) res < sizeof(ow_in_header_t)) {
      fprintf(stderr, "short read on fuse device\n");
      return -EIO;
    }
    const ow_in_header_t *in = (const ow_in_header_t *) buf;
    /* A name that is not UTF-8 never reaches libfuse (oswalk-names.c). */
    if (ow_request_badly_named(buf, (size_t) res, sizeof(ow_in_header_t), in->opcode)) {
      ow_reply_error(fuse_chan_fd(ch), in->unique, EILSEQ);
      continue;
    }
    if (in->opcode == OW_FUSE_INIT || in->opcode == OW_FUSE_OPEN || in->opcode == OW_FUSE_CREATE) ow_request_put(in->unique, in->opcode);
    ow_req_unique = in->unique;
    ow_req_opcode = in->opcode;
    ow_req_nodeid = ow_request_nodeid(in, (size_t) res);
    return (int) res;
  }
}

static int ow_channel_write (struct fuse_chan *ch, const struct iovec iov[], size_t count) {
  if (writev(fuse_chan_fd(ch), iov, (int) count) == -1) {
    int err = errno;
    /* ENOENT: the request was interrupted meanwhile. */
    if (!fuse_session_exited(fuse_chan_session(ch)) && err != ENOENT) perror("fuse: writing device");
    return -err;
  }
  return 0;
}

/*
 * Hard links. The kernel knows each name of a hard-linked file as an inode of its own (libfuse's
 * high-level API has one node per path), so what it caches of one name's attributes would hide,
 * for attr_timeout, a change made through another. A reply with the attributes of a file with
 * more than one link (not a directory) says they may not be kept: the kernel asks each time,
 * and the FS process answers from its cache, which follows every name (cache.ts dropInode). A
 * LINK first drops what the kernel holds of the linked inode (a link count of 1, maybe), before
 * the reply lets the caller stat it. Only attributes: no page lock is taken, so a FUSE thread
 * may do it.
 */
static void ow_reply_attrs (struct fuse_chan *ch, uint32_t opcode, const struct iovec *arg) {
  /* Offsets of attr_valid, attr_valid_nsec and struct fuse_attr in fuse_entry_out (LOOKUP and
   * the replies that make a name; CREATE's has fuse_open_out after it) or fuse_attr_out. */
  size_t valid_at, nsec_at, attr_at;
  switch (opcode) {
    case OW_FUSE_LOOKUP: case OW_FUSE_SYMLINK: case OW_FUSE_MKNOD: case OW_FUSE_MKDIR: case OW_FUSE_LINK: case OW_FUSE_CREATE:
      valid_at = 24; nsec_at = 36; attr_at = 40;
      break;
    case OW_FUSE_GETATTR: case OW_FUSE_SETATTR:
      valid_at = 0; nsec_at = 8; attr_at = 16;
      break;
    default:
      return;
  }
  if (opcode == OW_FUSE_LINK && ow_req_nodeid != 0) fuse_lowlevel_notify_inval_inode(ch, ow_req_nodeid, -1, 0);
  /* struct fuse_attr: mode at 60, nlink at 64 */
  if (arg->iov_len < attr_at + 68) return;
  char *p = (char *) arg->iov_base;
  uint32_t mode, nlink;
  memcpy(&mode, p + attr_at + 60, sizeof mode);
  memcpy(&nlink, p + attr_at + 64, sizeof nlink);
  if (nlink < 2 || (mode & S_IFMT) == S_IFDIR) return;
  memset(p + valid_at, 0, sizeof(uint64_t));
  memset(p + nsec_at, 0, sizeof(uint32_t));
}

/* libfuse 2 hands a reply over as a header and at most one argument. */
static int ow_channel_send (struct fuse_chan *ch, const struct iovec iov[], size_t count) {
  if (iov == NULL) return 0;
  if (count < 1 || iov[0].iov_len < sizeof(ow_out_header_t)) return ow_channel_write(ch, iov, count);
  ow_out_header_t *out = (ow_out_header_t *) iov[0].iov_base;
  /* A notification (unique 0) answers no request: it must not take a free slot's entry. */
  if (out->unique == 0) return ow_channel_write(ch, iov, count);
  if (out->unique == ow_req_unique && out->error == 0 && count == 2) ow_reply_attrs(ch, ow_req_opcode, &iov[1]);
  uint32_t opcode = ow_request_take(out->unique);
  if (opcode == 0 || out->error != 0 || count != 2) return ow_channel_write(ch, iov, count);
  if (opcode == OW_FUSE_INIT && iov[1].iov_len <= sizeof(ow_init_out_t)) {
    ow_init_out_t init;
    memset(&init, 0, sizeof(init));
    memcpy(&init, iov[1].iov_base, iov[1].iov_len);
    init.flags |= OW_FUSE_INIT_EXT;
    init.flags2 |= OW_FUSE_PASSTHROUGH_FLAGS2;
    /* Backing files live on a plain local filesystem (stack depth 0). */
    init.max_stack_depth = 1;
    ow_out_header_t header = *out;
    header.len = sizeof(header) + sizeof(init);
    struct iovec v[2] = { { &header, sizeof(header) }, { &init, sizeof(init) } };
    return ow_channel_write(ch, v, 2);
  }
  size_t at = opcode == OW_FUSE_CREATE ? OW_ENTRY_OUT_SIZE : 0;
  if ((opcode == OW_FUSE_OPEN || opcode == OW_FUSE_CREATE) && iov[1].iov_len >= at + sizeof(ow_open_out_t)) {
    ow_open_out_t *open_out = (ow_open_out_t *) ((char *) iov[1].iov_base + at);
    ow_mark_t mark;
    if (ow_mark_take(open_out->fh, &mark)) {
      open_out->open_flags = (open_out->open_flags & OW_FOPEN_PASSTHROUGH_MASK) | OW_FOPEN_PASSTHROUGH;
      open_out->backing_id = mark.backing_id;
    }
  }
  return ow_channel_write(ch, iov, count);
}

static void ow_channel_destroy (struct fuse_chan *ch) {
  int fd = fuse_chan_fd(ch);
  if (fd >= 0) close(fd);
}

/* The channel the session uses instead of fuse_mount's own: the same device fd (it owns it
 * from now on; fuse_mount's channel struct is left unused). */
static struct fuse_chan *ow_channel (struct fuse_chan *mounted) {
  if (mounted == NULL) return NULL;
  static struct fuse_chan_ops ops = { .receive = ow_channel_receive, .send = ow_channel_send, .destroy = ow_channel_destroy };
  struct fuse_chan *ch = fuse_chan_new(&ops, fuse_chan_fd(mounted), fuse_chan_bufsize(mounted), NULL);
  if (ch == NULL) return mounted;
  ow_dev_fd = fuse_chan_fd(mounted);
  ow_chan = ch;
  return ch;
}

/* oswalk_backing_open(fd): the id of a backing file for passthrough opens (> 0), or -errno
 * (EPERM: this kernel or this process cannot do passthrough). */
NAPI_METHOD(oswalk_backing_open) {
  NAPI_ARGV(1)
  NAPI_ARGV_INT32(fd, 0)
  ow_backing_map_t map = { .fd = fd, .flags = 0, .padding = 0 };
  int id = ow_dev_fd < 0 ? -ENODEV : ioctl(ow_dev_fd, OW_DEV_IOC_BACKING_OPEN, &map);
  if (id == -1) id = -errno;
  NAPI_RETURN_INT32(id)
}

/* oswalk_backing_close(id): the kernel drops the id (files opened with it keep their backing file). */
NAPI_METHOD(oswalk_backing_close) {
  NAPI_ARGV(1)
  NAPI_ARGV_UINT32(id, 0)
  int res = ow_dev_fd < 0 ? -ENODEV : ioctl(ow_dev_fd, OW_DEV_IOC_BACKING_CLOSE, &id);
  if (res == -1) res = -errno;
  NAPI_RETURN_INT32(res < 0 ? res : 0)
}

/* oswalk_open_reply(fh, backingId): the reply to the OPEN or CREATE that returns file handle
 * fh is to say passthrough with backingId; backingId 0 forgets a mark not used (the open failed). */
NAPI_METHOD(oswalk_open_reply) {
  NAPI_ARGV(2)
  NAPI_ARGV_UINT32(fh, 0)
  NAPI_ARGV_INT32(backing_id, 1)
  ow_mark_t unused;
  ow_mark_take(fh, &unused);
  if (backing_id <= 0) return NULL;
  pthread_mutex_lock(&ow_pt_lock);
  for (int i = 0; i < OW_PENDING; i++) {
    if (ow_marks[i].fh == 0) {
      ow_marks[i] = (ow_mark_t) { fh, backing_id };
      break;
    }
  }
  pthread_mutex_unlock(&ow_pt_lock);
  return NULL;
}
