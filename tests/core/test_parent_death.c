/* SPDX-License-Identifier: MIT */
/*
 * A child never outlives its parent. The test forks an intermediate
 * "parent" that starts ten skproc processes and reports every supervisor
 * and worker pid through a pipe; then the intermediate dies (SIGKILL, or a
 * plain exit(0) without sk_release) and the test checks from outside that
 * every one of those processes is gone within one second.
 *
 * The test is not their parent: once the intermediate is gone they are
 * re-parented to init or a subreaper, so a zombie ('Z') counts as gone, and
 * any child the test itself inherits is reaped with waitpid(-1, WNOHANG).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <cmocka.h>

#include "support.h"

#include <ctype.h>

#define CHILDREN 10
#define MAX_PIDS (2 * CHILDREN)
#define GONE_WITHIN 1.0

enum mode {
    MODE_KILL,         /* the intermediate is SIGKILLed */
    MODE_EXIT,         /* the intermediate calls exit(0) without sk_release */
    MODE_KILL_BLOCKED, /* SIGKILLed while every hook blocks all signals, never returning */
};

/* ------------------------------------------------------- /proc reading */

/* The live (not zombie) children of parent, found by scanning /proc. */
static int children_of(pid_t parent, pid_t *out, int max)
{
    DIR *d = opendir("/proc");
    if (d == NULL)
        return 0;
    int n = 0;
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL && n < max) {
        if (!isdigit((unsigned char)ent->d_name[0]))
            continue;
        pid_t pid = (pid_t)atoi(ent->d_name);
        struct skt_proc_stat info;
        if (skt_proc_stat(pid, &info) && info.ppid == parent && info.state != 'Z')
            out[n++] = pid;
    }
    closedir(d);
    return n;
}

/* ------------------------------------------------------ the processes */

struct flags {
    _Atomic int entered[CHILDREN];
};

typedef struct {
    sk_process base;
    int index;
    bool block_all;
    struct flags *flags;
} looper;

#define LOOPER(p) SK_CONTAINER_OF(p, looper, base)

static int looper_run(sk_process *self)
{
    looper *l = LOOPER(self);
    atomic_store(&l->flags->entered[l->index], 1);
    if (l->block_all) {
        /* Never returns and takes no signal but SIGKILL. */
        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        for (;;)
            usleep(1000);
    }
    usleep(1000);
    return 0;
}

static const sk_class looper_class = {.name = "looper", .run = looper_run};

/* Static: reachable until the intermediate ends, whatever way it ends. */
static looper loopers[CHILDREN];

struct report {
    int count;
    pid_t pids[MAX_PIDS]; /* supervisors first, then workers */
    int supervisors;
};

