/* SPDX-License-Identifier: MIT */
/*
 * The test harness every test program uses, and the helpers the behaviour
 * tests share.
 *
 *   registration  SKT_TEST(fn) in the program's table, skt_run(argc, argv,
 *                 tests) in main. skt_setup arms a per-test watchdog;
 *                 skt_teardown releases what the test tracked.
 *   watchdog      a test that runs past its bound (SKT_BOUND_SECONDS, four
 *                 times that under sanitizers and valgrind; skt_bound()
 *                 sets another bound for the running test) prints
 *                 "WATCHDOG: test <name> hung for N s", kills every process
 *                 the program started and ends it with SKT_WATCHDOG_EXIT.
 *                 SKT_WATCHDOG_SECONDS=s in the environment changes the
 *                 default bound; SKT_TEST_TIMES=1 prints every test's time.
 *   tracking      processes (skt_new), shared mappings (skt_shared), memory
 *                 blocks (xmalloc, xcalloc), pools (new_pool), calls
 *                 (track_call) and cleanup callbacks (skt_defer) are
 *                 released by skt_teardown, which cmocka runs after every
 *                 test, passed or failed: an assertion that ends a test
 *                 early leaks nothing into the next one.
 *   helpers       a monotonic clock, waiting for a condition, pipes from
 *                 hooks, crashes, the leak probes (fds, children, RSS, the
 *                 resident size of a skproc mapping) and assertions that
 *                 print what they compared.
 *
 * Include after <cmocka.h>.
 */
#ifndef SKPROC_TEST_SUPPORT_H
#define SKPROC_TEST_SUPPORT_H

#include "skproc.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* 1 in a build with AddressSanitizer or ThreadSanitizer (memory-heavy
 * tests use smaller counts, RSS includes shadow memory and quarantine). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SKT_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SKT_SANITIZED 1
#endif
#endif
#ifndef SKT_SANITIZED
#define SKT_SANITIZED 0
#endif

/* --------------------------------------------------------- registration */

/* Seconds a test may run before the watchdog names it (scaled by
 * skt_slowdown()). SKT_WATCHDOG_SECONDS in the environment overrides it. */
#define SKT_BOUND_SECONDS 60.0

/* The exit status of a program whose test hung. */
#define SKT_WATCHDOG_EXIT 113

int skt_setup(void **state);
int skt_teardown(void **state);

#define SKT_TEST(f) cmocka_unit_test_setup_teardown(f, skt_setup, skt_teardown)

/* Runs the table: a first argument is a cmocka test filter (a glob on the
 * test names). */
#define skt_run(argc, argv, tests)                                                                 \
    skt_run_tests((argc), (argv), (tests), sizeof(tests) / sizeof((tests)[0]))
int skt_run_tests(int argc, char **argv, const struct CMUnitTest *tests, size_t count);

/* The running test gets `seconds` (scaled by skt_slowdown()) from now. */
void skt_bound(double seconds);

/* 1 in a plain build, 4 under a sanitizer or valgrind. */
double skt_slowdown(void);

/* The running test's name ("" outside a test). */
const char *skt_test_name(void);

/* ------------------------------------------------------------- tracking */

/* Tracks mem (a process struct from calloc whose sk_process is base, or a
 * shared mapping of size bytes when base is NULL) for skt_teardown. */
void skt_track(void *mem, sk_process *base, size_t size);

/* Runs fn(arg) in skt_teardown (last registered, first run). */
void skt_defer(void (*fn)(void *), void *arg);

/* Runs fn(arg) in skt_teardown before anything is released: to let go of
 * workers that wait on the test (opening a gate) before pools end. */
void skt_defer_first(void (*fn)(void *), void *arg);

/* A zeroed process struct of `type`, whose sk_process member is `base`. */
#define skt_new(type) ((type *)skt_new_at(calloc(1, sizeof(type)), offsetof(type, base)))

static inline void *skt_new_at(void *mem, size_t base_offset)
{
    skt_track(mem, (sk_process *)(void *)((char *)mem + base_offset), 0);
    return mem;
}

/* Zeroed memory shared with every process forked after this call: the way
 * a test sees what happened in workers that are restarted from the state
 * at sk_start (their own memory is lost with them). */
void *skt_shared(size_t size);

/* Memory the parent allocates, freed by skt_teardown unless xfree'd first.
 * xfree takes any pointer (one not made by xmalloc is simply freed). */
