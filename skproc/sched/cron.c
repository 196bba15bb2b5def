/* SPDX-License-Identifier: MIT */
/* Cron fields: parsing, matching wall-clock minutes, searching ahead. */
#include "sched/cron.h"

#include "sched/wall.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static const int field_min[SK_CRON_FIELDS] = {0, 0, 1, 1, 0};
static const int field_max[SK_CRON_FIELDS] = {59, 23, 31, 12, 7}; /* dow 7: Sunday again */
static const char *const field_what[SK_CRON_FIELDS] = {
    "a minute (0-59), '*', a range or a step",
    "an hour (0-23), '*', a range or a step",
    "a day of the month (1-31), '*', a range or a step",
    "a month (1-12 or jan-dec), '*', a range or a step",
    "a day of the week (0-7 or sun-sat), '*', a range or a step",
};

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

struct field_parse {
    const char *s;
    size_t len, at;
    int field;
    size_t bad;
    const char *expected, *message;
};

static bool fail_at(struct field_parse *p, size_t at, const char *expected, const char *message)
{
    p->bad = at;
    p->expected = expected;
    p->message = message;
    return false;
}

/* A number or (months, days of the week) a three-letter name. */
static bool value(struct field_parse *p, int *out)
{
    size_t start = p->at;
    if (p->at < p->len && p->s[p->at] >= '0' && p->s[p->at] <= '9') {
        long v = 0;
        while (p->at < p->len && p->s[p->at] >= '0' && p->s[p->at] <= '9') {
            if (v < 1000)
                v = v * 10 + (p->s[p->at] - '0');
            p->at++;
        }
        if (v < field_min[p->field] || v > field_max[p->field])
            return fail_at(p, start, field_what[p->field], "value out of range");
        *out = (int)v;
        return true;
    }
    const char *const *names = p->field == SK_CRON_MONTH ? month_names
                               : p->field == SK_CRON_DOW ? day_names
                                                         : NULL;
    int count = p->field == SK_CRON_MONTH ? 12 : 7;
    if (names != NULL && p->len - p->at >= 3) {
        for (int i = 0; i < count; i++) {
            if (strncasecmp(p->s + p->at, names[i], 3) == 0) {
                p->at += 3;
                *out = p->field == SK_CRON_MONTH ? i + 1 : i;
                return true;
            }
        }
    }
    return fail_at(p, start, field_what[p->field], NULL);
}

static bool step(struct field_parse *p, int *out)
{
    if (p->at >= p->len || p->s[p->at] != '/') {
        *out = 1;
        return true;
    }
    p->at++;
    size_t start = p->at;
    long v = 0;
    if (p->at >= p->len || p->s[p->at] < '0' || p->s[p->at] > '9')
        return fail_at(p, start, "a step (a number after '/')", NULL);
    while (p->at < p->len && p->s[p->at] >= '0' && p->s[p->at] <= '9') {
        if (v < 1000)
            v = v * 10 + (p->s[p->at] - '0');
        p->at++;
    }
    if (v < 1 || v > field_max[p->field] - field_min[p->field] + 1)
        return fail_at(p, start, "a step (a number after '/')", "step out of range");
    *out = (int)v;
    return true;
}

static void set(sk_cron *c, int field, int v)
{
    if (field == SK_CRON_DOW && v == 7)
        v = 0;
    c->bits[field] |= UINT64_C(1) << v;
}

bool sk_cron_parse_field(sk_cron *c, int field, const char *s, size_t len, size_t *bad,
                         const char **expected, const char **message)
{
    struct field_parse p = {.s = s, .len = len, .field = field};
    c->bits[field] = 0;
    c->star[field] = 0;
    int items = 0;
    bool ok = true;
    for (;;) {
        int lo, hi, by;
        bool star = false;
        if (p.at < len && s[p.at] == '*') {
            p.at++;
            star = true;
            lo = field_min[field];
            hi = field == SK_CRON_DOW ? 6 : field_max[field];
        } else {
            if (!(ok = value(&p, &lo)))
                break;
            hi = lo;
            if (p.at < len && s[p.at] == '-') {
                p.at++;
                size_t hi_at = p.at;
                if (!(ok = value(&p, &hi)))
                    break;
                if (hi < lo) {
                    ok = fail_at(&p, hi_at, field_what[field], "range ends before it starts");
                    break;
                }
            } else if (p.at < len && s[p.at] == '/') {
                hi = field == SK_CRON_DOW ? 6 : field_max[field]; /* "a/n": a to the end */
                if (hi < lo)
                    hi = lo;
            }
        }
        if (!(ok = step(&p, &by)))
            break;
        for (int v = lo; v <= hi; v += by)
            set(c, field, v);
        items++;
        if (star && items == 1 && p.at == len)
            c->star[field] = (uint8_t)by;
        if (p.at == len)
            break;
        if (s[p.at] != ',') {
            ok = fail_at(&p, p.at, "',', '-', '/' or a space after a cron value", NULL);
            break;
        }
        p.at++;
    }
    if (!ok) {
        *bad = p.bad;
        *expected = p.expected;
        *message = p.message;
    }
    return ok;
}

