/* SPDX-License-Identifier: MIT */
/*
 * sk_cond_next_change against brute force: the condition is evaluated at
 * every second or minute of a range (days around DST changes, month ends,
 * the leap day 2028-02-29), and the change points found so must be exactly
 * what next_change answers, from each change point, from random instants
 * on and between the grid's points, for a task that never ran and for one
 * that ran at chosen instants. A range's grid must contain every edge of
 * the conditions checked on it (minute windows on the minute grid).
 *
 * Then a scheduler's loop: starting the task whenever its condition holds
 * and sleeping until next_change in between must start it at the same
 * instants as looking every second does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support.h"

#include "cond_support.h"

/* A small deterministic generator (xorshift64*). */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1du;
}

static long checks; /* next_change answers compared, for the summary */

/* Evaluates c at every step from `from` to `to` (inclusive) for a task
 * last started at `last`, then checks next_change from change points and
 * random instants. */
static void brute(const char *text, int64_t from, int64_t to, int64_t step, int64_t last)
{
    sk_cond *c = skt_cond(text);
    size_t n = (size_t)((to - from) / step) + 1;
    bool *v = xcalloc(n, sizeof *v);
    sk_cond_ctx ctx = {.last_start = last, .last_end = last};
    for (size_t i = 0; i < n; i++) {
        ctx.now = from + (int64_t)i * step;
        int r = sk_cond_eval(c, &ctx);
        assert_true(r == 0 || r == 1);
        v[i] = r == 1;
    }
    /* Start points: the first, every change point, and random ones. */
    size_t starts[250], ns = 0;
    starts[ns++] = 0;
    for (size_t i = 1; i < n && ns < 150; i++)
        if (v[i] != v[i - 1])
            starts[ns++] = i;
    while (ns < 250)
        starts[ns++] = (size_t)(rng() % n);
    for (size_t k = 0; k < ns; k++) {
        size_t i = starts[k];
        size_t j = i + 1;
        while (j < n && v[j] == v[i])
            j++;
        int64_t want = j < n ? from + (int64_t)j * step : INT64_MAX;
        /* From the grid point, and from inside the step after it. */
        for (int inside = 0; inside < 2; inside++) {
            int64_t off = inside ? 1 + (int64_t)(rng() % (uint64_t)(step - 1)) : 0;
            if (inside && i + 1 >= n)
                break;
            ctx.now = from + (int64_t)i * step + off;
            int64_t when;
            assert_int_equal(sk_cond_next_change(c, &ctx, &when), SK_OK);
            checks++;
            bool ok = want != INT64_MAX ? when == want : when > to;
            if (ok && when != SK_COND_NO_CHANGE && want != INT64_MAX) {
                /* The answer is a real change. */
                ctx.now = when;
                ok = sk_cond_eval(c, &ctx) != v[i];
            }
            if (!ok) {
                char a[80], b[80], d[80], e[80];
                ctx.now = from + (int64_t)i * step + off;
                print_error(
                    "'%s' from %s (value %d, last start %s): next_change %s, brute force %s\n",
                    text, skt_show(ctx.now, a, sizeof a), v[i], skt_show(last, e, sizeof e),
                    skt_show(when, b, sizeof b),
                    want == INT64_MAX ? "none in range" : skt_show(want, d, sizeof d));
                fail();
            }
        }
    }
    xfree(v);
    sk_cond_free(c);
}

