/* SPDX-License-Identifier: MIT */
/*
 * The process lifecycle with real child processes: create and release,
 * start and result (of several types), runs, join_in, stop from either
 * side, kill, alive/pid, many processes at once, and stdout going out
 * exactly once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "support.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/time.h>

/* ------------------------------------------------------------ classes */

/* A counter: counts its runs, stops itself at target (when target > 0). */
typedef struct {
    sk_process base;
    int64_t count;
    int64_t target;
    int64_t finished; /* set by onfinish */
    useconds_t nap;   /* per run */
} counter;

#define COUNTER(p) SK_CONTAINER_OF(p, counter, base)

static int counter_run(sk_process *self)
{
    counter *c = COUNTER(self);
    if (c->nap)
        usleep(c->nap);
    if (++c->count == c->target)
        sk_stop(self);
    return 0;
}

static int counter_onfinish(sk_process *self)
{
    COUNTER(self)->finished = 1;
    return 0;
}

static int counter_result(sk_process *self)
{
    counter *c = COUNTER(self);
    return sk_return(self, "II", &c->count, &c->finished);
}

static const sk_class counter_class = {
    .name = "counter",
    .run = counter_run,
    .onfinish = counter_onfinish,
    .result = counter_result,
};

/* Starts c and waits for its "II" result. */
static void counter_result_ok(counter *c, int64_t *count, int64_t *finished)
{
    assert_rc(sk_result(&c->base, "II", count, finished), SK_OK);
    assert_no_error(&c->base);
}

/* A class whose run does nothing: for "create and release". */
static int noop_run(sk_process *self)
{
    (void)self;
    return 0;
}

static const sk_class noop_class = {.name = "noop", .run = noop_run};

/* Results of several types, computed in run so that they come from the
 * child's memory, not the parent's. */
struct pair {
    int32_t i;
    double f;
};

typedef struct {
    sk_process base;
    int64_t big;
    double real;
    char text[64];
    struct pair pair;
    int which; /* 0: "I", 1: "s", 2: "S(if)", 3: "f", 4: "Isf" */
} typed;

#define TYPED(p) SK_CONTAINER_OF(p, typed, base)

static int typed_run(sk_process *self)
{
    typed *t = TYPED(self);
    t->big = INT64_C(1) << 40;
    t->real = 2.5;
    snprintf(t->text, sizeof t->text, "made in %d", 1 + 1);
    t->pair.i = -7;
    t->pair.f = 0.125;
    return 0;
}

static int typed_result(sk_process *self)
{
    typed *t = TYPED(self);
    char *s = t->text;
    switch (t->which) {
    case 0:
        return sk_return(self, "I", &t->big);
    case 1:
        return sk_return(self, "s", &s);
    case 2:
        return sk_return(self, "S(if)", &t->pair);
    case 3:
        return sk_return(self, "f", &t->real);
    default:
        return sk_return(self, "Isf", &t->big, &s, &t->real);
    }
}

static const sk_class typed_class = {.name = "typed", .run = typed_run, .result = typed_result};

static typed *typed_start(int which)
{
    typed *t = skt_new(typed);
    assert_rc(sk_init(&t->base, &typed_class), SK_OK);
    t->which = which;
    t->base.config.runs = 1;
    assert_rc(sk_start(&t->base), SK_OK);
    return t;
}

/* ------------------------------------------------- create and results */

static void test_init_release_without_start(void **state)
{
    (void)state;
    counter *c = skt_new(counter);
    assert_rc(sk_init(&c->base, &counter_class), SK_OK);
    assert_ptr_equal(c->base.cls, &counter_class);
    assert_false(sk_alive(&c->base));
    assert_int_equal(sk_pid(&c->base), -1);
    assert_int_equal(sk_current_run(&c->base), 0);
    assert_null(sk_error_of(&c->base));
    sk_release(&c->base);

    /* The released handle can be used again from the start. */
    assert_rc(sk_init(&c->base, &counter_class), SK_OK);
    c->target = 3;
    assert_rc(sk_start(&c->base), SK_OK);
    int64_t count = 0, finished = 0;
    counter_result_ok(c, &count, &finished);
    assert_int_equal(count, 3);
    sk_release(&c->base);
}

static void test_trivial_process_without_result(void **state)
{
    (void)state;
    counter *c = skt_new(counter);
    assert_rc(sk_init(&c->base, &noop_class), SK_OK);
    c->base.config.runs = 1;
    assert_rc(sk_start(&c->base), SK_OK);
    /* Nothing published: no format is fine, a format that wants a value is
     * told that nothing was published (not that the format is wrong). */
    assert_rc(sk_result(&c->base, NULL), SK_OK);
    assert_rc(sk_result(&c->base, ""), SK_OK);
    int64_t v = 0;
    assert_rc(sk_result(&c->base, "I", &v), SK_ENORESULT);
    assert_string_equal(sk_strerror(SK_ENORESULT), "no result was published");
    assert_no_error(&c->base);
    assert_int_equal(sk_current_run(&c->base), 1);
    sk_release(&c->base);
}