void *xcalloc(size_t n, size_t size);
void *xmalloc(size_t size);
void xfree(void *p);

/* Pools and calls made by a test: teardown terminates every pool, frees
 * every call, then releases every pool. */
sk_pool *new_pool(const sk_pool_config *cfg);
void release_pool(sk_pool *pool);
sk_pool_call *track_call(sk_pool_call *call);
void free_call(sk_pool_call *call);

/* ---------------------------------------------------------- assertions */

/* The code's name in a failure message: "SK_EPROCESS (the process failed)". */
void skt_assert_rc(int rc, int want, const char *expr, const char *file, int line);
#define assert_rc(rc, want) skt_assert_rc((rc), (want), #rc, __FILE__, __LINE__)

/* Asserts that p ended with no error, printing it when there is one. */
void skt_assert_no_error(const sk_process *p, const char *file, int line);
#define assert_no_error(p) skt_assert_no_error((p), __FILE__, __LINE__)

/* Prints e's report (sk_error_format) with print_message, or "(no error)"
 * when e is NULL. */
void skt_print_error(const sk_error *e);
/* Prints the report of the error that ended p, when there is one. */
void skt_print_error_of(const sk_process *p);

/* Comparisons of doubles (seconds, ratios) that print both values. */
void skt_assert_cmp(double a, const char *op, double b, const char *ea, const char *eb,
                    const char *file, int line);
#define assert_dbl_lt(a, b) skt_assert_cmp((a), "<", (b), #a, #b, __FILE__, __LINE__)
#define assert_dbl_le(a, b) skt_assert_cmp((a), "<=", (b), #a, #b, __FILE__, __LINE__)
#define assert_dbl_gt(a, b) skt_assert_cmp((a), ">", (b), #a, #b, __FILE__, __LINE__)
#define assert_dbl_ge(a, b) skt_assert_cmp((a), ">=", (b), #a, #b, __FILE__, __LINE__)
#define assert_dbl_near(a, b, eps) skt_assert_near((a), (b), (eps), #a, #b, __FILE__, __LINE__)
void skt_assert_near(double a, double b, double eps, const char *ea, const char *eb,
                     const char *file, int line);

/* Integer comparisons that print both values. */
void skt_assert_icmp(long long a, const char *op, long long b, const char *ea, const char *eb,
                     const char *file, int line);
#define assert_int_lt(a, b) skt_assert_icmp((a), "<", (b), #a, #b, __FILE__, __LINE__)
#define assert_int_le(a, b) skt_assert_icmp((a), "<=", (b), #a, #b, __FILE__, __LINE__)
#define assert_int_gt(a, b) skt_assert_icmp((a), ">", (b), #a, #b, __FILE__, __LINE__)
#define assert_int_ge(a, b) skt_assert_icmp((a), ">=", (b), #a, #b, __FILE__, __LINE__)

/* assert_cmp(a, <, b): the comparison, with both operands' values printed
 * when it fails (integers, unsigned, floating point or pointers, each as
 * itself). Each operand is evaluated once, into a copy of its own type
 * (after promotion: arrays become pointers), so the comparison is the one
 * the expression `a op b` makes; -Wsign-compare is quiet inside because a
 * constant operand is a variable here. */
struct skt_val {
    char kind; /* 'i', 'u', 'f', 'p' */
    long long i;
    unsigned long long u;
    long double f;
    const void *p;
};

static inline struct skt_val skt_val_i(long long v)
{
    return (struct skt_val){.kind = 'i', .i = v};
}
static inline struct skt_val skt_val_u(unsigned long long v)
{
    return (struct skt_val){.kind = 'u', .u = v};
}
static inline struct skt_val skt_val_f(long double v)
{
    return (struct skt_val){.kind = 'f', .f = v};
}
static inline struct skt_val skt_val_p(const volatile void *v)
{
    return (struct skt_val){.kind = 'p', .p = (const void *)v};
}

#define skt_val(x)                                                                                 \
    _Generic((x), _Bool                                                                            \
             : skt_val_u, char                                                                     \
             : skt_val_i, signed char                                                              \
             : skt_val_i, short                                                                    \
             : skt_val_i, int                                                                      \
             : skt_val_i, long                                                                     \
             : skt_val_i, long long                                                                \
             : skt_val_i, unsigned char                                                            \
             : skt_val_u, unsigned short                                                           \
             : skt_val_u, unsigned int                                                             \
             : skt_val_u, unsigned long                                                            \
             : skt_val_u, unsigned long long                                                       \
             : skt_val_u, float                                                                    \
             : skt_val_f, double                                                                   \
             : skt_val_f, long double                                                              \
             : skt_val_f, default                                                                  \
             : skt_val_p)(x)

