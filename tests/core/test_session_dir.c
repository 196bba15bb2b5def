/* SPDX-License-Identifier: MIT */
/*
 * The session directory (skproc/os/session_dir.c): made private under
 * $TMPDIR, removed at once by sk_session_dir_remove, and removed by the
 * janitor however else its users end (SIGKILL, _exit), but only once the
 * creator and every process forked from it are gone; a Ctrl-C does not
 * pull it away; many threads at once leak nothing.
 *
 * Every test works under a base directory of its own, made here and set as
 * $TMPDIR. Processes that create a directory and then die are children of
 * the test; they report the directory and the janitor's pid through a
 * pipe. Waits are bounded polls (every 1 ms) on a condition. Run as root,
 * the children that must meet directory permissions (0500, 0000) first
 * become nobody.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "support.h"

#include "os/proc.h"
#include "os/session_dir.h"

#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/stat.h>

_Static_assert(SK_SESSION_DIR_EINVAL == SK_EINVAL, "the os layer's copy of SK_EINVAL");
_Static_assert(SK_SESSION_DIR_ESYS == SK_ESYS, "the os layer's copy of SK_ESYS");

#define GONE_WITHIN 5.0
#define PREFIX "skt-sess"
#define NOBODY 65534

/* Polls cond every 1 ms for at most `seconds`; true once it holds. */
#define WAIT_FOR(cond, seconds)                                                                    \
    ({                                                                                             \
        double wf_deadline_ = skt_now() + (seconds);                                               \
        bool wf_ok_;                                                                               \
        while (!(wf_ok_ = (cond)) && skt_now() < wf_deadline_)                                     \
            skt_sleep(0.001);                                                                      \
        wf_ok_;                                                                                    \
    })

/* ------------------------------------------------------------- fixtures */

static char base[256];    /* this test's $TMPDIR */
static pid_t children[8]; /* to kill and reap if an assertion ends a test early */
static int nchildren;

static void cleanup(void *arg)
{
    (void)arg;
    for (int i = 0; i < nchildren; i++) {
        kill(children[i], SIGKILL);
        waitpid(children[i], NULL, 0);
    }
    nchildren = 0;
}

/* Makes the test's base directory and points $TMPDIR at it. */
static void use_base(void)
{
    snprintf(base, sizeof base, "%s", skt_use_tmpdir("skt-session-base"));
    skt_defer(cleanup, NULL); /* runs first: the children, then the directory */
    if (geteuid() == 0)
        assert_int_equal(chown(base, NOBODY, NOBODY), 0); /* for children that drop to it */
}

/*
 * Permissions (a 0500 or 0000 directory) mean nothing to root, so as root
 * the children that must meet them first become an ordinary user: nobody,
 * kept dumpable so that the test can read its /proc entries. False when
 * that fails.
 */
static bool drop_root(void)
{
    if (geteuid() != 0)
        return true;
    return setgroups(0, NULL) == 0 && setresgid(NOBODY, NOBODY, NOBODY) == 0 &&
           setresuid(NOBODY, NOBODY, NOBODY) == 0 && prctl(PR_SET_DUMPABLE, 1) == 0;
}

/* Runs body(arg) in a child that is not root (drop_root); its result (0:
 * all went well, otherwise the step that did not) as the child's exit
 * status. */
static int as_user(int (*body)(void *), void *arg)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(drop_root() ? body(arg) : 90);
    if (pid < 0)
        return -1;
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void track_child(pid_t pid)
{
    assert_true(nchildren < (int)(sizeof children / sizeof children[0]));
    children[nchildren++] = pid;
}

