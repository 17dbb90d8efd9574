/*
 * oswalk-guard: the per-job supervisor that makes "a job runs at most once at a time" hold when
 * the agent cannot act (frozen by SIGSTOP or a paused VM, cut off from Redis, killed).
 *
 *   oswalk-guard FENCE_FILE [--cgroup DIR]... [--cwd DIR] [--pty ROWSxCOLS] -- COMMAND [ARG]...
 *
 * It starts COMMAND as its child and waits for it. FENCE_FILE holds one number: the
 * CLOCK_MONOTONIC time, in milliseconds, until which the node's hold on its jobs is known to be
 * good (the agent rewrites it, by rename, after every heartbeat and lease renewal that Redis
 * acknowledged; see src/agent/fence.ts). The guard sleeps until that time, reads the file again,
 * and when the time has passed without a newer one (or the file is gone) it kills the job
 * with SIGKILL: its whole process group, every process in the given cgroups, or, as PID 1 of a
 * container, every process in the container. The agent sets that time a safety margin before
 * the moment the cluster may start the job elsewhere, so the kill always comes first.
 *
 * Two modes:
 * - process (started by the agent, leader of its own process group): the parent-death signal
 *   tells the guard at once when the agent dies; it then kills the job the same way, so a dead
 *   agent leaves nothing running (not even what the job forked). Signals sent to the group
 *   reach the job directly; the guard does not forward them.
 * - container (PID 1 of a job container): there is no agent process to watch (it may be in
 *   another container); the fence file, bound in read-only, is the only link. Signals sent to
 *   the container (docker stop) are forwarded to the child, and orphans are reaped, as tini does.
 *
 * --cwd: the child enters DIR before the exec, not the agent: a spawn with a working directory
 * in a stopped FUSE mount would block the agent's whole event loop in chdir (Node's spawn waits
 * for the exec), freezing every other job's supervision with it. The guard watches the fence
 * while its child enters DIR and execs (both can hang for as long as the mount's FS process
 * does, e.g. while Redis is down), and the child looks at the fence once more just before the
 * exec: a job whose node lost its hold while it was starting never starts.
 *
 * --pty (process mode; `oswalk run -t`): the job gets a pseudo-terminal of its own, as under
 * sshd. The guard, which the agent starts as a session leader, takes the terminal as its
 * controlling terminal and gives its slave side to the child as stdin, stdout and stderr; it
 * relays its own stdin to the terminal and the terminal to its own stdout (the agent's pipes),
 * and reads window sizes ("ROWS COLS\n") from fd 3. Ctrl-C, Ctrl-Z and Ctrl-\ are then the
 * terminal's to turn into signals for its foreground process group, as on a local terminal. The
 * relay never blocks: a frozen agent that stops reading must not keep the guard from its fence.
 * A polite stop (SIGTERM from the agent) hangs the terminal up (SIGHUP to its foreground group
 * and the job), as a closed ssh connection does; the job's shell may have moved its jobs into
 * process groups of their own, so when the job ends or is fenced, the guard kills every process
 * left in its session, not only its process group.
 *
 * --spare (process mode): a guard started ahead of its job, so that a job's start costs no
 * process start and no cgroup move (on cgroup v1, a move into a cgroup waits for an RCU grace
 * period: 5 to 15 ms here, the largest part of a short job's start). It joins the cgroups named
 * by --join itself, says "R" on fd 3 (a socket from the agent) once it has, and waits there for
 * its job: one message, "<length>\n" then NUL-terminated fields: the working directory, the
 * terminal size ("ROWSxCOLS" or empty), "1" when the job takes this guard's stdin (else it reads
 * /dev/null), the count and paths of the job's cgroups (the --join ones, renamed by the agent
 * to the job's), the count and words of the command, the count and entries of its environment.
 * From then on it is the guard of that job, as if started with those options; fd 3 then
 * carries window sizes for a terminal. While it waits it watches the fence and the agent as a
 * job's guard does, and leaves quietly (exit 125) when either is gone: the agent starts another.
 *
 * Exit status: the child's (its exit code, or in process mode the same signal raised again, so
 * the agent sees "killed by SIGX"; in container mode 128+N, as Docker reports signals). An
 * exec failure prints a line to stderr and exits 127 (not found) or 126 (not executable), as
 * a shell does.
 *
 * Written in C and linked statically because it runs inside any image, scratch ones included;
 * Docker's own --init (tini) reaps and forwards signals but knows nothing of leases.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CGROUPS 8
/* Longest sleep between looks at the fence file and the parent, in ms. */
#define MAX_WAIT_MS 1000