static void test_result_int64(void **state)
{
    (void)state;
    typed *t = typed_start(0);
    int64_t v = 0;
    assert_rc(sk_result(&t->base, "I", &v), SK_OK);
    assert_cmp(v, ==, INT64_C(1) << 40);
    assert_int_equal(t->big, 0); /* the parent's copy never ran */
    sk_release(&t->base);
}

static void test_result_string(void **state)
{
    (void)state;
    typed *t = typed_start(1);
    char *s = NULL;
    assert_rc(sk_result(&t->base, "s", &s), SK_OK);
    assert_non_null(s);
    assert_string_equal(s, "made in 2");
    free(s);
    /* Readable again: each call hands out its own copy. */
    char *again = NULL;
    assert_rc(sk_result(&t->base, "s", &again), SK_OK);
    assert_string_equal(again, "made in 2");
    free(again);
    sk_release(&t->base);
}

static void test_result_struct(void **state)
{
    (void)state;
    typed *t = typed_start(2);
    struct pair pr = {0, 0};
    assert_rc(sk_result(&t->base, "S(if)", &pr), SK_OK);
    assert_int_equal(pr.i, -7);
    assert_cmp(pr.f, ==, 0.125);
    sk_release(&t->base);
}

static void test_result_double(void **state)
{
    (void)state;
    typed *t = typed_start(3);
    double d = 0;
    assert_rc(sk_result(&t->base, "f", &d), SK_OK);
    assert_cmp(d, ==, 2.5);
    sk_release(&t->base);
}

static void test_result_several_values(void **state)
{
    (void)state;
    typed *t = typed_start(4);
    int64_t big = 0;
    char *s = NULL;
    double d = 0;
    assert_rc(sk_result(&t->base, "Isf", &big, &s, &d), SK_OK);
    assert_cmp(big, ==, INT64_C(1) << 40);
    assert_string_equal(s, "made in 2");
    assert_cmp(d, ==, 2.5);
    free(s);
    /* A format that does not match what was published. */
    assert_rc(sk_result(&t->base, "I", &big), SK_EFORMAT);
    /* A NULL format with a published value ignores it. */
    assert_rc(sk_result(&t->base, NULL), SK_OK);
    sk_release(&t->base);
}

/* ------------------------------------------------------ runs, join_in */

static void test_runs_n_runs_exactly_n_times(void **state)
{
    (void)state;
    counter *c = skt_new(counter);
    assert_rc(sk_init(&c->base, &counter_class), SK_OK);
    c->base.config.runs = 7;
    assert_rc(sk_start(&c->base), SK_OK);
    int64_t count = 0, finished = 0;
    counter_result_ok(c, &count, &finished);
    assert_int_equal(count, 7);
    assert_int_equal(finished, 1);
    assert_int_equal(sk_current_run(&c->base), 7);
    const sk_timer *t = sk_timer_of(&c->base, SK_RUN);
    assert_non_null(t);
    assert_int_equal(sk_timer_count(t), 7);
    assert_int_equal(sk_timer_count(sk_timer_of(&c->base, SK_FULL_RUN)), 7);
    sk_release(&c->base);
}

static void test_runs_one(void **state)
{
    (void)state;
    counter *c = skt_new(counter);
    assert_rc(sk_init(&c->base, &counter_class), SK_OK);
    c->base.config.runs = 1;
    assert_rc(sk_start(&c->base), SK_OK);
    int64_t count = 0, finished = 0;
    counter_result_ok(c, &count, &finished);
    assert_int_equal(count, 1);
    assert_int_equal(sk_current_run(&c->base), 1);
    sk_release(&c->base);
}

static void test_join_in_ends_an_endless_process(void **state)
{
    (void)state;
    counter *c = skt_new(counter);
    assert_rc(sk_init(&c->base, &counter_class), SK_OK);
    c->base.config.join_in = 0.2;
    c->nap = 1000;
    double t0 = skt_now();
    assert_rc(sk_start(&c->base), SK_OK);
    int64_t count = 0, finished = 0;
    counter_result_ok(c, &count, &finished);
    double took = skt_now() - t0;
    assert_cmp(took, >=, 0.19);
    assert_cmp(took, <, 2.0);
    assert_cmp(count, >=, 5); /* ~1 ms per run for 0.2 s */
    assert_int_equal(finished, 1);
    assert_int_equal(sk_current_run(&c->base), count);
    sk_release(&c->base);
}

/* ---------------------------------------------------------------- stop */

