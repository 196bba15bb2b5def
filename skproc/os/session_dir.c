/* SPDX-License-Identifier: MIT */
/* A flow run's session directory and its janitor: see session_dir.h. */
#include "os/session_dir.h"
#include "os/proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_DEPTH 64       /* directories, the session directory included */
#define DIRENT_BUF 1024    /* per level, on the stack: at least 3 entries */
#define FD_BOUND (1 << 20) /* without close_range and with no finite RLIMIT_NOFILE */

/* What getdents64 returns (the kernel's struct, not glibc's dirent). */
struct kdirent {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* ---------------------------------------------------------------- removal
 *
 * Used by the parent and by the janitor, so async-signal-safe throughout:
 * system calls on descriptors and the stack only. Every descriptor is
 * close-on-exec, for a parent that forks or execs in another thread.
 */

static bool empty_dir(int dfd, dev_t dev, int depth);

/* Opens the directory `name` in `at` for reading, never through a
 * symbolic link. One we may not read or search (a step made it 0000 or
 * 0100) is made ours to empty first: it is one of our own, and whoever can
 * swap it for a link could chmod the target anyway. */
static int open_dir(int at, const char *name)
{
    int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    int fd = openat(at, name, flags);
    if (fd >= 0 || errno != EACCES)
        return fd;
    if (fchmodat(at, name, S_IRWXU, 0) != 0)
        return -1;
    return openat(at, name, flags);
}

/* Makes the open directory fd one we can list and remove entries from
 * (a read-only directory, 0500, keeps its entries otherwise) and empties
 * it, unless it is on another file system (something mounted inside) or
 * too deep. True when it is empty. */
static bool empty_open_dir(int fd, dev_t dev, int depth)
{
    struct stat st;
    if (depth > MAX_DEPTH || fstat(fd, &st) != 0 || st.st_dev != dev)
        return false;
    if ((st.st_mode & S_IRWXU) != S_IRWXU)
        (void)fchmod(fd, (st.st_mode & 07777) | S_IRWXU);
    return empty_dir(fd, dev, depth);
}

/* Removes the entry `name` of the directory dfd: a file or a link with
 * unlinkat, a directory by emptying it first. d_type is only a hint (some
 * file systems say DT_UNKNOWN), unlinkat's EISDIR is the truth. */
static bool remove_entry(int dfd, const char *name, unsigned char type, dev_t dev, int depth)
{
    if (type != DT_DIR) {
        if (unlinkat(dfd, name, 0) == 0)
            return true;
        if (errno != EISDIR)
            return false;
    }
    int fd = open_dir(dfd, name);
    if (fd < 0) {
        /* Swapped for a link or a file since it was listed: that goes. */
        return (errno == ELOOP || errno == ENOTDIR) && unlinkat(dfd, name, 0) == 0;
    }
    (void)empty_open_dir(fd, dev, depth);
    close(fd);
    return unlinkat(dfd, name, AT_REMOVEDIR) == 0;
}

/* Removes every entry of the directory dfd, one pass: Linux file systems
 * neither skip nor repeat entries when earlier ones are removed during
 * the listing. The buffer stays on this level's stack frame across the
 * descent into a subdirectory, so the stack grows by about DIRENT_BUF per
 * level of the tree, never more than MAX_DEPTH levels. */
static bool empty_dir(int dfd, dev_t dev, int depth)
{
    union {
        struct kdirent align;
        char bytes[DIRENT_BUF];
    } buf;
    bool all = true;
    for (;;) {
        long n = syscall(SYS_getdents64, dfd, buf.bytes, sizeof buf.bytes);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return all && n == 0;
        for (long off = 0; off < n;) {
            struct kdirent *e = (struct kdirent *)(void *)(buf.bytes + off);
            off += e->d_reclen;
            const char *name = e->d_name;
            if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0')))
                continue;
            if (!remove_entry(dfd, name, e->d_type, dev, depth + 1))
                all = false;
        }
    }
}

/* Removes the tree at the absolute path: its parent directory is opened
 * once, the last component is never followed if it became a link. */
static void remove_tree(const char *path)
{
    char parent[sizeof((struct sk_session_dir *)0)->path];
    size_t len = strlen(path);
    size_t slash = len;
    while (slash > 0 && path[slash - 1] != '/')
        slash--;
    if (path[0] != '/' || slash == 0 || slash == len || len >= sizeof parent)
        return;
    const char *leaf = path + slash;
    size_t plen = slash > 1 ? slash - 1 : 1; /* "/x": the parent is "/" */
    memcpy(parent, path, plen);
    parent[plen] = '\0';

    int pfd = openat(AT_FDCWD, parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (pfd < 0)
        return;
    int fd = open_dir(pfd, leaf);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0)
        (void)empty_open_dir(fd, st.st_dev, 1);
    if (fd >= 0)
        close(fd);
    if (unlinkat(pfd, leaf, AT_REMOVEDIR) != 0 && errno == ENOTDIR)
        (void)unlinkat(pfd, leaf, 0); /* a step put a link or a file in its place */
    close(pfd);
}

/* --------------------------------------------------------------- janitor */

/* Everything the janitor needs, prepared before the fork: after it the
 * child of a multi-threaded parent may only make async-signal-safe calls,
 * and it makes no allocation at all. */
struct plan {
    const char *path; /* in the parent's stack frame, copied by fork */
    int rfd;          /* the read end of the keepalive pipe */
    int fd_bound;     /* closing by hand, without close_range: up to here */
    struct sigaction ignore, dfl;
    sigset_t none;
};

/* Every descriptor in [from, to] but none other. */
static void close_from_to(unsigned from, unsigned to, int bound)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, from, to, 0) == 0)
        return;