static bool bit(const sk_cron *c, int field, int v)
{
    return (c->bits[field] >> v) & 1;
}

bool sk_cron_day_matches(const sk_cron *c, int64_t days)
{
    int64_t y;
    int m, d;
    sk_civil_from_days(days, &y, &m, &d);
    if (!bit(c, SK_CRON_MONTH, m))
        return false;
    bool dom = bit(c, SK_CRON_DOM, d), dow = bit(c, SK_CRON_DOW, sk_weekday_of_days(days));
    if (c->star[SK_CRON_DOM] || c->star[SK_CRON_DOW])
        return dom && dow;
    return dom || dow;
}

static bool time_matches(const sk_cron *c, int minute_of_day)
{
    return bit(c, SK_CRON_HOUR, minute_of_day / 60) && bit(c, SK_CRON_MINUTE, minute_of_day % 60);
}

bool sk_cron_matches(const sk_cron *c, int64_t minute)
{
    int64_t days = sk_floor_div(minute, 1440);
    return sk_cron_day_matches(c, days) && time_matches(c, (int)(minute - days * 1440));
}

int64_t sk_cron_next_match(const sk_cron *c, int64_t minute)
{
    int64_t d0 = sk_floor_div(minute, 1440);
    for (int64_t d = d0; d <= d0 + SK_CRON_HORIZON_DAYS; d++) {
        if (!sk_cron_day_matches(c, d))
            continue;
        int from = d == d0 ? (int)(minute - d0 * 1440) : 0;
        for (int h = from / 60; h < 24; h++) {
            if (!bit(c, SK_CRON_HOUR, h))
                continue;
            for (int m = h == from / 60 ? from % 60 : 0; m < 60; m++)
                if (bit(c, SK_CRON_MINUTE, m))
                    return d * 1440 + h * 60 + m;
        }
    }
    return INT64_MAX;
}

int64_t sk_cron_next_miss(const sk_cron *c, int64_t minute)
{
    const uint64_t all_minutes = (UINT64_C(1) << 60) - 1, all_hours = (UINT64_C(1) << 24) - 1;
    bool whole_days = c->bits[SK_CRON_MINUTE] == all_minutes && c->bits[SK_CRON_HOUR] == all_hours;
    const uint64_t all_dom = UINT64_C(0xfffffffe), all_months = UINT64_C(0x1ffe), all_dow = 0x7f;
    bool dom = c->bits[SK_CRON_DOM] == all_dom, dow = c->bits[SK_CRON_DOW] == all_dow;
    bool every_day = c->bits[SK_CRON_MONTH] == all_months &&
                     (c->star[SK_CRON_DOM] || c->star[SK_CRON_DOW] ? dom && dow : dom || dow);
    if (whole_days && every_day)
        return INT64_MAX; /* every minute matches */
    int64_t d0 = sk_floor_div(minute, 1440);
    for (int64_t d = d0; d <= d0 + SK_CRON_HORIZON_DAYS; d++) {
        int from = d == d0 ? (int)(minute - d0 * 1440) : 0;
        if (!sk_cron_day_matches(c, d))
            return d * 1440 + from;
        if (whole_days)
            continue;
        for (int t = from; t < 1440; t++)
            if (!time_matches(c, t))
                return d * 1440 + t;
    }
    return INT64_MAX;
}

bool sk_cron_equal(const sk_cron *a, const sk_cron *b)
{
    return memcmp(a->bits, b->bits, sizeof a->bits) == 0 &&
           memcmp(a->star, b->star, sizeof a->star) == 0;
}

void sk_cron_format(const sk_cron *c, void (*put)(void *, const char *, size_t), void *arg)
{
    char num[32];
    for (int f = 0; f < SK_CRON_FIELDS; f++) {
        if (f > 0)
            put(arg, " ", 1);
        if (c->star[f]) {
            put(arg, "*", 1);
            if (c->star[f] > 1)
                put(arg, num, (size_t)snprintf(num, sizeof num, "/%d", c->star[f]));
            continue;
        }
        int hi = f == SK_CRON_DOW ? 6 : field_max[f];
        bool first = true;
        for (int v = field_min[f]; v <= hi; v++) {
            if (!bit(c, f, v))
                continue;
            int end = v;
            while (end + 1 <= hi && bit(c, f, end + 1))
                end++;
            if (end - v >= 2) {
                put(arg, num,
                    (size_t)snprintf(num, sizeof num, "%s%d-%d", first ? "" : ",", v, end));
                v = end;
            } else {
                put(arg, num, (size_t)snprintf(num, sizeof num, "%s%d", first ? "" : ",", v));
            }
            first = false;
        }
    }
}
