/* SPDX-License-Identifier: MIT */
/*
 * Spawned programs: see core/spawn.h and include/skproc/spawn.h.
 *
 * Between fork (or clone) and exec only async-signal-safe calls run, on
 * data the parent made beforehand: the parent may have other threads that
 * held malloc's or stdio's locks at the fork, and with CLONE_VM the child
 * even shares the parent's memory. So the environment, the PATH
 * candidates, the files and the pipes are all made in sk_spawn_prepare.
 */
#include "core/spawn.h"
#include "core/error.h"
#include "core/handle.h"
#include "os/clock.h"
#include "os/fd.h"
#include "os/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* What the child was doing when it failed, for the error's text. */
enum spawn_step {
    STEP_EXEC,
    STEP_STDIO,
    STEP_CWD,
    STEP_SESSION,
    STEP_UMASK,
    STEP_RLIMIT,
    STEP_GID,
    STEP_UID,
    STEP_PARENT,
    STEP_READY
};

static const char *const step_names[] = {[STEP_EXEC] = "execve",
                                         [STEP_STDIO] = "redirecting stdio",
                                         [STEP_CWD] = "chdir",
                                         [STEP_SESSION] = "setsid",
                                         [STEP_UMASK] = "umask",
                                         [STEP_RLIMIT] = "setrlimit",
                                         [STEP_GID] = "setgid",
                                         [STEP_UID] = "setuid",
                                         [STEP_PARENT] =
                                             "the parent died before the program started",
                                         [STEP_READY] = "setting up ready_fd"};

/* ------------------------------------------------------------ the config */

static char *dup_or_null(const char *s, bool *failed)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        *failed = true;
    return d;
}

static char **dup_vector(const char *const *v, bool *failed)
{
    if (v == NULL)
        return NULL;
    size_t n = 0;
    while (v[n] != NULL)
        n++;
    char **d = calloc(n + 1, sizeof *d);
    if (d == NULL) {
        *failed = true;
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        d[i] = dup_or_null(v[i], failed);
    return d;
}

static void free_vector(char **v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; v[i] != NULL; i++)
        free(v[i]);
    free(v);
}

/* 0 is none; the program's stdio (1, 2) and what no fd can be (negative,
 * at or over the fd limit, where its dup2 would fail) are refused. */
static int ready_fd_check(int fd)
{
    if (fd == 0)
        return SK_OK;
    if (fd < 0 || fd <= 2)
        return sk_refuse(SK_EINVAL,
                         "sk_spawn_init: ready_fd is %d; it must be 0 (none) or 3 or more, "
                         "above the program's stdin, stdout and stderr",
                         fd);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (rlim_t)fd >= rl.rlim_cur)
        return sk_refuse(SK_EINVAL,
                         "sk_spawn_init: ready_fd is %d, at or over the fd limit "
                         "(RLIMIT_NOFILE %llu)",
                         fd, (unsigned long long)rl.rlim_cur);
    return SK_OK;
}

static int config_check(const sk_spawn_config *cfg)
{
    if (cfg->argv == NULL || cfg->argv[0] == NULL)
        return sk_refuse(SK_EINVAL, "sk_spawn_init: argv is NULL or empty");
    if ((cfg->file == NULL || cfg->file[0] == '\0') && cfg->argv[0][0] == '\0')
        return sk_refuse(SK_EINVAL, "sk_spawn_init: argv[0] is empty and no file is given");
    if (cfg->nrlimits < 0 || cfg->nrlimits > SK_SPAWN_MAX_RLIMITS)
        return sk_refuse(SK_EINVAL, "sk_spawn_init: nrlimits is %d, not 0 to %d", cfg->nrlimits,
                         SK_SPAWN_MAX_RLIMITS);
    if ((unsigned)cfg->env_mode > SK_ENV_REPLACE)
        return sk_refuse(SK_EINVAL, "sk_spawn_init: env_mode %d is not an sk_env_mode",
                         (int)cfg->env_mode);
    for (int i = 0; i < 3; i++) {
        sk_stdio_mode m = cfg->stdio[i].mode;
        if ((unsigned)m > SK_STDIO_FD || (m == SK_STDIO_STDOUT && i != 2))
            return sk_refuse(SK_EINVAL, "sk_spawn_init: stdio[%d].mode %d is not allowed there", i,
                             (int)m);
        if (m == SK_STDIO_FILE && cfg->stdio[i].path == NULL)
            return sk_refuse(SK_EINVAL, "sk_spawn_init: stdio[%d] is SK_STDIO_FILE with no path",
                             i);
        if (m == SK_STDIO_FD && cfg->stdio[i].fd < 0)
            return sk_refuse(SK_EINVAL, "sk_spawn_init: stdio[%d] is SK_STDIO_FD with fd %d", i,
                             cfg->stdio[i].fd);
    }
    return ready_fd_check(cfg->ready_fd);
}

