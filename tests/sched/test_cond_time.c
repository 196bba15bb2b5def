/* SPDX-License-Identifier: MIT */
/*
 * Truth tables of the time conditions, computed by hand: each row is a
 * condition, the time it is evaluated at, when the task last started
 * (or never) and the value it must have. Days, weeks (from Monday) and
 * months, their boundaries, windows that wrap into the next period, days
 * of the month past the month's end (2027-02 and the leap day
 * 2028-02-29), and the days the clock changes in New York, Helsinki and
 * on Lord Howe Island (a 30-minute change).
 *
 * Times are written with the offset the clock shows then ("01:30 -0500"
 * is the second 01:30 of 2024-11-03 in New York), so no row is ambiguous.
 *
 * Then whole days run by a scheduler that starts the task whenever its
 * condition holds: how many runs a 23- and a 25-hour day get.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support.h"

#include "cond_support.h"

struct row {
    const char *cond, *now, *last; /* last NULL: never ran */
    int want;
};

static int rows_checked;

static void check_rows(const char *zone, const struct row *rows, size_t n)
{
    skt_tz(zone);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        sk_cond *c = skt_cond(rows[i].cond);
        sk_cond_ctx ctx = {.now = skt_at(rows[i].now),
                           .last_start = rows[i].last ? skt_at(rows[i].last) : SK_COND_NEVER,
                           .last_end = SK_COND_NEVER};
        int got = sk_cond_eval(c, &ctx);
        if (got != rows[i].want) {
            print_error("%s: '%s' at %s, last start %s: %d, want %d\n", zone, rows[i].cond,
                        rows[i].now, rows[i].last ? rows[i].last : "never", got, rows[i].want);
            bad++;
        }
        sk_cond_free(c);
        rows_checked++;
    }
    assert_int_equal(bad, 0);
}

#define CHECK(zone, rows) check_rows(zone, rows, sizeof rows / sizeof rows[0])

/* 2024-03-01 is a Friday; 2024-03-04 a Monday; 2024 and 2028 are leap
 * years, 2027 is not. */
