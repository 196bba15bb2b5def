/* SPDX-License-Identifier: MIT */
/*
 * Misuse on purpose: every refused call says why (sk_last_error_message),
 * and a handle that sk_init never prepared (stack garbage, zeros, a
 * released handle, a copy) is refused instead of read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "support.h"

typedef struct {
    sk_process base;
    int bad_return; /* the result hook publishes with a malformed format */
} plain;

static int plain_run(sk_process *self)
{
    (void)self;
    return 0;
}

static int plain_result(sk_process *self)
{
    plain *p = SK_CONTAINER_OF(self, plain, base);
    int seven = 7;
    if (p->bad_return)
        return sk_return(self, "Q(", &seven);
    return sk_return(self, "i", &seven);
}

static const sk_class plain_class = {.name = "plain", .run = plain_run, .result = plain_result};

static void assert_said(const char *want)
{
    const char *said = sk_last_error_message();
    if (strstr(said, want) == NULL)
        fail_msg("sk_last_error_message() is \"%s\", want it to contain \"%s\"", said, want);
}

/* Every call that takes a handle, on one that is not sk_init'ed: each
 * refuses with SK_EINVAL and names itself, and none reads p->rt. */
static void check_every_call_refuses(sk_process *p)
{
    int v = 0, one = 1;
    sk_message *msg = NULL;
    assert_rc(sk_start(p), SK_EINVAL);
    assert_said("sk_start: the sk_process was not sk_init'ed");
    assert_rc(sk_wait(p, 0), SK_EINVAL);
    assert_said("sk_wait: ");
    assert_rc(sk_stop(p), SK_EINVAL);
    assert_said("sk_stop: ");
    assert_rc(sk_kill(p), SK_EINVAL);
    assert_said("sk_kill: ");
    assert_rc(sk_result(p, "i", &v), SK_EINVAL);
    assert_said("sk_result: ");
    assert_rc(sk_tell(p, "i", &one), SK_EINVAL);
    assert_said("sk_tell: ");
    assert_rc(sk_tell_wait(p, 0.01, "i", &one), SK_EINVAL);
    assert_said("sk_tell_wait: ");
    assert_rc(sk_listen(p, 0, "i", &v), SK_EINVAL);
    assert_said("sk_listen: ");
    assert_rc(sk_listen_message(p, 0, &msg), SK_EINVAL);
    assert_null(msg);
    assert_rc(sk_fd(p), SK_EINVAL);
    assert_said("sk_fd: ");
    assert_rc(sk_return(p, "i", &one), SK_EINVAL);
    assert_said("sk_return: ");
    assert_false(sk_alive(p));
    assert_int_equal(sk_pid(p), -1);
    assert_int_equal(sk_current_run(p), 0);
    assert_null(sk_error_of(p));
    assert_null(sk_timer_of(p, SK_RUN));
    assert_int_equal(sk_attempts(p), 0);
    assert_int_equal(sk_restarts(p), 0);
    assert_int_equal(sk_spent_error_count(p), 0);
    assert_null(sk_spent_error(p, 0));
    sk_release(p); /* a no-op, not a free of garbage */
}

static void test_garbage_handle_is_refused(void **state)
{
    (void)state;
    sk_process p;
    memset(&p, 0xa5, sizeof p); /* what an uninitialized stack slot may hold */
    check_every_call_refuses(&p);
    memset(&p, 0, sizeof p);
    check_every_call_refuses(&p);
    assert_rc(sk_start(NULL), SK_EINVAL);
    assert_said("sk_start: the sk_process is NULL");
}

static void test_released_handle_is_refused(void **state)
{
    (void)state;
    plain *p = xcalloc(1, sizeof *p);
    assert_rc(sk_init(&p->base, &plain_class), SK_OK);
    sk_release(&p->base);
    check_every_call_refuses(&p->base);
    /* and it may be prepared again */
    assert_rc(sk_init(&p->base, &plain_class), SK_OK);
    p->base.config.runs = 1;
    assert_rc(sk_start(&p->base), SK_OK);
    int v = 0;
    assert_rc(sk_result(&p->base, "i", &v), SK_OK);
    assert_int_equal(v, 7);
    sk_release(&p->base);
}

/* A struct copy of a handle shares its runtime: using both would free it
 * twice. The copy is refused; the original goes on. */
static void test_copied_handle_is_refused(void **state)
{
    (void)state;
    plain *p = xcalloc(1, sizeof *p);
    plain *copy = xcalloc(1, sizeof *copy);
    assert_rc(sk_init(&p->base, &plain_class), SK_OK);
    *copy = *p;
    assert_rc(sk_start(&copy->base), SK_EINVAL);
    assert_said("copy");
    sk_release(&copy->base); /* leaves the original's runtime alone */
    p->base.config.runs = 1;
    assert_rc(sk_start(&p->base), SK_OK);
    assert_rc(sk_wait(&p->base, 10), SK_OK);
    assert_no_error(&p->base);
    sk_release(&p->base);
}