static void test_stop_from_parent_is_fast(void **state)
{
    (void)state;
    counter *c = skt_new(counter);
    assert_rc(sk_init(&c->base, &counter_class), SK_OK);
    c->nap = 100;
    assert_rc(sk_start(&c->base), SK_OK);
    assert_running(&c->base, 5.0);
    assert_true(sk_alive(&c->base));

    double t0 = skt_now();
    assert_rc(sk_stop(&c->base), SK_OK);
    double stop_took = skt_now() - t0;
    assert_rc(sk_wait(&c->base, 5.0), SK_OK);
    double took = skt_now() - t0;
    assert_cmp(stop_took, <, 0.01); /* sk_stop never blocks */
    if (took >= 0.05)
        fail_msg("sk_stop -> sk_wait took %.1f ms, want < 50 ms", took * 1e3);

    int64_t count = 0, finished = 0;
    counter_result_ok(c, &count, &finished);
    assert_cmp(count, >=, 1);
    assert_int_equal(finished, 1); /* onfinish still ran */
    /* The stopped iteration is not counted; every earlier one is. */
    assert_true(sk_current_run(&c->base) == count || sk_current_run(&c->base) == count - 1);
    assert_false(sk_alive(&c->base));
    sk_release(&c->base);
}

static void test_stop_from_inside_run(void **state)
{
    (void)state;
    counter *c = skt_new(counter);
    assert_rc(sk_init(&c->base, &counter_class), SK_OK);
    c->target = 10;
    assert_rc(sk_start(&c->base), SK_OK);
    int64_t count = 0, finished = 0;
    counter_result_ok(c, &count, &finished);
    assert_int_equal(count, 10);
    assert_int_equal(sk_current_run(&c->base), 9); /* the stopping iteration is not counted */
    assert_int_equal(finished, 1);
    sk_release(&c->base);
}

/* A stop in postrun: the iteration is complete, so it is counted. */
static int stop_in_postrun(sk_process *self)
{
    counter *c = COUNTER(self);
    if (c->count == c->target)
        sk_stop(self);
    return 0;
}

static int count_run(sk_process *self)
{
    COUNTER(self)->count++;
    return 0;
}

static const sk_class postrun_stopper_class = {
    .name = "postrun_stopper",
    .run = count_run,
    .postrun = stop_in_postrun,
    .onfinish = counter_onfinish,
    .result = counter_result,
};

static void test_stop_inside_postrun_counts_the_iteration(void **state)
{
    (void)state;
    counter *c = skt_new(counter);
    assert_rc(sk_init(&c->base, &postrun_stopper_class), SK_OK);
    c->target = 4;
    assert_rc(sk_start(&c->base), SK_OK);
    int64_t count = 0, finished = 0;
    counter_result_ok(c, &count, &finished);
    assert_int_equal(count, 4);
    assert_int_equal(sk_current_run(&c->base), 4);
    assert_int_equal(finished, 1);
    sk_release(&c->base);
}

/* A stop in prerun: run and postrun of that iteration are skipped. */
static int stop_in_prerun(sk_process *self)
{
    counter *c = COUNTER(self);
    if (c->count == c->target)
        sk_stop(self);
    return 0;
}

static const sk_class prerun_stopper_class = {
    .name = "prerun_stopper",
    .prerun = stop_in_prerun,
    .run = count_run,
    .onfinish = counter_onfinish,
    .result = counter_result,
};

static void test_stop_inside_prerun_skips_the_rest(void **state)
{
    (void)state;
    counter *c = skt_new(counter);
    assert_rc(sk_init(&c->base, &prerun_stopper_class), SK_OK);
    c->target = 3;
    assert_rc(sk_start(&c->base), SK_OK);
    int64_t count = 0, finished = 0;
    counter_result_ok(c, &count, &finished);
    assert_int_equal(count, 3); /* run did not run after the stop */
    assert_int_equal(sk_current_run(&c->base), 3);
    assert_int_equal(sk_timer_count(sk_timer_of(&c->base, SK_PRERUN)), 4);
    assert_int_equal(sk_timer_count(sk_timer_of(&c->base, SK_RUN)), 3);
    sk_release(&c->base);
}

static void test_result_after_stop_from_parent(void **state)
{
    (void)state;
    counter *c = skt_new(counter);
    assert_rc(sk_init(&c->base, &counter_class), SK_OK);
    assert_rc(sk_start(&c->base), SK_OK);
    assert_running(&c->base, 5.0);
    assert_rc(sk_stop(&c->base), SK_OK);
    assert_rc(sk_stop(&c->base), SK_OK); /* twice is harmless */
    int64_t count = 0, finished = 0;
    counter_result_ok(c, &count, &finished);
    assert_int_equal(finished, 1);
    assert_cmp(count, >=, 1);
    sk_release(&c->base);
}

/* ---------------------------------------------------------------- kill */

/* Tells the parent through a pipe that it is inside run, then never
 * returns. onfinish would write 'F' to the same pipe. */
typedef struct {
    sk_process base;
    int fd;
    int busy; /* spin instead of pause() */
} stuck;

#define STUCK(p) SK_CONTAINER_OF(p, stuck, base)

static int stuck_run(sk_process *self)
{
    stuck *s = STUCK(self);
    skt_write_byte(s->fd, 'R');
    if (s->busy)
        skt_spin_forever();
    for (;;)
        pause();
    return 0;
}