int sk_spawn_check(const sk_spawn_config *cfg)
{
    return config_check(cfg);
}

int sk_spawn_plan_new(struct sk_runtime *rt, const sk_spawn_config *cfg)
{
    struct sk_spawn *sp = calloc(1, sizeof *sp);
    if (sp == NULL)
        return SK_ENOMEM;
    rt->spawn = sp;
    for (int i = 0; i < 3; i++)
        sp->child_fd[i] = sp->parent_fd[i] = -1;
    sp->ready_child = sp->ready_parent = -1;
    sp->cfg = *cfg;
    bool failed = false;
    sp->argv = dup_vector(cfg->argv, &failed);
    sp->env = dup_vector(cfg->env, &failed);
    sp->file = dup_or_null(cfg->file != NULL && cfg->file[0] ? cfg->file : cfg->argv[0], &failed);
    sp->cwd = dup_or_null(cfg->cwd, &failed);
    for (int i = 0; i < 3; i++)
        if (cfg->stdio[i].mode == SK_STDIO_FILE)
            sp->paths[i] = dup_or_null(cfg->stdio[i].path, &failed);
    /* Our copies only: the caller's may go away. */
    sp->cfg.argv = NULL;
    sp->cfg.env = NULL;
    sp->cfg.file = NULL;
    sp->cfg.cwd = NULL;
    for (int i = 0; i < 3; i++)
        sp->cfg.stdio[i].path = NULL;
    return failed ? SK_ENOMEM : SK_OK;
}

/* ----------------------------------------------------- before the fork */

static void close_fds(int *fds)
{
    for (int i = 0; i < 3; i++)
        sk_fd_close(&fds[i]);
}

static void free_plan(struct sk_spawn *sp)
{
    if (sp->envp_owned)
        free(sp->envp);
    sp->envp = NULL;
    sp->envp_owned = false;
    free_vector(sp->candidates);
    sp->candidates = NULL;
}

void sk_spawn_forget(struct sk_runtime *rt)
{
    struct sk_spawn *sp = rt->spawn;
    if (sp == NULL)
        return;
    close_fds(sp->child_fd);
    close_fds(sp->parent_fd);
    sk_fd_close(&sp->ready_child);
    sk_fd_close(&sp->ready_parent);
}

void sk_spawn_free(struct sk_runtime *rt)
{
    struct sk_spawn *sp = rt->spawn;
    if (sp == NULL)
        return;
    sk_spawn_forget(rt);
    free_plan(sp);
    free_vector(sp->argv);
    free_vector(sp->env);
    free(sp->file);
    free(sp->cwd);
    for (int i = 0; i < 3; i++) {
        free(sp->paths[i]);
        free(sp->line[i].data);
    }
    free(sp);
    rt->spawn = NULL;
}