/* Reaps pid (a child of the test) and forgets it; its wait status. */
static int reap(pid_t pid)
{
    int status = -1;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    for (int i = 0; i < nchildren; i++)
        if (children[i] == pid)
            children[i] = children[--nchildren];
    return status;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Entries in a directory, "." and ".." left out. */
/* The open descriptors of another process of ours. */
static int fds_of(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    return skt_dir_entries(path);
}

/* True when the process is gone: its pidfd readable (any process, reaped
 * or not), or without one no /proc entry, a zombie, or another process
 * (start time) under the same pid. A janitor re-parented to a subreaper
 * that is this test gets reaped here. */
static bool process_gone(pid_t pid, int pidfd, unsigned long long start)
{
    waitpid(pid, NULL, WNOHANG); /* adopted by us: reap it; otherwise ECHILD */
    if (pidfd >= 0) {
        struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
        return poll(&pfd, 1, 0) == 1;
    }
    struct skt_proc_stat st;
    if (!skt_proc_stat(pid, &st))
        return true;
    return st.state == 'Z' || st.state == 'X' || (start != 0 && st.starttime != start);
}

/* /proc/PID/stat's start time, 0 when it cannot be read. */
static unsigned long long start_time(pid_t pid)
{
    struct skt_proc_stat st;
    return skt_proc_stat(pid, &st) ? st.starttime : 0;
}

/* A signal mask of a process from /proc/PID/status: field "SigIgn",
 * "SigBlk" or "SigCgt" (ignored, blocked, caught); ~0 when unreadable. */
static unsigned long long signal_mask(pid_t pid, const char *field)
{
    char path[64], line[256], format[32];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    snprintf(format, sizeof format, "%s: %%llx", field);
    FILE *f = fopen(path, "r");
    unsigned long long mask = ~0ULL;
    if (f == NULL)
        return mask;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, format, &mask) == 1)
            break;
    fclose(f);
    return mask;
}

#define SIGBIT(s) (1ULL << ((s)-1))

/* ---------------------------------------------------- trees to remove */

/* These return false rather than assert: creators call them in a child. */
static bool put_file(const char *dir, const char *name, mode_t mode)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return false;
    bool ok = write(fd, "data\n", 5) == 5;
    close(fd);
    return ok && chmod(path, mode) == 0;
}

static bool put_dir(const char *dir, const char *name, char *out, size_t size)
{
    int n = snprintf(out, size, "%s/%s", dir, name);
    return n > 0 && (size_t)n < size && mkdir(out, 0700) == 0;
}

/* Things outside the session directory that links inside point at. */
struct outside {
    char file[300];
    char dir[300];
    char dir_file[320];
};

static void make_outside(struct outside *o)
{
    snprintf(o->file, sizeof o->file, "%s/outside-file", base);
    snprintf(o->dir, sizeof o->dir, "%s/outside-dir", base);
    snprintf(o->dir_file, sizeof o->dir_file, "%s/kept", o->dir);
    assert_int_equal(mkdir(o->dir, 0700), 0);
    assert_true(put_file(base, "outside-file", 0600));
    assert_true(put_file(o->dir, "kept", 0600));
}

static void assert_outside_intact(const struct outside *o)
{
    struct stat st;
    assert_int_equal(stat(o->file, &st), 0);
    assert_int_equal(st.st_size, 5);
    assert_int_equal(stat(o->dir_file, &st), 0);
    assert_int_equal(st.st_size, 5);
}

/*
 * Fills the session directory: files, a chain of directories 5 deep with a
 * file in each, links to a file and a directory outside, a read-only file,
 * a directory 0500 with a file in it, and one 0000 with a file in it.
 */
static bool populate(const char *root, const struct outside *o)
{
    char path[4200], sub[4200];
    bool ok = put_file(root, "a", 0600) && put_file(root, "b", 0600);
    snprintf(path, sizeof path, "%s", root);
    for (int i = 0; ok && i < 5; i++) {
        char name[16];
        snprintf(name, sizeof name, "d%d", i + 1);
        ok = put_dir(path, name, sub, sizeof sub) && put_file(sub, "f", 0600);
        memcpy(path, sub, sizeof path);
    }
    snprintf(path, sizeof path, "%s/link-file", root);
    ok = ok && symlink(o->file, path) == 0;
    snprintf(path, sizeof path, "%s/link-dir", root);
    ok = ok && symlink(o->dir, path) == 0;
    ok = ok && put_file(root, "read-only", 0400);
    ok = ok && put_dir(root, "dir-0500", sub, sizeof sub) && put_file(sub, "inside", 0400) &&
         chmod(sub, 0500) == 0;
    ok = ok && put_dir(root, "dir-0000", sub, sizeof sub) && put_file(sub, "inside", 0600) &&
         chmod(sub, 0) == 0;
    return ok;
}

