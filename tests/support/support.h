/*
 * Helpers shared by the behaviour tests: process structs that are cleaned
 * up even when an assertion fails, a monotonic clock, polling for a
 * condition, memory shared across forks, and the leak probes (fds, children,
 * RSS). Header only: every helper is static inline, so each test program
 * takes what it uses.
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

/* ------------------------------------------------------------ cleanup */

/* A failed assertion longjmps out of the test: whatever the test started is
 * left running. Everything allocated through skt_new / skt_shared is
 * released by skt_teardown, which cmocka runs after every test, passed or
 * failed, so one failure does not leak children into the next test. */
#define SKT_MAX_TRACKED 256

struct skt_tracked {
    void *mem;
    sk_process *base; /* NULL for a shared mapping */
    size_t size;      /* for munmap */
};

static struct skt_tracked skt_tracked_list[SKT_MAX_TRACKED];
static int skt_tracked_count;

static inline void skt_track(void *mem, sk_process *base, size_t size)
{
    assert_non_null(mem);
    assert_true(skt_tracked_count < SKT_MAX_TRACKED);
    skt_tracked_list[skt_tracked_count++] = (struct skt_tracked){mem, base, size};
}

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
static inline void *skt_shared(size_t size)
{
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(mem != MAP_FAILED);
    skt_track(mem, NULL, size);
    return mem;
}

static inline int skt_teardown(void **state)
{
    (void)state;
    for (int i = skt_tracked_count - 1; i >= 0; i--) {
        struct skt_tracked *t = &skt_tracked_list[i];
        if (t->base != NULL) {
            sk_release(t->base); /* kills and reaps a child still running */
            free(t->mem);
        } else {
            munmap(t->mem, t->size);
        }
    }
    skt_tracked_count = 0;
    return 0;
}

#define SKT_TEST(f) cmocka_unit_test_teardown(f, skt_teardown)

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

/* ---------------------------------------------------- pipes from hooks */

/* Reads one byte from fd, waiting at most timeout seconds. Returns the
 * byte, -1 on timeout or error, -2 at end of file. */
static inline int skt_read_byte(int fd, double timeout)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int n;
    while ((n = poll(&pfd, 1, (int)(timeout * 1000))) < 0 && errno == EINTR)
        ;
    if (n <= 0)
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

/* Spins without a system call, so only someone outside can end it. */
static inline void skt_spin_forever(void)
{
    for (volatile unsigned long i = 0;; i++)
        ;
}

/* -------------------------------------------------------- leak probes */

/* The number of open file descriptors of this process. */
static inline int skt_fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL)
        if (ent->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own fd */
}

/* True when this process has no child at all, not even a zombie. */
static inline bool skt_no_children(void)
{
    errno = 0;
    pid_t r = waitpid(-1, NULL, WNOHANG);
    return r == -1 && errno == ECHILD;
}

/* Resident set size in KiB, from /proc/self/statm. */
static inline long skt_rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    assert_non_null(f);
    long size = 0, resident = 0;
    int n = fscanf(f, "%ld %ld", &size, &resident);
    fclose(f);
    assert_int_equal(n, 2);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* ------------------------------------------------------------ errors */

/* The code's name for a failure message: "SK_EPROCESS (the process failed)". */
static inline void skt_assert_rc(int rc, int want, const char *file, int line)
{
    if (rc != want) {
        print_error("%s:%d: got %d (%s), want %d (%s)\n", file, line, rc, sk_strerror(rc), want,
                    sk_strerror(want));
        _fail(file, line);
    }
}
#define assert_rc(rc, want) skt_assert_rc((rc), (want), __FILE__, __LINE__)

/* Asserts that p ended with no error, printing it when there is one. */
static inline void skt_assert_no_error(const sk_process *p, const char *file, int line)
{
    const sk_error *e = sk_error_of(p);
    if (e != NULL) {
        char buf[2048];
        sk_error_format(e, buf, sizeof buf);
        print_error("%s:%d: unexpected error:\n%s", file, line, buf);
        _fail(file, line);
    }
}
#define assert_no_error(p) skt_assert_no_error((p), __FILE__, __LINE__)

#endif
