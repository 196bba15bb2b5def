/* SPDX-License-Identifier: MIT */
/*
 * The harness behind support.h: the per-test watchdog, the list of what a
 * test tracks and the teardown that releases it, the assertions that print
 * what they compared, and the probes that read /proc.
 *
 * The watchdog is a POSIX timer with a real-time signal of its own rather
 * than alarm(): tests install their own SIGALRM handlers and itimers. It is
 * not a thread either: a thread's memory would show up as possibly lost in
 * every child forked under valgrind, and would make every test's parent
 * multi-threaded.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "support.h"

#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <ftw.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define SKT_HAVE_VALGRIND_H 1
#endif
#endif

/* ------------------------------------------------------------ slowdown */

static bool under_valgrind(void)
{
#ifdef SKT_HAVE_VALGRIND_H
    if (RUNNING_ON_VALGRIND)
        return true;
#endif
    const char *preload = getenv("LD_PRELOAD");
    return preload != NULL && strstr(preload, "vgpreload") != NULL;
}

double skt_slowdown(void)
{
    static double factor;
    if (factor == 0)
        factor = SKT_SANITIZED || under_valgrind() ? 4.0 : 1.0;
    return factor;
}

/* ------------------------------------------------------------ watchdog */

/* A POSIX timer on CLOCK_MONOTONIC sends WD_SIGNAL (a real-time signal no
 * test uses) when the running test's bound has passed; the handler names
 * the test, kills what the program started and exits. Timers are not
 * inherited by fork, so children never fire it. Everything the handler
 * does is async-signal-safe: it may interrupt anything, malloc included. */
#define WD_SIGNAL (SIGRTMIN + 4)

static timer_t wd_timer;
static bool wd_started;
static volatile double wd_armed_at;
static char wd_name[256];
static double test_started;

const char *skt_test_name(void)
{
    return wd_name;
}

/* Async-signal-safe text: appends s to buf at *n. */
static void put_str(char *buf, size_t cap, size_t *n, const char *s)
{
    while (*s && *n + 1 < cap)
        buf[(*n)++] = *s++;
    buf[*n] = '\0';
}

static void put_long(char *buf, size_t cap, size_t *n, long v)
{
    char digits[24];
    int k = 0;
    bool neg = v < 0;
    unsigned long u = neg ? 0UL - (unsigned long)v : (unsigned long)v;
    do {
        digits[k++] = (char)('0' + u % 10);
        u /= 10;
    } while (u > 0);
    if (neg)
        put_str(buf, cap, n, "-");
    while (k > 0) {
        char c[2] = {digits[--k], '\0'};
        put_str(buf, cap, n, c);
    }
}

static long parse_long(const char **p)
{
    while (**p == ' ')
        (*p)++;
    long sign = 1, v = 0;
    if (**p == '-') {
        sign = -1;
        (*p)++;
    }
    while (**p >= '0' && **p <= '9')
        v = v * 10 + (*(*p)++ - '0');
    return sign * v;
}

/* A process as /proc/<pid>/stat describes it. */
struct proc_entry {
    pid_t pid, ppid, pgrp;
    bool doomed;
};

#define MAX_PROCS 32768
static struct proc_entry procs[MAX_PROCS];

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* Every process in /proc, with open, getdents64 and read only. */
static int read_procs(void)
{
    int dir = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return 0;
    int n = 0;
    static char dents[16384];
    long got;
    while ((got = syscall(SYS_getdents64, dir, dents, sizeof dents)) > 0) {
        for (long off = 0; off < got && n < MAX_PROCS;) {
            struct linux_dirent64 *d = (struct linux_dirent64 *)(void *)(dents + off);
            off += d->d_reclen;
            if (d->d_name[0] < '0' || d->d_name[0] > '9')
                continue;
            char path[300], buf[512];
            size_t k = 0;
            put_str(path, sizeof path, &k, "/proc/");
            put_str(path, sizeof path, &k, d->d_name);
            put_str(path, sizeof path, &k, "/stat");
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                continue;
            ssize_t len = read(fd, buf, sizeof buf - 1);
            close(fd);
            if (len <= 0)
                continue;
            buf[len] = '\0';
            const char *p = strrchr(buf, ')'); /* the command may contain ')' */
            if (p == NULL || p[1] != ' ' || p[2] == '\0')
                continue;
            p += 3; /* ") S" */
            const char *name = d->d_name;
            pid_t pid = (pid_t)parse_long(&name);
            pid_t ppid = (pid_t)parse_long(&p);
            pid_t pgrp = (pid_t)parse_long(&p);
            procs[n++] = (struct proc_entry){pid, ppid, pgrp, false};
        }
    }
    close(dir);
    return n;
}

