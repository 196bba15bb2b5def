/* SPDX-License-Identifier: MIT */
/*
 * Restart after a hard fault with lives left: the supervisor forks a new
 * worker from the state at sk_start, at the same run index, by itself,
 * while the parent does something else; sk_wait returns only when the
 * process is finished for good.
 *
 * Workers lose their memory when they die, so what must survive a restart
 * (the "crashed once" markers, which workers ran) lives in a MAP_SHARED
 * page allocated before sk_start.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <cmocka.h>

#include "support.h"

#define BOUND 10.0
#define MAX_WORKERS 16

enum fault { F_SEGV, F_EXIT, F_ABORT, F_SPIN };

struct marks {
    _Atomic int faulted[8]; /* per run index: faults so far */
    _Atomic int workers;    /* workers that entered a hook */
    _Atomic pid_t pid[MAX_WORKERS];
    _Atomic int reached;     /* a restarted worker reached the watched run */
    _Atomic int go;          /* the parent lets that worker finish */
    _Atomic int result_done; /* the result hook ran */
    _Atomic int timed_out;   /* spins entered */
};

typedef struct {
    sk_process base;
    /* config of the test, set before sk_start */
    sk_section fault_section;
    enum fault fault;
    int fault_times;        /* faults per faulting run index, in all workers */
    unsigned fault_runs;    /* bit r set: fault on run index r */
    long watch_run;         /* a restarted worker announces this run and waits */
    useconds_t nap;         /* per run */
    useconds_t restart_nap; /* in the first prerun of a restarted worker */
    int64_t tag;            /* set before sk_start; the parent changes it after */
    struct marks *m;
    /* this worker's memory: zero at sk_start */
    int64_t calls;
    int64_t first_run;
    int64_t hooks_entered;
} counter;

#define COUNTER(p) SK_CONTAINER_OF(p, counter, base)

static void die(enum fault f)
{
    switch (f) {
    case F_SEGV:
        skt_die_by(SIGSEGV);
        break;
    case F_EXIT:
        _exit(3);
    case F_ABORT:
        skt_die_by(SIGABRT);
        break;
    case F_SPIN:
        skt_spin_forever();
        break;
    }
}

/* The first hook call of a worker registers it. */
static void enter(counter *c)
{
    if (c->hooks_entered++ == 0) {
        int i = atomic_fetch_add(&c->m->workers, 1);
        if (i < MAX_WORKERS)
            atomic_store(&c->m->pid[i], getpid());
    }
}

static void maybe_fault(sk_process *self, sk_section section)
{
    counter *c = COUNTER(self);
    long run = sk_current_run(self);
    if (section != c->fault_section || run >= 8 || !(c->fault_runs & (1u << run)))
        return;
    if (atomic_load(&c->m->faulted[run]) >= c->fault_times)
        return;
    atomic_fetch_add(&c->m->faulted[run], 1);
    if (c->fault == F_SPIN)
        atomic_fetch_add(&c->m->timed_out, 1);
    die(c->fault);
}

static int c_prerun(sk_process *self)
{
    counter *c = COUNTER(self);
    enter(c);
    if (c->restart_nap && c->hooks_entered == 1 && atomic_load(&c->m->workers) > 1)
        usleep(c->restart_nap); /* a slow restart: sk_wait must not return meanwhile */
    maybe_fault(self, SK_PRERUN);
    return 0;
}

static int c_run(sk_process *self)
{
    counter *c = COUNTER(self);
    enter(c);
    if (c->calls++ == 0)
        c->first_run = sk_current_run(self);
    if (c->nap)
        usleep(c->nap);
    maybe_fault(self, SK_RUN);
    if (c->watch_run >= 0 && sk_current_run(self) == c->watch_run &&
        atomic_load(&c->m->workers) > 1) {
        atomic_store(&c->m->reached, 1);
        /* Wait for the parent's look, bounded so a broken test ends. */
        double deadline = skt_now() + BOUND;
        while (!atomic_load(&c->m->go) && skt_now() < deadline)
            usleep(100);
    }
    return 0;
}

static int c_postrun(sk_process *self)
{
    maybe_fault(self, SK_POSTRUN);
    return 0;
}

/* "IIII": this worker's run calls, the first run index it saw, the tag,
 * and the run index at the end. */
static int c_result(sk_process *self)
{
    counter *c = COUNTER(self);
    enter(c);
    atomic_store(&c->m->result_done, 1);
    int64_t at = sk_current_run(self);
    return sk_return(self, "IIII", &c->calls, &c->first_run, &c->tag, &at);
}

static const sk_class counter_class = {
    .name = "counter",
    .prerun = c_prerun,
    .run = c_run,
    .postrun = c_postrun,
    .result = c_result,
};

