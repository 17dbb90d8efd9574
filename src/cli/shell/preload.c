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
 * A command named in OSWALK_SHELL_FANOUT (make, xargs, parallel) runs here with this library
 * loaded in turn: what it starts (make's recipes, xargs' commands) goes to the nodes, so that
 * `make -j8` spreads its compiles over the cluster instead of running whole on one node.
 *
 * Why a preloaded execve and not a directory of shims early in PATH: a shim sees only commands
 * found through PATH, not ./my_program or /path/to/tool, and changes PATH for every program the
 * shell runs. LD_PRELOAD itself leaves the environment before the shell reads it (init below),
 * so the programs the shell runs, here or on a node, never load this library.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <spawn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

/* Read at load time: the shell's own environment (exports changed later are the shell's business, not ours). */
static char exec_path[PATH_MAX];
static char mount[PATH_MAX];
static char local_names[8192];
static char fanout_names[4096];
/* "LD_PRELOAD=<this library>", for the environment of a fan-out command. */
static char preload_entry[PATH_MAX + 16];

__attribute__((constructor)) static void init(void) {
  const char *e = getenv("OSWALK_SHELL_EXEC"), *m = getenv("OSWALK_SHELL_MOUNT"), *l = getenv("OSWALK_SHELL_LOCAL");
  const char *f = getenv("OSWALK_SHELL_FANOUT"), *p = getenv("LD_PRELOAD");
  if (e) strncpy(exec_path, e, sizeof exec_path - 1);
  if (m) strncpy(mount, m, sizeof mount - 1);
  if (l) strncpy(local_names, l, sizeof local_names - 1);
  if (f) strncpy(fanout_names, f, sizeof fanout_names - 1);
  if (p) snprintf(preload_entry, sizeof preload_entry, "LD_PRELOAD=%s", p);
  /* Before bash's main() reads the environment (glibc removes it from the same array): the
   * shell does not export it, so no program it runs loads this library. */
  unsetenv("LD_PRELOAD");
}

static int listed(const char *names, const char *name) {
  size_t n = strlen(name);
  for (const char *p = names; *p;) {
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

/* What becomes of a program started here: run as it is, with this library loaded (fan-out), or on the cluster. */
enum route { HERE, FAN_OUT, CLUSTER };

static enum route route_of(const char *path, char *const envp[]) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  if (!exec_path[0] || listed(local_names, base) || forced_local(envp) || !in_mount()) return HERE;
  if (listed(fanout_names, base) && preload_entry[0]) return FAN_OUT;
  return CLUSTER;
}

/* envp with this library preloaded (to free), or NULL. */
static char **with_preload(char *const envp[]) {
  int envc = 0;
  while (envp && envp[envc]) envc++;
  char **env = malloc(sizeof(char *) * (size_t)(envc + 2));
  if (!env) return NULL;
  for (int i = 0; i < envc; i++) env[i] = envp[i];
  env[envc] = preload_entry;
  env[envc + 1] = NULL;
  return env;
}

/* oswalk-exec PATH ARGV0 ARG...: the program as it was named, then its own argv (to free), or NULL. */
static char **via_cluster(const char *path, char *const argv[]) {
  int argc = 0;
  while (argv[argc]) argc++;
  char **args = malloc(sizeof(char *) * (size_t)(argc + 3));
  if (!args) return NULL;
  args[0] = exec_path;
  args[1] = (char *)path;
  for (int i = 0; i <= argc; i++) args[i + 2] = argv[i];
  return args;
}

typedef int (*execve_fn)(const char *, char *const[], char *const[]);
typedef int (*posix_spawn_fn)(pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *, char *const[], char *const[]);

/* One start of a program, whichever call the caller made (bash: execve; GNU make: posix_spawn; xargs: execvp). */
struct call {
  int spawn;  /* posix_spawn*, else exec* */
  int search; /* look `file` up in PATH (execvp*, posix_spawnp) */
  pid_t *pid;
  const char *file;
  const posix_spawn_file_actions_t *actions;
  const posix_spawnattr_t *attr;
  char *const *argv;
  char *const *envp;
};

static int call_real(const struct call *c) {
  static execve_fn execve_, execvpe_;
  static posix_spawn_fn spawn_, spawnp_;
  if (!execve_) {
    execve_ = (execve_fn)dlsym(RTLD_NEXT, "execve");
    execvpe_ = (execve_fn)dlsym(RTLD_NEXT, "execvpe");
    spawn_ = (posix_spawn_fn)dlsym(RTLD_NEXT, "posix_spawn");
    spawnp_ = (posix_spawn_fn)dlsym(RTLD_NEXT, "posix_spawnp");
  }
  if (c->spawn) return (c->search ? spawnp_ : spawn_)(c->pid, c->file, c->actions, c->attr, c->argv, c->envp);
  return (c->search ? execvpe_ : execve_)(c->file, c->argv, c->envp);
}

static int start(struct call c) {
  enum route r = route_of(c.file, c.envp);
  char **made = r == FAN_OUT ? with_preload(c.envp) : r == CLUSTER ? via_cluster(c.file, c.argv) : NULL;
  if (made && r == FAN_OUT) c.envp = made;
  if (made && r == CLUSTER) {
    c.argv = made;
    c.file = exec_path;
    c.search = 0;
  }
  int res = call_real(&c);
  int saved = errno;
  free(made);
  errno = saved;
  return res;
}

int execve(const char *path, char *const argv[], char *const envp[]) {
  return start((struct call){ .file = path, .argv = argv, .envp = envp });
}

/* A name without a slash is looked up in PATH: on a node by the node (oswalk-exec passes it on as named). */
int execvpe(const char *file, char *const argv[], char *const envp[]) {
  return start((struct call){ .search = !strchr(file, '/'), .file = file, .argv = argv, .envp = envp });
}

int execvp(const char *file, char *const argv[]) {
  return execvpe(file, argv, environ);
}

int execv(const char *path, char *const argv[]) {
  return execve(path, argv, environ);
}

int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *attr, char *const argv[], char *const envp[]) {
  return start((struct call){ .spawn = 1, .pid = pid, .file = path, .actions = fa, .attr = attr, .argv = argv, .envp = envp });
}

int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *attr, char *const argv[], char *const envp[]) {
  return start((struct call){ .spawn = 1, .search = !strchr(file, '/'), .pid = pid, .file = file, .actions = fa, .attr = attr, .argv = argv, .envp = envp });
}
