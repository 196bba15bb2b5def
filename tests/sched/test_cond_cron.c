/* SPDX-License-Identifier: MIT */
/*
 * Cron expressions against hand-computed expectations: which minutes
 * match (lists, ranges, steps, names, Sunday as 0 and 7, Vixie's rule for
 * day of month and day of week), when the next match comes, and where a
 * bad field is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support.h"

#include "cond_support.h"

/* 2024-03-01 is a Friday. */
static void test_matches(void **state)
{
    (void)state;
    static const struct {
        const char *expr, *at;
        int want;
    } rows[] = {
        {"* * * * *", "2024-03-01 12:34 +0000", 1},
        {"0 * * * *", "2024-03-01 12:00 +0000", 1},
        {"0 * * * *", "2024-03-01 12:01 +0000", 0},
        {"0 * * * *", "2024-03-01 12:00:59 +0000", 1},
        {"*/15 9-17 * * mon-fri", "2024-03-01 09:45 +0000", 1},
        {"*/15 9-17 * * mon-fri", "2024-03-01 17:45 +0000", 1},
        {"*/15 9-17 * * mon-fri", "2024-03-01 18:00 +0000", 0},
        {"*/15 9-17 * * mon-fri", "2024-03-01 08:45 +0000", 0},
        {"*/15 9-17 * * mon-fri", "2024-03-01 09:46 +0000", 0},
        {"*/15 9-17 * * mon-fri", "2024-03-02 10:00 +0000", 0},
        /* Neither day field is '*': either matches. */
        {"0 0 1,15 * 5", "2024-03-01 00:00 +0000", 1},
        {"0 0 1,15 * 5", "2024-03-08 00:00 +0000", 1},
        {"0 0 1,15 * 5", "2024-04-01 00:00 +0000", 1},
        {"0 0 1,15 * 5", "2024-04-02 00:00 +0000", 0},
        {"0 0 13 * 5", "2024-09-13 00:00 +0000", 1},
        {"0 0 13 * 5", "2024-03-13 00:00 +0000", 1},
        {"0 0 13 * 5", "2024-03-08 00:00 +0000", 1},
        {"0 0 13 * 5", "2024-03-09 00:00 +0000", 0},
        /* One of them is '*': both must. */
        {"0 0 1 * *", "2024-03-08 00:00 +0000", 0},
        {"0 0 * * 5", "2024-03-08 00:00 +0000", 1},
        {"0 0 */2 * *", "2024-03-03 00:00 +0000", 1},
        {"0 0 */2 * *", "2024-03-02 00:00 +0000", 0},
        /* '*' with a step is a '*' field too (as in Vixie cron). */
        {"0 0 */2 * 1", "2024-03-04 00:00 +0000", 0},
        {"0 0 */2 * 1", "2024-03-11 00:00 +0000", 1},
        {"0 0 */2 * 1", "2024-03-13 00:00 +0000", 0},
        {"30 4 1 jan,jul *", "2024-07-01 04:30 +0000", 1},
        {"30 4 1 jan,jul *", "2024-06-01 04:30 +0000", 0},
        {"30 4 1 JAN-Mar *", "2024-02-01 04:30 +0000", 1},
        {"0 12 * * 7", "2024-03-03 12:00 +0000", 1},
        {"0 12 * * 0", "2024-03-03 12:00 +0000", 1},
        {"0 12 * * sun", "2024-03-03 12:00 +0000", 1},
        {"0 12 * * 5-7", "2024-03-03 12:00 +0000", 1},
        {"0 12 * * 5-7", "2024-03-04 12:00 +0000", 0},
        {"59 23 31 12 *", "2024-12-31 23:59 +0000", 1},
        {"0 0 29 2 *", "2028-02-29 00:00 +0000", 1},
        {"0 0 29 2 *", "2027-02-28 00:00 +0000", 0}, /* no clamping in cron */
        {"5/20 * * * *", "2024-03-01 12:05 +0000", 1},
        {"5/20 * * * *", "2024-03-01 12:25 +0000", 1},
        {"5/20 * * * *", "2024-03-01 12:45 +0000", 1},
        {"5/20 * * * *", "2024-03-01 12:15 +0000", 0},
        {"10-50/20 * * * *", "2024-03-01 12:30 +0000", 1},
        {"10-50/20 * * * *", "2024-03-01 12:40 +0000", 0},
        {"0 */24 * * *", "2024-03-01 00:00 +0000", 1},
        {"0 */24 * * *", "2024-03-01 12:00 +0000", 0},
    };
    skt_tz("UTC");
    int bad = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        sk_cond *c = sk_cond_cron(rows[i].expr);
        assert_non_null(c);
        sk_cond_ctx ctx = {
            .now = skt_at(rows[i].at), .last_start = SK_COND_NEVER, .last_end = SK_COND_NEVER};
        int got = sk_cond_eval(c, &ctx);
        if (got != rows[i].want) {
            print_error("cron '%s' at %s: %d, want %d\n", rows[i].expr, rows[i].at, got,
                        rows[i].want);
            bad++;
        }
        sk_cond_free(c);
    }
    assert_int_equal(bad, 0);
}

/* Once it ran in a minute, that minute is done. */
static void test_once_per_minute(void **state)
{
    (void)state;
    skt_tz("UTC");
    sk_cond *c = sk_cond_cron("* * * * *");
    sk_cond_ctx ctx = {.now = skt_at("2024-03-01 12:00:30 +0000"),
                       .last_start = skt_at("2024-03-01 12:00:10 +0000"),
                       .last_end = SK_COND_NEVER};
    assert_int_equal(sk_cond_eval(c, &ctx), 0);
    int64_t when;
    assert_int_equal(sk_cond_next_change(c, &ctx, &when), SK_OK);
    assert_true(when == skt_at("2024-03-01 12:01 +0000"));
    ctx.last_start = skt_at("2024-03-01 11:59:59 +0000");
    assert_int_equal(sk_cond_eval(c, &ctx), 1);
    sk_cond_free(c);
}

