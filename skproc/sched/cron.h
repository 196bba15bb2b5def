/* SPDX-License-Identifier: MIT */
/*
 * Cron expressions: five fields as bit sets, matched against wall-clock
 * minutes (minute indexes: a wall value / 60).
 */
#ifndef SKPROC_SCHED_CRON_H
#define SKPROC_SCHED_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { SK_CRON_MINUTE, SK_CRON_HOUR, SK_CRON_DOM, SK_CRON_MONTH, SK_CRON_DOW, SK_CRON_FIELDS };

/* How far the searches look ahead: 28 years, in which every expression
 * that can match at all matches (Feb 29 recurs within 8 years). */
#define SK_CRON_HORIZON_DAYS (366 * 28)

typedef struct sk_cron {
    uint64_t bits[SK_CRON_FIELDS]; /* minute 0-59, hour 0-23, dom 1-31, month 1-12, dow 0-6 */
    uint8_t star[SK_CRON_FIELDS];  /* 0: not a '*' field; else the step of '*' (1 for '*') */
} sk_cron;

/* Parses field number `field` from s (len bytes, no spaces) into c.
 * false on a bad field: *bad is the byte offset in s, *expected what was
 * wanted there, *message (or NULL) a reason that is not an expectation. */
bool sk_cron_parse_field(sk_cron *c, int field, const char *s, size_t len, size_t *bad,
                         const char **expected, const char **message);

bool sk_cron_day_matches(const sk_cron *c, int64_t days);
bool sk_cron_matches(const sk_cron *c, int64_t minute);

/* The first minute >= minute that matches (sk_cron_next_match) or does
 * not (sk_cron_next_miss), or INT64_MAX when there is none within
 * SK_CRON_HORIZON_DAYS. */
int64_t sk_cron_next_match(const sk_cron *c, int64_t minute);
int64_t sk_cron_next_miss(const sk_cron *c, int64_t minute);

bool sk_cron_equal(const sk_cron *a, const sk_cron *b);

/* The five fields, canonical: '*' or '*' with its step, otherwise the
 * values as a list of numbers and runs ("1-5,7,9"). fn is called with
 * each piece of text. */
void sk_cron_format(const sk_cron *c, void (*put)(void *, const char *, size_t), void *arg);

#endif
