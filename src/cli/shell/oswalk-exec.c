/*
 * oswalk-exec: one command of `oswalk shell`, run on the cluster and standing in for it here.
 *
 *   oswalk-exec PATH ARGV0 [ARG]...      (exec'd by liboswalk-shell.so in place of PATH)
 *
 * It hands the command to the shell's session (the `oswalk shell` process, on the Unix socket
 * OSWALK_SHELL_SOCK), which submits it as a job in the same working directory of the unified
 * mount with this environment, and then relays: our stdin to the job, its stdout and stderr to
 * ours, and at the end its exit status, which we exit with (or the signal that killed it, which
 * we die of, so that the shell sees what it would have seen of a local program).
 *
 * When stdin, stdout and stderr are all this terminal, the job gets a terminal of its own of
 * the same size (as `oswalk run -it`): ours goes raw, keys go through (Ctrl-C and Ctrl-\ become
 * signals on the node), and window changes follow. Ctrl-Z stays ours: it suspends this command
 * here, and gives the terminal back to the shell, as ssh's escape does; the job runs on.
 * Otherwise the job's stdin, stdout and stderr are plain streams. A Ctrl-C then interrupts us
 * (the terminal sends SIGINT to the whole foreground job): the job is cancelled, and we die of
 * the signal. A relay cannot tell whether the program reads its input; when that input is the
 * terminal, we start reading it only once the job has run for TERMINAL_INPUT_AFTER_MS, so that
 * the short commands of a $(...) or a prompt hook leave what was typed meanwhile to the shell
 * (a long one takes it, as ssh would).
 *
 * Written in C because it runs for every command typed: a Node client would add Node's start
 * (about 100 ms here) to each one.
 *
 * Wire format, both ways: frames of [type: 1 byte][length: 4 bytes, little-endian][payload].
 *   to the session:   'R' request: NUL-terminated strings: tty ("1"/"0"), input ("1", or "0"
 *                         when stdin is at its end already), rows, cols, cwd, PATH, the
 *                         argument count, the arguments (argv[1] on), then the environment
 *                     'I' stdin bytes   'E' end of stdin   'W' "ROWS COLS"   'C' cancel
 *   from the session: 'O' stdout bytes  'e' stderr bytes
 *                     'X' "CODE SIGNAL": the exit code, and the signal's number (0: none)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define TERMINAL_INPUT_AFTER_MS 300

static int sock = -1;
static int tty;
static struct termios saved;
static int raw_now;

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      struct pollfd w = { .fd = fd, .events = POLLOUT };
      poll(&w, 1, -1);
      continue;
    }
    if (n <= 0) return;
    p += n;
    len -= (size_t)n;
  }
}

static void send_frame(char type, const void *data, size_t len) {
  unsigned char head[5] = { (unsigned char)type, (unsigned char)len, (unsigned char)(len >> 8), (unsigned char)(len >> 16), (unsigned char)(len >> 24) };
  write_all(sock, head, sizeof head);
  if (len) write_all(sock, data, len);
}

/* Ours raw as ssh makes it, but Ctrl-Z still ours (ISIG on, with only VSUSP left to it). */
static void make_raw(void) {
  struct termios t = saved;
  cfmakeraw(&t);
  t.c_lflag |= ISIG;
  t.c_cc[VINTR] = _POSIX_VDISABLE;
  t.c_cc[VQUIT] = _POSIX_VDISABLE;
  t.c_cc[VSUSP] = saved.c_cc[VSUSP];
  if (tcsetattr(0, TCSADRAIN, &t) == 0) raw_now = 1;
}

static void restore(void) {
  if (raw_now) tcsetattr(0, TCSADRAIN, &saved);
  raw_now = 0;
}

static void send_size(void) {
  struct winsize ws;
  char buf[32];
  if (ioctl(1, TIOCGWINSZ, &ws) < 0 || !ws.ws_row) return;
  int n = snprintf(buf, sizeof buf, "%u %u", ws.ws_row, ws.ws_col);
  send_frame('W', buf, (size_t)n);
}

/* Die of `sig` as the program would have (the shell then sees WIFSIGNALED). */
static void die_of(int sig) {
  restore();
  signal(sig, SIG_DFL);
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, sig);
  sigprocmask(SIG_UNBLOCK, &one, NULL);
  raise(sig);
  _exit(128 + sig);
}

/* The command runs here after all: the session is gone (the shell outlived its `oswalk shell`). */
static void run_here(char **argv, const char *why) {
  fprintf(stderr, "oswalk: %s; running %s on this machine\n", why, argv[2]);
  execve(argv[1], argv + 2, environ);
  fprintf(stderr, "oswalk: %s: %s\n", argv[1], strerror(errno));
  _exit(errno == ENOENT ? 127 : 126);
}

