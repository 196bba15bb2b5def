/* SPDX-License-Identifier: MIT */
/*
 * Process trees: what a hook starts ends with its process. A hook starts
 * descendants in every way a user would (fork, a shell that backgrounds a
 * program, a child that moves to its own session, an orphaned grandchild)
 * and records their pids in memory shared with the test; then the process
 * ends by every path (finish, kill, release, timeout, restart after a crash,
 * the parent SIGKILLed), and /proc must show none of them alive.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support.h"

#include <stdatomic.h>
#include <sys/prctl.h>

#define MAX_PIDS 32

/* What the hooks started, seen from the test. */
struct tree_log {
    _Atomic int n;
    _Atomic int attempts; /* worker incarnations that ran the spawning hook */
    _Atomic int gate;     /* the test opens it: the hook may go on */
    pid_t pids[MAX_PIDS];
};

enum spawn_kind { SPAWN_FORK = 1, SPAWN_SHELL = 2, SPAWN_SESSION = 4, SPAWN_ORPHAN = 8 };
#define SPAWN_GROUP (SPAWN_FORK | SPAWN_SHELL | SPAWN_ORPHAN) /* stay in the process group */
#define SPAWN_ALL (SPAWN_GROUP | SPAWN_SESSION)

enum after_spawn {
    AFTER_FINISH,     /* the hook stops the process: it finishes */
    AFTER_BLOCK,      /* the hook waits forever */
    AFTER_CRASH_ONCE, /* the first worker crashes; the next waits for the gate, then finishes */
};

typedef struct {
    sk_process base;
    struct tree_log *log;
    int kinds;
    enum after_spawn after;
} spawner;

static void log_pid(struct tree_log *log, pid_t pid)
{
    int i = atomic_fetch_add(&log->n, 1);
    if (i < MAX_PIDS && pid > 0)
        log->pids[i] = pid;
}

static _Noreturn void wait_forever(void)
{
    for (;;)
        pause();
}

/* A plain forked child; with own_session it moves to a session of its own,
 * as a daemon does. */
static pid_t spawn_forked(bool own_session)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (own_session)
            setsid();
        wait_forever();
    }
    return pid;
}

/* A shell that starts a program in the background and exits: the program
 * is orphaned at once. */
static pid_t spawn_shell(void)
{
    FILE *f = popen("sleep 1000 >/dev/null 2>&1 </dev/null & echo $!", "r");
    if (f == NULL)
        return -1;
    long pid = -1;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = -1;
    pclose(f);
    return (pid_t)pid;
}

/* A child that starts a grandchild and exits: the grandchild is an orphan. */
static pid_t spawn_orphan(void)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t child = fork();
    if (child == 0) {
        pid_t grandchild = fork();
        if (grandchild == 0)
            wait_forever();
        ssize_t n = write(fds[1], &grandchild, sizeof grandchild);
        (void)n;
        _exit(0);
    }
    pid_t grandchild = -1;
    ssize_t n = read(fds[0], &grandchild, sizeof grandchild);
    if (n != (ssize_t)sizeof grandchild)
        grandchild = -1;
    close(fds[0]);
    close(fds[1]);
    waitpid(child, NULL, 0);
    return grandchild;
}

static int spawner_run(sk_process *self)
{
    spawner *s = SK_CONTAINER_OF(self, spawner, base);
    int attempt = atomic_fetch_add(&s->log->attempts, 1);
    if (s->kinds & SPAWN_FORK)
        log_pid(s->log, spawn_forked(false));
    if (s->kinds & SPAWN_SESSION)
        log_pid(s->log, spawn_forked(true));
    if (s->kinds & SPAWN_SHELL)
        log_pid(s->log, spawn_shell());
    if (s->kinds & SPAWN_ORPHAN)
        log_pid(s->log, spawn_orphan());
    switch (s->after) {
    case AFTER_FINISH:
        sk_stop(self);
        return 0;
    case AFTER_BLOCK:
        wait_forever();
    case AFTER_CRASH_ONCE:
        if (attempt == 0)
            skt_die_by(SIGSEGV);
        while (!atomic_load(&s->log->gate))
            skt_sleep(0.001);
        sk_stop(self);
        return 0;
    }
    return 0;
}

