/* SPDX-License-Identifier: MIT */
/*
 * Calls in the wrong state and with NULL: before sk_start, sk_start twice,
 * after sk_release, sk_return outside the result and error hooks (in the
 * parent and from inside the child), sk_init with bad arguments; and
 * sk_wait's timeouts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "support.h"

#include <tpl.h>

extern tpl_hook_t tpl_hook;

/* ------------------------------------------------------------ classes */

typedef struct {
    sk_process base;
    int64_t count;
    int64_t target;
    useconds_t nap;
    /* sk_return's return code when called from each hook, in the child */
    int32_t rc_prerun, rc_run, rc_postrun, rc_onfinish, rc_result;
} probe;

#define PROBE(p) SK_CONTAINER_OF(p, probe, base)

static int probe_prerun(sk_process *self)
{
    int32_t v = 1;
    PROBE(self)->rc_prerun = sk_return(self, "i", &v);
    return 0;
}

static int probe_run(sk_process *self)
{
    probe *p = PROBE(self);
    int32_t v = 2;
    p->rc_run = sk_return(self, "i", &v);
    if (p->nap)
        usleep(p->nap);
    if (++p->count == p->target)
        sk_stop(self);
    return 0;
}

static int probe_postrun(sk_process *self)
{
    int32_t v = 3;
    PROBE(self)->rc_postrun = sk_return(self, "i", &v);
    return 0;
}

static int probe_onfinish(sk_process *self)
{
    int32_t v = 4;
    PROBE(self)->rc_onfinish = sk_return(self, "i", &v);
    return 0;
}

/* Publishes the return codes seen in the other hooks, then tries to
 * publish twice: the last call wins. */
static int probe_result(sk_process *self)
{
    probe *p = PROBE(self);
    int32_t junk = -1;
    int rc = sk_return(self, "i", &junk);
    if (rc != SK_OK)
        return rc;
    return sk_return(self, "iiiiI", &p->rc_prerun, &p->rc_run, &p->rc_postrun, &p->rc_onfinish,
                     &p->count);
}

static const sk_class probe_class = {
    .name = "probe",
    .prerun = probe_prerun,
    .run = probe_run,
    .postrun = probe_postrun,
    .onfinish = probe_onfinish,
    .result = probe_result,
};

static probe *probe_new(void)
{
    probe *p = skt_new(probe);
    assert_rc(sk_init(&p->base, &probe_class), SK_OK);
    return p;
}

/* ------------------------------------------------------- before start */

static void test_calls_before_start(void **state)
{
    (void)state;
    probe *p = probe_new();
    sk_process *h = &p->base;
    assert_rc(sk_wait(h, -1), SK_OK); /* at once */
    assert_rc(sk_wait(h, 0), SK_OK);
    assert_rc(sk_wait(h, 1.0), SK_OK);
    assert_rc(sk_result(h, NULL), SK_ESTATE);
    int64_t v = 0;
    assert_rc(sk_result(h, "I", &v), SK_ESTATE);
    assert_rc(sk_kill(h), SK_ESTATE);
    assert_rc(sk_stop(h), SK_ESTATE);
    assert_false(sk_alive(h));
    assert_int_equal(sk_current_run(h), 0);
    assert_int_equal(sk_pid(h), -1);
    assert_null(sk_error_of(h));
    assert_null(sk_timer_of(h, SK_RUN));
    assert_null(sk_timer_of(h, SK_FULL_RUN));
    /* sk_return belongs to the child's result and error hooks. */
    int32_t i = 1;
    assert_rc(sk_return(h, "i", &i), SK_ESTATE);

    /* None of that spoiled the handle. */
    p->base.config.runs = 2;
    assert_rc(sk_start(h), SK_OK);
    int32_t a, b, c, d;
    assert_rc(sk_result(h, "iiiiI", &a, &b, &c, &d, &v), SK_OK);
    assert_int_equal(v, 2);
    sk_release(h);
}