static counter *counter_new(long runs, int lives)
{
    counter *c = skt_new(counter);
    assert_rc(sk_init(&c->base, &counter_class), SK_OK);
    c->base.config.runs = runs;
    c->base.config.lives = lives;
    c->fault_section = SK_RUN;
    c->fault = F_SEGV;
    c->fault_times = 1;
    c->watch_run = -1;
    c->first_run = -1;
    c->m = skt_shared(sizeof *c->m);
    return c;
}

/* ------------------------------------------------------------- tests */

/* runs = 5, lives = 2, run 3 crashes once. The parent spins on the shared
 * page, calling no skproc function, until the restarted worker reaches run
 * 4; only then does it look and wait. */
static void test_restart_continues_at_same_run_from_start_state(void **state)
{
    (void)state;
    counter *c = counter_new(5, 2);
    c->fault_runs = 1u << 3;
    c->watch_run = 4;
    c->tag = 1;
    assert_rc(sk_start(&c->base), SK_OK);
    c->tag = 2; /* after sk_start: no worker may see it */

    /* Busy elsewhere: the restart happens without the parent's help. */
    double deadline = skt_now() + BOUND;
    while (!atomic_load(&c->m->reached) && skt_now() < deadline)
        ;
    assert_true(atomic_load(&c->m->reached));

    /* The second worker is at run 4 and waits for us. */
    assert_int_equal(atomic_load(&c->m->workers), 2);
    assert_int_equal(atomic_load(&c->m->faulted[3]), 1);
    assert_true(sk_alive(&c->base));
    assert_int_equal(sk_current_run(&c->base), 4);
    assert_int_equal(sk_pid(&c->base), atomic_load(&c->m->pid[1]));
    assert_cmp(atomic_load(&c->m->pid[0]), !=, atomic_load(&c->m->pid[1]));
    assert_rc(sk_wait(&c->base, 0), SK_ETIMEDOUT);
    atomic_store(&c->m->go, 1);

    assert_rc(sk_wait(&c->base, BOUND), SK_OK);
    assert_no_error(&c->base);
    int64_t calls = -1, first_run = -1, tag = -1, at = -1;
    assert_rc(sk_result(&c->base, "IIII", &calls, &first_run, &tag, &at), SK_OK);
    /* The second worker started from the state at sk_start (calls 0, tag
     * 1) at run 3 and did runs 3 and 4. */
    assert_int_equal(calls, 2);
    assert_int_equal(first_run, 3);
    assert_int_equal(tag, 1);
    assert_int_equal(at, 5);
    assert_int_equal(sk_current_run(&c->base), 5);
    /* Timers live in the shared page: runs 0-2 of the first worker and 3-4
     * of the second; the crashed call is not counted. */
    assert_int_equal(sk_timer_count(sk_timer_of(&c->base, SK_RUN)), 5);
    assert_int_equal(sk_timer_count(sk_timer_of(&c->base, SK_FULL_RUN)), 5);
}

/* Three restarts while the parent sits in sk_wait, each restarted worker
 * slow to start: sk_wait returns once, at the very end. */
static void test_wait_returns_only_when_finished_for_good(void **state)
{
    (void)state;
    counter *c = counter_new(5, 4);
    c->fault_runs = (1u << 1) | (1u << 2) | (1u << 3);
    c->nap = 10000;
    c->restart_nap = 30000;
    assert_rc(sk_start(&c->base), SK_OK);
    double t0 = skt_now();
    assert_rc(sk_wait(&c->base, BOUND), SK_OK);
    double took = skt_now() - t0;
    print_message("    3 restarts: sk_wait returned after %.1f ms\n", took * 1e3);

    /* Finished for good: the last worker's result hook ran, nothing runs. */
    assert_int_equal(atomic_load(&c->m->result_done), 1);
    assert_int_equal(atomic_load(&c->m->workers), 4);
    assert_false(sk_alive(&c->base));
    assert_int_equal(sk_pid(&c->base), -1);
    assert_int_equal(sk_current_run(&c->base), 5);
    assert_no_error(&c->base);
    int64_t calls = -1, first_run = -1, tag = -1, at = -1;
    assert_rc(sk_result(&c->base, "IIII", &calls, &first_run, &tag, &at), SK_OK);
    assert_int_equal(calls, 2); /* the last worker: runs 3 and 4 */
    assert_int_equal(first_run, 3);
    assert_int_equal(at, 5);

    /* Final: waiting again changes nothing. */
    assert_rc(sk_wait(&c->base, 0), SK_OK);
    assert_rc(sk_wait(&c->base, -1), SK_OK);
    assert_no_error(&c->base);
    assert_int_equal(sk_current_run(&c->base), 5);
    calls = -1;
    assert_rc(sk_result(&c->base, "IIII", &calls, &first_run, &tag, &at), SK_OK);
    assert_int_equal(calls, 2);
    for (int i = 0; i < 4; i++) {
        pid_t pid = atomic_load(&c->m->pid[i]);
        assert_cmp(pid, >, 0);
        /* Every worker is gone (or a zombie of whoever inherited it). */
        struct skt_proc_stat st;
        if (skt_proc_stat(pid, &st))
            assert_int_equal(st.state, 'Z');
    }
}