static const sk_class spawner_class = {.name = "spawner", .run = spawner_run};

/* How many pids one run of the hook records. */
static int spawn_count(int kinds)
{
    return __builtin_popcount((unsigned)kinds);
}

/* Alive as far as /proc says: present and neither a zombie nor dead. */
static bool pid_alive(pid_t pid)
{
    return !skt_pid_ended(pid);
}

/* Every pid the log holds from index `from` on is gone within timeout. */
static void assert_gone(const struct tree_log *log, int from, double timeout, int line)
{
    int n = atomic_load(&log->n);
    double deadline = skt_now() + timeout;
    for (int i = from; i < n && i < MAX_PIDS; i++) {
        pid_t pid = log->pids[i];
        if (pid <= 0)
            fail_msg("line %d: descendant %d was not started (pid %d)", line, i, (int)pid);
        while (pid_alive(pid)) {
            if (skt_now() > deadline)
                fail_msg("line %d: descendant %d (pid %d) is still alive %g s later", line, i,
                         (int)pid, timeout);
            skt_sleep(0.001);
        }
    }
}

static void assert_all_alive(const struct tree_log *log, int count, int line)
{
    for (int i = 0; i < count; i++)
        if (!pid_alive(log->pids[i]))
            fail_msg("line %d: descendant %d (pid %d) died before its process ended", line, i,
                     (int)log->pids[i]);
}

static spawner *spawner_new(int kinds, enum after_spawn after, bool supervised)
{
    spawner *s = skt_new(spawner);
    assert_rc(sk_init(&s->base, &spawner_class), SK_OK);
    s->log = skt_shared(sizeof *s->log);
    s->kinds = kinds;
    s->after = after;
    s->base.config.supervise = supervised;
    return s;
}

/* Starts it and waits until the hook has started everything. */
static void spawner_start(spawner *s)
{
    assert_rc(sk_start(&s->base), SK_OK);
    skt_wait_until(atomic_load(&s->log->n) >= spawn_count(s->kinds), 10);
}

static void finish_ends_the_tree(bool supervised)
{
    spawner *s = spawner_new(supervised ? SPAWN_ALL : SPAWN_GROUP, AFTER_FINISH, supervised);
    spawner_start(s);
    assert_rc(sk_wait(&s->base, 10), SK_OK);
    assert_no_error(&s->base);
    assert_gone(s->log, 0, 5, __LINE__);
}

static void test_finish_supervised(void **state)
{
    (void)state;
    finish_ends_the_tree(true);
}

static void test_finish_unsupervised(void **state)
{
    (void)state;
    finish_ends_the_tree(false);
}

static void kill_ends_the_tree(bool supervised)
{
    spawner *s = spawner_new(supervised ? SPAWN_ALL : SPAWN_GROUP, AFTER_BLOCK, supervised);
    spawner_start(s);
    assert_all_alive(s->log, spawn_count(s->kinds), __LINE__);
    assert_rc(sk_kill(&s->base), SK_OK);
    assert_gone(s->log, 0, 5, __LINE__);
    assert_rc(sk_result(&s->base, NULL), SK_EKILLED);
}

static void test_kill_supervised(void **state)
{
    (void)state;
    kill_ends_the_tree(true);
}

static void test_kill_unsupervised(void **state)
{
    (void)state;
    kill_ends_the_tree(false);
}

static void test_release_while_running(void **state)
{
    (void)state;
    for (int supervised = 0; supervised < 2; supervised++) {
        spawner *s = spawner_new(supervised ? SPAWN_ALL : SPAWN_GROUP, AFTER_BLOCK, supervised);
        spawner_start(s);
        struct tree_log *log = s->log;
        sk_release(&s->base);
        assert_gone(log, 0, 5, __LINE__);
    }
}

/* A supervisor that does not answer a kill (stopped): the parent kills the
 * process group itself. */