static void test_periodic_utc(void **state)
{
    (void)state;
    static const struct row rows[] = {
        {"daily", "2024-03-01 12:00 +0000", NULL, 1},
        {"daily", "2024-03-01 12:00 +0000", "2024-03-01 00:00 +0000", 0},
        {"daily", "2024-03-01 23:59:59 +0000", "2024-03-01 00:00 +0000", 0},
        {"daily", "2024-03-02 00:00 +0000", "2024-03-01 23:59:59 +0000", 1},
        {"daily", "2024-03-01 00:00 +0000", "2024-02-29 23:59:59 +0000", 1},
        {"daily after 08:00", "2024-03-01 07:59:59 +0000", NULL, 0},
        {"daily after 08:00", "2024-03-01 08:00 +0000", NULL, 1},
        {"daily after 08:00", "2024-03-01 08:00 +0000", "2024-03-01 07:00 +0000", 1},
        {"daily after 08:00", "2024-03-01 09:00 +0000", "2024-03-01 08:00 +0000", 0},
        {"daily after 08:00", "2024-03-02 07:00 +0000", "2024-03-01 08:00 +0000", 0},
        {"daily after 08:00", "2024-03-02 08:00 +0000", "2024-03-01 08:00 +0000", 1},
        {"daily before 10:00", "2024-03-01 09:59:59 +0000", NULL, 1},
        {"daily before 10:00", "2024-03-01 10:00 +0000", NULL, 0},
        {"daily between 08:00 and 08:15", "2024-03-01 08:14:59 +0000", NULL, 1},
        {"daily between 08:00 and 08:15", "2024-03-01 08:15 +0000", NULL, 0},
        {"daily between 08:00 and 08:15", "2024-03-01 08:10 +0000", "2024-03-01 08:05 +0000", 0},
        {"daily between 08:00 and 08:15", "2024-03-01 08:10 +0000", "2024-03-01 07:59:59 +0000", 1},
        {"daily between 08:00:30 and 08:00:45", "2024-03-01 08:00:29 +0000", NULL, 0},
        {"daily between 08:00:30 and 08:00:45", "2024-03-01 08:00:30 +0000", NULL, 1},
        {"daily between 22:00 and 02:00", "2024-03-01 23:00 +0000", NULL, 1},
        {"daily between 22:00 and 02:00", "2024-03-02 01:00 +0000", "2024-03-01 23:30 +0000", 0},
        {"daily between 22:00 and 02:00", "2024-03-02 01:00 +0000", "2024-03-01 21:00 +0000", 1},
        {"daily between 22:00 and 02:00", "2024-03-02 02:00 +0000", NULL, 0},
        {"daily between 22:00 and 02:00", "2024-03-02 22:00 +0000", "2024-03-02 01:00 +0000", 1},
        {"daily between 22:00 and 02:00", "2024-03-01 21:59:59 +0000", NULL, 0},
        {"daily between 22:00 and 24:00", "2024-03-01 23:59:59 +0000", NULL, 1},
        {"hourly", "2024-03-01 11:00 +0000", "2024-03-01 10:59:59 +0000", 1},
        {"hourly", "2024-03-01 11:59:59 +0000", "2024-03-01 11:00 +0000", 0},
        {"hourly between 15:00 and 30:00", "2024-03-01 11:14:59 +0000", NULL, 0},
        {"hourly between 15:00 and 30:00", "2024-03-01 11:15 +0000", NULL, 1},
        {"hourly between 15:00 and 30:00", "2024-03-01 11:29 +0000", "2024-03-01 11:16 +0000", 0},
        {"hourly between 15:00 and 30:00", "2024-03-01 11:30 +0000", NULL, 0},
        {"hourly between 50:00 and 10:00", "2024-03-01 11:55 +0000", NULL, 1},
        {"hourly between 50:00 and 10:00", "2024-03-01 12:05 +0000", "2024-03-01 11:52 +0000", 0},
        {"hourly between 50:00 and 10:00", "2024-03-01 12:05 +0000", "2024-03-01 11:45 +0000", 1},
        {"hourly between 50:00 and 10:00", "2024-03-01 12:10 +0000", NULL, 0},
        {"minutely", "2024-03-01 12:00:00 +0000", "2024-03-01 11:59:59 +0000", 1},
        {"minutely", "2024-03-01 12:00:59 +0000", "2024-03-01 12:00:00 +0000", 0},
        {"minutely before 30", "2024-03-01 12:00:29 +0000", NULL, 1},
        {"minutely before 30", "2024-03-01 12:00:30 +0000", NULL, 0},
        {"minutely between 50 and 10", "2024-03-01 12:00:55 +0000", NULL, 1},
        {"minutely between 50 and 10", "2024-03-01 12:01:05 +0000", "2024-03-01 12:00:55 +0000", 0},
        {"minutely between 50 and 10", "2024-03-01 12:01:10 +0000", NULL, 0},
        {"weekly", "2024-03-04 00:00 +0000", "2024-03-03 23:59:59 +0000", 1},
        {"weekly", "2024-03-03 23:59:59 +0000", "2024-02-26 00:00 +0000", 0},
        {"weekly", "2024-03-03 12:00 +0000", "2024-02-25 23:00 +0000", 1},
        {"weekly on Friday", "2024-03-01 12:00 +0000", NULL, 1},
        {"weekly on Friday", "2024-03-02 12:00 +0000", NULL, 0},
        {"weekly on Friday", "2024-03-01 23:59 +0000", "2024-03-01 00:01 +0000", 0},
        {"weekly on Friday", "2024-03-08 00:00 +0000", "2024-03-01 12:00 +0000", 1},
        {"weekly between Friday and Monday", "2024-03-04 12:00 +0000", "2024-03-02 12:00 +0000", 0},
        {"weekly between Friday and Monday", "2024-03-04 12:00 +0000", "2024-02-29 12:00 +0000", 1},
        {"weekly between Friday and Monday", "2024-03-05 00:00 +0000", NULL, 0},
        {"weekly between Friday and Monday", "2024-03-03 12:00 +0000", NULL, 1},
        {"weekly after Saturday 12:00", "2024-03-02 11:59 +0000", NULL, 0},
        {"weekly after Saturday 12:00", "2024-03-02 12:00 +0000", NULL, 1},
        {"weekly after Saturday 12:00", "2024-03-03 23:59 +0000", "2024-03-02 13:00 +0000", 0},
        {"weekly before Wednesday", "2024-03-05 23:59:59 +0000", NULL, 1},
        {"weekly before Wednesday", "2024-03-06 00:00 +0000", NULL, 0},
        {"monthly", "2024-02-01 00:00 +0000", "2024-01-31 23:59:59 +0000", 1},
        {"monthly", "2024-02-29 23:59 +0000", "2024-02-01 00:00 +0000", 0},
        {"monthly on 31st", "2028-02-29 12:00 +0000", NULL, 1},
        {"monthly on 31st", "2028-02-28 12:00 +0000", NULL, 0},
        {"monthly on 31st", "2024-04-30 12:00 +0000", NULL, 1},
        {"monthly on 31st", "2027-02-28 12:00 +0000", NULL, 1},
        {"monthly on 31st", "2024-03-31 12:00 +0000", NULL, 1},
        {"monthly on 31st", "2024-03-30 12:00 +0000", NULL, 0},
        {"monthly on 29th", "2028-02-29 00:00 +0000", NULL, 1},
        {"monthly on 29th", "2027-02-28 00:00 +0000", NULL, 1},
        {"monthly on 29th", "2027-02-27 23:59:59 +0000", NULL, 0},
        {"monthly on 29th", "2028-02-28 23:59:59 +0000", NULL, 0},
        {"monthly between 28th and 2nd", "2028-03-01 12:00 +0000", "2028-02-28 12:00 +0000", 0},
        {"monthly between 28th and 2nd", "2028-03-01 12:00 +0000", "2028-02-27 12:00 +0000", 1},
        {"monthly between 28th and 2nd", "2028-03-03 00:00 +0000", NULL, 0},
        {"monthly between 28th and 2nd", "2028-02-27 23:59:59 +0000", NULL, 0},
        {"monthly between 28th and 2nd", "2028-02-29 00:00 +0000", NULL, 1},
        {"monthly after 15th 12:00", "2024-03-15 11:59 +0000", NULL, 0},
        {"monthly after 15th 12:00", "2024-03-15 12:00 +0000", NULL, 1},
        {"monthly after 15th 12:00", "2024-03-31 23:59 +0000", "2024-03-16 00:00 +0000", 0},
        {"monthly after 15th 12:00", "2024-04-15 12:00 +0000", "2024-03-16 00:00 +0000", 1},
        {"monthly before 2nd", "2024-03-01 23:59:59 +0000", NULL, 1},
        {"monthly before 2nd", "2024-03-02 00:00 +0000", NULL, 0},
        {"every 10 seconds", "2024-03-01 12:00:09 +0000", "2024-03-01 12:00:00 +0000", 0},
        {"every 10 seconds", "2024-03-01 12:00:10 +0000", "2024-03-01 12:00:00 +0000", 1},
        {"every 10 seconds", "2024-03-01 12:00:10 +0000", NULL, 1},
        {"every 1 day", "2024-03-02 11:59:59 +0000", "2024-03-01 12:00 +0000", 0},
        {"every 1 day", "2024-03-02 12:00 +0000", "2024-03-01 12:00 +0000", 1},
        {"every 1 hour 30 minutes", "2024-03-01 13:29:59 +0000", "2024-03-01 12:00 +0000", 0},
        {"every 1 hour 30 minutes", "2024-03-01 13:30 +0000", "2024-03-01 12:00 +0000", 1},
        /* A last start after now (a clock set back by hand): not due. */
        {"every 10 seconds", "2024-03-01 12:00 +0000", "2024-03-01 12:05 +0000", 0},
        {"true", "2024-03-01 12:00 +0000", "2024-03-01 12:00 +0000", 1},
        {"false", "2024-03-01 12:00 +0000", NULL, 0},
    };
    CHECK("UTC", rows);
}