/* Minute-grid conditions: every edge on a whole minute. */
static const char *const minute_conds[] = {
    "daily",
    "hourly",
    "weekly",
    "monthly",
    "daily after 08:00",
    "daily before 10:00",
    "daily between 08:00 and 08:15",
    "daily between 22:00 and 02:00",
    "daily between 01:30 and 02:30",
    "daily between 02:30 and 03:00",
    "daily between 03:15 and 03:45",
    "daily after 02:30",
    "hourly between 15:00 and 30:00",
    "hourly between 50:00 and 10:00",
    "weekly on Sunday",
    "weekly between Friday 18:00 and Monday 06:00",
    "weekly before Wednesday",
    "monthly on 31st",
    "monthly on 29th",
    "monthly between 28th and 2nd",
    "monthly after 15th 12:00",
    "monthly before 2nd",
    "time of day between 16:00 and 20:00",
    "time of day between 01:00 and 03:00",
    "time of day between 23:00 and 01:00",
    "time of hour after 45:00",
    "time of week between Monday and Friday",
    "time of week between Saturday 12:00 and Monday 08:00",
    "time of week on Sunday",
    "time of month between 1st and 5th",
    "time of month after 29th",
    "time of month on 31st",
    "cron * * * * *",
    "cron 0 * * * *",
    "cron */15 * * * *",
    "cron 30 1 * * *",
    "cron 30 2 * * *",
    "cron 0 0 29 2 *",
    "cron 0 12 * * mon-fri",
    "cron 0 0 1,15 * 5",
    "cron 0-59 0-23 * * *",
    "every 1 hour",
    "every 1 day",
    "every 90 minutes",
    "daily between 08:00 and 17:00 & time of week between Monday and Friday",
    "daily between 08:00 and 08:15 | daily between 22:00 and 22:15",
    "~time of day between 09:00 and 17:00 & hourly",
    "daily & ~daily",
    "time of day after 12:00 | time of day before 12:00",
    "cron 0 * * * * & ~cron 0 12 * * *",
};

/* Second-grid conditions: edges on any second. */
static const char *const second_conds[] = {
    "minutely",
    "minutely between 10 and 20",
    "minutely before 30",
    "time of minute between 50 and 10",
    "every 10 seconds",
    "every 7 seconds & ~time of minute before 5",
    "(minutely | hourly) & ~time of minute before 30",
    "daily between 01:59:30 and 03:00:30",
    "hourly after 59:30",
    "time of day between 01:59:59 and 02:00:01",
    "cron * 1 * * *",
    "cron * * * * *",
    "cron 0-59 0-23 * * *",
};

struct range {
    const char *zone, *from, *to;
};

static void minute_ranges(const struct range *ranges, size_t count)
{
    for (size_t r = 0; r < count; r++) {
        skt_tz(ranges[r].zone);
        int64_t from = skt_at(ranges[r].from), to = skt_at(ranges[r].to);
        int64_t lasts[] = {SK_COND_NEVER, from + 30 * 60 * SKT_NS, from + 26 * 3600 * SKT_NS};
        for (size_t i = 0; i < sizeof minute_conds / sizeof minute_conds[0]; i++)
            for (size_t l = 0; l < 3; l++)
                brute(minute_conds[i], from, to, 60 * SKT_NS, lasts[l]);
    }
}

static void test_next_change_utc(void **state)
{
    (void)state;
    static const struct range ranges[] = {
        {"UTC", "2024-02-28 00:00 +0000", "2024-03-02 00:00 +0000"}, /* leap 2024 */
        {"UTC", "2027-02-27 00:00 +0000", "2027-03-02 00:00 +0000"}, /* no Feb 29 */
        {"UTC", "2028-02-27 12:00 +0000", "2028-03-01 12:00 +0000"}, /* 2028-02-29 */
        {"UTC", "2024-12-30 00:00 +0000", "2025-01-02 00:00 +0000"}, /* year end */
    };
    minute_ranges(ranges, sizeof ranges / sizeof ranges[0]);
}

static void test_next_change_new_york(void **state)
{
    (void)state;
    static const struct range ranges[] = {
        {"America/New_York", "2024-03-09 00:00 -0500", "2024-03-11 12:00 -0400"}, /* spring */
        {"America/New_York", "2024-11-02 00:00 -0400", "2024-11-04 12:00 -0500"}, /* fall */
        {"America/New_York", "2024-04-29 00:00 -0400", "2024-05-02 00:00 -0400"}, /* month */
    };
    minute_ranges(ranges, sizeof ranges / sizeof ranges[0]);
}

