/*
 * oswalk-guard: the per-job supervisor that makes "a job runs at most once at a time" hold when
 * the agent cannot act (frozen by SIGSTOP or a paused VM, cut off from Redis, killed).
 *
 *   oswalk-guard FENCE_FILE [--cgroup DIR]... [--cwd DIR] -- COMMAND [ARG]...
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
#include <sys/prctl.h>
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

/* Kill everything the job is made of; does not return. */
static void fence(const char *why) {
  for (int i = 0; i < n_cgroups; i++) kill_cgroup(cgroups[i]);
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
  fprintf(stderr, "usage: oswalk-guard FENCE_FILE [--cgroup DIR]... [--cwd DIR] -- COMMAND [ARG]...\n");
  return 125;
}

int main(int argc, char **argv) {
  int i = 1;
  if (i >= argc) return usage();
  fence_file = argv[i++];
  while (i < argc && strcmp(argv[i], "--") != 0) {
    if (strcmp(argv[i], "--cgroup") == 0 && i + 1 < argc && n_cgroups < MAX_CGROUPS) {
      cgroups[n_cgroups++] = argv[i + 1];
      i += 2;
    } else if (strcmp(argv[i], "--cwd") == 0 && i + 1 < argc) {
      cwd = argv[i + 1];
      i += 2;
    } else {
      return usage();
    }
  }
  if (i + 1 >= argc) return usage();
  char **cmd = &argv[i + 1];

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
  if (read_fence() <= now_ms()) fence("the node's lease was not current when the job started");

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

  for (;;) {
    long long deadline = read_fence();
    long long left = deadline - now_ms();
    if (left <= 0) fence("no lease renewal reached this node in time (agent frozen, cut off or gone)");
    if (left > MAX_WAIT_MS) left = MAX_WAIT_MS;
    struct timespec ts = { left / 1000, (left % 1000) * 1000000 };
    siginfo_t si;
    int sig = sigtimedwait(&all, &si, &ts);
    if (!pid1 && getppid() != parent) fence("the agent that started this job is gone");
    if (sig < 0) continue; /* timeout or EINTR: look at the fence again */
    if (sig == SIGCHLD) {
      int status;
      pid_t p;
      while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
        if (p != child) continue; /* an orphan reaped as PID 1 */
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
      continue;
    }
    /* Container mode: what is sent to the container is meant for the job. */
    if (pid1) kill(child, sig);
  }
}