static void test_time_of_utc(void **state)
{
    (void)state;
    static const struct row rows[] = {
        {"time of day between 16:00 and 20:00", "2024-03-01 15:59:59 +0000", NULL, 0},
        {"time of day between 16:00 and 20:00", "2024-03-01 16:00 +0000", NULL, 1},
        {"time of day between 16:00 and 20:00", "2024-03-01 19:59:59 +0000", NULL, 1},
        {"time of day between 16:00 and 20:00", "2024-03-01 20:00 +0000", NULL, 0},
        /* The task's runs do not matter to time-of conditions. */
        {"time of day between 16:00 and 20:00", "2024-03-01 17:00 +0000", "2024-03-01 17:00 +0000",
         1},
        {"time of day between 22:00 and 02:00", "2024-03-01 23:00 +0000", NULL, 1},
        {"time of day between 22:00 and 02:00", "2024-03-02 01:59:59 +0000", NULL, 1},
        {"time of day between 22:00 and 02:00", "2024-03-02 02:00 +0000", NULL, 0},
        {"time of day between 22:00 and 02:00", "2024-03-01 21:59 +0000", NULL, 0},
        {"time of day between 00:00 and 24:00", "2024-03-01 23:59:59 +0000", NULL, 1},
        {"time of day after 12:00", "2024-03-01 11:59:59 +0000", NULL, 0},
        {"time of day before 12:00", "2024-03-01 11:59:59 +0000", NULL, 1},
        {"time of week between Monday and Friday", "2024-03-01 23:59:59 +0000", NULL, 1},
        {"time of week between Monday and Friday", "2024-03-02 00:00 +0000", NULL, 0},
        {"time of week between Monday and Friday", "2024-03-03 23:59:59 +0000", NULL, 0},
        {"time of week between Monday and Friday", "2024-03-04 00:00 +0000", NULL, 1},
        {"time of week between Saturday 12:00 and Monday 08:00", "2024-03-02 11:59 +0000", NULL, 0},
        {"time of week between Saturday 12:00 and Monday 08:00", "2024-03-02 12:00 +0000", NULL, 1},
        {"time of week between Saturday 12:00 and Monday 08:00", "2024-03-04 07:59 +0000", NULL, 1},
        {"time of week between Saturday 12:00 and Monday 08:00", "2024-03-04 08:00 +0000", NULL, 0},
        {"time of week on Sunday", "2024-03-03 00:00 +0000", NULL, 1},
        {"time of week on Sunday", "2024-03-04 00:00 +0000", NULL, 0},
        {"time of week after Friday 17:00", "2024-03-01 17:00 +0000", NULL, 1},
        {"time of week after Friday 17:00", "2024-03-03 23:59 +0000", NULL, 1},
        {"time of week after Friday 17:00", "2024-03-04 00:00 +0000", NULL, 0},
        {"time of week before Tuesday", "2024-03-04 23:59 +0000", NULL, 1},
        {"time of week before Tuesday", "2024-03-05 00:00 +0000", NULL, 0},
        {"time of month between 1st and 5th", "2024-03-05 23:59:59 +0000", NULL, 1},
        {"time of month between 1st and 5th", "2024-03-06 00:00 +0000", NULL, 0},
        {"time of month between 1st and 5th", "2024-03-01 00:00 +0000", NULL, 1},
        {"time of month after 29th", "2027-02-28 00:00 +0000", NULL, 1},
        {"time of month after 29th", "2027-02-27 23:59 +0000", NULL, 0},
        {"time of month after 29th", "2028-02-28 12:00 +0000", NULL, 0},
        {"time of month after 29th", "2028-02-29 00:00 +0000", NULL, 1},
        {"time of month after 29th", "2024-03-29 00:00 +0000", NULL, 1},
        {"time of month after 29th", "2024-03-28 23:59 +0000", NULL, 0},
        {"time of month on 31st", "2024-04-30 00:00 +0000", NULL, 1},
        {"time of month on 31st", "2024-04-29 23:59 +0000", NULL, 0},
        {"time of month between 25th and 3rd", "2024-12-31 12:00 +0000", NULL, 1},
        {"time of month between 25th and 3rd", "2025-01-03 23:59 +0000", NULL, 1},
        {"time of month between 25th and 3rd", "2025-01-04 00:00 +0000", NULL, 0},
        {"time of hour before 15:00", "2024-03-01 11:14:59 +0000", NULL, 1},
        {"time of hour before 15:00", "2024-03-01 11:15 +0000", NULL, 0},
        {"time of minute between 10 and 20", "2024-03-01 11:00:10 +0000", NULL, 1},
        {"time of minute between 10 and 20", "2024-03-01 11:00:20 +0000", NULL, 0},
    };
    CHECK("UTC", rows);
}