void sk_spawn_rearm(struct sk_runtime *rt)
{
    struct sk_spawn *sp = rt->spawn;
    if (sp == NULL)
        return;
    sk_spawn_forget(rt);
    free_plan(sp);
    for (int i = 0; i < 3; i++) {
        free(sp->line[i].data);
        memset(&sp->line[i], 0, sizeof sp->line[i]);
    }
    sp->parent = 0;
    sp->start_ns = 0;
    sp->exec_errno = 0;
    sp->exec_step = STEP_EXEC;
    sp->stopped = false;
    sp->status = 0;
    sp->have_status = false;
}

/* The length of NAME in "NAME=value" (the whole string without '='). */
static size_t name_len(const char *entry)
{
    const char *eq = strchr(entry, '=');
    return eq != NULL ? (size_t)(eq - entry) : strlen(entry);
}

/* The environment execve gets. Inherited with nothing added: environ
 * itself, no copy (the common case, and the fast one). */
static int make_envp(struct sk_spawn *sp)
{
    char **base = sp->cfg.env_mode == SK_ENV_REPLACE ? NULL : environ;
    size_t nbase = 0, nadd = 0;
    while (base != NULL && base[nbase] != NULL)
        nbase++;
    while (sp->env != NULL && sp->env[nadd] != NULL)
        nadd++;
    if (nadd == 0 && base != NULL) {
        sp->envp = base;
        return SK_OK;
    }
    char **envp = calloc(nbase + nadd + 1, sizeof *envp);
    if (envp == NULL)
        return SK_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < nbase; i++) {
        size_t len = name_len(base[i]);
        bool replaced = false;
        for (size_t k = 0; k < nadd && !replaced; k++)
            replaced = name_len(sp->env[k]) == len && strncmp(sp->env[k], base[i], len) == 0;
        if (!replaced)
            envp[n++] = base[i];
    }
    for (size_t k = 0; k < nadd; k++)
        envp[n++] = sp->env[k];
    sp->envp = envp;
    sp->envp_owned = true;
    return SK_OK;
}

/* PATH as the program's environment has it, or execvp's default. */
static const char *env_path(char *const *envp)
{
    for (size_t i = 0; envp != NULL && envp[i] != NULL; i++)
        if (strncmp(envp[i], "PATH=", 5) == 0)
            return envp[i] + 5;
    return "/bin:/usr/bin";
}

/* The full paths execve tries: the file itself when it has a '/',
 * otherwise file under each directory of PATH (an empty entry is ".").
 * Made here so that the child only loops over ready strings. */
static int make_candidates(struct sk_spawn *sp)
{
    const char *file = sp->file;
    if (strchr(file, '/') != NULL) {
        sp->candidates = calloc(2, sizeof *sp->candidates);
        if (sp->candidates == NULL || (sp->candidates[0] = strdup(file)) == NULL)
            return SK_ENOMEM;
        return SK_OK;
    }
    const char *path = env_path(sp->envp);
    size_t dirs = 1;
    for (const char *c = path; *c; c++)
        dirs += *c == ':';
    sp->candidates = calloc(dirs + 1, sizeof *sp->candidates);
    if (sp->candidates == NULL)
        return SK_ENOMEM;
    size_t n = 0;
    for (const char *dir = path;;) {
        const char *end = strchr(dir, ':');
        size_t dlen = end != NULL ? (size_t)(end - dir) : strlen(dir);
        char *full = malloc(dlen + strlen(file) + 3);
        if (full == NULL)
            return SK_ENOMEM;
        if (dlen == 0)
            sprintf(full, "./%s", file);
        else
            sprintf(full, "%.*s/%s", (int)dlen, dir, file);
        sp->candidates[n++] = full;
        if (end == NULL)
            break;
        dir = end + 1;
    }
    return SK_OK;
}

/* A close-on-exec fd of at least 3, so that dup2 onto 0, 1 or 2 in the
 * child never meets an fd it has to keep (a parent with fd 0 closed gets
 * its first pipe at 0). */
static int fd_above_stdio(int fd)
{
    if (fd < 0 || fd > 2)
        return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int saved = errno;
    close(fd);
    errno = saved;
    return moved;
}