#endif
    for (unsigned fd = from; fd <= to && fd < (unsigned)bound; fd++)
        close((int)fd);
}

/*
 * The janitor: the child forked by create. Forgets the parent's signal
 * handlers (they are not its code), ignores the signals a terminal or a
 * shell sends a job, leaves the parent's session and process group, keeps
 * only the pipe's read end open (nothing else of the parent's, least of all
 * a write end that would keep its own pipe open), and waits for end of
 * file: every holder of the write end is gone. Then removes the tree.
 */
static _Noreturn void janitor(const struct plan *p)
{
    static const int ignored[] = {SIGINT, SIGHUP, SIGTERM, SIGQUIT, SIGPIPE};
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction old;
        if (sigaction(sig, NULL, &old) == 0 && old.sa_handler != SIG_DFL &&
            old.sa_handler != SIG_IGN)
            (void)sigaction(sig, &p->dfl, NULL);
    }
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++)
        (void)sigaction(ignored[i], &p->ignore, NULL);
    (void)setsid();
    if (p->rfd > 0)
        close_from_to(0, (unsigned)p->rfd - 1, p->fd_bound);
    close_from_to((unsigned)p->rfd + 1, ~0U, p->fd_bound);
    int rc = chdir("/"); /* holds no file system busy; the path is absolute anyway */
    (void)rc;
    (void)sigprocmask(SIG_SETMASK, &p->none, NULL); /* all were blocked over the fork */

    char buf[64];
    for (;;) {
        ssize_t n = read(p->rfd, buf, sizeof buf);
        if (n == 0)
            break; /* end of file: the directory's users are gone */
        if (n < 0 && errno != EINTR)
            sk_child_exit(1); /* cannot tell: leave the directory rather than pull it away */
        /* bytes someone wrote: not ours to obey, read on */
    }
    remove_tree(p->path);
    sk_child_exit(0);
}

/* --------------------------------------------------------------- the API */

static void set_empty(struct sk_session_dir *d)
{
    d->path[0] = '\0';
    d->janitor = -1;
    d->janitor_pidfd = -1;
    d->keepalive_fd = -1;
}