static int stuck_onfinish(sk_process *self)
{
    skt_write_byte(STUCK(self)->fd, 'F');
    return 0;
}

static int stuck_result(sk_process *self)
{
    int64_t v = 1;
    skt_write_byte(STUCK(self)->fd, 'X');
    return sk_return(self, "I", &v);
}

static const sk_class stuck_class = {
    .name = "stuck",
    .run = stuck_run,
    .onfinish = stuck_onfinish,
    .result = stuck_result,
    .error = stuck_onfinish,
};

static void kill_stuck(int busy)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    stuck *s = skt_new(stuck);
    assert_rc(sk_init(&s->base, &stuck_class), SK_OK);
    s->fd = fds[1];
    s->busy = busy;
    assert_rc(sk_start(&s->base), SK_OK);
    close(fds[1]); /* the children hold the only write ends now */
    assert_int_equal(skt_read_byte(fds[0], 5.0), 'R');
    assert_true(sk_alive(&s->base));

    double t0 = skt_now();
    assert_rc(sk_kill(&s->base), SK_OK);
    double took = skt_now() - t0;
    assert_cmp(took, <, 1.0);
    assert_false(sk_alive(&s->base));
    assert_int_equal(sk_pid(&s->base), -1);
    assert_rc(sk_result(&s->base, NULL), SK_EKILLED);
    int64_t v = 0;
    assert_rc(sk_result(&s->base, "I", &v), SK_EKILLED);
    assert_int_equal(v, 0);
    /* End of file, and nothing before it: no hook ran after the kill and
     * no process holding the pipe is left. */
    assert_int_equal(skt_read_byte(fds[0], 5.0), -2);
    assert_rc(sk_kill(&s->base), SK_OK); /* again: already over */
    assert_rc(sk_wait(&s->base, 0), SK_OK);
    close(fds[0]);
    sk_release(&s->base);
}

static void test_kill_process_blocked_in_run(void **state)
{
    (void)state;
    kill_stuck(0);
}

static void test_kill_process_spinning_in_run(void **state)
{
    (void)state;
    kill_stuck(1);
}

static void test_kill_after_natural_end_keeps_result(void **state)
{
    (void)state;
    counter *c = skt_new(counter);
    assert_rc(sk_init(&c->base, &counter_class), SK_OK);
    c->base.config.runs = 2;
    assert_rc(sk_start(&c->base), SK_OK);
    /* Wait for the end without reaping it through sk_wait: poll liveness. */
    double deadline = skt_now() + 5.0;
    while (sk_alive(&c->base) && skt_now() < deadline)
        skt_sleep(0.001);
    assert_false(sk_alive(&c->base));
    assert_rc(sk_kill(&c->base), SK_OK);
    int64_t count = 0, finished = 0;
    counter_result_ok(c, &count, &finished);
    assert_int_equal(count, 2);
    sk_release(&c->base);
}

/* ----------------------------------------------------------- alive, pid */

static void test_alive_and_pid(void **state)
{
    (void)state;
    counter *c = skt_new(counter);
    assert_rc(sk_init(&c->base, &counter_class), SK_OK);
    c->nap = 100;
    assert_rc(sk_start(&c->base), SK_OK);
    assert_running(&c->base, 5.0);
    assert_true(sk_alive(&c->base));
    /* The worker's pid is published by its supervisor right after the fork. */
    double deadline = skt_now() + 5.0;
    while (sk_pid(&c->base) <= 0 && skt_now() < deadline)
        skt_sleep(0.0001);
    pid_t pid = sk_pid(&c->base);
    assert_cmp(pid, >, 0);
    assert_cmp(pid, !=, getpid());
    assert_int_equal(kill(pid, 0), 0); /* a real, live process */
    assert_true(sk_alive(&c->base));

    assert_rc(sk_stop(&c->base), SK_OK);
    assert_rc(sk_wait(&c->base, 5.0), SK_OK);
    assert_false(sk_alive(&c->base));
    assert_int_equal(sk_pid(&c->base), -1);
    assert_no_error(&c->base);
    sk_release(&c->base);
}

/* ------------------------------------------------------ many processes */

#define MANY 50

typedef struct {
    sk_process base;
    int64_t index;
    int64_t answer;
} indexed;

#define INDEXED(p) SK_CONTAINER_OF(p, indexed, base)

static int indexed_run(sk_process *self)
{
    indexed *x = INDEXED(self);
    x->answer = x->index * 1000 + sk_current_run(self);
    return 0;
}

static int indexed_result(sk_process *self)
{
    return sk_return(self, "I", &INDEXED(self)->answer);
}

static const sk_class indexed_class = {
    .name = "indexed", .run = indexed_run, .result = indexed_result};