static const char *fence_file;
static const char *cwd;
static const char *cgroups[MAX_CGROUPS];
static int n_cgroups;
static int pid1;
static pid_t parent;
/* The pseudo-terminal's master side in --pty mode, else -1. */
static int master = -1;
/* --spare: the job's environment, from its message (else the guard's own is the job's). */
static char **job_env;

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The fence time, or -1 when the file is missing or unreadable (which fences at once). */
static long long read_fence(void) {
  char buf[64];
  int fd = open(fence_file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  char *end;
  errno = 0;
  long long v = strtoll(buf, &end, 10);
  if (errno || end == buf) return -1;
  return v;
}

static void kill_cgroup(const char *dir) {
  char path[4096];
  snprintf(path, sizeof path, "%s/cgroup.procs", dir);
  /* A process may fork while we read: a few rounds until the cgroup is empty. */
  for (int round = 0; round < 10; round++) {
    FILE *f = fopen(path, "re");
    if (!f) return;
    int any = 0;
    long pid;
    while (fscanf(f, "%ld", &pid) == 1) {
      if (pid > 0 && pid != getpid()) {
        kill((pid_t)pid, SIGKILL);
        any = 1;
      }
    }
    fclose(f);
    if (!any) return;
  }
}

/*
 * Send sig to every other process of our session (--pty: the guard leads it, and a job's shell
 * puts its pipelines into process groups of their own, out of reach of kill(0, ...)).
 */
static void kill_session(int sig) {
  pid_t self = getpid(), sid = getsid(0);
  DIR *d = opendir("/proc");
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    char *end;
    long pid = strtol(e->d_name, &end, 10);
    if (*end || pid <= 0 || pid == self) continue;
    if (getsid((pid_t)pid) == sid) kill((pid_t)pid, sig);
  }
  closedir(d);
}

/* Kill everything the job is made of; does not return. */
static void fence(const char *why) {
  for (int i = 0; i < n_cgroups; i++) kill_cgroup(cgroups[i]);
  if (master >= 0) kill_session(SIGKILL);
  /* Never block on the job's output pipe: the agent that reads it may be the frozen one. */
  fcntl(2, F_SETFL, fcntl(2, F_GETFL) | O_NONBLOCK);
  dprintf(2, "\noswalk: %s: the job is killed so that it never runs on two nodes at once\n", why);
  if (pid1) {
    kill(-1, SIGKILL);
    _exit(137);
  }
  signal(SIGKILL, SIG_DFL);
  kill(0, SIGKILL); /* our process group: the job, what it forked, and this guard */
  _exit(137);
}

/*
 * Waits for the child's exec (EOF on its error pipe: 0) or for its report of a failure (1, in
 * `failed`), fencing if the fence passes or the agent goes meanwhile: entering a working
 * directory in a FUSE mount, or loading the program from one, waits on the mount's FS process.
 */
static int wait_exec(int fd, int failed[2]) {
  for (;;) {
    long long left = read_fence() - now_ms();
    if (left <= 0) fence("the node's lease lapsed while the job was starting");
    if (left > MAX_WAIT_MS) left = MAX_WAIT_MS;
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int n = poll(&p, 1, (int)left);
    if (!pid1 && getppid() != parent) fence("the agent that started this job is gone");
    if (n > 0) return read(fd, failed, 2 * sizeof failed[0]) == (ssize_t)(2 * sizeof failed[0]);
    if (n < 0 && errno != EINTR) {
      perror("oswalk-guard: poll");
      fence("the guard cannot watch its job start");
    }
  }
}

