/* SPDX-License-Identifier: MIT */
/* The wall clock of the process's TZ: offsets, transitions, calendar days. */
#include "sched/wall.h"

#include <time.h>

/* Howard Hinnant's days_from_civil / civil_from_days, in int64_t. */
int64_t sk_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = sk_floor_div(y, 400);
    int64_t yoe = y - era * 400;                                  /* [0, 399] */
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1; /* [0, 365] */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;          /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

void sk_civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    int64_t z = days + 719468;
    int64_t era = sk_floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

bool sk_is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int sk_days_in_month(int64_t y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && sk_is_leap(y) ? 29 : days[m - 1];
}

static int32_t probe(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (localtime_r(&tt, &tm) == NULL)
        return 0; /* out of the C library's range: call it UTC */
    return (int32_t)tm.tm_gmtoff;
}

int32_t sk_wall_offset(sk_wall_scan *z, int64_t t)
{
    if (z->valid && t >= z->lo && t <= z->hi)
        return z->off;
    return probe(t);
}

/* Remembers that the offset is off on [lo, hi], joining what is known. */
static void remember(sk_wall_scan *z, int64_t lo, int64_t hi, int32_t off)
{
    if (z->valid && z->off == off && lo <= z->hi + 1 && hi >= z->lo - 1) {
        if (lo < z->lo)
            z->lo = lo;
        if (hi > z->hi)
            z->hi = hi;
        return;
    }
    *z = (sk_wall_scan){.valid = true, .lo = lo, .hi = hi, .off = off};
}

/* The first second in (lo, hi] whose offset is not off, given that lo has
 * off and hi has not. */
static int64_t bisect(sk_wall_scan *z, int64_t lo, int64_t hi, int32_t off)
{
    int64_t start = lo;
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (sk_wall_offset(z, mid) == off)
            lo = mid;
        else
            hi = mid;
    }
    remember(z, start, lo, off);
    return hi;
}

int64_t sk_wall_next_transition(sk_wall_scan *z, int64_t t, int64_t limit)
{
    if (limit <= t)
        return INT64_MAX;
    int32_t off = sk_wall_offset(z, t);
    int64_t at = t;
    while (at < limit) {
        int64_t next = limit - at > SK_WALL_PROBE ? at + SK_WALL_PROBE : limit;
        int32_t o = sk_wall_offset(z, next);
        if (o != off)
            return bisect(z, at, next, off);
        remember(z, at, next, off);
        at = next;
    }
    return INT64_MAX;
}

int64_t sk_wall_last_transition(sk_wall_scan *z, int64_t a, int64_t t)
{
    int32_t off = sk_wall_offset(z, t);
    int64_t hi = t;
    while (hi > a) {
        int64_t lo = hi - a > SK_WALL_PROBE ? hi - SK_WALL_PROBE : a;
        if (sk_wall_offset(z, lo) != off) {
            /* The last change is in (lo, hi]: the first second from which
             * the offset stays off up to t. */
            while (hi - lo > 1) {
                int64_t mid = lo + (hi - lo) / 2;
                if (sk_wall_offset(z, mid) == off)
                    hi = mid;
                else
                    lo = mid;
            }
            return hi;
        }
        hi = lo;
    }
    return INT64_MIN;
}

/* Walks the stretches of constant offset from a point no instant before
 * which shows W, and returns the first instant showing W or more. */
int64_t sk_wall_first_at(sk_wall_scan *z, int64_t wall)
{
    int64_t a = wall - SK_WALL_MAX_OFFSET;
    int64_t limit = wall + SK_WALL_MAX_OFFSET;
    for (;;) {
        int32_t o = sk_wall_offset(z, a);
        if (a + o >= wall)
            return a; /* the jump at a went over W */
        int64_t b = sk_wall_next_transition(z, a, limit);
        if (b == INT64_MAX || wall - o < b)
            return wall - o; /* shown in [a, b), at wall - o */
        a = b;
    }
}