/* ----------------------------------------- creators that die on purpose */

/* What a creating child tells the test. */
struct report {
    int rc;
    int err;
    pid_t janitor;
    pid_t grandchild;
    char path[4096];
};

enum ending {
    END_SIGKILLED,  /* waits to be killed */
    END_EXIT3,      /* _exit(3) without removing, when told */
    END_GRANDCHILD, /* forks a grandchild that holds the keepalive, waits to be killed */
};

/* Waits (bounded) for one byte or end of file on fd; never returns an
 * error to a caller that only waits to be told to go on. */
static void wait_go(int fd)
{
    skt_read_byte(fd, 60.0);
}

/* The creator, in the child. Never returns. */
static _Noreturn void creator(enum ending ending, int report_fd, int go_fd, const struct outside *o)
{
    struct sk_session_dir d;
    struct report r;
    memset(&r, 0, sizeof r);
    if (!drop_root())
        _exit(19);
    r.rc = sk_session_dir_create(&d, PREFIX);
    r.err = errno;
    if (r.rc == 0) {
        r.janitor = d.janitor;
        memcpy(r.path, d.path, sizeof r.path);
        if (!populate(d.path, o))
            r.rc = 1;
    }
    if (r.rc == 0 && ending == END_GRANDCHILD) {
        r.grandchild = fork();
        if (r.grandchild == 0) {
            /* Holds the keepalive (inherited) until told to go. */
            close(report_fd);
            wait_go(go_fd);
            _exit(0);
        }
    }
    if (!skt_write_all(report_fd, &r, sizeof r))
        _exit(20);
    if (ending == END_EXIT3) {
        wait_go(go_fd);
        _exit(3);
    }
    for (int i = 0; i < 600; i++) /* killed long before; gone anyway if the test is */
        skt_sleep(0.1);
    _exit(21);
}

struct started {
    pid_t pid;
    int go_fd; /* write end: a byte tells the child to go on */
    struct report r;
    int janitor_pidfd;
    unsigned long long janitor_start;
};