/* New York: 2024-03-10 02:00 EST -> 03:00 EDT; 2024-11-03 02:00 EDT ->
 * 01:00 EST. */
static void test_new_york(void **state)
{
    (void)state;
    static const struct row rows[] = {
        /* A 23-hour day is one day. */
        {"daily", "2024-03-10 00:00 -0500", "2024-03-09 12:00 -0500", 1},
        {"daily", "2024-03-10 23:59:59 -0400", "2024-03-10 00:00 -0500", 0},
        {"daily", "2024-03-11 00:00 -0400", "2024-03-10 00:00 -0500", 1},
        /* A window wholly in the skipped hour is empty that day. */
        {"daily between 02:30 and 03:00", "2024-03-10 01:59:59 -0500", NULL, 0},
        {"daily between 02:30 and 03:00", "2024-03-10 03:00 -0400", NULL, 0},
        {"daily between 02:30 and 03:00", "2024-03-11 02:30 -0400", NULL, 1},
        /* One that goes past it begins at the jump. */
        {"daily between 02:30 and 03:30", "2024-03-10 03:00 -0400", NULL, 1},
        {"daily between 02:30 and 03:30", "2024-03-10 03:10 -0400", "2024-03-10 03:00 -0400", 0},
        {"daily between 02:30 and 03:30", "2024-03-10 03:10 -0400", "2024-03-10 01:59 -0500", 1},
        {"daily after 02:30", "2024-03-10 03:00 -0400", NULL, 1},
        {"daily after 02:30", "2024-03-10 01:59 -0500", NULL, 0},
        {"time of day between 02:00 and 03:00", "2024-03-10 01:59:59 -0500", NULL, 0},
        {"time of day between 02:00 and 03:00", "2024-03-10 03:00 -0400", NULL, 0},
        {"time of day between 02:00 and 03:00", "2024-03-11 02:00 -0400", NULL, 1},
        {"hourly", "2024-03-10 03:00 -0400", "2024-03-10 01:30 -0500", 1},
        {"hourly", "2024-03-10 03:59 -0400", "2024-03-10 03:00 -0400", 0},
        /* every counts elapsed time: 01:30 EST to 03:30 EDT is one hour. */
        {"every 1 hour", "2024-03-10 03:29:59 -0400", "2024-03-10 01:30 -0500", 0},
        {"every 1 hour", "2024-03-10 03:30 -0400", "2024-03-10 01:30 -0500", 1},
        /* A 25-hour day is one day. */
        {"daily", "2024-11-03 23:59 -0500", "2024-11-03 00:30 -0400", 0},
        {"daily", "2024-11-04 00:00 -0500", "2024-11-03 00:30 -0400", 1},
        /* The hour shown again is a new hour. */
        {"hourly", "2024-11-03 01:10 -0500", "2024-11-03 01:10 -0400", 1},
        {"hourly", "2024-11-03 01:59:59 -0500", "2024-11-03 01:10 -0500", 0},
        {"hourly", "2024-11-03 01:50 -0400", "2024-11-03 01:10 -0400", 0},
        {"minutely", "2024-11-03 01:00:10 -0500", "2024-11-03 01:59:30 -0400", 1},
        /* A daily window shown twice runs once, in whichever pass. */
        {"daily between 01:30 and 01:45", "2024-11-03 01:31 -0500", "2024-11-03 01:31 -0400", 0},
        {"daily between 01:30 and 01:45", "2024-11-03 01:31 -0500", NULL, 1},
        {"daily between 01:30 and 01:45", "2024-11-03 01:31 -0500", "2024-11-02 01:31 -0400", 1},
        {"daily between 01:30 and 01:45", "2024-11-03 01:50 -0400", NULL, 0},
        /* ... but the clock is inside it both times. */
        {"time of day between 01:30 and 01:45", "2024-11-03 01:40 -0400", NULL, 1},
        {"time of day between 01:30 and 01:45", "2024-11-03 01:50 -0400", NULL, 0},
        {"time of day between 01:30 and 01:45", "2024-11-03 01:40 -0500", NULL, 1},
        {"time of day between 01:30 and 01:45", "2024-11-03 01:29 -0500", NULL, 0},
        {"weekly", "2024-11-04 00:00 -0500", "2024-11-03 23:00 -0500", 1},
        {"monthly", "2024-11-01 00:00 -0400", "2024-10-31 23:59 -0400", 1},
        {"monthly", "2024-11-30 23:59 -0500", "2024-11-01 00:00 -0400", 0},
    };
    CHECK("America/New_York", rows);
}