static void test_kill_with_a_stopped_supervisor(void **state)
{
    (void)state;
    spawner *s = spawner_new(SPAWN_GROUP, AFTER_BLOCK, true);
    spawner_start(s);
    pid_t worker = sk_pid(&s->base);
    assert_true(worker > 0);
    pid_t group = getpgid(worker);
    assert_true(group > 0 && group != getpgrp());
    assert_int_equal(kill(group, SIGSTOP), 0); /* the leader: the supervisor */
    assert_rc(sk_kill(&s->base), SK_OK);
    assert_gone(s->log, 0, 5, __LINE__);
    skt_wait_until(!pid_alive(worker), 5); /* SIGKILLed with its group: dying, then gone */
}

static void test_timeout_ends_the_tree(void **state)
{
    (void)state;
    spawner *s = spawner_new(SPAWN_ALL, AFTER_BLOCK, true);
    s->base.config.timeouts.run = 0.3;
    spawner_start(s);
    assert_rc(sk_wait(&s->base, 10), SK_OK);
    const sk_error *e = sk_error_of(&s->base);
    assert_non_null(e);
    assert_int_equal(e->kind, SK_TIMEOUT_ERROR);
    assert_gone(s->log, 0, 5, __LINE__);
}

/* After a crash, the restarted worker runs while the first one's
 * descendants must already be gone. */
static void test_restart_ends_the_first_tree(void **state)
{
    (void)state;
    spawner *s = spawner_new(SPAWN_ALL, AFTER_CRASH_ONCE, true);
    s->base.config.lives = 2;
    int per_run = spawn_count(s->kinds);
    assert_rc(sk_start(&s->base), SK_OK);
    skt_wait_until(atomic_load(&s->log->n) >= 2 * per_run, 10); /* the second worker spawned */
    assert_true(sk_alive(&s->base));
    for (int i = 0; i < per_run; i++) {
        double deadline = skt_now() + 5;
        while (pid_alive(s->log->pids[i]) && skt_now() < deadline)
            skt_sleep(0.001);
        if (pid_alive(s->log->pids[i]))
            fail_msg("descendant %d of the crashed worker (pid %d) outlived the restart", i,
                     (int)s->log->pids[i]);
    }
    for (int i = per_run; i < 2 * per_run; i++)
        if (!pid_alive(s->log->pids[i]))
            fail_msg("descendant %d of the running worker (pid %d) died early", i,
                     (int)s->log->pids[i]);
    atomic_store(&s->log->gate, 1);
    assert_rc(sk_wait(&s->base, 10), SK_OK);
    assert_no_error(&s->base);
    assert_gone(s->log, 0, 5, __LINE__);
}

/* The parent is SIGKILLed: nothing of the process is left, descendants
 * included, when it has a supervisor. */
static void test_parent_sigkilled(void **state)
{
    (void)state;
    struct tree_log *log = skt_shared(sizeof *log);
    int ready[2];
    assert_int_equal(pipe(ready), 0);
    pid_t parent = fork();
    assert_true(parent >= 0);
    if (parent == 0) {
        close(ready[0]);
        spawner s;
        memset(&s, 0, sizeof s);
        if (sk_init(&s.base, &spawner_class) != SK_OK)
            _exit(2);
        s.log = log;
        s.kinds = SPAWN_ALL;
        s.after = AFTER_BLOCK;
        s.base.config.supervise = true;
        if (sk_start(&s.base) != SK_OK)
            _exit(3);
        while (atomic_load(&log->n) < spawn_count(SPAWN_ALL))
            skt_sleep(0.001);
        skt_write_byte(ready[1], 'r');
        wait_forever();
    }
    close(ready[1]);
    int got = skt_read_byte(ready[0], 10);
    close(ready[0]);
    assert_int_equal(got, 'r');
    assert_all_alive(log, spawn_count(SPAWN_ALL), __LINE__);
    assert_int_equal(kill(parent, SIGKILL), 0);
    assert_int_equal(waitpid(parent, NULL, 0), parent);
    assert_gone(log, 0, 5, __LINE__);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_finish_supervised),     SKT_TEST(test_finish_unsupervised),
        SKT_TEST(test_kill_supervised),       SKT_TEST(test_kill_unsupervised),
        SKT_TEST(test_release_while_running), SKT_TEST(test_kill_with_a_stopped_supervisor),
        SKT_TEST(test_timeout_ends_the_tree), SKT_TEST(test_restart_ends_the_first_tree),
        SKT_TEST(test_parent_sigkilled),
    };
    return skt_run(argc, argv, tests);
}