static int open_stdio(struct sk_spawn *sp, int i)
{
    const sk_stdio *s = &sp->cfg.stdio[i];
    int fds[2];
    switch (s->mode) {
    case SK_STDIO_INHERIT:
    case SK_STDIO_STDOUT:
        return SK_OK;
    case SK_STDIO_DEVNULL:
        sp->child_fd[i] =
            fd_above_stdio(open("/dev/null", (i == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC));
        return sp->child_fd[i] < 0 ? sk_refuse(SK_ESYS, "sk_start: /dev/null: %s", strerror(errno))
                                   : SK_OK;
    case SK_STDIO_FILE: {
        int flags = s->flags ? s->flags : i == 0 ? O_RDONLY : O_WRONLY | O_CREAT | O_TRUNC;
        sp->child_fd[i] = fd_above_stdio(
            open(sp->paths[i], flags | O_CLOEXEC, s->mode_bits ? s->mode_bits : 0644));
        return sp->child_fd[i] < 0 ? sk_refuse(SK_ESYS, "sk_start: stdio[%d] file %s: %s", i,
                                               sp->paths[i], strerror(errno))
                                   : SK_OK;
    }
    case SK_STDIO_FD:
        sp->child_fd[i] = fcntl(s->fd, F_DUPFD_CLOEXEC, 3);
        return sp->child_fd[i] < 0
                   ? sk_refuse(SK_ESYS, "sk_start: stdio[%d] fd %d: %s", i, s->fd, strerror(errno))
                   : SK_OK;
    case SK_STDIO_PIPE:
        if (pipe2(fds, O_CLOEXEC) != 0)
            return sk_refuse(SK_ESYS, "sk_start: pipe2: %s", strerror(errno));
        /* fds[0] reads, fds[1] writes: the child reads its stdin. */
        sp->child_fd[i] = fd_above_stdio(i == 0 ? fds[0] : fds[1]);
        sp->parent_fd[i] = fd_above_stdio(i == 0 ? fds[1] : fds[0]);
        if (sp->child_fd[i] < 0 || sp->parent_fd[i] < 0)
            return sk_refuse(SK_ESYS, "sk_start: fcntl: %s", strerror(errno));
        /* Only the parent's end is non-blocking: the program gets the
         * blocking pipe it expects. */
        if (fcntl(sp->parent_fd[i], F_SETFL, O_NONBLOCK) != 0)
            return sk_refuse(SK_ESYS, "sk_start: fcntl: %s", strerror(errno));
        return SK_OK;
    }
    return SK_EINVAL;
}

/* The ready pipe: the program writes into ready_child (dup2'ed to
 * cfg.ready_fd in the child), the parent alone reads ready_parent. */
static int open_ready(struct sk_spawn *sp)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return sk_refuse(SK_ESYS, "sk_start: pipe2: %s", strerror(errno));
    sp->ready_parent = fd_above_stdio(fds[0]);
    sp->ready_child = fd_above_stdio(fds[1]);
    if (sp->ready_child < 0 || sp->ready_parent < 0)
        return sk_refuse(SK_ESYS, "sk_start: fcntl: %s", strerror(errno));
    if (fcntl(sp->ready_parent, F_SETFL, O_NONBLOCK) != 0)
        return sk_refuse(SK_ESYS, "sk_start: fcntl: %s", strerror(errno));
    return SK_OK;
}

int sk_spawn_prepare(struct sk_runtime *rt)
{
    struct sk_spawn *sp = rt->spawn;
    free_plan(sp);
    sk_spawn_forget(rt);
    sp->exec_errno = 0;
    sp->exec_step = STEP_EXEC;
    sp->have_status = false;
    int rc = make_envp(sp);
    if (rc == SK_OK)
        rc = make_candidates(sp);
    for (int i = 0; i < 3 && rc == SK_OK; i++)
        rc = open_stdio(sp, i);
    if (rc == SK_OK && sp->cfg.ready_fd > 0)
        rc = open_ready(sp);
    if (rc != SK_OK) {
        sk_spawn_forget(rt);
        free_plan(sp);
    }
    return rc;
}