/* Helsinki: 2024-03-31 03:00 EET -> 04:00 EEST; 2024-10-27 04:00 EEST ->
 * 03:00 EET, both on the last Sunday of the month. */
static void test_helsinki(void **state)
{
    (void)state;
    static const struct row rows[] = {
        {"time of day between 03:00 and 04:00", "2024-03-31 02:59:59 +0200", NULL, 0},
        {"time of day between 03:00 and 04:00", "2024-03-31 04:00 +0300", NULL, 0},
        {"time of day between 03:00 and 04:00", "2024-04-01 03:30 +0300", NULL, 1},
        {"daily between 03:15 and 03:45", "2024-10-27 03:20 +0200", "2024-10-27 03:20 +0300", 0},
        {"daily between 03:15 and 03:45", "2024-10-27 03:20 +0200", NULL, 1},
        {"weekly on Sunday", "2024-03-31 23:59 +0300", NULL, 1},
        {"weekly on Sunday", "2024-03-31 23:59 +0300", "2024-03-31 00:10 +0200", 0},
        {"monthly", "2024-04-01 00:00 +0300", "2024-03-31 12:00 +0300", 1},
        {"monthly", "2024-03-31 23:59:59 +0300", "2024-03-01 00:00 +0200", 0},
        {"hourly", "2024-10-27 03:10 +0200", "2024-10-27 03:30 +0300", 1},
        {"daily", "2024-03-31 23:59 +0300", "2024-03-31 00:00 +0200", 0},
        {"time of month on 31st", "2024-03-30 23:59:59 +0200", NULL, 0},
        {"time of month on 31st", "2024-03-31 00:00 +0200", NULL, 1},
        {"time of month on 31st", "2024-03-31 04:00 +0300", NULL, 1},
    };
    CHECK("Europe/Helsinki", rows);
}