static void test_next_change_helsinki(void **state)
{
    (void)state;
    /* Helsinki changes on Sundays at the end of a month: 2024-03-31 03:00
     * -> 04:00, 2024-10-27 04:00 -> 03:00. */
    static const struct range ranges[] = {
        {"Europe/Helsinki", "2024-03-29 12:00 +0200", "2024-04-01 12:00 +0300"},
        {"Europe/Helsinki", "2024-10-26 00:00 +0300", "2024-10-28 12:00 +0200"},
    };
    minute_ranges(ranges, sizeof ranges / sizeof ranges[0]);
}

static void test_next_change_half_hour_dst(void **state)
{
    (void)state;
    /* Lord Howe Island moves its clock by 30 minutes: 2024-04-07 02:00
     * +1100 -> 01:30 +1030, 2024-10-06 02:00 +1030 -> 02:30 +1100. */
    static const struct range ranges[] = {
        {"Australia/Lord_Howe", "2024-04-06 00:00 +1100", "2024-04-08 00:00 +1030"},
        {"Australia/Lord_Howe", "2024-10-05 00:00 +1030", "2024-10-07 00:00 +1100"},
    };
    minute_ranges(ranges, sizeof ranges / sizeof ranges[0]);
}

static void test_next_change_seconds(void **state)
{
    (void)state;
    static const struct range ranges[] = {
        {"America/New_York", "2024-03-10 01:30 -0500", "2024-03-10 04:00 -0400"},
        {"America/New_York", "2024-11-03 00:30 -0400", "2024-11-03 02:30 -0500"},
        {"Europe/Helsinki", "2024-10-27 02:30 +0300", "2024-10-27 04:30 +0200"},
        {"UTC", "2028-02-29 23:00 +0000", "2028-03-01 01:00 +0000"},
    };
    for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
        skt_tz(ranges[r].zone);
        int64_t from = skt_at(ranges[r].from), to = skt_at(ranges[r].to);
        int64_t lasts[] = {SK_COND_NEVER, from + 1234 * SKT_NS};
        for (size_t i = 0; i < sizeof second_conds / sizeof second_conds[0]; i++)
            for (size_t l = 0; l < 2; l++)
                brute(second_conds[i], from, to, SKT_NS, lasts[l]);
    }
}

/* ------------------------------------------------------------ scheduler */

/* Runs the task whenever c holds (instantly: it starts and ends at once),
 * from `from` to `to`: by looking every `step`, or (step 0) by sleeping
 * until next_change. Writes the start times, returns how many. */
static size_t simulate(const sk_cond *c, int64_t from, int64_t to, int64_t step, int64_t *starts,
                       size_t max)
{
    sk_cond_ctx ctx = {.now = from, .last_start = SK_COND_NEVER, .last_end = SK_COND_NEVER};
    size_t n = 0;
    while (ctx.now <= to) {
        if (sk_cond_eval(c, &ctx) == 1) {
            assert_true(n < max);
            starts[n++] = ctx.now;
            ctx.last_start = ctx.last_end = ctx.now;
            assert_int_equal(sk_cond_eval(c, &ctx), 0); /* it ran: false at once */
        }
        if (step > 0) {
            ctx.now += step;
        } else {
            int64_t when;
            assert_int_equal(sk_cond_next_change(c, &ctx, &when), SK_OK);
            if (when == SK_COND_NO_CHANGE)
                break;
            assert_true(when > ctx.now);
            ctx.now = when;
        }
    }
    return n;
}