static void start_creator(enum ending ending, const struct outside *o, struct started *s)
{
    int rep[2], go[2];
    assert_int_equal(pipe2(rep, O_CLOEXEC), 0);
    assert_int_equal(pipe2(go, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(rep[0]);
        close(go[1]);
        creator(ending, rep[1], go[0], o);
    }
    track_child(pid);
    close(rep[1]);
    close(go[0]);
    s->pid = pid;
    s->go_fd = go[1];
    bool got = skt_read_all(rep[0], &s->r, sizeof s->r, 20.0);
    close(rep[0]);
    assert_true(got);
    if (s->r.rc != 0)
        fail_msg("the creator failed: rc %d, errno %d (%s)", s->r.rc, s->r.err, strerror(s->r.err));
    assert_int_gt(s->r.janitor, 0);
    /* Opened while the janitor surely lives (its creator waits): the pidfd
     * follows it through re-parenting and cannot name another process. */
    s->janitor_pidfd = sk_pidfd_open(s->r.janitor);
    s->janitor_start = start_time(s->r.janitor);
    assert_true(exists(s->r.path));
    assert_int_equal(strncmp(s->r.path, base, strlen(base)), 0);
}

static void finish_started(struct started *s)
{
    assert_true(WAIT_FOR(!exists(s->r.path), GONE_WITHIN));
    assert_true(
        WAIT_FOR(process_gone(s->r.janitor, s->janitor_pidfd, s->janitor_start), GONE_WITHIN));
    if (s->janitor_pidfd >= 0)
        close(s->janitor_pidfd);
    close(s->go_fd);
}

/* ------------------------------------------------------------ the tests */

static void remove_deferred(void *arg)
{
    sk_session_dir_remove(arg);
}

static void on_usr1(int sig)
{
    (void)sig;
}

/* 1. Made private under $TMPDIR; removed at once with the janitor reaped
 * and nothing left open. The janitor keeps one descriptor (the read end)
 * and sits in a session of its own. */
static void test_create_remove(void **state)
{
    (void)state;
    use_base();
    int fds = skt_fd_count();
    /* A handler of ours, and signals blocked here: the janitor takes
     * neither (nor those create blocks over its fork). */
    struct sigaction usr = {.sa_handler = on_usr1}, old_usr;
    sigemptyset(&usr.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &usr, &old_usr), 0);
    sigset_t block, old_mask;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &block, &old_mask);
    static struct sk_session_dir d; /* removed by teardown too, if an assertion fails */
    skt_defer(remove_deferred, &d);
    int rc = sk_session_dir_create(&d, PREFIX);
    sigaction(SIGUSR1, &old_usr, NULL);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    assert_rc(rc, 0);

    char want[300];
    snprintf(want, sizeof want, "%s/" PREFIX "-", base);
    assert_int_equal(strncmp(d.path, want, strlen(want)), 0);
    assert_int_equal(strlen(d.path), strlen(want) + 6);
    struct stat st;
    assert_int_equal(lstat(d.path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0700);
    assert_int_equal(st.st_uid, getuid());
    assert_int_gt(d.janitor, 0);
    assert_int_ge(d.keepalive_fd, 0);
    assert_true(fcntl(d.keepalive_fd, F_GETFD) & FD_CLOEXEC);
    if (d.janitor_pidfd >= 0)
        assert_true(fcntl(d.janitor_pidfd, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(kill(d.janitor, 0), 0);
    assert_true(WAIT_FOR(fds_of(d.janitor) == 1, 5.0));
    assert_true(WAIT_FOR(getsid(d.janitor) == d.janitor, 5.0));
    assert_true(WAIT_FOR(signal_mask(d.janitor, "SigBlk") == 0, 5.0));
    assert_int_equal(signal_mask(d.janitor, "SigCgt"), 0);
    assert_int_equal(skt_dir_entries(base), 1);

    pid_t janitor = d.janitor;
    char path[sizeof d.path];
    memcpy(path, d.path, sizeof path);
    sk_session_dir_remove(&d);
    assert_false(exists(path));
    errno = 0;
    assert_int_equal(waitpid(janitor, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
    assert_int_equal(skt_fd_count(), fds);
    assert_string_equal(d.path, "");
    assert_int_equal(d.janitor, -1);
    assert_int_equal(d.janitor_pidfd, -1);
    assert_int_equal(d.keepalive_fd, -1);
    assert_int_equal(skt_dir_entries(base), 0);
}

/* 2. remove takes a populated tree; what links point at stays. */
static void test_remove_populated(void **state)
{
    (void)state;
    use_base();
    struct outside o;
    make_outside(&o);
    int fds = skt_fd_count();
    struct sk_session_dir d;
    assert_rc(sk_session_dir_create(&d, PREFIX), 0);
    assert_true(populate(d.path, &o));
    char path[sizeof d.path];
    memcpy(path, d.path, sizeof path);
    pid_t janitor = d.janitor;

    sk_session_dir_remove(&d);
    assert_false(exists(path));
    assert_outside_intact(&o);
    assert_int_equal(skt_dir_entries(base), 2); /* outside-file, outside-dir */
    errno = 0;
    assert_int_equal(waitpid(janitor, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
    assert_int_equal(skt_fd_count(), fds);
}

/* 2b. The same as an ordinary user (as root, nobody), for whom 0500 and
 * 0000 directories are in the way until they are made 0700. */
static int remove_populated_body(void *arg)
{
    const struct outside *o = arg;
    int fds = skt_fd_count();
    struct sk_session_dir d;
    if (sk_session_dir_create(&d, PREFIX) != 0)
        return 1;
    if (!populate(d.path, o))
        return 2;
    char path[sizeof d.path];
    memcpy(path, d.path, sizeof path);
    pid_t janitor = d.janitor;
    sk_session_dir_remove(&d);
    if (exists(path))
        return 3;
    errno = 0;
    if (waitpid(janitor, NULL, WNOHANG) != -1 || errno != ECHILD)
        return 4;
    if (skt_fd_count() != fds)
        return 5;
    return 0;
}

static void test_remove_populated_as_user(void **state)
{
    (void)state;
    use_base();
    struct outside o;
    make_outside(&o);
    assert_int_equal(as_user(remove_populated_body, &o), 0);
    assert_outside_intact(&o);
    assert_int_equal(skt_dir_entries(base), 2);
}

/* 3. The creator is SIGKILLed: the janitor removes the (populated)
 * directory and ends. */
static void test_creator_sigkilled(void **state)
{
    (void)state;
    use_base();
    struct outside o;
    make_outside(&o);
    struct started s;
    start_creator(END_SIGKILLED, &o, &s);
    assert_false(process_gone(s.r.janitor, s.janitor_pidfd, s.janitor_start));
    assert_int_equal(kill(s.pid, SIGKILL), 0);
    int status = reap(s.pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    finish_started(&s);
    assert_outside_intact(&o);
}

/* 4. The creator calls _exit(3) without removing it. */
static void test_creator_exits(void **state)
{
    (void)state;
    use_base();
    struct outside o;
    make_outside(&o);
    struct started s;
    start_creator(END_EXIT3, &o, &s);
    skt_write_byte(s.go_fd, 'g');
    int status = reap(s.pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 3);
    finish_started(&s);
    assert_outside_intact(&o);
}

/* 5. SIGINT to the creator's whole process group (the creator ignores it),
 * and every job-control signal sent to the janitor itself: the directory
 * stays and the janitor lives, until the creator removes it. The janitor
 * is then ended by the SIGKILL the creator sends it (first fatal signal,
 * recorded when it is sent), not by any of those. */
enum { OK_EXISTS = 1, OK_KILLED_BY_US = 2, OK_REMOVED = 4, OK_ALL = 7 };

static _Noreturn void sigint_creator(int report_fd, int go_fd)
{
    setpgid(0, 0);
    signal(SIGINT, SIG_IGN);
    struct sk_session_dir d;
    struct report r;
    memset(&r, 0, sizeof r);
    r.rc = sk_session_dir_create(&d, PREFIX);
    r.janitor = d.janitor;
    memcpy(r.path, d.path, sizeof r.path);
    if (!skt_write_all(report_fd, &r, sizeof r) || r.rc != 0)
        _exit(20);
    wait_go(go_fd);
    char result = 0;
    struct stat st;
    if (stat(d.path, &st) == 0 && S_ISDIR(st.st_mode))
        result |= OK_EXISTS;
    kill(d.janitor, SIGKILL);
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_PID, (id_t)d.janitor, &info, WEXITED | WNOWAIT) == 0 &&
        info.si_code == CLD_KILLED && info.si_status == SIGKILL)
        result |= OK_KILLED_BY_US;
    char path[sizeof d.path];
    memcpy(path, d.path, sizeof path);
    sk_session_dir_remove(&d);
    if (stat(path, &st) != 0 && errno == ENOENT)
        result |= OK_REMOVED;
    if (!skt_write_all(report_fd, &result, 1))
        _exit(22);
    _exit(0);
}

static void test_sigint_to_group(void **state)
{
    (void)state;
    use_base();
    int rep[2], go[2];
    assert_int_equal(pipe2(rep, O_CLOEXEC), 0);
    assert_int_equal(pipe2(go, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(rep[0]);
        close(go[1]);
        sigint_creator(rep[1], go[0]);
    }
    track_child(pid);
    setpgid(pid, pid); /* also here: it holds before the group is signalled */
    close(rep[1]);
    close(go[0]);
    struct report r;
    assert_true(skt_read_all(rep[0], &r, sizeof r, 20.0));
    assert_int_equal(r.rc, 0);
    assert_true(exists(r.path));

    const unsigned long long want =
        SIGBIT(SIGINT) | SIGBIT(SIGHUP) | SIGBIT(SIGTERM) | SIGBIT(SIGQUIT) | SIGBIT(SIGPIPE);
    assert_true(WAIT_FOR((signal_mask(r.janitor, "SigIgn") & want) == want, 5.0));
    assert_int_equal(kill(-pid, SIGINT), 0);
    const int sigs[] = {SIGINT, SIGHUP, SIGTERM, SIGQUIT, SIGPIPE};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        assert_int_equal(kill(r.janitor, sigs[i]), 0);
    assert_true(exists(r.path));
    skt_write_byte(go[1], 'g');

    char result = 0;
    assert_true(skt_read_all(rep[0], &result, 1, 20.0));
    assert_int_equal(result & OK_EXISTS, OK_EXISTS);
    assert_int_equal(result & OK_KILLED_BY_US, OK_KILLED_BY_US);
    assert_int_equal(result & OK_REMOVED, OK_REMOVED);
    int status = reap(pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_false(exists(r.path));
    close(rep[0]);
    close(go[1]);
}

/* True when process pid has an open descriptor on the pipe whose other
 * end is descriptor fd of process holder ("pipe:[inode]" both). */
static bool shares_pipe(pid_t pid, pid_t holder, int fd)
{
    char path[128], want[64], got[64];
    snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)holder, fd);
    ssize_t n = readlink(path, want, sizeof want - 1);
    if (n <= 0)
        return false;
    want[n] = '\0';
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return false;
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        char link[512];
        int len = snprintf(link, sizeof link, "%s/%s", path, e->d_name);
        n = len > 0 && (size_t)len < sizeof link ? readlink(link, got, sizeof got - 1) : -1;
        if (n > 0) {
            got[n] = '\0';
            found = strcmp(got, want) == 0;
        }
    }
    closedir(d);
    return found;
}

/* The janitor's only descriptor (the pipe's read end). */
static int janitor_fd(pid_t janitor)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)janitor);
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    int fd = -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            fd = atoi(e->d_name);
    closedir(d);
    return fd;
}

/* 6. A grandchild forked by the creator holds the keepalive: the directory
 * outlives the SIGKILLed creator and goes when the grandchild ends. */
static void test_grandchild_keeps_it(void **state)
{
    (void)state;
    use_base();
    struct outside o;
    make_outside(&o);
    struct started s;
    start_creator(END_GRANDCHILD, &o, &s);
    pid_t g = s.r.grandchild;
    assert_int_gt(g, 0);
    int gpidfd = sk_pidfd_open(g);
    unsigned long long gstart = start_time(g);
    assert_true(WAIT_FOR(fds_of(s.r.janitor) == 1, 5.0));
    int rfd = janitor_fd(s.r.janitor);
    assert_int_ge(rfd, 0);
    assert_true(shares_pipe(g, s.r.janitor, rfd)); /* it holds the write end */

    assert_int_equal(kill(s.pid, SIGKILL), 0);
    int status = reap(s.pid);
    assert_true(WIFSIGNALED(status));
    /* The creator is gone, its descriptors closed: had it held the last
     * write end, the janitor would now remove the directory within a
     * millisecond. It must stay, and the janitor must wait on. */
    double until = skt_now() + 0.2;
    while (skt_now() < until) {
        assert_true(exists(s.r.path));
        assert_false(process_gone(s.r.janitor, s.janitor_pidfd, s.janitor_start));
        skt_sleep(0.001);
    }

    skt_write_byte(s.go_fd, 'g');
    assert_true(WAIT_FOR(process_gone(g, gpidfd, gstart), GONE_WITHIN));
    finish_started(&s);
    assert_outside_intact(&o);
    if (gpidfd >= 0)
        close(gpidfd);
}

/* 7. Four threads, each creating and removing 50 directories. */
#define THREADS 4
#define ROUNDS 50

struct worker {
    pthread_t thread;
    pid_t janitors[ROUNDS];
    int failures;
};

static void *churn(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < ROUNDS; i++) {
        struct sk_session_dir d;
        if (sk_session_dir_create(&d, PREFIX) != 0) {
            w->failures++;
            continue;
        }
        w->janitors[i] = d.janitor;
        char path[sizeof d.path];
        memcpy(path, d.path, sizeof path);
        bool put = put_file(path, "x", 0600);
        sk_session_dir_remove(&d);
        if (!put || exists(path))
            w->failures++;
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    use_base();
    int fds = skt_fd_count();
    static struct worker workers[THREADS];
    memset(workers, 0, sizeof workers);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&workers[i].thread, NULL, churn, &workers[i]), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(workers[i].thread, NULL);
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(workers[i].failures, 0);
        for (int j = 0; j < ROUNDS; j++) {
            assert_int_gt(workers[i].janitors[j], 0);
            errno = 0;
            assert_int_equal(waitpid(workers[i].janitors[j], NULL, WNOHANG), -1);
            assert_int_equal(errno, ECHILD);
        }
    }
    assert_int_equal(skt_dir_entries(base), 0);
    assert_int_equal(skt_fd_count(), fds);
}

