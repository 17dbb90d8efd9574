/*
 * liboswalk-shell.so: preloaded into the bash of `oswalk shell` (and only into it), it sends
 * every external command the shell starts to the cluster. bash forks, then calls execve() with
 * the program it found (through PATH, or a path typed as ./my_program) and the exported
 * environment; this execve() runs native/oswalk-exec instead, with the program and its
 * arguments, which has the shell's session run it on the best node and stands in for it here
 * (stdin, stdout, stderr, terminal, signals, exit status).
 *
 * A command stays here when:
 *   - the working directory is outside the unified mount (OSWALK_SHELL_MOUNT): its files are not
 *     on any other node;
 *   - its name is in OSWALK_SHELL_LOCAL (":"-separated: editors, oswalk itself, what the user
 *     listed in ~/.config/oswalk/shell-local);
 *   - its environment says OSWALK_LOCAL=1 (`here CMD` in the shell).
 *
 * Why a preloaded execve and not a directory of shims early in PATH: a shim sees only commands
 * found through PATH, not ./my_program or /path/to/tool, and changes PATH for every program the
 * shell runs. LD_PRELOAD itself leaves the environment before the shell reads it (init below),
 * so the programs the shell runs, here or on a node, never load this library.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int (*execve_fn)(const char *, char *const[], char *const[]);

/* Read at load time: the shell's own environment (exports changed later are the shell's business, not ours). */
static char exec_path[PATH_MAX];
static char mount[PATH_MAX];
static char local_names[8192];

__attribute__((constructor)) static void init(void) {
  const char *e = getenv("OSWALK_SHELL_EXEC"), *m = getenv("OSWALK_SHELL_MOUNT"), *l = getenv("OSWALK_SHELL_LOCAL");
  if (e) strncpy(exec_path, e, sizeof exec_path - 1);
  if (m) strncpy(mount, m, sizeof mount - 1);
  if (l) strncpy(local_names, l, sizeof local_names - 1);
  /* Before bash's main() reads the environment (glibc removes it from the same array): the
   * shell does not export it, so no program it runs loads this library. */
  unsetenv("LD_PRELOAD");
}

static int listed(const char *name) {
  size_t n = strlen(name);
  for (const char *p = local_names; *p;) {
    const char *end = strchr(p, ':');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len == n && strncmp(p, name, n) == 0) return 1;
    if (!end) break;
    p = end + 1;
  }
  return 0;
}

static int in_mount(void) {
  char cwd[PATH_MAX];
  size_t n = strlen(mount);
  if (!n || !getcwd(cwd, sizeof cwd)) return 0;
  return strncmp(cwd, mount, n) == 0 && (cwd[n] == 0 || cwd[n] == '/');
}

static int forced_local(char *const envp[]) {
  for (char *const *e = envp; e && *e; e++) {
    if (strcmp(*e, "OSWALK_LOCAL=1") == 0) return 1;
  }
  return 0;
}

int execve(const char *path, char *const argv[], char *const envp[]) {
  static execve_fn real;
  if (!real) real = (execve_fn)dlsym(RTLD_NEXT, "execve");
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  if (!exec_path[0] || listed(base) || forced_local(envp) || !in_mount()) return real(path, argv, envp);
  /* oswalk-exec PATH ARGV0 ARG...: the program as the shell found it, then its own argv. */
  int argc = 0;
  while (argv[argc]) argc++;
  char **args = malloc(sizeof(char *) * (size_t)(argc + 3));
  if (!args) return real(path, argv, envp);
  args[0] = exec_path;
  args[1] = (char *)path;
  for (int i = 0; i <= argc; i++) args[i + 2] = argv[i];
  int r = real(exec_path, args, envp);
  int saved = errno;
  free(args);
  errno = saved;
  return r;
}