static void test_sleeping_scheduler_matches_polling(void **state)
{
    (void)state;
    static const struct {
        const char *zone, *cond, *from, *to;
        long step; /* seconds between polls */
    } cases[] = {
        {"America/New_York", "hourly", "2024-11-02 22:00 -0400", "2024-11-03 05:00 -0500", 60},
        {"America/New_York", "daily between 01:30 and 01:45", "2024-11-02 00:00 -0400",
         "2024-11-04 00:00 -0500", 60},
        {"America/New_York", "cron */30 * * * *", "2024-11-03 00:00 -0400",
         "2024-11-03 04:00 -0500", 60},
        {"America/New_York", "cron 30 1 * * *", "2024-11-02 00:00 -0400", "2024-11-04 00:00 -0500",
         60},
        {"America/New_York", "daily after 02:30", "2024-03-09 00:00 -0500",
         "2024-03-11 12:00 -0400", 60},
        {"America/New_York", "every 10 seconds & time of day between 01:59 and 03:01",
         "2024-03-10 01:50 -0500", "2024-03-10 03:10 -0400", 1},
        {"Europe/Helsinki", "minutely between 10 and 20", "2024-10-27 02:50 +0300",
         "2024-10-27 04:10 +0200", 1},
        {"UTC", "monthly on 31st | weekly on Monday", "2028-01-25 00:00 +0000",
         "2028-03-05 00:00 +0000", 60},
    };
    int64_t *a = xcalloc(20000, sizeof *a), *b = xcalloc(20000, sizeof *b);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        skt_tz(cases[i].zone);
        sk_cond *c = skt_cond(cases[i].cond);
        int64_t from = skt_at(cases[i].from), to = skt_at(cases[i].to);
        size_t na = simulate(c, from, to, cases[i].step * SKT_NS, a, 20000);
        size_t nb = simulate(c, from, to, 0, b, 20000);
        if (na != nb || memcmp(a, b, na * sizeof *a) != 0) {
            print_error("'%s' in %s: %zu starts polling, %zu sleeping\n", cases[i].cond,
                        cases[i].zone, na, nb);
            for (size_t k = 0; k < (na > nb ? na : nb) && k < 40; k++) {
                char x[80], y[80];
                print_error("  %s | %s\n", k < na ? skt_show(a[k], x, sizeof x) : "-",
                            k < nb ? skt_show(b[k], y, sizeof y) : "-");
            }
            fail();
        }
        assert_true(na > 0);
        sk_cond_free(c);
    }
    xfree(a);
    xfree(b);
}

/* A combination that never changes gives up within its step bound and says
 * when to ask again; deep trees of them stay cheap. */
static void test_search_is_bounded(void **state)
{
    (void)state;
    skt_tz("UTC");
    sk_cond_ctx ctx = {.now = skt_at("2024-01-01 12:00 +0000"),
                       .last_start = SK_COND_NEVER,
                       .last_end = SK_COND_NEVER};
    /* Always false, with operands that change twice a day. */
    sk_cond *c = skt_cond("time of day after 12:00 & time of day before 12:00");
    int64_t when;
    assert_int_equal(sk_cond_next_change(c, &ctx, &when), SK_OK);
    assert_true(when > ctx.now && when != SK_COND_NO_CHANGE);
    ctx.now = when;
    assert_int_equal(sk_cond_eval(c, &ctx), 0);
    sk_cond_free(c);

    /* 60 levels of (...) | (x & ~x), every x changing each 30 s: each
     * level's search would multiply the steps of the one below. */
    char *text = xcalloc(1, 8192);
    strcpy(text, "time of minute before 30 & ~time of minute before 30");
    for (int i = 0; i < 60; i++) {
        char *t = xcalloc(1, 8192);
        snprintf(t, 8192, "(%s) | (time of minute after 15 & ~time of minute after 15)", text);
        xfree(text);
        text = t;
    }
    c = skt_cond(text);
    double t0 = skt_now();
    assert_int_equal(sk_cond_next_change(c, &ctx, &when), SK_OK);
    assert_true(when > ctx.now);
    assert_dbl_lt(skt_now() - t0, 5.0 * skt_slowdown());
    sk_cond_free(c);
    xfree(text);
}

static void test_summary(void **state)
{
    (void)state;
    print_message("next_change compared with brute force %ld times\n", checks);
    assert_true(checks > 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_next_change_utc),      SKT_TEST(test_next_change_new_york),
        SKT_TEST(test_next_change_helsinki), SKT_TEST(test_next_change_half_hour_dst),
        SKT_TEST(test_next_change_seconds),  SKT_TEST(test_sleeping_scheduler_matches_polling),
        SKT_TEST(test_search_is_bounded),    SKT_TEST(test_summary),
    };
    return skt_run(argc, argv, tests);
}