static int fail_sys(int saved_errno)
{
    errno = saved_errno;
    return SK_SESSION_DIR_ESYS;
}

int sk_session_dir_create(struct sk_session_dir *d, const char *prefix)
{
    if (d == NULL)
        return SK_SESSION_DIR_EINVAL;
    set_empty(d);
    if (prefix == NULL || prefix[0] == '\0' || strchr(prefix, '/') != NULL ||
        strlen(prefix) > SK_SESSION_DIR_PREFIX_MAX)
        return SK_SESSION_DIR_EINVAL;

    /* $TMPDIR as the user set it, or /tmp; never the one for the other
     * (secure_getenv: a set-user-ID program does not take it from its
     * caller). Relative would name another directory after the janitor's
     * chdir("/"). */
    const char *base = secure_getenv("TMPDIR");
    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    if (base[0] != '/')
        return fail_sys(EINVAL);
    size_t blen = strlen(base);
    while (blen > 1 && base[blen - 1] == '/')
        blen--;
    if (blen == 1)
        blen = 0; /* "/": no doubled slash */
    char path[sizeof d->path];
    int len = snprintf(path, sizeof path, "%.*s/%s-XXXXXX", (int)blen, base, prefix);
    if (len < 0 || (size_t)len >= sizeof path)
        return fail_sys(ENAMETOOLONG);

    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0)
        return fail_sys(errno);
    /* mkdtemp makes it 0700 less the umask: 0700 whatever the umask. */
    bool made = mkdtemp(path) != NULL;
    if (!made || chmod(path, S_IRWXU) != 0) {
        int saved = errno;
        if (made)
            rmdir(path);
        close(pipefd[0]);
        close(pipefd[1]);
        return fail_sys(saved);
    }

    struct plan plan = {.path = path, .rfd = pipefd[0], .fd_bound = FD_BOUND};
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY &&
        lim.rlim_cur < FD_BOUND)
        plan.fd_bound = (int)lim.rlim_cur;
    plan.ignore.sa_handler = SIG_IGN;
    sigemptyset(&plan.ignore.sa_mask);
    plan.dfl.sa_handler = SIG_DFL;
    sigemptyset(&plan.dfl.sa_mask);
    sigemptyset(&plan.none);

    /* Every signal blocked over the fork: none may run one of the
     * parent's handlers in the janitor before it has reset them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pid_t pid = fork();
    if (pid == 0)
        janitor(&plan);
    int fork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(pipefd[0]);
    if (pid < 0) {
        rmdir(path);
        close(pipefd[1]);
        return fail_sys(fork_errno);
    }
    memcpy(d->path, path, (size_t)len + 1);
    d->janitor = pid;
    d->janitor_pidfd = sk_pidfd_open(pid); /* -1 without pidfds: the pid is ours to kill */
    d->keepalive_fd = pipefd[1];
    return 0;
}

/*
 * The normal end, immediate whatever the steps do: the tree goes first
 * (the janitor cannot race it, the write end is still open here), then the
 * janitor is killed and reaped. Through its pidfd when there is one; by pid
 * only while it is an unreaped child of ours (a parent that reaped it with
 * waitpid(-1) may have let its pid be reused).
 */
void sk_session_dir_remove(struct sk_session_dir *d)
{
    if (d == NULL)
        return;
    int saved = errno;
    if (d->path[0] != '\0') {
        remove_tree(d->path);
        if (d->janitor > 0) {
            if (d->janitor_pidfd >= 0)
                (void)sk_pidfd_kill(d->janitor_pidfd);
            else if (!sk_pid_exited(d->janitor))
                (void)kill(d->janitor, SIGKILL);
            while (waitpid(d->janitor, NULL, 0) < 0 && errno == EINTR)
                ;
        }
        if (d->janitor_pidfd >= 0)
            close(d->janitor_pidfd);
        if (d->keepalive_fd >= 0)
            close(d->keepalive_fd);
    }
    set_empty(d);
    errno = saved;
}