/* Other faults and sections restart the same way. */
static void check_restart(sk_section section, enum fault fault)
{
    counter *c = counter_new(4, 2);
    c->fault_section = section;
    c->fault = fault;
    c->fault_runs = 1u << 2;
    if (fault == F_SPIN) {
        if (section == SK_PRERUN)
            c->base.config.timeouts.prerun = 0.05;
        else if (section == SK_RUN)
            c->base.config.timeouts.run = 0.05;
        else
            c->base.config.timeouts.postrun = 0.05;
    }
    assert_rc(sk_start(&c->base), SK_OK);
    assert_rc(sk_wait(&c->base, BOUND), SK_OK);
    skt_print_error_of(&c->base);
    assert_no_error(&c->base);
    int64_t calls = -1, first_run = -1, tag = -1, at = -1;
    assert_rc(sk_result(&c->base, "IIII", &calls, &first_run, &tag, &at), SK_OK);
    assert_int_equal(atomic_load(&c->m->workers), 2);
    assert_int_equal(atomic_load(&c->m->faulted[2]), 1);
    /* Restarted at run 2 from the start state: runs 2 and 3 in the new
     * worker (a fault in postrun repeats the whole of run 2). */
    assert_int_equal(calls, 2);
    assert_int_equal(first_run, 2);
    assert_int_equal(at, 4);
    assert_int_equal(sk_current_run(&c->base), 4);
}

static void test_restart_after_exit_in_prerun(void **state)
{
    (void)state;
    check_restart(SK_PRERUN, F_EXIT);
}

static void test_restart_after_abort_in_postrun(void **state)
{
    (void)state;
    check_restart(SK_POSTRUN, F_ABORT);
}

static void test_restart_after_timeout_in_postrun(void **state)
{
    (void)state;
    check_restart(SK_POSTRUN, F_SPIN);
}

/* A timeout that happens once, lives = 2: success, the spare life used. */
static void test_timeout_once_with_two_lives(void **state)
{
    (void)state;
    counter *c = counter_new(3, 2);
    c->fault = F_SPIN;
    c->fault_runs = 1u << 1;
    c->base.config.timeouts.run = 0.05;
    double t0 = skt_now();
    assert_rc(sk_start(&c->base), SK_OK);
    assert_rc(sk_wait(&c->base, BOUND), SK_OK);
    double took = skt_now() - t0;
    skt_print_error_of(&c->base);
    assert_no_error(&c->base);
    assert_int_equal(atomic_load(&c->m->timed_out), 1);
    assert_int_equal(atomic_load(&c->m->workers), 2);
    int64_t calls = -1, first_run = -1, tag = -1, at = -1;
    assert_rc(sk_result(&c->base, "IIII", &calls, &first_run, &tag, &at), SK_OK);
    assert_int_equal(calls, 2); /* runs 1 and 2 */
    assert_int_equal(first_run, 1);
    assert_int_equal(at, 3);
    assert_cmp(took, >=, 0.05);
    assert_cmp(took, <, BOUND);
}

/* The same timeout twice with lives = 2: both lives spent, the error says
 * so. */
static void test_timeout_twice_with_two_lives(void **state)
{
    (void)state;
    counter *c = counter_new(3, 2);
    c->fault = F_SPIN;
    c->fault_runs = 1u << 1;
    c->fault_times = 2;
    c->base.config.timeouts.run = 0.05;
    assert_rc(sk_start(&c->base), SK_OK);
    assert_rc(sk_wait(&c->base, BOUND), SK_OK);
    skt_print_error_of(&c->base);
    const sk_error *e = sk_error_of(&c->base);
    assert_non_null(e);
    assert_int_equal(e->kind, SK_TIMEOUT_ERROR);
    assert_int_equal(e->section, SK_RUN);
    assert_int_equal(e->run, 1);
    assert_int_equal(e->lives_spent, 2);
    assert_int_equal(atomic_load(&c->m->timed_out), 2);
    assert_int_equal(atomic_load(&c->m->result_done), 0);
    assert_rc(sk_result(&c->base, NULL), SK_EPROCESS);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_restart_continues_at_same_run_from_start_state),
        SKT_TEST(test_wait_returns_only_when_finished_for_good),
        SKT_TEST(test_restart_after_exit_in_prerun),
        SKT_TEST(test_restart_after_abort_in_postrun),
        SKT_TEST(test_restart_after_timeout_in_postrun),
        SKT_TEST(test_timeout_once_with_two_lives),
        SKT_TEST(test_timeout_twice_with_two_lives),
    };
    return skt_run(argc, argv, tests);
}