static struct proc_entry *find_proc(int n, pid_t pid)
{
    for (int i = 0; i < n; i++)
        if (procs[i].pid == pid)
            return &procs[i];
    return NULL;
}

static bool is_ancestor(int n, pid_t pid)
{
    for (struct proc_entry *p = find_proc(n, getppid()); p != NULL && p->pid > 1;
         p = find_proc(n, p->ppid))
        if (p->pid == pid)
            return true;
    return false;
}

/* SIGKILLs every descendant of this process, and every member of its
 * process group that is neither an ancestor nor a sibling (an orphaned
 * grandchild is adopted by init or a subreaper but keeps the group). */
static void kill_everything_started(void)
{
    int n = read_procs();
    pid_t me = getpid(), pgrp = getpgrp(), parent = getppid();
    for (bool changed = true; changed;) {
        changed = false;
        for (int i = 0; i < n; i++) {
            struct proc_entry *p = &procs[i];
            if (p->doomed || p->pid == me)
                continue;
            struct proc_entry *pp = find_proc(n, p->ppid);
            if (p->ppid == me || (pp != NULL && pp->doomed))
                p->doomed = changed = true;
        }
    }
    for (int i = 0; i < n; i++) {
        struct proc_entry *p = &procs[i];
        if (!p->doomed && p->pid != me && p->pgrp == pgrp && p->ppid != parent &&
            !is_ancestor(n, p->pid))
            p->doomed = true;
        if (p->doomed)
            kill(p->pid, SIGKILL);
    }
}

static void watchdog_fired(int sig)
{
    (void)sig;
    char msg[512];
    size_t n = 0;
    put_str(msg, sizeof msg, &n, "\nWATCHDOG: test ");
    put_str(msg, sizeof msg, &n, wd_name[0] ? wd_name : "(outside a test)");
    put_str(msg, sizeof msg, &n, " hung for ");
    put_long(msg, sizeof msg, &n, (long)(skt_now() - wd_armed_at + 0.5));
    put_str(msg, sizeof msg, &n, " s\n");
    ssize_t w = write(STDERR_FILENO, msg, n);
    (void)w;
    kill_everything_started();
    _exit(SKT_WATCHDOG_EXIT);
}