/* In a child that is not root: $TMPDIR (ro) is not writable. */
static int unwritable_body(void *arg)
{
    struct sk_session_dir d;
    int rc = sk_session_dir_create(&d, PREFIX);
    if (rc != SK_ESYS)
        return 1;
    if (errno != EACCES)
        return 2;
    if (d.path[0] != '\0' || d.keepalive_fd != -1 || skt_dir_entries(arg) != 0)
        return 3;
    return 0;
}

/* 8. Bad input, a $TMPDIR that will not do, and removes that have nothing
 * to remove. */
static void test_bad_input(void **state)
{
    (void)state;
    use_base();
    int fds = skt_fd_count();
    struct sk_session_dir d;
    char path[sizeof d.path];

    assert_rc(sk_session_dir_create(NULL, PREFIX), SK_EINVAL);
    memset(&d, 0x55, sizeof d);
    assert_rc(sk_session_dir_create(&d, NULL), SK_EINVAL);
    assert_string_equal(d.path, "");
    assert_int_equal(d.janitor, -1);
    assert_int_equal(d.keepalive_fd, -1);
    assert_rc(sk_session_dir_create(&d, ""), SK_EINVAL);
    assert_rc(sk_session_dir_create(&d, "a/b"), SK_EINVAL);
    assert_rc(sk_session_dir_create(&d, "/abs"), SK_EINVAL);
    char longest[SK_SESSION_DIR_PREFIX_MAX + 2];
    memset(longest, 'p', sizeof longest);
    longest[SK_SESSION_DIR_PREFIX_MAX + 1] = '\0';
    assert_rc(sk_session_dir_create(&d, longest), SK_EINVAL);
    assert_int_equal(skt_dir_entries(base), 0);
    longest[SK_SESSION_DIR_PREFIX_MAX] = '\0'; /* the longest that is taken */
    assert_rc(sk_session_dir_create(&d, longest), 0);
    sk_session_dir_remove(&d);
    assert_int_equal(skt_dir_entries(base), 0);

    /* $TMPDIR missing, a file, relative, not writable: refused. */
    snprintf(path, sizeof path, "%s/missing", base);
    setenv("TMPDIR", path, 1);
    errno = 0;
    assert_rc(sk_session_dir_create(&d, PREFIX), SK_ESYS);
    assert_int_equal(errno, ENOENT);
    assert_string_equal(d.path, "");
    assert_false(exists(path));
    assert_true(put_file(base, "file", 0600));
    snprintf(path, sizeof path, "%s/file", base);
    setenv("TMPDIR", path, 1);
    assert_rc(sk_session_dir_create(&d, PREFIX), SK_ESYS);
    assert_int_equal(errno, ENOTDIR);
    setenv("TMPDIR", "relative/dir", 1);
    assert_rc(sk_session_dir_create(&d, PREFIX), SK_ESYS);
    assert_int_equal(errno, EINVAL);
    char ro[4200];
    assert_true(put_dir(base, "read-only", ro, sizeof ro));
    assert_int_equal(chmod(ro, 0500), 0);
    assert_int_equal(chown(ro, geteuid() == 0 ? NOBODY : geteuid(), (gid_t)-1), 0);
    setenv("TMPDIR", ro, 1);
    assert_int_equal(as_user(unwritable_body, ro), 0);
    assert_int_equal(skt_dir_entries(ro), 0);
    rmdir(ro);
    unlink(path);
    assert_int_equal(skt_dir_entries(base), 0);

    /* A trailing slash makes no doubled one. */
    snprintf(path, sizeof path, "%s//", base);
    setenv("TMPDIR", path, 1);
    assert_rc(sk_session_dir_create(&d, PREFIX), 0);
    snprintf(path, sizeof path, "%s/" PREFIX "-", base);
    assert_int_equal(strncmp(d.path, path, strlen(path)), 0);
    sk_session_dir_remove(&d);

    /* Removes of nothing: NULL, a zeroed struct (fds 0 and pid 0 must not be
     * touched: closing stdin, killing our process group), twice. */
    sk_session_dir_remove(NULL);
    int fd0 = fcntl(0, F_GETFD);
    memset(&d, 0, sizeof d);
    sk_session_dir_remove(&d);
    assert_int_equal(fcntl(0, F_GETFD), fd0);
    assert_int_equal(d.janitor, -1);
    assert_int_equal(d.keepalive_fd, -1);
    setenv("TMPDIR", base, 1);
    assert_rc(sk_session_dir_create(&d, PREFIX), 0);
    snprintf(path, sizeof path, "%s", d.path);
    errno = 1234;
    sk_session_dir_remove(&d);
    assert_int_equal(errno, 1234);
    sk_session_dir_remove(&d);
    assert_false(exists(path));
    assert_int_equal(skt_dir_entries(base), 0);
    assert_int_equal(skt_fd_count(), fds);
    assert_no_children();
}

/* Without $TMPDIR: /tmp. */
static void test_default_tmp(void **state)
{
    (void)state;
    use_base();
    unsetenv("TMPDIR");
    struct sk_session_dir d;
    assert_rc(sk_session_dir_create(&d, PREFIX), 0);
    assert_int_equal(strncmp(d.path, "/tmp/" PREFIX "-", strlen("/tmp/" PREFIX "-")), 0);
    char path[sizeof d.path];
    memcpy(path, d.path, sizeof path);
    assert_true(exists(path));
    sk_session_dir_remove(&d);
    assert_false(exists(path));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_create_remove),
        SKT_TEST(test_remove_populated),
        SKT_TEST(test_remove_populated_as_user),
        SKT_TEST(test_creator_sigkilled),
        SKT_TEST(test_creator_exits),
        SKT_TEST(test_sigint_to_group),
        SKT_TEST(test_grandchild_keeps_it),
        SKT_TEST(test_threads),
        SKT_TEST(test_bad_input),
        SKT_TEST(test_default_tmp),
    };
    return skt_run(argc, argv, tests);
}