static void test_start_twice(void **state)
{
    (void)state;
    probe *p = probe_new();
    p->base.config.runs = 3;
    p->nap = 1000;
    assert_rc(sk_start(&p->base), SK_OK);
    assert_rc(sk_start(&p->base), SK_ESTATE);
    int32_t a, b, c, d;
    int64_t v = 0;
    assert_rc(sk_result(&p->base, "iiiiI", &a, &b, &c, &d, &v), SK_OK);
    assert_int_equal(v, 3);                   /* one process, unaffected */
    assert_rc(sk_start(&p->base), SK_ESTATE); /* also after the end */
    sk_release(&p->base);
}

/* ------------------------------------------------------- after release */

static void test_calls_after_release(void **state)
{
    (void)state;
    probe *p = probe_new();
    p->base.config.runs = 1;
    assert_rc(sk_start(&p->base), SK_OK);
    assert_rc(sk_wait(&p->base, 10.0), SK_OK);
    sk_release(&p->base);
    sk_release(&p->base); /* twice: a no-op */

    sk_process *h = &p->base;
    assert_cmp(sk_start(h), <, 0);
    assert_cmp(sk_wait(h, 0), <, 0);
    assert_cmp(sk_result(h, NULL), <, 0);
    assert_cmp(sk_stop(h), <, 0);
    assert_cmp(sk_kill(h), <, 0);
    int32_t i = 0;
    assert_cmp(sk_return(h, "i", &i), <, 0);
    assert_false(sk_alive(h));
    assert_int_equal(sk_current_run(h), 0);
    assert_int_equal(sk_pid(h), -1);
    assert_null(sk_error_of(h));
    assert_null(sk_timer_of(h, SK_RUN));

    /* And it can be initialised and started again. */
    assert_rc(sk_init(h, &probe_class), SK_OK);
    p->count = 0;
    p->target = 4;
    assert_rc(sk_start(h), SK_OK);
    int32_t a, b, c, d;
    int64_t v = 0;
    assert_rc(sk_result(h, "iiiiI", &a, &b, &c, &d, &v), SK_OK);
    assert_int_equal(v, 4);
    sk_release(h);
}

static void test_release_while_running(void **state)
{
    (void)state;
    probe *p = probe_new();
    p->nap = 100; /* endless */
    assert_rc(sk_start(&p->base), SK_OK);
    assert_running(&p->base, 5.0);
    double t0 = skt_now();
    sk_release(&p->base);
    assert_cmp(skt_now() - t0, <, 1.0);
    assert_no_children(); /* killed and reaped */
}

/* ------------------------------------------------------------ sk_return */

static void test_return_in_parent(void **state)
{
    (void)state;
    probe *p = probe_new();
    p->base.config.runs = 1;
    int32_t i = 5;
    assert_rc(sk_return(&p->base, "i", &i), SK_ESTATE);
    assert_rc(sk_start(&p->base), SK_OK);
    assert_rc(sk_return(&p->base, "i", &i), SK_ESTATE); /* while it runs */
    assert_rc(sk_wait(&p->base, 10.0), SK_OK);
    assert_rc(sk_return(&p->base, "i", &i), SK_ESTATE); /* after */
    /* The parent's attempts published nothing: the child's result stands. */
    int32_t a, b, c, d;
    int64_t v = 0;
    assert_rc(sk_result(&p->base, "iiiiI", &a, &b, &c, &d, &v), SK_OK);
    assert_int_equal(v, 1);
    assert_rc(sk_return(NULL, "i", &i), SK_EINVAL);
    sk_release(&p->base);
}

static void test_return_outside_result_hooks_in_child(void **state)
{
    (void)state;
    probe *p = probe_new();
    p->base.config.runs = 2;
    p->rc_prerun = p->rc_run = p->rc_postrun = p->rc_onfinish = 12345;
    assert_rc(sk_start(&p->base), SK_OK);
    int32_t a = 0, b = 0, c = 0, d = 0;
    int64_t v = 0;
    /* Also shows the last sk_return in the result hook is what is read. */
    assert_rc(sk_result(&p->base, "iiiiI", &a, &b, &c, &d, &v), SK_OK);
    assert_rc(a, SK_ESTATE);
    assert_rc(b, SK_ESTATE);
    assert_rc(c, SK_ESTATE);
    assert_rc(d, SK_ESTATE);
    assert_int_equal(v, 2);
    assert_no_error(&p->base);
    sk_release(&p->base);
}