static void test_state_refusals_say_why(void **state)
{
    (void)state;
    plain *p = skt_new(plain);
    assert_rc(sk_init(&p->base, &plain_class), SK_OK);
    int v, one = 1;
    assert_rc(sk_result(&p->base, "i", &v), SK_ESTATE);
    assert_said("sk_result: the process is not started");
    assert_rc(sk_kill(&p->base), SK_ESTATE);
    assert_said("sk_kill: not started");
    assert_rc(sk_tell(&p->base, "i", &one), SK_ESTATE);
    assert_said("sk_tell: the process is not started");
    p->base.config.runs = 1;
    assert_rc(sk_start(&p->base), SK_OK);
    assert_rc(sk_start(&p->base), SK_ESTATE);
    assert_said("sk_start: already started");
    assert_rc(sk_tell(&p->base, "Q(", &one), SK_EINVAL);
    assert_said("sk_tell: \"Q(\" is not a tpl format");
    assert_rc(sk_tell(&p->base, NULL), SK_EINVAL);
    assert_said("sk_tell: the format is NULL");
    assert_rc(sk_listen(&p->base, 0, "", &v), SK_EINVAL);
    assert_said("sk_listen: the format is empty");
    assert_rc(sk_wait(&p->base, 10), SK_OK);
}

/* A result hook whose sk_return refuses its format: the report says why,
 * not only "result returned -1". */
static void test_bad_return_format_is_in_the_report(void **state)
{
    (void)state;
    plain *p = skt_new(plain);
    assert_rc(sk_init(&p->base, &plain_class), SK_OK);
    p->bad_return = 1;
    p->base.config.runs = 1;
    assert_rc(sk_start(&p->base), SK_OK);
    assert_rc(sk_result(&p->base, NULL), SK_EPROCESS);
    const sk_error *e = sk_error_of(&p->base);
    assert_non_null(e);
    assert_int_equal(e->kind, SK_RESULT_ERROR);
    if (strstr(e->cause, "sk_return: \"Q(\" is not a tpl format") == NULL)
        fail_msg("cause: %s", e->cause);
}

static int square(const void *item, void *result, const void *arg)
{
    (void)arg;
    *(int64_t *)result = (int64_t) * (const int32_t *)item * *(const int32_t *)item;
    return 0;
}

static int star_fn(void *const *fields, void *result, const void *arg)
{
    (void)fields;
    (void)result;
    (void)arg;
    return 0;
}

/* Five different mistakes in a pool job, five different reasons. */
static void test_pool_job_mistakes_say_which(void **state)
{
    (void)state;
    sk_pool_config cfg = {.workers = 1};
    sk_pool *pool = new_pool(&cfg);
    int32_t items[2] = {1, 2};
    int64_t results[2];
    struct {
        sk_pool_job job;
        const char *want;
    } cases[] = {
        {{.item_size = 4, .result_size = 8},
         "set exactly one of fn, star, cls and range (0 are set)"},
        {{.fn = square, .star = star_fn, .item_size = 4, .result_size = 8}, "(2 are set)"},
        {{.fn = square, .result_size = 8}, "item_size is 0"},
        {{.fn = square, .item_size = 4, .result_size = 8, .arg_size = 4}, "arg is NULL"},
        {{.star = star_fn, .item_size = 4, .result_size = 8}, "star needs an item_format"},
        {{.fn = square, .item_size = 4, .result_size = 8, .item_format = "I"},
         "item_format \"I\" is not one tpl value of item_size (4) bytes"},
        {{.cls = &plain_class, .item_size = 4, .result_size = 4}, "cls needs a result_format"},
        {{.cls = &plain_class, .item_size = 4, .result_size = 4, .result_format = "i"},
         "cls->size is 0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_rc(sk_pool_map(pool, &cases[i].job, items, 2, results, NULL), SK_EINVAL);
        assert_said("pool job: ");
        assert_said(cases[i].want);
    }
    sk_pool_job ok = {.fn = square, .item_size = 4, .result_size = 8};
    assert_rc(sk_pool_map(pool, &ok, NULL, 2, results, NULL), SK_EINVAL);
    assert_said("items (with n > 0)");
    assert_rc(sk_pool_join(pool, 0), SK_ESTATE);
    assert_said("sk_pool_join: the pool is not closed");
    assert_rc(sk_pool_map(pool, &ok, items, 2, results, NULL), SK_OK);
    assert_int_equal(results[1], 4);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_garbage_handle_is_refused),
        SKT_TEST(test_released_handle_is_refused),
        SKT_TEST(test_copied_handle_is_refused),
        SKT_TEST(test_state_refusals_say_why),
        SKT_TEST(test_bad_return_format_is_in_the_report),
        SKT_TEST(test_pool_job_mistakes_say_which),
    };
    return skt_run(argc, argv, tests);
}