/* The intermediate parent. Never returns. */
static _Noreturn void intermediate(enum mode mode, int wfd, int go_fd)
{
    struct flags *flags =
        mmap(NULL, sizeof *flags, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (flags == MAP_FAILED)
        _exit(10);
    for (int i = 0; i < CHILDREN; i++) {
        looper *l = &loopers[i];
        if (sk_init(&l->base, &looper_class) != SK_OK)
            _exit(11);
        l->index = i;
        l->block_all = mode == MODE_KILL_BLOCKED;
        l->flags = flags;
        l->base.config.lives = 2; /* supervised: intermediate -> supervisor -> worker */
        if (sk_start(&l->base) != SK_OK)
            _exit(12);
    }
    /* Every worker really runs its hook. */
    double deadline = skt_now() + 10.0;
    for (int i = 0; i < CHILDREN; i++) {
        while (!atomic_load(&flags->entered[i]) || sk_pid(&loopers[i].base) <= 0) {
            if (skt_now() > deadline)
                _exit(13);
            usleep(100);
        }
    }
    struct report r = {0};
    r.supervisors = children_of(getpid(), r.pids, CHILDREN);
    r.count = r.supervisors;
    for (int i = 0; i < CHILDREN; i++)
        r.pids[r.count++] = sk_pid(&loopers[i].base);
    if (write(wfd, &r, sizeof r) != (ssize_t)sizeof r)
        _exit(14);
    close(wfd);
    if (mode == MODE_EXIT) {
        /* Only once the test has looked at the tree (or gave up). */
        skt_read_byte(go_fd, 10.0);
        exit(0); /* no sk_release: the children must still go */
    }
    /* Wait to be killed; if the test is gone, leave in the end anyway. */
    for (int i = 0; i < 600; i++)
        usleep(100000);
    _exit(15);
}

/* ------------------------------------------------------------ the test */

/* What the test started, for cleanup after a failed assertion. */
static pid_t tracked[MAX_PIDS];
static unsigned long long tracked_start[MAX_PIDS];
static int tracked_count;
static pid_t middle = -1;

static bool gone(pid_t pid, unsigned long long starttime)
{
    struct skt_proc_stat info;
    if (!skt_proc_stat(pid, &info))
        return true;
    /* A zombie has ended; a new start time is another process. */
    return info.state == 'Z' || info.state == 'X' || info.starttime != starttime;
}

static void reap_adopted(void)
{
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
}

/* Deferred to the teardown: the intermediate and every process it reported
 * end, whatever the test got to. */
static void end_everything(void *arg)
{
    (void)arg;
    if (middle > 0) {
        kill(middle, SIGKILL);
        waitpid(middle, NULL, 0);
        middle = -1;
    }
    for (int i = 0; i < tracked_count; i++)
        if (!gone(tracked[i], tracked_start[i]))
            kill(tracked[i], SIGKILL);
    tracked_count = 0;
    reap_adopted();
}

static void check_parent_death(enum mode mode)
{
    int fds[2], go[2];
    skt_defer(end_everything, NULL);
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(pipe(go), 0);
    fflush(NULL); /* the intermediate may exit(): nothing buffered twice */
    middle = fork();
    assert_cmp(middle, >=, 0);
    if (middle == 0) {
        close(fds[0]);
        close(go[1]);
        intermediate(mode, fds[1], go[0]);
    }
    close(fds[1]);
    close(go[0]);

    struct report r;
    struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
    int ready;
    while ((ready = poll(&pfd, 1, 10000)) < 0 && errno == EINTR)
        ;
    assert_int_equal(ready, 1);
    ssize_t got = read(fds[0], &r, sizeof r);
    close(fds[0]);
    assert_int_equal(got, (ssize_t)sizeof r);
    assert_int_equal(r.supervisors, CHILDREN);
    assert_int_equal(r.count, MAX_PIDS);

    /* Record them all, and check the tree: intermediate -> supervisor ->
     * worker. */
    for (int i = 0; i < r.count; i++) {
        struct skt_proc_stat info;
        assert_true(skt_proc_stat(r.pids[i], &info));
        tracked[tracked_count] = r.pids[i];
        tracked_start[tracked_count++] = info.starttime;
        if (i < r.supervisors) {
            assert_int_equal(info.ppid, middle);
        } else {
            bool under_supervisor = false;
            for (int j = 0; j < r.supervisors; j++)
                under_supervisor |= info.ppid == r.pids[j];
            assert_true(under_supervisor);
        }
    }

    double t0 = skt_now();
    if (mode == MODE_EXIT)
        skt_write_byte(go[1], 'x');
    else
        assert_int_equal(kill(middle, SIGKILL), 0);
    close(go[1]);
    int status;
    assert_int_equal(waitpid(middle, &status, 0), middle);
    if (mode == MODE_EXIT) {
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    } else {
        assert_true(WIFSIGNALED(status));
    }
    middle = -1;

    int left = tracked_count;
    while (left > 0 && skt_now() - t0 < 5.0) {
        reap_adopted();
        left = 0;
        for (int i = 0; i < tracked_count; i++)
            left += !gone(tracked[i], tracked_start[i]);
        if (left > 0)
            usleep(1000);
    }
    double took = skt_now() - t0;
    print_message("    %d processes, %d left after %.1f ms\n", tracked_count, left, took * 1e3);
    for (int i = 0; i < tracked_count; i++)
        if (!gone(tracked[i], tracked_start[i]))
            print_message("    still there: pid %d (%s)\n", (int)tracked[i],
                          i < r.supervisors ? "supervisor" : "worker");
    assert_int_equal(left, 0);
    assert_cmp(took, <, GONE_WITHIN);
}

static void test_parent_sigkilled(void **state)
{
    (void)state;
    check_parent_death(MODE_KILL);
}

static void test_parent_exits_without_release(void **state)
{
    (void)state;
    check_parent_death(MODE_EXIT);
}

static void test_parent_sigkilled_hooks_block_all_signals(void **state)
{
    (void)state;
    check_parent_death(MODE_KILL_BLOCKED);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_parent_sigkilled),
        SKT_TEST(test_parent_exits_without_release),
        SKT_TEST(test_parent_sigkilled_hooks_block_all_signals),
    };
    return skt_run(argc, argv, tests);
}