void sk_spawn_after_fork(struct sk_runtime *rt)
{
    if (rt->spawn != NULL) {
        close_fds(rt->spawn->child_fd);
        sk_fd_close(&rt->spawn->ready_child);
    }
}

/* The supervisor keeps the child's ends, the ready pipe's write end among
 * them, for the programs it starts after a restart; the read end is the
 * parent's alone. */
void sk_spawn_in_supervisor(struct sk_runtime *rt)
{
    if (rt->spawn != NULL) {
        close_fds(rt->spawn->parent_fd);
        sk_fd_close(&rt->spawn->ready_parent);
    }
}

/* ------------------------------------------------ between fork and exec */

/* Closes every fd above 2 but keep (-1: none) with close_range; -1 where
 * the kernel lacks it. */
#if defined(__clang__) || defined(__GNUC__)
__attribute__((no_sanitize_address))
#endif
static int
close_above_stdio(int keep)
{
    unsigned from = 3;
    if (keep >= 3) {
        if (keep > 3 && syscall(SYS_close_range, 3u, (unsigned)keep - 1, 0u) != 0)
            return -1;
        from = (unsigned)keep + 1;
    }
    return syscall(SYS_close_range, from, ~0u, 0u) != 0 ? -1 : 0;
}

/* Everything the child does, async-signal-safe only, on the plan. Returns
 * the errno of the step that failed (in *step); on success it does not
 * return. user_mask is the signal mask the program starts with. Not
 * instrumented by AddressSanitizer: in the fast path it runs on the clone
 * stack, which ASan does not know, and would leave its redzones poisoned
 * in the shadow of memory the parent reuses. */
#if defined(__clang__) || defined(__GNUC__)
__attribute__((no_sanitize_address))
#endif
static int
child_exec(struct sk_spawn *sp, const sigset_t *user_mask, bool own_group, int *step)
{
    const sk_spawn_config *c = &sp->cfg;
    *step = STEP_SESSION;
    if (c->new_session) {
        if (setsid() < 0)
            return errno;
    } else if (own_group && setpgid(0, 0) != 0) {
        return errno;
    }
    *step = STEP_STDIO;
    for (int i = 0; i < 3; i++)
        if (sp->child_fd[i] >= 0 && dup2(sp->child_fd[i], i) < 0)
            return errno;
    if (c->stdio[2].mode == SK_STDIO_STDOUT && dup2(1, 2) < 0)
        return errno;
    /* The ready pipe at exactly cfg.ready_fd, without close-on-exec (dup2
     * clears it; an fd that is already there keeps it, so it is cleared by
     * hand). After stdio: the sources dup2 read are all done with. */
    int keep = -1;
    if (sp->ready_child >= 0) {
        *step = STEP_READY;
        keep = c->ready_fd;
        if (sp->ready_child == keep ? fcntl(keep, F_SETFD, 0) != 0
                                    : dup2(sp->ready_child, keep) < 0)
            return errno;
        *step = STEP_STDIO;
    }
    /* close_range is one system call and async-signal-safe; where the
     * kernel lacks it (before 5.9) the fds are closed one by one. */
    if (c->close_fds && close_above_stdio(keep) != 0) {
        struct rlimit rl;
        long max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
                           rl.rlim_cur < 65536
                       ? (long)rl.rlim_cur
                       : 65536;
        for (long fd = 3; fd < max; fd++)
            if (fd != keep)
                close((int)fd);
    }
    *step = STEP_CWD;
    if (sp->cwd != NULL && chdir(sp->cwd) != 0)
        return errno;
    if (c->set_umask)
        umask(c->umask);
    *step = STEP_RLIMIT;
    for (int i = 0; i < c->nrlimits; i++)
        if (setrlimit(c->rlimits[i].resource, &c->rlimits[i].limit) != 0)
            return errno;
    *step = STEP_GID;
    if (c->set_gid && (setgroups(0, NULL) != 0 || setgid(c->gid) != 0))
        return errno;
    *step = STEP_UID;
    if (c->set_uid && setuid(c->uid) != 0)
        return errno;
    /* After the credentials: changing them clears the parent-death signal.
     * The program dies with whoever started it, as every skproc child. */
    *step = STEP_PARENT;
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != sp->parent)
        return errno ? errno : ESRCH;
    /* Handlers of the parent mean nothing in the program; ignored signals
     * stay ignored, as execve itself would leave them. */
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction sa;
        if (sig == SIGKILL || sig == SIGSTOP || sigaction(sig, NULL, &sa) != 0)
            continue;
        if (sa.sa_handler != SIG_IGN && sa.sa_handler != SIG_DFL) {
            sa.sa_handler = SIG_DFL;
            sa.sa_flags = 0;
            sigaction(sig, &sa, NULL);
        }
    }
    sigprocmask(SIG_SETMASK, user_mask, NULL);
    *step = STEP_EXEC;
    int err = ENOENT;
    bool saw_eacces = false;
    for (size_t i = 0; sp->candidates[i] != NULL; i++) {
        execve(sp->candidates[i], sp->argv, sp->envp);
        err = errno;
        if (err == EACCES)
            saw_eacces = true;
        else if (err != ENOENT && err != ENOTDIR)
            break; /* as execvp: a file that is there but cannot run stops the search */
    }
    return saw_eacces && (err == ENOENT || err == ENOTDIR) ? EACCES : err;
}