/* The parent-side calls made on self from inside a hook. */
typedef struct {
    sk_process base;
    int32_t wait_rc, kill_rc, start_rc, result_rc, alive, pid_ok, run0, no_error;
} inside;

static int inside_run(sk_process *self)
{
    inside *in = SK_CONTAINER_OF(self, inside, base);
    in->wait_rc = sk_wait(self, 0);
    in->kill_rc = sk_kill(self);
    in->start_rc = sk_start(self);
    in->result_rc = sk_result(self, NULL);
    in->alive = sk_alive(self);
    in->pid_ok = sk_pid(self) == getpid();
    in->run0 = (int32_t)sk_current_run(self);
    in->no_error = sk_error_of(self) == NULL; /* only the error hook sees one */
    sk_release(self);                         /* a no-op in the child: the process goes on */
    return 0;
}

static int inside_result(sk_process *self)
{
    inside *in = SK_CONTAINER_OF(self, inside, base);
    return sk_return(self, "iiiiiiii", &in->wait_rc, &in->kill_rc, &in->start_rc, &in->result_rc,
                     &in->alive, &in->pid_ok, &in->run0, &in->no_error);
}

static const sk_class inside_class = {.name = "inside", .run = inside_run, .result = inside_result};

static void test_parent_calls_on_self_inside_a_hook(void **state)
{
    (void)state;
    inside *in = skt_new(inside);
    assert_rc(sk_init(&in->base, &inside_class), SK_OK);
    in->base.config.runs = 1;
    assert_rc(sk_start(&in->base), SK_OK);
    int32_t w = 0, k = 0, st = 0, r = 0, alive = 0, pid_ok = 0, run0 = -1, no_error = 0;
    assert_rc(sk_result(&in->base, "iiiiiiii", &w, &k, &st, &r, &alive, &pid_ok, &run0, &no_error),
              SK_OK);
    assert_no_error(&in->base);
    assert_rc(w, SK_ESTATE);
    assert_rc(k, SK_ESTATE);
    assert_rc(st, SK_ESTATE);
    assert_rc(r, SK_ESTATE);
    assert_true(alive);
    assert_true(pid_ok);
    assert_int_equal(run0, 0);
    assert_true(no_error);
    assert_int_equal(sk_current_run(&in->base), 1);
    sk_release(&in->base);
}

/* --------------------------------------------------------------- sk_init */

static void test_init_bad_arguments(void **state)
{
    (void)state;
    probe *p = skt_new(probe);
    assert_rc(sk_init(NULL, &probe_class), SK_EINVAL);
    assert_rc(sk_init(&p->base, NULL), SK_EINVAL);
    static const sk_class no_run = {.name = "no_run", .result = probe_result};
    assert_rc(sk_init(&p->base, &no_run), SK_EINVAL);
    assert_rc(sk_init(NULL, NULL), SK_EINVAL);
}

/* ----------------------------------------------------------------- NULL */

static void test_null_handle_everywhere(void **state)
{
    (void)state;
    assert_rc(sk_start(NULL), SK_EINVAL);
    assert_rc(sk_wait(NULL, 0), SK_EINVAL);
    assert_rc(sk_wait(NULL, -1), SK_EINVAL);
    assert_rc(sk_stop(NULL), SK_EINVAL);
    assert_rc(sk_kill(NULL), SK_EINVAL);
    assert_rc(sk_result(NULL, NULL), SK_EINVAL);
    int64_t v = 0;
    assert_rc(sk_result(NULL, "I", &v), SK_EINVAL);
    assert_rc(sk_return(NULL, "I", &v), SK_EINVAL);
    sk_release(NULL);
    assert_false(sk_alive(NULL));
    assert_int_equal(sk_current_run(NULL), 0);
    assert_int_equal(sk_pid(NULL), -1);
    assert_null(sk_error_of(NULL));
    assert_null(sk_timer_of(NULL, SK_RUN));
    assert_false(sk_error_is(NULL, SK_PROCESS_ERROR));
    char buf[16];
    assert_rc(sk_error_format(NULL, buf, sizeof buf), SK_EINVAL);
}