static void watchdog_start(void)
{
    /* A test may have blocked the signal: the watchdog needs it. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, WD_SIGNAL);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    if (wd_started)
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = watchdog_fired;
    sigfillset(&sa.sa_mask);
    sigaction(WD_SIGNAL, &sa, NULL);
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = WD_SIGNAL;
    if (timer_create(CLOCK_MONOTONIC, &sev, &wd_timer) != 0) {
        fprintf(stderr, "support: no watchdog timer: %s\n", strerror(errno));
        return;
    }
    wd_started = true;
}

static double default_bound(void)
{
    const char *s = getenv("SKT_WATCHDOG_SECONDS");
    double b = s != NULL && *s ? strtod(s, NULL) : 0;
    return b > 0 ? b : SKT_BOUND_SECONDS;
}

static void watchdog_arm(double seconds)
{
    if (!wd_started)
        return;
    wd_armed_at = skt_now();
    double t = seconds > 0 ? seconds * skt_slowdown() : 0;
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    its.it_value.tv_sec = (time_t)t;
    its.it_value.tv_nsec = (long)((t - (double)(time_t)t) * 1e9);
    if (seconds > 0 && its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
        its.it_value.tv_nsec = 1;
    timer_settime(wd_timer, 0, &its, NULL);
}

static double test_bound;

void skt_bound(double seconds)
{
    test_bound = seconds;
    watchdog_arm(seconds);
}

/* --------------------------------------------------------- registration */

/* What skt_run_tests puts in a test's initial state: its name, and the
 * state the table gave it (handed on to the test by skt_setup). */
#define CASE_MAGIC 0x736b7463u

struct skt_case {
    unsigned magic;
    const char *name;
    void *state;
};

int skt_setup(void **state)
{
    struct skt_case *c = *state;
    const char *name = "(unknown)";
    if (c != NULL && c->magic == CASE_MAGIC) {
        name = c->name;
        *state = c->state;
    }
    snprintf(wd_name, sizeof wd_name, "%s", name);
    watchdog_start();
    test_bound = default_bound();
    test_started = skt_now();
    watchdog_arm(test_bound);
    return 0;
}

int skt_run_tests(int argc, char **argv, const struct CMUnitTest *tests, size_t count)
{
    /* Line by line: cmocka's "[ RUN ]" lines come before a watchdog's. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    struct CMUnitTest *table = calloc(count ? count : 1, sizeof *table);
    struct skt_case *cases = calloc(count ? count : 1, sizeof *cases);
    if (table == NULL || cases == NULL) {
        fprintf(stderr, "support: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < count; i++) {
        table[i] = tests[i];
        if (tests[i].setup_func == skt_setup) {
            cases[i] = (struct skt_case){CASE_MAGIC, tests[i].name, tests[i].initial_state};
            table[i].initial_state = &cases[i];
        }
    }
    const char *slash = argc > 0 ? strrchr(argv[0], '/') : NULL;
    const char *group = argc > 0 ? (slash ? slash + 1 : argv[0]) : "tests";
    int rc = _cmocka_run_group_tests(group, table, count, NULL, NULL);
    watchdog_arm(0);
    free(table);
    free(cases);
    return rc;
}

/* ------------------------------------------------------------- tracking */

enum kind { T_PROCESS, T_MAPPING, T_BLOCK, T_POOL, T_CALL, T_DEFER, T_DEFER_FIRST };

struct tracked {
    enum kind kind;
    void *ptr;
    sk_process *base;      /* T_PROCESS */
    size_t size;           /* T_MAPPING */
    void (*fn)(void *arg); /* T_DEFER, T_DEFER_FIRST */
};

#define MAX_TRACKED 4096
static struct tracked tracked[MAX_TRACKED];
static int n_tracked;

static void track(struct tracked t, const char *what)
{
    if (n_tracked >= MAX_TRACKED)
        fail_msg("support: more than %d tracked objects (adding %s)", MAX_TRACKED, what);
    tracked[n_tracked++] = t;
}

/* Removes the newest entry of kind for ptr; false when there is none. */
static bool untrack(enum kind kind, const void *ptr)
{
    for (int i = n_tracked - 1; i >= 0; i--)
        if (tracked[i].kind == kind && tracked[i].ptr == ptr) {
            memmove(&tracked[i], &tracked[i + 1], (size_t)(n_tracked - i - 1) * sizeof *tracked);
            n_tracked--;
            return true;
        }
    return false;
}

void skt_track(void *mem, sk_process *base, size_t size)
{
    if (mem == NULL)
        fail_msg("support: out of memory for a tracked %s", base ? "process" : "mapping");
    track((struct tracked){base ? T_PROCESS : T_MAPPING, mem, base, size, NULL},
          base ? "a process" : "a mapping");
}

void skt_defer(void (*fn)(void *), void *arg)
{
    track((struct tracked){T_DEFER, arg, NULL, 0, fn}, "a deferred call");
}

void skt_defer_first(void (*fn)(void *), void *arg)
{
    track((struct tracked){T_DEFER_FIRST, arg, NULL, 0, fn}, "a deferred call");
}

void *skt_shared(size_t size)
{
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        fail_msg("support: mmap of %zu shared bytes: %s", size, strerror(errno));
    skt_track(mem, NULL, size);
    return mem;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        fail_msg("support: calloc(%zu, %zu) failed", n, size);
    track((struct tracked){T_BLOCK, p, NULL, 0, NULL}, "a memory block");
    return p;
}

void *xmalloc(size_t size)
{
    return xcalloc(1, size);
}

void xfree(void *p)
{
    untrack(T_BLOCK, p);
    free(p);
}

sk_pool *new_pool(const sk_pool_config *cfg)
{
    sk_pool *pool = NULL;
    assert_rc(sk_pool_create(&pool, cfg), SK_OK);
    assert_non_null(pool);
    track((struct tracked){T_POOL, pool, NULL, 0, NULL}, "a pool");
    return pool;
}

void release_pool(sk_pool *pool)
{
    untrack(T_POOL, pool);
    sk_pool_release(pool);
}

sk_pool_call *track_call(sk_pool_call *call)
{
    assert_non_null(call);
    track((struct tracked){T_CALL, call, NULL, 0, NULL}, "a call");
    return call;
}

void free_call(sk_pool_call *call)
{
    untrack(T_CALL, call);
    sk_pool_call_free(call);
}

/* Releases, newest first, everything the test tracked: the deferred-first
 * calls, then every pool is terminated (its workers end), then each entry
 * in turn: calls freed, pools and processes released (a child still running
 * is killed and reaped), mappings unmapped, blocks freed, deferred calls
 * run. The watchdog stays armed meanwhile: a release that hangs is named
 * too. */
int skt_teardown(void **state)
{
    (void)state;
    for (int i = n_tracked - 1; i >= 0; i--)
        if (tracked[i].kind == T_DEFER_FIRST)
            tracked[i].fn(tracked[i].ptr);
    for (int i = n_tracked - 1; i >= 0; i--)
        if (tracked[i].kind == T_POOL)
            sk_pool_terminate(tracked[i].ptr);
    while (n_tracked > 0) {
        struct tracked t = tracked[--n_tracked];
        switch (t.kind) {
        case T_PROCESS:
            sk_release(t.base);
            free(t.ptr);
            break;
        case T_MAPPING:
            munmap(t.ptr, t.size);
            break;
        case T_BLOCK:
            free(t.ptr);
            break;
        case T_POOL:
            sk_pool_release(t.ptr);
            break;
        case T_CALL:
            sk_pool_call_free(t.ptr);
            break;
        case T_DEFER:
            t.fn(t.ptr);
            break;
        case T_DEFER_FIRST:
            break;
        }
    }
    double took = skt_now() - test_started;
    double bound = test_bound * skt_slowdown();
    static int print_times = -1;
    if (print_times < 0)
        print_times = getenv("SKT_TEST_TIMES") != NULL && *getenv("SKT_TEST_TIMES") != '0';
    if (print_times)
        print_message("    time: %s %.2f s (bound %.0f s)\n", wd_name, took, bound);
    else if (took > bound / 2)
        print_message("    note: %s took %.1f s, over half its watchdog bound of %.0f s\n", wd_name,
                      took, bound);
    watchdog_arm(0);
    wd_name[0] = '\0';
    return 0;
}

/* ---------------------------------------------------------- assertions */

void skt_assert_rc(int rc, int want, const char *expr, const char *file, int line)
{
    if (rc != want) {
        print_error("%s:%d: %s\n    got %d (%s), want %d (%s)\n", file, line, expr, rc,
                    sk_strerror(rc), want, sk_strerror(want));
        _fail(file, line);
    }
}

void skt_assert_no_error(const sk_process *p, const char *file, int line)
{
    const sk_error *e = sk_error_of(p);
    if (e != NULL) {
        char buf[2048];
        sk_error_format(e, buf, sizeof buf);
        print_error("%s:%d: unexpected error:\n%s", file, line, buf);
        _fail(file, line);
    }
}

void skt_print_error(const sk_error *e)
{
    if (e == NULL) {
        print_message("  (no error)\n");
        return;
    }
    char buf[2048];
    sk_error_format(e, buf, sizeof buf);
    print_message("%s", buf);
}

void skt_print_error_of(const sk_process *p)
{
    const sk_error *e = sk_error_of(p);
    if (e != NULL)
        skt_print_error(e);
}

static bool holds(double a, const char *op, double b)
{
    if (strcmp(op, "<") == 0)
        return a < b;
    if (strcmp(op, "<=") == 0)
        return a <= b;
    if (strcmp(op, ">") == 0)
        return a > b;
    return a >= b;
}

void skt_assert_cmp(double a, const char *op, double b, const char *ea, const char *eb,
                    const char *file, int line)
{
    if (!holds(a, op, b)) {
        print_error("%s:%d: want %s %s %s, but %s = %.9g and %s = %.9g\n", file, line, ea, op, eb,
                    ea, a, eb, b);
        _fail(file, line);
    }
}

void skt_assert_near(double a, double b, double eps, const char *ea, const char *eb,
                     const char *file, int line)
{
    if (!(a >= b - eps && a <= b + eps)) {
        print_error("%s:%d: want %s within %g of %s, but %s = %.17g and %s = %.17g\n", file, line,
                    ea, eps, eb, ea, a, eb, b);
        _fail(file, line);
    }
}

void skt_assert_icmp(long long a, const char *op, long long b, const char *ea, const char *eb,
                     const char *file, int line)
{
    bool ok = strcmp(op, "<") == 0    ? a < b
              : strcmp(op, "<=") == 0 ? a <= b
              : strcmp(op, ">") == 0  ? a > b
                                      : a >= b;
    if (!ok) {
        print_error("%s:%d: want %s %s %s, but %s = %lld and %s = %lld\n", file, line, ea, op, eb,
                    ea, a, eb, b);
        _fail(file, line);
    }
}

static void format_val(char *buf, size_t len, struct skt_val v)
{
    switch (v.kind) {
    case 'i':
        snprintf(buf, len, "%lld", v.i);
        break;
    case 'u':
        snprintf(buf, len, "%llu", v.u);
        break;
    case 'f':
        snprintf(buf, len, "%.17Lg", v.f);
        break;
    default:
        snprintf(buf, len, "%p", v.p);
        break;
    }
}

void skt_cmp_failed(const char *ea, const char *op, const char *eb, struct skt_val a,
                    struct skt_val b, const char *file, int line)
{
    char va[64], vb[64];
    format_val(va, sizeof va, a);
    format_val(vb, sizeof vb, b);
    print_error("%s:%d: want %s %s %s, but %s = %s and %s = %s\n", file, line, ea, op, eb, ea, va,
                eb, vb);
    _fail(file, line);
}

/* -------------------------------------------------------- leak probes */

int skt_dir_entries(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL)
        if (strcmp(ent->d_name, ".") != 0 && strcmp(ent->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static int make_searchable(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_D || flag == FTW_DNR)
        chmod(path, S_IRWXU);
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

void skt_rm_rf(const char *path)
{
    nftw(path, make_searchable, 16, FTW_PHYS);
    nftw(path, remove_entry, 16, FTW_PHYS | FTW_DEPTH);
}

/* $TMPDIR while a test points it at a directory of its own. */
static struct {
    char path[256];
    char *saved; /* $TMPDIR before, or NULL */
    bool had;
} tmpdir;

static void tmpdir_restore(void *arg)
{
    (void)arg;
    if (tmpdir.had)
        setenv("TMPDIR", tmpdir.saved, 1);
    else
        unsetenv("TMPDIR");
    free(tmpdir.saved);
    tmpdir.saved = NULL;
    skt_rm_rf(tmpdir.path);
    tmpdir.path[0] = '\0';
}

const char *skt_use_tmpdir(const char *prefix)
{
    const char *old = getenv("TMPDIR");
    tmpdir.had = old != NULL;
    tmpdir.saved = old != NULL ? strdup(old) : NULL;
    snprintf(tmpdir.path, sizeof tmpdir.path, "/tmp/%s-XXXXXX", prefix);
    if (mkdtemp(tmpdir.path) == NULL)
        fail_msg("support: mkdtemp %s: %s", tmpdir.path, strerror(errno));
    skt_defer(tmpdir_restore, NULL);
    if (setenv("TMPDIR", tmpdir.path, 1) != 0)
        fail_msg("support: setenv TMPDIR: %s", strerror(errno));
    return tmpdir.path;
}

bool skt_example_path(const char *name, char *buf, size_t cap)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return false;
    self[n] = '\0';
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(self, '/');
        if (slash == NULL)
            return false;
        *slash = '\0';
    }
    int len = snprintf(buf, cap, "%s/examples/%s", self, name);
    return len > 0 && (size_t)len < cap && access(buf, X_OK) == 0;
}

int skt_fd_count(void)
{
    int n = skt_dir_entries("/proc/self/fd");
    if (n < 0)
        fail_msg("support: opendir /proc/self/fd: %s", strerror(errno));
    return n - 1; /* the directory's own fd */
}

void skt_assert_running(const sk_process *p, double timeout, const char *expr, const char *file,
                        int line)
{
    double t0 = skt_now();
    if (skt_wait_running(p, timeout))
        return;
    print_error("%s:%d: %s is not looping after %.3f s (timeout %g s): current run %ld, %s\n", file,
                line, expr, skt_now() - t0, timeout, sk_current_run(p),
                sk_alive(p) ? "alive" : "not alive");
    _fail(file, line);
}

bool skt_proc_stat(pid_t pid, struct skt_proc_stat *st)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    char *open_paren = strchr(buf, '('), *close_paren = strrchr(buf, ')');
    if (open_paren == NULL || close_paren == NULL || close_paren < open_paren)
        return false;
    *close_paren = '\0';
    snprintf(st->comm, sizeof st->comm, "%s", open_paren + 1);
    int ppid = 0, pgrp = 0;
    /* state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
     * cmajflt utime stime cutime cstime priority nice num_threads
     * itrealvalue starttime */
    if (sscanf(close_paren + 1,
               " %c %d %d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
               &st->state, &ppid, &pgrp, &st->starttime) != 4)
        return false;
    st->ppid = ppid;
    st->pgrp = pgrp;
    return true;
}

bool skt_pid_ended(pid_t pid)
{
    struct skt_proc_stat st;
    return !skt_proc_stat(pid, &st) || st.state == 'Z' || st.state == 'X';
}

void skt_assert_no_children(const char *file, int line)
{
    if (skt_no_children())
        return;
    print_error("%s:%d: children are left:\n", file, line);
    DIR *d = opendir("/proc");
    struct dirent *ent;
    while (d != NULL && (ent = readdir(d)) != NULL) {
        struct skt_proc_stat st;
        if (!isdigit((unsigned char)ent->d_name[0]) || !skt_proc_stat(atoi(ent->d_name), &st) ||
            st.ppid != getpid())
            continue;
        print_error("    pid %s, state %c, %s\n", ent->d_name, st.state, st.comm);
    }
    if (d != NULL)
        closedir(d);
    _fail(file, line);
}

long skt_rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        fail_msg("support: open /proc/self/statm: %s", strerror(errno));
    long size = 0, resident = 0;
    int n = fscanf(f, "%ld %ld", &size, &resident);
    fclose(f);
    if (n != 2)
        fail_msg("support: /proc/self/statm: read %d fields, want 2", n);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

#if SKT_SANITIZED
/* AddressSanitizer's allocator (declared in <sanitizer/allocator_interface.h>,
 * which not every compiler installs). */
size_t __sanitizer_get_current_allocated_bytes(void);
long skt_heap_kb(void)
{
    return (long)(__sanitizer_get_current_allocated_bytes() / 1024);
}
#else
#include <malloc.h>
long skt_heap_kb(void)
{
    struct mallinfo2 m = mallinfo2();
    return (long)((m.uordblks + m.hblkhd) / 1024);
}
#endif

long skt_mapping_resident_kb(const char *name, int *mappings)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (f == NULL)
        fail_msg("support: open /proc/self/maps: %s", strerror(errno));
    long page = sysconf(_SC_PAGESIZE);
    long pages = 0;
    int matched = 0;
    char line[4096];
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long start, end;
        int path_at = 0;
        if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &start, &end, &path_at) != 2 || path_at == 0)
            continue;
        if (strncmp(line + path_at, name, strlen(name)) != 0)
            continue;
        matched++;
        size_t n = (end - start) / (unsigned long)page;
        unsigned char *vec = malloc(n ? n : 1);
        if (vec == NULL) {
            fclose(f);
            fail_msg("support: out of memory for mincore over %zu pages", n);
        }
        if (mincore((void *)start, end - start, vec) != 0) {
            int err = errno;
            free(vec);
            fclose(f);
            fail_msg("support: mincore on %s: %s", name, strerror(err));
        }
        for (size_t i = 0; i < n; i++)
            pages += vec[i] & 1;
        free(vec);
    }
    fclose(f);
    if (mappings != NULL)
        *mappings = matched;
    return pages * (page / 1024);
}