struct clone_args_ {
    struct sk_spawn *sp;
    const sigset_t *user_mask;
};

/* The clone child: it runs on its own stack in the parent's memory while
 * the parent's thread is suspended (CLONE_VFORK) until the exec or _exit.
 * Not instrumented by AddressSanitizer: its stack is not one ASan knows. */
#if defined(__clang__) || defined(__GNUC__)
__attribute__((no_sanitize_address))
#endif
static int
clone_child(void *arg)
{
    struct clone_args_ *a = arg;
    int step = STEP_EXEC;
    int err = child_exec(a->sp, a->user_mask, true, &step);
    a->sp->exec_step = step;
    a->sp->exec_errno = err ? err : EINVAL;
    sk_child_exit(127);
    return 127; /* not reached; clone's type wants an int */
}

#define CLONE_STACK_SIZE (64 * 1024)

/* The clone child's stack: one mapping for the whole process, made on the
 * first fast start and kept. sk_spawn_fast runs under the registry lock,
 * so one clone child at a time uses it; an mmap and a munmap per spawn
 * cost about 40 us on a virtual machine, a tenth of the whole spawn. */
static void *clone_stack;

pid_t sk_spawn_fast(struct sk_runtime *rt)
{
    struct sk_spawn *sp = rt->spawn;
    sp->parent = getpid();
    /* Every signal is blocked across the clone: a handler of the parent
     * must never run in the child, which shares the parent's memory. The
     * child resets the handlers and then takes the user's mask. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (clone_stack == NULL) {
        void *stack = mmap(NULL, CLONE_STACK_SIZE, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        clone_stack = stack == MAP_FAILED ? NULL : stack;
    }
    pid_t pid = -1;
    int saved = ENOMEM;
    if (clone_stack != NULL) {
        struct clone_args_ args = {.sp = sp, .user_mask = &rt->user_sigmask};
        sp->start_ns = sk_now_ns();
        pid = clone(clone_child, (char *)clone_stack + CLONE_STACK_SIZE,
                    CLONE_VM | CLONE_VFORK | SIGCHLD, &args);
        saved = errno;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = saved;
    return pid;
}

_Noreturn void sk_spawn_worker_exec(struct sk_runtime *rt)
{
    struct sk_spawn *sp = rt->spawn;
    struct sk_shared *sh = rt->sh;
    sp->parent = getppid();
    /* The run section, as the engine would mark it: the supervisor's
     * timeouts.run deadline counts from here. */
    atomic_store(&sh->section, SK_RUN);
    atomic_store(&sh->section_start_ns, sk_now_ns());
    uint64_t seq = atomic_load(&sh->seq);
    atomic_store(&sh->seq, (seq | 1) + ((seq & 1) ? 2 : 0));
    /* The supervisor may be asleep with no deadline: it must see the run
     * section begin (as the engine does, it is woken when it would
     * otherwise sleep past the new deadline; always, here: once per run). */
    if (rt->doorbell >= 0)
        sk_doorbell_ring(rt->doorbell);
    int step = STEP_EXEC;
    /* The worker is already in the process group the supervisor made. */
    int err = child_exec(sp, &rt->user_sigmask, false, &step);
    char cause[512];
    snprintf(cause, sizeof cause, "could not run %s: %s failed: %s (errno %d)", sp->file,
             step_names[step], strerror(err), err);
    sk_error_set_internal(&sh->error, SK_PROCESS_ERROR, SK_RUN, atomic_load(&sh->current_run),
                          SK_ESYS, cause);
    sh->error.code = err;
    snprintf(sh->error.message, sizeof sh->error.message, "Could not run %s: %s", sp->file,
             strerror(err));
    sh->outcome = SK_OUTCOME_FAILED;
    atomic_store(&sh->spawn_status, -1000);
    atomic_store(&sh->engine_done, 1);
    sk_child_exit(127);
}