/* ---------------------------------------------------------- the result */

static void test_result_format_checks(void **state)
{
    (void)state;
    probe *p = probe_new();
    p->base.config.runs = 1;
    assert_rc(sk_start(&p->base), SK_OK);
    int32_t a, b, c, d;
    int64_t v = 0;
    char *s = NULL;
    assert_rc(sk_result(&p->base, "s", &s), SK_EFORMAT);
    assert_null(s);
    assert_rc(sk_result(&p->base, "iiii", &a, &b, &c, &d), SK_EFORMAT);
    assert_rc(sk_result(&p->base, "iiiiI", &a, &b, &c, &d, &v), SK_OK); /* still readable */
    assert_int_equal(v, 1);
    assert_rc(sk_result(&p->base, NULL), SK_OK); /* a NULL format ignores the values */
    sk_release(&p->base);
}

/* ------------------------------------------------------------ sk_wait */

/* A program that calls tpl itself keeps its own tpl hooks: skproc calls no
 * tpl function at run time and sets none of them, whatever it runs. */
static void test_tpl_hooks_left_alone(void **state)
{
    (void)state;
    tpl_hook_t before;
    memcpy(&before, &tpl_hook, sizeof before);
    probe *p = probe_new();
    p->target = 3;
    assert_rc(sk_start(&p->base), SK_OK);
    int32_t rcs[4];
    int64_t count = 0;
    assert_rc(sk_result(&p->base, "iiiiI", &rcs[0], &rcs[1], &rcs[2], &rcs[3], &count), SK_OK);
    assert_int_equal(count, 3);
    assert_int_equal(memcmp(&before, &tpl_hook, sizeof before), 0);
}

static void test_wait_timeouts(void **state)
{
    (void)state;
    probe *p = probe_new();
    p->nap = 100; /* endless */
    assert_rc(sk_start(&p->base), SK_OK);
    assert_running(&p->base, 5.0);

    double t0 = skt_now();
    assert_rc(sk_wait(&p->base, 0), SK_ETIMEDOUT);
    assert_cmp(skt_now() - t0, <, 0.05); /* a poll */

    t0 = skt_now();
    assert_rc(sk_wait(&p->base, 0.1), SK_ETIMEDOUT);
    double took = skt_now() - t0;
    assert_cmp(took, >=, 0.095);
    assert_cmp(took, <, 1.0);
    assert_true(sk_alive(&p->base)); /* a timed-out wait changes nothing */

    assert_rc(sk_stop(&p->base), SK_OK);
    assert_rc(sk_wait(&p->base, 10.0), SK_OK);
    assert_rc(sk_wait(&p->base, 0), SK_OK); /* finished: at once, every time */
    assert_rc(sk_wait(&p->base, -1), SK_OK);
    assert_rc(sk_wait(&p->base, 1e12), SK_OK);
    assert_false(sk_alive(&p->base));
    assert_rc(sk_stop(&p->base), SK_OK); /* after the end: harmless */
    assert_rc(sk_kill(&p->base), SK_OK); /* after the end: not a kill */
    int32_t a, b, c, d;
    int64_t v = 0;
    assert_rc(sk_result(&p->base, "iiiiI", &a, &b, &c, &d, &v), SK_OK);
    assert_cmp(v, >=, 1);
    sk_release(&p->base);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_calls_before_start),
        SKT_TEST(test_start_twice),
        SKT_TEST(test_calls_after_release),
        SKT_TEST(test_release_while_running),
        SKT_TEST(test_return_in_parent),
        SKT_TEST(test_return_outside_result_hooks_in_child),
        SKT_TEST(test_parent_calls_on_self_inside_a_hook),
        SKT_TEST(test_init_bad_arguments),
        SKT_TEST(test_null_handle_everywhere),
        SKT_TEST(test_result_format_checks),
        SKT_TEST(test_wait_timeouts),
        SKT_TEST(test_tpl_hooks_left_alone),
    };
    return skt_run(argc, argv, tests);
}