static void test_many_processes_at_once(void **state)
{
    (void)state;
    indexed *xs[MANY];
    for (int i = 0; i < MANY; i++) {
        xs[i] = skt_new(indexed);
        assert_rc(sk_init(&xs[i]->base, &indexed_class), SK_OK);
        xs[i]->index = i;
        xs[i]->base.config.runs = 3;
    }
    for (int i = 0; i < MANY; i++)
        assert_rc(sk_start(&xs[i]->base), SK_OK);
    /* Collect in reverse order, so that results do not just come in start order. */
    for (int i = MANY - 1; i >= 0; i--) {
        int64_t v = -1;
        assert_rc(sk_result(&xs[i]->base, "I", &v), SK_OK);
        assert_int_equal(v, (int64_t)i * 1000 + 2);
        assert_int_equal(sk_current_run(&xs[i]->base), 3);
    }
    for (int i = 0; i < MANY; i++)
        sk_release(&xs[i]->base);
    assert_no_children();
}

/* -------------------------------------------------------------- stdout */

typedef struct {
    sk_process base;
    int runs_printed;
} printer;

static int printer_run(sk_process *self)
{
    (void)self;
    printf("<run>"); /* no newline: stays in the worker's buffer */
    return 0;
}

static int printer_onfinish(sk_process *self)
{
    (void)self;
    printf("<fin>");
    return 0;
}

static const sk_class printer_class = {
    .name = "printer", .run = printer_run, .onfinish = printer_onfinish};

/* In a helper process whose stdout is a pipe (so fully buffered): leave
 * text in the buffer, run a printing process, print more, exit. Returns
 * what came out of the pipe. */
static char *capture_printer_output(long runs)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL); /* cmocka's own buffered output must not be copied */
    pid_t helper = fork();
    assert_cmp(helper, >=, 0);
    if (helper == 0) {
        close(fds[0]);
        if (dup2(fds[1], STDOUT_FILENO) < 0)
            _exit(10);
        close(fds[1]);
        printf("[parent-before]");
        printer *pr = calloc(1, sizeof *pr);
        if (pr == NULL || sk_init(&pr->base, &printer_class) != SK_OK)
            _exit(11);
        pr->base.config.runs = runs;
        if (sk_start(&pr->base) != SK_OK)
            _exit(12);
        if (sk_wait(&pr->base, 10.0) != SK_OK || sk_error_of(&pr->base) != NULL)
            _exit(13);
        sk_release(&pr->base);
        free(pr);
        printf("[parent-after]");
        fflush(stdout);
        _exit(0);
    }
    close(fds[1]);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (;;) {
        ssize_t n = read(fds[0], buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == cap - 1)
            break;
    }
    buf[len] = '\0';
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(helper, &status, 0), helper);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    return buf;
}

static void test_stdout_appears_exactly_once(void **state)
{
    (void)state;
    char *out = capture_printer_output(1);
    /* The parent's unflushed text comes once, before the child's. */
    assert_string_equal(out, "[parent-before]<run><fin>[parent-after]");
    free(out);
}

static void test_stdout_of_several_runs(void **state)
{
    (void)state;
    char *out = capture_printer_output(3);
    assert_string_equal(out, "[parent-before]<run><run><run><fin>[parent-after]");
    free(out);
}

/* ------------------------------------------------- the parent's world */

static volatile sig_atomic_t alarms, sigchlds;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

static void on_sigchld(int sig)
{
    (void)sig;
    sigchlds++;
}

/* Signal handlers without SA_RESTART interrupt every blocking call in the
 * parent: EINTR never surfaces. */
static void test_signals_in_parent_do_not_break_wait(void **state)
{
    (void)state;
    struct sigaction sa, old_alrm, old_chld;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_alarm;
    assert_int_equal(sigaction(SIGALRM, &sa, &old_alrm), 0);
    sa.sa_handler = on_sigchld;
    assert_int_equal(sigaction(SIGCHLD, &sa, &old_chld), 0);
    struct itimerval every_ms = {{0, 1000}, {0, 1000}}, off = {{0, 0}, {0, 0}};
    assert_int_equal(setitimer(ITIMER_REAL, &every_ms, NULL), 0);
    alarms = sigchlds = 0;

    counter *c = skt_new(counter);
    assert_rc(sk_init(&c->base, &counter_class), SK_OK);
    c->base.config.runs = 40;
    c->nap = 1000;
    assert_rc(sk_start(&c->base), SK_OK);
    int64_t count = 0, finished = 0;
    int rc = sk_result(&c->base, "II", &count, &finished);

    counter *endless = skt_new(counter);
    assert_rc(sk_init(&endless->base, &counter_class), SK_OK);
    endless->nap = 100;
    assert_rc(sk_start(&endless->base), SK_OK);
    double t0 = skt_now();
    int wait_rc = sk_wait(&endless->base, 0.1);
    double waited = skt_now() - t0;
    int stop_rc = sk_stop(&endless->base);
    int end_rc = sk_wait(&endless->base, 10.0);

    setitimer(ITIMER_REAL, &off, NULL);
    sigaction(SIGALRM, &old_alrm, NULL);
    sigaction(SIGCHLD, &old_chld, NULL);

    assert_rc(rc, SK_OK);
    assert_int_equal(count, 40);
    assert_rc(wait_rc, SK_ETIMEDOUT);
    assert_cmp(waited, >=, 0.095); /* not cut short by the signals */
    assert_rc(stop_rc, SK_OK);
    assert_rc(end_rc, SK_OK);
    assert_no_error(&endless->base);
    assert_cmp(alarms, >, 10);
    assert_cmp(sigchlds, >=, 1);
    sk_release(&c->base);
    sk_release(&endless->base);
}