/* ------------------------------------------------------------- outcomes */

static void exec_error(struct sk_runtime *rt, sk_error *e, int err, int step, long run)
{
    struct sk_spawn *sp = rt->spawn;
    char cause[512];
    if (step < STEP_EXEC || step > STEP_READY)
        step = STEP_EXEC;
    snprintf(cause, sizeof cause, "could not run %s: %s failed: %s (errno %d)", sp->file,
             step_names[step], strerror(err), err);
    sk_error_set_internal(e, SK_PROCESS_ERROR, SK_RUN, run, SK_ESYS, cause);
    e->code = err;
    snprintf(e->message, sizeof e->message, "Could not run %s: %s", sp->file, strerror(err));
}

/* The run timer of a program that finished: SK_RUN and SK_FULL_RUN, one
 * sample each. */
static void record_run(struct sk_shared *sh, int64_t start_ns)
{
    int64_t ns = sk_now_ns() - start_ns;
    sk_timer_add(&sh->timers[SK_RUN], ns);
    sk_timer_add(&sh->timers[SK_FULL_RUN], ns);
    atomic_store(&sh->current_run, atomic_load(&sh->current_run) + 1);
}

/* Whether a program's end is a success: exit 0, or SIGTERM after sk_stop. */
static bool ended_well(bool exited, int code, bool stopped)
{
    return exited ? code == 0 : stopped && code == SIGTERM;
}

void sk_spawn_crash_text(const struct sk_runtime *rt, sk_error *e)
{
    const char *file = rt->spawn->file;
    if (e->kind != SK_CRASH_ERROR)
        return;
    if (e->signal) {
        snprintf(e->message, sizeof e->message, "Program %.200s was ended by signal %d (%s)", file,
                 e->signal, strsignal(e->signal));
        snprintf(e->cause, sizeof e->cause, "the program %s was ended by signal %d (%s)", file,
                 e->signal, strsignal(e->signal));
    } else {
        snprintf(e->message, sizeof e->message, "Program %.200s exited with status %d", file,
                 e->exit_status);
        snprintf(e->cause, sizeof e->cause, "the program %s exited with status %d", file,
                 e->exit_status);
    }
}

