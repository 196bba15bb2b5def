/* SPDX-License-Identifier: MIT */
/*
 * Local time as conditions see it: the wall clock.
 *
 * wall(t) = t + offset(t) is what the local clock shows at the instant t,
 * counted in seconds as if it were UTC (a "wall value": 00:00 local on
 * 1970-01-01 is 0). The offset comes from localtime_r's tm_gmtoff, so the
 * rules are the process's TZ as of the last tzset(). The wall clock runs
 * with the real one, and jumps where the offset changes (a transition):
 * forward (values skipped) or back (values shown twice).
 *
 * glibc has no call that lists transitions, so they are found by probing
 * the offset: every SK_WALL_PROBE seconds, then bisecting to the second.
 * Two changes closer together than that which cancel out would be missed
 * (we know of no such pair in the tz database's rules).
 * A probe costs one localtime_r; an sk_wall_scan remembers the stretch it
 * last found constant, so that a search that moves forward does not probe
 * the same hours again.
 *
 * Calendar arithmetic on wall values is plain proleptic Gregorian in
 * integers (days since 1970-01-01), valid for every int64_t day count the
 * conditions use.
 */
#ifndef SKPROC_SCHED_WALL_H
#define SKPROC_SCHED_WALL_H

#include <stdbool.h>
#include <stdint.h>

#define SK_WALL_DAY INT64_C(86400)
#define SK_WALL_PROBE (6 * INT64_C(3600))
/* No zone's offset is this far from UTC: a wall value W is shown only at
 * instants within SK_WALL_MAX_OFFSET of W. */
#define SK_WALL_MAX_OFFSET (26 * INT64_C(3600))

/* Floor division and the matching remainder (0 <= r < d), for d > 0. */
static inline int64_t sk_floor_div(int64_t a, int64_t d)
{
    int64_t q = a / d;
    return (a % d != 0 && a < 0) ? q - 1 : q;
}

static inline int64_t sk_floor_mod(int64_t a, int64_t d)
{
    return a - sk_floor_div(a, d) * d;
}

/* Days since 1970-01-01 of y-m-d (m 1..12, d 1..31), and back. */
int64_t sk_days_from_civil(int64_t y, int m, int d);
void sk_civil_from_days(int64_t days, int64_t *y, int *m, int *d);

/* 0 Sunday .. 6 Saturday. */
static inline int sk_weekday_of_days(int64_t days)
{
    return (int)sk_floor_mod(days + 4, 7); /* 1970-01-01 was a Thursday */
}

bool sk_is_leap(int64_t y);
int sk_days_in_month(int64_t y, int m);

/* What the scans remember: the offset is `off` on every second of
 * [lo, hi]. Zero it before the first use; one per thread. */
typedef struct sk_wall_scan {
    bool valid;
    int64_t lo, hi;
    int32_t off;
} sk_wall_scan;

/* The UTC offset (seconds east) at the instant t (seconds since the epoch). */
int32_t sk_wall_offset(sk_wall_scan *z, int64_t t);

/* The first second s in (t, limit] whose offset differs from t's, or
 * INT64_MAX when there is none. */
int64_t sk_wall_next_transition(sk_wall_scan *z, int64_t t, int64_t limit);

/* The last second s in (a, t] at which the offset changed (the offset of
 * s differs from that of s - 1), or INT64_MIN when it did not change
 * there. For short spans (up to a few hours). */
int64_t sk_wall_last_transition(sk_wall_scan *z, int64_t a, int64_t t);

/* The first instant at which the wall clock shows W or a later value: when
 * W is shown twice, the first time; when the clock skips it, the instant of
 * the jump over it. */
int64_t sk_wall_first_at(sk_wall_scan *z, int64_t wall);

#endif