/* The library reaps only its own children: the user's keep their status. */
static void test_user_children_are_not_reaped(void **state)
{
    (void)state;
    int gate[2];
    assert_int_equal(pipe(gate), 0);
    fflush(NULL);
    pid_t early = fork();
    assert_cmp(early, >=, 0);
    if (early == 0)
        _exit(7); /* a zombie until we reap it */
    pid_t late = fork();
    assert_cmp(late, >=, 0);
    if (late == 0) {
        close(gate[1]);
        char ch;
        ssize_t n = read(gate[0], &ch, 1); /* until the gate closes */
        (void)n;
        _exit(8);
    }
    close(gate[0]);

    counter *c = skt_new(counter);
    assert_rc(sk_init(&c->base, &counter_class), SK_OK);
    c->base.config.runs = 3;
    assert_rc(sk_start(&c->base), SK_OK);
    int64_t count = 0, finished = 0;
    counter_result_ok(c, &count, &finished);
    assert_int_equal(count, 3);
    sk_release(&c->base);
    close(gate[1]);

    int status = 0;
    assert_int_equal(waitpid(early, &status, 0), early);
    assert_true(WIFEXITED(status));
    assert_cmp(WEXITSTATUS(status), ==, 7);
    assert_int_equal(waitpid(late, &status, 0), late);
    assert_true(WIFEXITED(status));
    assert_cmp(WEXITSTATUS(status), ==, 8);
    assert_no_children();
}

static void test_sigchld_ignored_by_the_parent(void **state)
{
    (void)state;
    struct sigaction ign, old;
    memset(&ign, 0, sizeof ign);
    sigemptyset(&ign.sa_mask);
    ign.sa_handler = SIG_IGN;
    assert_int_equal(sigaction(SIGCHLD, &ign, &old), 0);

    counter *c = skt_new(counter);
    assert_rc(sk_init(&c->base, &counter_class), SK_OK);
    c->base.config.runs = 3;
    assert_rc(sk_start(&c->base), SK_OK);
    int64_t count = 0, finished = 0;
    int rc = sk_result(&c->base, "II", &count, &finished);
    const sk_error *e = sk_error_of(&c->base);
    sigaction(SIGCHLD, &old, NULL);

    assert_rc(rc, SK_OK);
    assert_null(e);
    assert_int_equal(count, 3);
    assert_int_equal(sk_current_run(&c->base), 3);
    sk_release(&c->base);
}

/* Different handles from different threads at once. */
#define THREADS 4
#define PER_THREAD 10

static void *thread_body(void *arg)
{
    long id = (long)arg;
    long bad = 0;
    for (int i = 0; i < PER_THREAD; i++) {
        counter c;
        memset(&c, 0, sizeof c);
        if (sk_init(&c.base, &counter_class) != SK_OK) {
            bad++;
            continue;
        }
        c.base.config.runs = 2 + id + i;
        int64_t count = -1, finished = 0;
        if (sk_start(&c.base) != SK_OK || sk_result(&c.base, "II", &count, &finished) != SK_OK ||
            count != 2 + id + i || finished != 1)
            bad++;
        sk_release(&c.base);
    }
    return (void *)bad;
}

static void test_handles_from_several_threads(void **state)
{
    (void)state;
    pthread_t th[THREADS];
    for (long i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, thread_body, (void *)i), 0);
    long bad = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r = NULL;
        assert_int_equal(pthread_join(th[i], &r), 0);
        bad += (long)r;
    }
    assert_int_equal(bad, 0);
    assert_no_children();
}

/* A child never outlives its parent, also when the parent is SIGKILLed. The
 * supervisor and worker inherit the write end of a pipe: end of file on the
 * read end means every one of them is gone. */
static void test_children_die_with_the_parent(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t helper = fork();
    assert_cmp(helper, >=, 0);
    if (helper == 0) {
        close(fds[0]);
        counter *c = calloc(1, sizeof *c);
        if (c == NULL || sk_init(&c->base, &counter_class) != SK_OK)
            _exit(11);
        c->nap = 100;
        if (sk_start(&c->base) != SK_OK || !skt_wait_running(&c->base, 5.0))
            _exit(12);
        skt_write_byte(fds[1], 'R');
        for (;;)
            pause();
    }
    close(fds[1]);
    assert_int_equal(skt_read_byte(fds[0], 5.0), 'R');
    assert_int_equal(kill(helper, SIGKILL), 0);
    int status = 0;
    assert_int_equal(waitpid(helper, &status, 0), helper);
    assert_int_equal(skt_read_byte(fds[0], 2.0), -2);
    close(fds[0]);
}