static int usage(void) {
  fprintf(stderr, "usage: oswalk-guard FENCE_FILE [--cgroup DIR]... [--cwd DIR] [--pty ROWSxCOLS] -- COMMAND [ARG]...\n"
                  "       oswalk-guard FENCE_FILE --spare [--join DIR]...\n");
  return 125;
}

/* Leave as the child ended (see "Exit status" above). */
static int exit_like(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  int s = WTERMSIG(status);
  if (pid1) return 128 + s;
  signal(s, SIG_DFL);
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, s);
  sigprocmask(SIG_UNBLOCK, &one, NULL);
  raise(s);
  return 128 + s;
}

/* What a closed ssh connection does to its session: SIGHUP (and SIGCONT, for a stopped job). */
static void hang_up(pid_t child) {
  pid_t fg = tcgetpgrp(master);
  if (fg > 0 && fg != getpgrp()) {
    kill(-fg, SIGHUP);
    kill(-fg, SIGCONT);
  }
  kill(child, SIGHUP);
  kill(child, SIGCONT);
}

/* One direction of the --pty relay: bytes read from one side, not yet written to the other. */
struct relay {
  char buf[65536];
  size_t off, len;
};

/* Write what `r` holds to fd without blocking; 0 when the other side is gone (what is left is dropped). */
static int flush_relay(struct relay *r, int fd) {
  ssize_t n = write(fd, r->buf + r->off, r->len - r->off);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return 1;
    r->off = r->len = 0;
    return 0;
  }
  r->off += (size_t)n;
  if (r->off == r->len) r->off = r->len = 0;
  return 1;
}

/* Window sizes from the agent, "ROWS COLS\n" each; the last complete one counts. */
static int read_sizes(int fd) {
  static char line[64];
  static size_t have;
  ssize_t n = read(fd, line + have, sizeof line - 1 - have);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return 0;
  if (n < 0) return 1;
  have += (size_t)n;
  line[have] = 0;
  char *nl;
  while ((nl = strchr(line, '\n')) != NULL) {
    struct winsize ws = { 0 };
    if (sscanf(line, "%hu %hu", &ws.ws_row, &ws.ws_col) == 2) ioctl(master, TIOCSWINSZ, &ws);
    have -= (size_t)(nl + 1 - line);
    memmove(line, nl + 1, have + 1);
  }
  if (have == sizeof line - 1) have = 0; /* no newline in a full buffer: not ours to make sense of */
  return 1;
}