/* ----------------------------------------------------------- whole days */

/* Starts a task whenever c holds, sleeping until next_change in between,
 * from `from` up to (not including) `to`; returns how many times. */
static int runs(const char *cond, const char *from, const char *to)
{
    sk_cond *c = skt_cond(cond);
    sk_cond_ctx ctx = {.now = skt_at(from), .last_start = SK_COND_NEVER, .last_end = SK_COND_NEVER};
    int64_t end = skt_at(to);
    int n = 0;
    while (ctx.now < end) {
        if (sk_cond_eval(c, &ctx) == 1) {
            n++;
            ctx.last_start = ctx.last_end = ctx.now;
        }
        int64_t when;
        assert_int_equal(sk_cond_next_change(c, &ctx, &when), SK_OK);
        if (when == SK_COND_NO_CHANGE)
            break;
        ctx.now = when;
    }
    sk_cond_free(c);
    return n;
}

static void test_runs_per_day(void **state)
{
    (void)state;
    static const struct {
        const char *zone, *cond, *from, *to;
        int want;
    } days[] = {
        /* New York, 2024-11-03: 25 hours. */
        {"America/New_York", "hourly", "2024-11-03 00:00 -0400", "2024-11-04 00:00 -0500", 25},
        {"America/New_York", "daily", "2024-11-03 00:00 -0400", "2024-11-04 00:00 -0500", 1},
        {"America/New_York", "every 1 hour", "2024-11-03 00:00 -0400", "2024-11-04 00:00 -0500",
         25},
        {"America/New_York", "minutely", "2024-11-03 00:00 -0400", "2024-11-04 00:00 -0500", 1500},
        {"America/New_York", "cron 0 * * * *", "2024-11-03 00:00 -0400", "2024-11-04 00:00 -0500",
         25},
        {"America/New_York", "cron */30 * * * *", "2024-11-03 00:00 -0400",
         "2024-11-04 00:00 -0500", 50},
        {"America/New_York", "cron 30 1 * * *", "2024-11-03 00:00 -0400", "2024-11-04 00:00 -0500",
         1},
        {"America/New_York", "daily between 01:30 and 01:45", "2024-11-03 00:00 -0400",
         "2024-11-04 00:00 -0500", 1},
        /* New York, 2024-03-10: 23 hours, 02:00-02:59 never shown. */
        {"America/New_York", "hourly", "2024-03-10 00:00 -0500", "2024-03-11 00:00 -0400", 23},
        {"America/New_York", "minutely", "2024-03-10 00:00 -0500", "2024-03-11 00:00 -0400", 1380},
        {"America/New_York", "cron 0 * * * *", "2024-03-10 00:00 -0500", "2024-03-11 00:00 -0400",
         23},
        {"America/New_York", "cron 30 2 * * *", "2024-03-10 00:00 -0500", "2024-03-11 00:00 -0400",
         0},
        {"America/New_York", "daily between 02:30 and 03:00", "2024-03-10 00:00 -0500",
         "2024-03-11 00:00 -0400", 0},
        {"America/New_York", "daily after 02:30", "2024-03-10 00:00 -0500",
         "2024-03-11 00:00 -0400", 1},
        /* Helsinki. */
        {"Europe/Helsinki", "hourly", "2024-10-27 00:00 +0300", "2024-10-28 00:00 +0200", 25},
        {"Europe/Helsinki", "hourly", "2024-03-31 00:00 +0200", "2024-04-01 00:00 +0300", 23},
        /* Lord Howe, 2024-04-07 02:00 +1100 -> 01:30 +1030: the half hour
         * shown again is a new (half) hour, as a change of offset starts
         * one: 00, 01, 01 again, 02 ... 23. */
        {"Australia/Lord_Howe", "hourly", "2024-04-07 00:00 +1100", "2024-04-08 00:00 +1030", 25},
        {"Australia/Lord_Howe", "daily", "2024-04-07 00:00 +1100", "2024-04-08 00:00 +1030", 1},
        /* February 2028: 29 days, weeks from Monday (Feb 1 is a Tuesday). */
        {"UTC", "daily", "2028-02-01 00:00 +0000", "2028-03-01 00:00 +0000", 29},
        {"UTC", "monthly", "2028-02-01 00:00 +0000", "2028-03-01 00:00 +0000", 1},
        {"UTC", "monthly on 31st", "2028-01-01 00:00 +0000", "2028-05-01 00:00 +0000", 4},
        {"UTC", "weekly", "2028-02-01 00:00 +0000", "2028-03-01 00:00 +0000", 5},
        {"UTC", "cron 0 0 29 2 *", "2024-01-01 00:00 +0000", "2032-01-01 00:00 +0000", 2},
    };
    for (size_t i = 0; i < sizeof days / sizeof days[0]; i++) {
        skt_tz(days[i].zone);
        int n = runs(days[i].cond, days[i].from, days[i].to);
        if (n != days[i].want) {
            print_error("%s: '%s' from %s to %s ran %d times, want %d\n", days[i].zone,
                        days[i].cond, days[i].from, days[i].to, n, days[i].want);
            fail();
        }
    }
}