/* The worker runs with the parent's signal mask (its supervisor blocks
 * everything). */
static int mask_run(sk_process *self)
{
    counter *c = COUNTER(self);
    sigset_t now;
    sigprocmask(SIG_SETMASK, NULL, &now);
    c->count = sigismember(&now, SIGUSR1) * 10 + sigismember(&now, SIGTERM);
    return 0;
}

static const sk_class mask_class = {.name = "mask", .run = mask_run, .result = counter_result};

static void test_worker_gets_the_parents_signal_mask(void **state)
{
    (void)state;
    sigset_t usr1, old;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    assert_int_equal(sigprocmask(SIG_BLOCK, &usr1, &old), 0);
    counter *c = skt_new(counter);
    int rc = sk_init(&c->base, &mask_class);
    c->base.config.runs = 1;
    if (rc == SK_OK)
        rc = sk_start(&c->base);
    int64_t bits = -1, finished = 0;
    if (rc == SK_OK)
        rc = sk_result(&c->base, "II", &bits, &finished);
    sigprocmask(SIG_SETMASK, &old, NULL);
    assert_rc(rc, SK_OK);
    assert_int_equal(bits, 10); /* SIGUSR1 blocked as in the parent, SIGTERM not */
    sk_release(&c->base);
}

/* join_in ends the loop; onfinish may take as long as it needs. */
static int slow_onfinish(sk_process *self)
{
    usleep(300000);
    COUNTER(self)->finished = 1;
    return 0;
}

static const sk_class slow_finish_class = {
    .name = "slow_finish", .run = counter_run, .onfinish = slow_onfinish, .result = counter_result};

static void test_join_in_does_not_limit_onfinish(void **state)
{
    (void)state;
    counter *c = skt_new(counter);
    assert_rc(sk_init(&c->base, &slow_finish_class), SK_OK);
    c->base.config.join_in = 0.1;
    c->nap = 1000;
    assert_rc(sk_start(&c->base), SK_OK);
    int64_t count = 0, finished = 0;
    counter_result_ok(c, &count, &finished);
    assert_int_equal(finished, 1);
    assert_cmp(count, >=, 1);
    sk_release(&c->base);
}

/* A hook may run processes of its own. */
typedef struct {
    sk_process base;
    int64_t inner_count;
    int32_t inner_rc;
} outer;

static int outer_run(sk_process *self)
{
    outer *o = SK_CONTAINER_OF(self, outer, base);
    counter inner;
    memset(&inner, 0, sizeof inner);
    o->inner_rc = sk_init(&inner.base, &counter_class);
    if (o->inner_rc != SK_OK)
        return 0;
    inner.base.config.runs = 4;
    int64_t finished = 0;
    o->inner_rc = sk_start(&inner.base);
    if (o->inner_rc == SK_OK)
        o->inner_rc = sk_result(&inner.base, "II", &o->inner_count, &finished);
    sk_release(&inner.base);
    return 0;
}

static int outer_result(sk_process *self)
{
    outer *o = SK_CONTAINER_OF(self, outer, base);
    return sk_return(self, "iI", &o->inner_rc, &o->inner_count);
}

static const sk_class outer_class = {.name = "outer", .run = outer_run, .result = outer_result};

static void test_process_started_from_a_hook(void **state)
{
    (void)state;
    outer *o = skt_new(outer);
    assert_rc(sk_init(&o->base, &outer_class), SK_OK);
    o->base.config.runs = 2;
    assert_rc(sk_start(&o->base), SK_OK);
    int32_t rc = -100;
    int64_t count = 0;
    assert_rc(sk_result(&o->base, "iI", &rc, &count), SK_OK);
    assert_rc(rc, SK_OK);
    assert_int_equal(count, 4);
    sk_release(&o->base);
    assert_no_children();
}

/* A result far larger than a page. */
#define BIG (1 << 20)

typedef struct {
    sk_process base;
    char *text;
} big;

static int big_run(sk_process *self)
{
    big *b = SK_CONTAINER_OF(self, big, base);
    b->text = malloc(BIG + 1);
    if (b->text == NULL)
        return sk_fail(self, SK_ENOMEM, "no memory");
    for (size_t i = 0; i < BIG; i++)
        b->text[i] = (char)('a' + i % 26);
    b->text[BIG] = '\0';
    return 0;
}

static int big_result(sk_process *self)
{
    big *b = SK_CONTAINER_OF(self, big, base);
    int rc = sk_return(self, "s", &b->text);
    free(b->text);
    return rc;
}

static const sk_class big_class = {.name = "big", .run = big_run, .result = big_result};