/* Append a NUL-terminated string to a growing buffer. */
static void put(char **buf, size_t *len, size_t *cap, const char *s) {
  size_t n = strlen(s) + 1;
  while (*len + n > *cap) {
    *cap = *cap ? *cap * 2 : 4096;
    *buf = realloc(*buf, *cap);
    if (!*buf) _exit(125);
  }
  memcpy(*buf + *len, s, n);
  *len += n;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: oswalk-exec PATH ARGV0 [ARG]... (run by oswalk shell for each command)\n");
    return 125;
  }
  const char *path = getenv("OSWALK_SHELL_SOCK");
  if (!path) run_here(argv, "no cluster shell session (OSWALK_SHELL_SOCK is not set)");
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
  sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock < 0 || connect(sock, (struct sockaddr *)&addr, sizeof addr) < 0) run_here(argv, "the cluster shell's session is gone");

  tty = isatty(0) && isatty(1) && isatty(2) && tcgetattr(0, &saved) == 0;
  /* Input that is at its end already (a closed pipe, /dev/null, as for the commands of a script
   * run without input): the job is given none, and no end of input follows it, which saved a
   * request and a Redis step per command. What a first look reads is sent once the job is asked for. */
  static char in[65536];
  ssize_t first = -1;
  if (!isatty(0)) {
    struct pollfd p = { .fd = 0, .events = POLLIN };
    if (poll(&p, 1, 0) == 1) first = read(0, in, sizeof in);
  }
  struct winsize ws = { 0 };
  if (tty) ioctl(1, TIOCGWINSZ, &ws);
  char *req = NULL, cwd[4096], num[32];
  size_t len = 0, cap = 0;
  if (!getcwd(cwd, sizeof cwd)) run_here(argv, "cannot read the working directory");
  put(&req, &len, &cap, tty ? "1" : "0");
  put(&req, &len, &cap, first == 0 ? "0" : "1");
  snprintf(num, sizeof num, "%u", ws.ws_row);
  put(&req, &len, &cap, num);
  snprintf(num, sizeof num, "%u", ws.ws_col);
  put(&req, &len, &cap, num);
  put(&req, &len, &cap, cwd);
  put(&req, &len, &cap, argv[1]);
  snprintf(num, sizeof num, "%d", argc - 3);
  put(&req, &len, &cap, num);
  for (int i = 3; i < argc; i++) put(&req, &len, &cap, argv[i]);
  for (char **e = environ; *e; e++) put(&req, &len, &cap, *e);
  send_frame('R', req, len);
  free(req);
  if (first > 0) send_frame('I', in, (size_t)first);

  sigset_t sigs;
  sigemptyset(&sigs);
  int watched[] = { SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGWINCH, SIGTSTP, SIGCONT };
  for (size_t i = 0; i < sizeof watched / sizeof watched[0]; i++) sigaddset(&sigs, watched[i]);
  sigprocmask(SIG_BLOCK, &sigs, NULL);
  int sigfd = signalfd(-1, &sigs, SFD_CLOEXEC);
  if (tty) make_raw();

  static unsigned char frame[5 + 65536];
  size_t have = 0;
  int stdin_open = first != 0, stdin_held = !tty && isatty(0);
  long long hold_until = now_ms() + TERMINAL_INPUT_AFTER_MS;
  for (;;) {
    struct pollfd p[3] = { { .fd = sock, .events = POLLIN }, { .fd = sigfd, .events = POLLIN }, { .fd = 0, .events = POLLIN } };
    if (stdin_held && now_ms() >= hold_until) stdin_held = 0;
    int ready = poll(p, stdin_open && !stdin_held ? 3 : 2, stdin_held ? (int)(hold_until - now_ms()) : -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (ready == 0) continue;
    if (p[1].revents) {
      struct signalfd_siginfo si;
      if (read(sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
        int sig = (int)si.ssi_signo;
        if (sig == SIGWINCH) {
          if (tty) send_size();
        } else if (sig == SIGTSTP) {
          /* Suspended here, the job runs on; the shell gets its terminal back as it was. */
          restore();
          kill(getpid(), SIGSTOP);
        } else if (sig == SIGCONT) {
          if (tty) {
            make_raw();
            send_size();
          }
        } else {
          send_frame('C', NULL, 0);
          die_of(sig);
        }
      }
    }
    if (stdin_open && !stdin_held && p[2].revents) {
      ssize_t n = read(0, in, sizeof in);
      if (n > 0) {
        send_frame('I', in, (size_t)n);
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        /* A terminal's end of input (Ctrl-D in plain mode), a pipe's or a file's. */
        send_frame('E', NULL, 0);
        stdin_open = 0;
      }
    }
    if (p[0].revents) {
      ssize_t n = read(sock, frame + have, sizeof frame - have);
      if (n <= 0) {
        restore();
        fprintf(stderr, "oswalk: lost the cluster shell's session while %s ran\n", argv[2]);
        return 255;
      }
      have += (size_t)n;
      for (;;) {
        if (have < 5) break;
        size_t flen = frame[1] | (size_t)frame[2] << 8 | (size_t)frame[3] << 16 | (size_t)frame[4] << 24;
        if (flen > sizeof frame - 5) {
          restore();
          fprintf(stderr, "oswalk: a frame of %zu bytes from the session is more than a frame holds\n", flen);
          return 255;
        }
        if (have < 5 + flen) break;
        char type = (char)frame[0];
        if (type == 'O') write_all(1, frame + 5, flen);
        else if (type == 'e') write_all(2, frame + 5, flen);
        else if (type == 'X') {
          char status[64] = { 0 };
          memcpy(status, frame + 5, flen < sizeof status - 1 ? flen : sizeof status - 1);
          int code = 255, sig = 0;
          sscanf(status, "%d %d", &code, &sig);
          restore();
          if (sig > 0) die_of(sig);
          return code;
        }
        have -= 5 + flen;
        memmove(frame, frame + 5 + flen, have);
      }
    }
  }
  restore();
  return 255;
}