void skt_cmp_failed(const char *ea, const char *op, const char *eb, struct skt_val a,
                    struct skt_val b, const char *file, int line);

#define assert_cmp(a, op, b)                                                                       \
    do {                                                                                           \
        __typeof__((a) + 0) skt_a_ = (a);                                                          \
        __typeof__((b) + 0) skt_b_ = (b);                                                          \
        _Pragma("GCC diagnostic push");                                                            \
        _Pragma("GCC diagnostic ignored \"-Wsign-compare\"");                                      \
        if (!(skt_a_ op skt_b_))                                                                   \
            skt_cmp_failed(#a, #op, #b, skt_val(skt_a_), skt_val(skt_b_), __FILE__, __LINE__);     \
        _Pragma("GCC diagnostic pop");                                                             \
    } while (0)

/* -------------------------------------------------------------- clock */

static inline double skt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void skt_sleep(double seconds)
{
    struct timespec ts = {.tv_sec = (time_t)seconds,
                          .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Polls cond (an expression) every 100 us until it holds, for at most
 * timeout seconds; fails the test, naming cond and the caller's line, when
 * it never does. */
#define skt_wait_until(cond, timeout)                                                              \
    do {                                                                                           \
        double skt_deadline_ = skt_now() + (timeout);                                              \
        while (!(cond)) {                                                                          \
            if (skt_now() > skt_deadline_) {                                                       \
                print_error("%s:%d: %s still false after %g s\n", __FILE__, __LINE__, #cond,       \
                            (double)(timeout));                                                    \
                _fail(__FILE__, __LINE__);                                                         \
            }                                                                                      \
            skt_sleep(0.0001);                                                                     \
        }                                                                                          \
    } while (0)

/* Polls until sk_current_run(p) > 0 (the child is really looping), for at
 * most timeout seconds. False when it never got there. */
static inline bool skt_wait_running(const sk_process *p, double timeout)
{
    double deadline = skt_now() + timeout;
    while (sk_current_run(p) <= 0) {
        if (skt_now() > deadline)
            return false;
        skt_sleep(0.0001);
    }
    return true;
}

/* Asserts that the child of p is looping (skt_wait_running) within timeout
 * seconds; prints its run and how long it waited when it is not. */
void skt_assert_running(const sk_process *p, double timeout, const char *expr, const char *file,
                        int line);
#define assert_running(p, timeout) skt_assert_running((p), (timeout), #p, __FILE__, __LINE__)

/* ---------------------------------------------------- pipes from hooks */

/* Waits at most timeout seconds for fd to poll readable (data, end of file
 * or an error), retrying on EINTR with what is left of the time. poll's
 * result: 1 readable, 0 timed out, -1 failed. */
static inline int skt_poll_in(int fd, double timeout)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    double deadline = skt_now() + timeout;
    int n;
    for (;;) {
        double left = deadline - skt_now();
        n = poll(&pfd, 1, left > 0 ? (int)(left * 1000) + 1 : 0);
        if (n >= 0 || errno != EINTR)
            return n;
    }
}

/* Reads one byte from fd, waiting at most timeout seconds. Returns the
 * byte, -1 on timeout or error, -2 at end of file. */
static inline int skt_read_byte(int fd, double timeout)
{
    if (skt_poll_in(fd, timeout) <= 0)
        return -1;
    unsigned char c;
    ssize_t r;
    while ((r = read(fd, &c, 1)) < 0 && errno == EINTR)
        ;
    if (r == 0)
        return -2;
    return r == 1 ? c : -1;
}

/* Writes one byte, ignoring failures (called from hooks). */
static inline void skt_write_byte(int fd, char c)
{
    ssize_t n = write(fd, &c, 1);
    (void)n;
}

/* Reads exactly len bytes from fd (a pipe, a socket), retrying on EINTR
 * and short reads, within timeout seconds in all. False on timeout, error
 * or end of file first. */
static inline bool skt_read_all(int fd, void *buf, size_t len, double timeout)
{
    char *p = buf;
    double deadline = skt_now() + timeout;
    while (len > 0) {
        double left = deadline - skt_now();
        if (left <= 0 || skt_poll_in(fd, left) <= 0)
            return false;
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Writes all len bytes to fd (a pipe, a socket: sk_pwrite_all of
 * skproc/os/fd.h is for files, at an offset), retrying on EINTR and short
 * writes. False on an error. */
static inline bool skt_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* ----------------------------------------------------------- crashes */

/* Ends the calling process with sig for real: default disposition,
 * unblocked, and no core file. Sanitizers install their own SIGSEGV
 * handlers; resetting the disposition makes the outcome the same with and
 * without them. */
static inline void skt_die_by(int sig)
{
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
    _exit(99); /* not reached */
}

/* Writes len pseudo-random bytes (xorshift from seed) over mem: what a
 * hostile child does to memory it shares with its parent. */
static inline void skt_scribble(void *mem, size_t len, uint64_t seed)
{
    unsigned char *bytes = mem;
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes[i] = (unsigned char)x;
    }
}

/* Spins without a system call, so only someone outside can end it. */
static inline void skt_spin_forever(void)
{
    for (volatile unsigned long i = 0;; i++)
        ;
}

/* -------------------------------------------------------- leak probes */

/* The number of open file descriptors of this process. */
int skt_fd_count(void);
/* The entries of directory path but . and .., or -1 when it cannot be
 * opened. */
int skt_dir_entries(const char *path);
/* Removes path and everything below it, making directories searchable and
 * writable first; does not follow links. Errors are ignored. */
void skt_rm_rf(const char *path);
/* Makes /tmp/<prefix>-XXXXXX and points $TMPDIR at it until the test ends;
 * then $TMPDIR is as it was and the directory is removed (skt_defer: runs
 * after what the test defers later). Returns its path. */
const char *skt_use_tmpdir(const char *prefix);
/* <variant>/tests/<this test> -> <variant>/examples/<name> into buf; false
 * when there is no such executable program. */
bool skt_example_path(const char *name, char *buf, size_t cap);

/* True when this process has no child at all, not even a zombie. */
static inline bool skt_no_children(void)
{
    errno = 0;
    pid_t r = waitpid(-1, NULL, WNOHANG);
    return r == -1 && errno == ECHILD;
}

/* What /proc/<pid>/stat says of a process. */
struct skt_proc_stat {
    char comm[64]; /* the command (truncated) */
    char state;    /* 'R', 'S', ... 'Z' (zombie), 'X' (dead) */
    pid_t ppid, pgrp;
    unsigned long long starttime; /* clock ticks after boot */
};

/* Reads pid's /proc/<pid>/stat into st (fields found after the command's
 * last ')', since a command may hold spaces and parentheses). False when
 * pid has no entry or it cannot be read. */
bool skt_proc_stat(pid_t pid, struct skt_proc_stat *st);

/* True when pid has ended as far as /proc says: no entry, or a zombie (or
 * dead) process that nobody reaped yet. */
bool skt_pid_ended(pid_t pid);

/* Asserts skt_no_children(); lists the children left (pid, state, command)
 * when there are some. */
void skt_assert_no_children(const char *file, int line);
#define assert_no_children() skt_assert_no_children(__FILE__, __LINE__)

/* Resident set size of the whole process in KiB, from /proc/self/statm.
 * Under a sanitizer it includes the shadow memory: for what skproc keeps,
 * measure its mappings with skt_mapping_resident_kb. */
long skt_rss_kb(void);

/* The heap in use, in KiB: what malloc has handed out and not had back
 * (mallinfo2), or, under AddressSanitizer, its allocator's live bytes
 * (which leave out the quarantine of freed blocks and the shadow). The
 * same measure in every build, for tests that look for heap leaks. */
long skt_heap_kb(void);

/* KiB resident in every mapping of this process whose /proc/self/maps path
 * starts with `name` (e.g. "/memfd:skproc-pool"), counted with mincore:
 * the pages of the shared object that are in memory, whoever touched them.
 * Sanitizers do not change it. *mappings (when not NULL) gets how many
 * mappings matched. */
long skt_mapping_resident_kb(const char *name, int *mappings);

/* The pool's arena (the memfd each sk_pool maps). */
#define SKT_POOL_MAPPING "/memfd:skproc-pool"

#endif