static void test_big_result(void **state)
{
    (void)state;
    int fds = skt_fd_count();
    big *b = skt_new(big);
    assert_rc(sk_init(&b->base, &big_class), SK_OK);
    b->base.config.runs = 1;
    assert_rc(sk_start(&b->base), SK_OK);
    char *s = NULL;
    assert_rc(sk_result(&b->base, "s", &s), SK_OK);
    assert_non_null(s);
    assert_int_equal(strlen(s), BIG);
    for (size_t i = 0; i < BIG; i += 4099)
        assert_int_equal(s[i], 'a' + i % 26);
    free(s);
    sk_release(&b->base);
    assert_int_equal(skt_fd_count(), fds);
}

/* sk_pid is the worker's pid, and a restart gives a new worker. */
struct pids {
    _Atomic int first;     /* the worker of run 0 */
    _Atomic int go;        /* set by the test once it has checked sk_pid */
    _Atomic int crashed;   /* the worker that crashed on run 1 */
    _Atomic int restarted; /* the worker that ran run 1 again */
};

typedef struct {
    sk_process base;
    struct pids *pids;
} restarter;

static int restarter_run(sk_process *self)
{
    struct pids *p = SK_CONTAINER_OF(self, restarter, base)->pids;
    long run = sk_current_run(self);
    if (run == 0) {
        atomic_store(&p->first, (int)getpid());
        double deadline = skt_now() + 10.0;
        while (!atomic_load(&p->go) && skt_now() < deadline)
            skt_sleep(0.0001);
    } else if (run == 1 && atomic_load(&p->crashed) == 0) {
        atomic_store(&p->crashed, (int)getpid());
        skt_die_by(SIGKILL);
    } else if (run == 1) {
        atomic_store(&p->restarted, (int)getpid());
    }
    if (sk_pid(self) != getpid())
        return sk_fail(self, 1, "sk_pid(self) is not getpid()");
    return 0;
}

static const sk_class restarter_class = {.name = "restarter", .run = restarter_run};

static void test_pid_is_the_worker_and_changes_on_restart(void **state)
{
    (void)state;
    restarter *r = skt_new(restarter);
    assert_rc(sk_init(&r->base, &restarter_class), SK_OK);
    r->pids = skt_shared(sizeof *r->pids);
    r->base.config.runs = 3;
    r->base.config.lives = 2;
    assert_rc(sk_start(&r->base), SK_OK);
    double deadline = skt_now() + 5.0;
    while (atomic_load(&r->pids->first) == 0 && skt_now() < deadline)
        skt_sleep(0.0001);
    pid_t first = atomic_load(&r->pids->first);
    assert_cmp(first, >, 0);
    while (sk_pid(&r->base) <= 0 && skt_now() < deadline)
        skt_sleep(0.0001);
    assert_int_equal(sk_pid(&r->base), first);
    atomic_store(&r->pids->go, 1);

    assert_rc(sk_wait(&r->base, 10.0), SK_OK);
    assert_no_error(&r->base);
    assert_int_equal(atomic_load(&r->pids->crashed), first);
    assert_cmp(atomic_load(&r->pids->restarted), >, 0);
    assert_cmp(atomic_load(&r->pids->restarted), !=, first);
    assert_int_equal(sk_pid(&r->base), -1);
    assert_int_equal(sk_current_run(&r->base), 3);
    sk_release(&r->base);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_init_release_without_start),
        SKT_TEST(test_trivial_process_without_result),
        SKT_TEST(test_result_int64),
        SKT_TEST(test_result_string),
        SKT_TEST(test_result_struct),
        SKT_TEST(test_result_double),
        SKT_TEST(test_result_several_values),
        SKT_TEST(test_runs_n_runs_exactly_n_times),
        SKT_TEST(test_runs_one),
        SKT_TEST(test_join_in_ends_an_endless_process),
        SKT_TEST(test_stop_from_parent_is_fast),
        SKT_TEST(test_stop_from_inside_run),
        SKT_TEST(test_stop_inside_postrun_counts_the_iteration),
        SKT_TEST(test_stop_inside_prerun_skips_the_rest),
        SKT_TEST(test_result_after_stop_from_parent),
        SKT_TEST(test_kill_process_blocked_in_run),
        SKT_TEST(test_kill_process_spinning_in_run),
        SKT_TEST(test_kill_after_natural_end_keeps_result),
        SKT_TEST(test_alive_and_pid),
        SKT_TEST(test_many_processes_at_once),
        SKT_TEST(test_stdout_appears_exactly_once),
        SKT_TEST(test_stdout_of_several_runs),
        SKT_TEST(test_signals_in_parent_do_not_break_wait),
        SKT_TEST(test_user_children_are_not_reaped),
        SKT_TEST(test_sigchld_ignored_by_the_parent),
        SKT_TEST(test_handles_from_several_threads),
        SKT_TEST(test_children_die_with_the_parent),
        SKT_TEST(test_worker_gets_the_parents_signal_mask),
        SKT_TEST(test_join_in_does_not_limit_onfinish),
        SKT_TEST(test_process_started_from_a_hook),
        SKT_TEST(test_big_result),
        SKT_TEST(test_pid_is_the_worker_and_changes_on_restart),
    };
    return skt_run(argc, argv, tests);
}