/* The builders' conditions evaluate like their text. */
static void test_builders_evaluate_like_text(void **state)
{
    (void)state;
    skt_tz("UTC");
    sk_cond_window morning = {.span = SK_SPAN_BETWEEN,
                              .from = {.seconds = 8 * 3600},
                              .to = {.seconds = 8 * 3600 + 15 * 60}};
    sk_cond *built = sk_cond_and(sk_cond_periodic(SK_COND_DAY, &morning),
                                 sk_cond_time_of_week(SK_MONDAY, SK_FRIDAY));
    sk_cond *parsed =
        skt_cond("daily between 08:00 and 08:15 & time of week between Monday and Friday");
    assert_non_null(built);
    assert_true(sk_cond_equal(built, parsed));
    sk_cond_ctx ctx = {.last_start = SK_COND_NEVER, .last_end = SK_COND_NEVER};
    for (int64_t t = skt_at("2024-03-01 00:00 +0000"); t < skt_at("2024-03-05 00:00 +0000");
         t += 300 * SKT_NS) {
        ctx.now = t;
        assert_int_equal(sk_cond_eval(built, &ctx), sk_cond_eval(parsed, &ctx));
    }
    sk_cond_free(built);
    sk_cond_free(parsed);
}

/* ns resolution: every is exact to the nanosecond, windows to the second. */
static void test_nanoseconds(void **state)
{
    (void)state;
    skt_tz("UTC");
    int64_t t = skt_at("2024-03-01 12:00 +0000") + 123;
    sk_cond *c = skt_cond("every 10 seconds");
    sk_cond_ctx ctx = {.now = t + 10 * SKT_NS - 1, .last_start = t, .last_end = t};
    assert_int_equal(sk_cond_eval(c, &ctx), 0);
    int64_t when;
    assert_int_equal(sk_cond_next_change(c, &ctx, &when), SK_OK);
    assert_true(when == t + 10 * SKT_NS);
    ctx.now = when;
    assert_int_equal(sk_cond_eval(c, &ctx), 1);
    sk_cond_free(c);

    c = skt_cond("time of day before 12:00:01");
    ctx.now = skt_at("2024-03-01 12:00:00 +0000") + 999999999;
    assert_int_equal(sk_cond_eval(c, &ctx), 1);
    assert_int_equal(sk_cond_next_change(c, &ctx, &when), SK_OK);
    assert_true(when == skt_at("2024-03-01 12:00:01 +0000"));
    sk_cond_free(c);

    /* Before 1970 too. */
    c = skt_cond("daily between 08:00 and 09:00");
    ctx.now = skt_at("1969-12-31 08:30 +0000") + 1;
    ctx.last_start = SK_COND_NEVER;
    assert_int_equal(sk_cond_eval(c, &ctx), 1);
    assert_int_equal(sk_cond_next_change(c, &ctx, &when), SK_OK);
    assert_true(when == skt_at("1969-12-31 09:00 +0000"));
    sk_cond_free(c);
}

static void test_summary(void **state)
{
    (void)state;
    print_message("%d truth-table rows\n", rows_checked);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_periodic_utc), SKT_TEST(test_time_of_utc),
        SKT_TEST(test_new_york),     SKT_TEST(test_helsinki),
        SKT_TEST(test_runs_per_day), SKT_TEST(test_builders_evaluate_like_text),
        SKT_TEST(test_nanoseconds),  SKT_TEST(test_summary),
    };
    return skt_run(argc, argv, tests);
}