static void nonblocking(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Move this process into the cgroup DIR (--join); 0 on success. */
static int join_cgroup(const char *dir) {
  char path[4096], pid[32];
  snprintf(path, sizeof path, "%s/cgroup.procs", dir);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
  int ok = write(fd, pid, (size_t)n) == n;
  close(fd);
  return ok ? 0 : -1;
}

/* The next NUL-terminated field of a spare's message, or NULL past its end. */
static char *field(char **at, char *end) {
  if (*at >= end) return NULL;
  char *f = *at, *nul = memchr(f, 0, (size_t)(end - f));
  if (!nul) return NULL;
  *at = nul + 1;
  return f;
}

/* `count` fields as a NULL-terminated array, or NULL when the message is short. */
static char **fields(char **at, char *end, long count) {
  if (count < 0 || count > 1 << 20) return NULL;
  char **out = calloc((size_t)count + 1, sizeof *out);
  if (!out) return NULL;
  for (long i = 0; i < count; i++)
    if (!(out[i] = field(at, end))) return NULL;
  return out;
}

/*
 * --spare: say ready, then wait on fd 3 for the job's message (see the top of this file),
 * watching the fence and the agent; returns the message's command and fills in the rest.
 */
static char **await_job(struct winsize *ws, int *pty, int *own_stdin) {
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigaddset(&term, SIGHUP);
  int sigfd = signalfd(-1, &term, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sigfd < 0 || write(3, "R", 1) != 1) _exit(125);
  char head[32];
  size_t have = 0;
  char *msg = NULL;
  size_t len = 0, got = 0;
  for (;;) {
    long long left = read_fence() - now_ms();
    if (left <= 0) {
      /* A job's message already here: the agent took this spare as the fence passed, and the
       * job ends as one started the ordinary way would (fenced, not failed). Else there is no
       * job to kill, and the agent starts a spare anew when it needs one. */
      struct pollfd pending = { .fd = 3, .events = POLLIN };
      if (msg || poll(&pending, 1, 0) > 0) fence("the node's lease was not current when the job started");
      _exit(125);
    }
    if (left > MAX_WAIT_MS) left = MAX_WAIT_MS;
    struct pollfd p[2] = { { .fd = 3, .events = POLLIN }, { .fd = sigfd, .events = POLLIN } };
    int n = poll(p, 2, (int)left);
    if (getppid() != parent || (n > 0 && p[1].revents)) _exit(125);
    if (n <= 0) continue;
    ssize_t r;
    if (!msg) {
      /* The length line, a byte at a time: what follows it is the message's. */
      r = read(3, head + have, 1);
      if (r <= 0) _exit(125);
      if (head[have] != '\n') {
        if (++have == sizeof head) _exit(125);
        continue;
      }
      head[have] = 0;
      len = strtoul(head, NULL, 10);
      if (!len || len > (64u << 20) || !(msg = malloc(len))) _exit(125);
      continue;
    }
    r = read(3, msg + got, len - got);
    if (r <= 0) _exit(125);
    got += (size_t)r;
    if (got < len) continue;
    close(sigfd);
    char *at = msg, *end = msg + len, *f;
    if (!(f = field(&at, end))) break;
    cwd = *f ? f : NULL;
    if (!(f = field(&at, end))) break;
    *pty = *f && sscanf(f, "%hux%hu", &ws->ws_row, &ws->ws_col) == 2;
    if (!(f = field(&at, end))) break;
    *own_stdin = strcmp(f, "1") == 0;
    if (!(f = field(&at, end))) break;
    long nc = strtol(f, NULL, 10);
    char **dirs = fields(&at, end, nc);
    if (!dirs || nc > MAX_CGROUPS) break;
    for (n_cgroups = 0; n_cgroups < nc; n_cgroups++) cgroups[n_cgroups] = dirs[n_cgroups];
    if (!(f = field(&at, end))) break;
    char **cmd = fields(&at, end, strtol(f, NULL, 10));
    if (!cmd || !cmd[0]) break;
    if (!(f = field(&at, end)) || !(job_env = fields(&at, end, strtol(f, NULL, 10)))) break;
    return cmd;
  }
  fprintf(stderr, "oswalk-guard: a malformed job message on fd 3\n");
  _exit(125);
}

int main(int argc, char **argv) {
  int i = 1;
  struct winsize ws = { 0 };
  int pty = 0, spare = 0, own_stdin = 1;
  const char *joins[MAX_CGROUPS];
  int n_joins = 0;
  if (i >= argc) return usage();
  fence_file = argv[i++];
  while (i < argc && strcmp(argv[i], "--") != 0) {
    if (strcmp(argv[i], "--spare") == 0) {
      spare = 1;
      i++;
    } else if (strcmp(argv[i], "--join") == 0 && i + 1 < argc && n_joins < MAX_CGROUPS) {
      joins[n_joins++] = argv[i + 1];
      i += 2;
    } else if (strcmp(argv[i], "--cgroup") == 0 && i + 1 < argc && n_cgroups < MAX_CGROUPS) {
      cgroups[n_cgroups++] = argv[i + 1];
      i += 2;
    } else if (strcmp(argv[i], "--cwd") == 0 && i + 1 < argc) {
      cwd = argv[i + 1];
      i += 2;
    } else if (strcmp(argv[i], "--pty") == 0 && i + 1 < argc && sscanf(argv[i + 1], "%hux%hu", &ws.ws_row, &ws.ws_col) == 2) {
      pty = 1;
      i += 2;
    } else {
      return usage();
    }
  }
  if (spare ? i < argc : i + 1 >= argc) return usage();
  char **cmd = spare ? NULL : &argv[i + 1];

  pid1 = getpid() == 1;
  parent = getppid();
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  if (!pid1) {
    /* SIGTERM also comes to the whole group from the agent (a polite stop): told apart from
     * the agent's death by getppid() below. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) fence("the agent that started this job is gone");
  }
  if (spare) {
    if (pid1) return usage();
    if (read_fence() <= now_ms()) return 125;
    for (int j = 0; j < n_joins; j++) {
      if (join_cgroup(joins[j]) < 0) {
        fprintf(stderr, "oswalk-guard: cannot join cgroup %s: %s\n", joins[j], strerror(errno));
        return 125;
      }
    }
    cmd = await_job(&ws, &pty, &own_stdin);
  }
  if (read_fence() <= now_ms()) fence("the node's lease was not current when the job started");

  int slave = -1;
  if (pty) {
    /* A container's terminal is the engine's (a Tty container): --pty is for process jobs. */
    if (pid1 || getsid(0) != getpid()) {
      fprintf(stderr, "oswalk-guard: --pty needs the guard to lead its own session, outside a container's PID 1\n");
      return 125;
    }
    master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 || ioctl(master, TIOCSWINSZ, &ws) < 0 ||
        (slave = open(ptsname(master), O_RDWR | O_CLOEXEC)) < 0 || ioctl(slave, TIOCSCTTY, 0) < 0) {
      perror("oswalk-guard: pseudo-terminal");
      return 125;
    }
  }

  /* A Tty container's terminal is 0x0 until the engine's first resize, which comes just after
   * the start: wait for it (up to 1 s) so that the job starts with its real size. */
  for (int t = 0; pid1 && isatty(0) && t < 100; t++) {
    struct winsize w;
    if (ioctl(0, TIOCGWINSZ, &w) == 0 && w.ws_row) break;
    usleep(10000);
  }

  int errpipe[2];
  if (pipe2(errpipe, O_CLOEXEC) < 0) {
    perror("oswalk-guard: pipe");
    return 125;
  }
  pid_t child = fork();
  if (child < 0) {
    perror("oswalk-guard: fork");
    return 125;
  }
  if (child == 0) {
    close(errpipe[0]);
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (!pid1) prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (slave >= 0) {
      dup2(slave, 0);
      dup2(slave, 1);
      dup2(slave, 2);
    } else if (!own_stdin) {
      int null = open("/dev/null", O_RDONLY);
      if (null >= 0) dup2(null, 0);
    }
    /* fd 3 is the agent's line to this guard, not the job's. */
    if (spare || slave >= 0) close(3);
    if (job_env) environ = job_env;
    /* What failed, for the parent: {0, errno} the chdir, {1, errno} the exec. */
    int failed[2] = { 0, 0 };
    if (!cwd || chdir(cwd) == 0) {
      failed[0] = 1;
      if (read_fence() <= now_ms()) {
        failed[0] = 2;
      } else {
        execvp(cmd[0], cmd);
      }
    }
    failed[1] = errno;
    if (write(errpipe[1], failed, sizeof failed) < 0) { /* the parent sees EOF and a 127 anyway */ }
    _exit(127);
  }
  close(errpipe[1]);
  if (slave >= 0) close(slave);
  int failed[2];
  if (wait_exec(errpipe[0], failed)) {
    waitpid(child, NULL, 0);
    if (failed[0] == 2) fence("the node's lease lapsed while the job was starting");
    if (!failed[0]) {
      dprintf(2, "oswalk: cannot enter the working directory \"%s\": %s\n", cwd, strerror(failed[1]));
      return 125;
    }
    dprintf(2, "oswalk: command \"%s\" %s\n", cmd[0],
            failed[1] == ENOENT ? "not found" : failed[1] == EACCES ? "is not executable" : strerror(failed[1]));
    return failed[1] == ENOENT ? 127 : 126;
  }
  close(errpipe[0]);

  int sigfd = signalfd(-1, &all, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sigfd < 0) {
    perror("oswalk-guard: signalfd");
    fence("the guard cannot watch its job");
  }
  /* --pty: terminal -> our stdout, our stdin -> terminal, window sizes on fd 3. */
  static struct relay out, in;
  int master_open = master >= 0, in_open = master >= 0, sizes_open = master >= 0 && fcntl(3, F_GETFD) >= 0;
  int hung_up = 0, exited = 0, status = 0;
  long long drain_until = 0;
  if (master >= 0) {
    nonblocking(master);
    nonblocking(0);
    nonblocking(1);
    if (sizes_open) nonblocking(3);
  }
  for (;;) {
    long long left = read_fence() - now_ms();
    if (left <= 0) fence("no lease renewal reached this node in time (agent frozen, cut off or gone)");
    if (exited && ((!master_open && !out.len) || now_ms() >= drain_until)) return exit_like(status);
    if (left > MAX_WAIT_MS) left = MAX_WAIT_MS;
    struct pollfd p[5] = { { .fd = sigfd, .events = POLLIN } };
    int n = 1, at_master = -1, at_out = -1, at_in = -1, at_sizes = -1;
    if (master_open && (!out.len || in.len)) {
      at_master = n;
      p[n++] = (struct pollfd){ .fd = master, .events = (short)((out.len ? 0 : POLLIN) | (in.len ? POLLOUT : 0)) };
    }
    if (out.len) {
      at_out = n;
      p[n++] = (struct pollfd){ .fd = 1, .events = POLLOUT };
    }
    if (in_open && !in.len) {
      at_in = n;
      p[n++] = (struct pollfd){ .fd = 0, .events = POLLIN };
    }
    if (sizes_open) {
      at_sizes = n;
      p[n++] = (struct pollfd){ .fd = 3, .events = POLLIN };
    }
    int ready = poll(p, (nfds_t)n, (int)left);
    if (!pid1 && getppid() != parent) fence("the agent that started this job is gone");
    if (ready < 0 && errno != EINTR) {
      perror("oswalk-guard: poll");
      fence("the guard cannot watch its job");
    }
    if (ready <= 0) continue; /* timeout or EINTR: look at the fence again */

    struct signalfd_siginfo si;
    while (p[0].revents && read(sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
      int sig = (int)si.ssi_signo;
      if (sig == SIGCHLD) {
        int st;
        pid_t c;
        while ((c = waitpid(-1, &st, WNOHANG)) > 0) {
          if (c != child || exited) continue; /* an orphan reaped as PID 1 */
          if (master < 0) return exit_like(st);
          /* The job is its main process: what it left in the session goes, and what it wrote
           * to the terminal is passed on (bounded: a reader that stopped reading is the fence's). */
          exited = 1;
          status = st;
          kill_session(SIGKILL);
          drain_until = now_ms() + 2000;
        }
      } else if (pid1) {
        /* Container mode: what is sent to the container is meant for the job. A signal from the
         * terminal itself (Ctrl-C in a Tty container) reached the job's process group already. */
        if (si.ssi_code != SI_KERNEL) kill(child, sig);
      } else if (master >= 0 && (sig == SIGTERM || sig == SIGHUP) && !hung_up && !exited) {
        hung_up = 1;
        hang_up(child);
      }
    }
    if (at_master >= 0 && (p[at_master].revents & (POLLIN | POLLHUP | POLLERR)) && !out.len) {
      ssize_t got = read(master, out.buf, sizeof out.buf);
      if (got > 0) out.len = (size_t)got;
      /* EIO: no process has the terminal open any more. */
      else if (got == 0 || (errno != EAGAIN && errno != EINTR)) master_open = 0;
    }
    if (at_master >= 0 && (p[at_master].revents & POLLOUT) && in.len && !flush_relay(&in, master)) in_open = 0;
    if (at_out >= 0 && p[at_out].revents) flush_relay(&out, 1);
    if (at_in >= 0 && p[at_in].revents) {
      ssize_t got = read(0, in.buf, sizeof in.buf);
      if (got > 0) in.len = (size_t)got;
      else if (got == 0 || (errno != EAGAIN && errno != EINTR)) in_open = 0;
    }
    if (at_sizes >= 0 && p[at_sizes].revents && !read_sizes(3)) sizes_open = 0;
  }
}