void sk_spawn_outcome(struct sk_runtime *rt, int status, bool reaped)
{
    struct sk_spawn *sp = rt->spawn;
    struct sk_shared *sh = rt->sh;
    sp->status = status;
    sp->have_status = reaped;
    long run = atomic_load(&sh->current_run);
    if (sp->exec_errno != 0) {
        exec_error(rt, &rt->error, sp->exec_errno, sp->exec_step, run);
        sp->have_status = false;
    } else if (!reaped) {
        sk_error_set_internal(&rt->error, SK_PROCESS_ERROR, SK_RUN, run, SK_ESYS,
                              "the program ended and its exit status could not be taken");
    } else if (ended_well(WIFEXITED(status),
                          WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
                          sp->stopped)) {
        record_run(sh, sp->start_ns);
        sh->outcome = SK_OUTCOME_OK;
        return;
    } else if (WIFSIGNALED(status)) {
        sk_error_set_crash(&rt->error, SK_RUN, true, run, WTERMSIG(status), 0);
    } else {
        sk_error_set_crash(&rt->error, SK_RUN, true, run, 0, WEXITSTATUS(status));
    }
    sk_spawn_crash_text(rt, &rt->error);
    rt->error.lives_spent = 1;
    rt->has_error = true;
    sh->outcome = SK_OUTCOME_FAILED;
}

bool sk_spawn_supervised_exit(struct sk_runtime *rt, const siginfo_t *info, bool *retryable)
{
    struct sk_shared *sh = rt->sh;
    bool exited = info->si_code == CLD_EXITED;
    atomic_store(&sh->spawn_status, exited ? info->si_status : -info->si_status);
    bool stopped = atomic_load(&sh->stop) != 0;
    *retryable = !stopped;
    if (!ended_well(exited, info->si_status, stopped))
        return false;
    record_run(sh, atomic_load(&sh->section_start_ns));
    sh->outcome = SK_OUTCOME_OK;
    atomic_store(&sh->engine_done, 1);
    return true;
}

/* At most READY_CHUNKS reads a call: a program that writes without end
 * costs the parent one pipe's worth per look, never a loop. */
#define READY_CHUNK 4096
#define READY_CHUNKS 16

bool sk_spawn_ready_read(struct sk_runtime *rt)
{
    struct sk_spawn *sp = rt->spawn;
    if (sp == NULL || sp->ready_parent < 0)
        return false;
    char buf[READY_CHUNK];
    bool line = false;
    for (int i = 0; i < READY_CHUNKS; i++) {
        ssize_t n = read(sp->ready_parent, buf, sizeof buf);
        if (n > 0) {
            line = line || memchr(buf, '\n', (size_t)n) != NULL;
            if ((size_t)n < sizeof buf)
                break; /* emptied it */
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        /* End of file (every write end closed) or a broken fd: nothing
         * more can come, and an fd at EOF would poll readable for ever. */
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
            sk_fd_close(&sp->ready_parent);
        break;
    }
    return line;
}

void sk_spawn_stop(struct sk_runtime *rt, pid_t pid)
{
    struct sk_spawn *sp = rt->spawn;
    if (sp == NULL || sp->stopped || pid <= 0)
        return;
    sp->stopped = true;
    kill(pid, SIGTERM);
}

int sk_spawn_status(const sk_process *p)
{
    if (!sk_handle_sealed(p) || p->rt->spawn == NULL)
        return sk_refuse(SK_EINVAL, "sk_spawn_status: not a spawned program");
    const struct sk_runtime *rt = p->rt;
    if (!rt->finished)
        return sk_refuse(SK_ESTATE, "sk_spawn_status: the program has not ended");
    if (rt->supervised) {
        int s = atomic_load(&rt->sh->spawn_status);
        if (s == -1000 || s < -64 || s > 255)
            return SK_ESYS;
        return s;
    }
    const struct sk_spawn *sp = rt->spawn;
    if (!sp->have_status)
        return SK_ESYS;
    return WIFEXITED(sp->status) ? WEXITSTATUS(sp->status) : -WTERMSIG(sp->status);
}