static void test_next_match(void **state)
{
    (void)state;
    static const struct {
        const char *zone, *expr, *from, *want; /* want NULL: no change */
    } rows[] = {
        {"UTC", "0 0 29 2 *", "2025-03-01 00:00 +0000", "2028-02-29 00:00 +0000"},
        {"UTC", "0 0 29 2 *", "2096-03-01 00:00 +0000", "2104-02-29 00:00 +0000"},
        {"UTC", "0 12 * * mon", "2024-03-02 13:00 +0000", "2024-03-04 12:00 +0000"},
        {"UTC", "*/15 9-17 * * 1-5", "2024-03-01 17:50 +0000", "2024-03-04 09:00 +0000"},
        {"UTC", "0 0 1,15 * 5", "2024-04-02 00:00 +0000", "2024-04-05 00:00 +0000"},
        {"UTC", "0 0 31 * *", "2024-04-01 00:00 +0000", "2024-05-31 00:00 +0000"},
        {"UTC", "30 4 1 jan,jul *", "2024-01-01 04:31 +0000", "2024-07-01 04:30 +0000"},
        {"UTC", "59 23 31 12 *", "2024-01-01 00:00 +0000", "2024-12-31 23:59 +0000"},
        /* True, never ran: it stays true while the minutes match. */
        {"UTC", "*/15 9-17 * * 1-5", "2024-03-01 09:00 +0000", "2024-03-01 09:01 +0000"},
        {"UTC", "* 9 * * *", "2024-03-01 09:00 +0000", "2024-03-01 10:00 +0000"},
        {"UTC", "* * * * *", "2024-03-01 09:00 +0000", NULL},
        {"UTC", "* * * * 1-5", "2024-03-01 09:00 +0000", "2024-03-02 00:00 +0000"},
        /* Never matches. */
        {"UTC", "0 0 30 2 *", "2024-01-01 00:00 +0000", NULL},
        {"UTC", "0 0 31 4,6,9,11 *", "2024-01-01 00:00 +0000", NULL},
        /* 02:30 is skipped on 2024-03-10 in New York. */
        {"America/New_York", "30 2 * * *", "2024-03-09 03:00 -0500", "2024-03-11 02:30 -0400"},
        /* 01:30 is shown twice on 2024-11-03: the first time. */
        {"America/New_York", "30 1 * * *", "2024-11-03 00:00 -0400", "2024-11-03 01:30 -0400"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        skt_tz(rows[i].zone);
        sk_cond *c = sk_cond_cron(rows[i].expr);
        assert_non_null(c);
        sk_cond_ctx ctx = {
            .now = skt_at(rows[i].from), .last_start = SK_COND_NEVER, .last_end = SK_COND_NEVER};
        int64_t when, want = rows[i].want ? skt_at(rows[i].want) : SK_COND_NO_CHANGE;
        assert_int_equal(sk_cond_next_change(c, &ctx, &when), SK_OK);
        if (when != want) {
            char a[80], b[80];
            print_error("cron '%s' from %s: next change %s, want %s\n", rows[i].expr, rows[i].from,
                        skt_show(when, a, sizeof a), skt_show(want, b, sizeof b));
            fail();
        }
        sk_cond_free(c);
    }
}

static void test_refused(void **state)
{
    (void)state;
    static const struct {
        const char *expr;
        size_t at; /* in the expression */
    } rows[] = {
        {"60 * * * *", 0},
        {"* 24 * * *", 2},
        {"* * 0 * *", 4},
        {"* * 32 * *", 4},
        {"* * * 0 *", 6},
        {"* * * 13 *", 6},
        {"* * * * 8", 8},
        {"* * * foo *", 6},
        {"* * * * sunday", 11},
        {"5-1 * * * *", 2},
        {"*/0 * * * *", 2},
        {"*/61 * * * *", 2},
        {"1,,2 * * * *", 2},
        {"1- * * * *", 2},
        {"* * * *", 7},
        {"a * * * *", 0},
        {"1-2-3 * * * *", 3},
        {"*-5 * * * *", 1},
        {"* * * jan-feb-mar *", 13},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char text[64];
        snprintf(text, sizeof text, "cron %s", rows[i].expr);
        sk_cond *c = (sk_cond *)0x1;
        sk_cond_parse_error err;
        int rc = sk_cond_parse(text, &c, &err);
        if (rc != SK_EINVAL || err.position != 5 + rows[i].at) {
            print_error("'%s': rc %d, position %zu (%s), want %zu\n", text, rc, err.position,
                        err.message, 5 + rows[i].at);
            fail();
        }
        /* sk_cond_cron counts from the expression's start. */
        assert_null(sk_cond_cron(rows[i].expr));
        char at[32];
        snprintf(at, sizeof at, " at %zu", rows[i].at);
        if (strstr(sk_last_error_message(), at) == NULL) {
            print_error("sk_cond_cron('%s'): '%s', want '%s'\n", rows[i].expr,
                        sk_last_error_message(), at);
            fail();
        }
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_matches),
        SKT_TEST(test_once_per_minute),
        SKT_TEST(test_next_match),
        SKT_TEST(test_refused),
    };
    return skt_run(argc, argv, tests);
}
