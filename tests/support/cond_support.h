/* SPDX-License-Identifier: MIT */
/*
 * What the condition tests share: a time zone set for the test, instants
 * written with their UTC offset ("2024-11-03 01:30 -0500", never ambiguous),
 * conditions parsed or the test fails with the parser's message, and a
 * synthetic run log.
 *
 * Include after support.h.
 */
#ifndef SKPROC_TEST_COND_SUPPORT_H
#define SKPROC_TEST_COND_SUPPORT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SKT_NS INT64_C(1000000000)

/* Sets TZ for the process (and tzset). A zone other than UTC must exist in
 * /usr/share/zoneinfo (Debian: the tzdata package); without it glibc
 * would quietly use UTC and every DST table would test nothing. */
static inline void skt_tz(const char *zone)
{
    if (strcmp(zone, "UTC") != 0) {
        char path[256];
        snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", zone);
        if (access(path, R_OK) != 0) {
            print_error("%s is missing: install tzdata\n", path);
            fail();
        }
    }
    setenv("TZ", zone, 1);
    tzset();
}

/* "YYYY-MM-DD HH:MM[:SS] +HHMM" (the offset is the one the clock shows
 * then) as ns since the epoch. Fails the test on anything else. */
static inline int64_t skt_at(const char *text)
{
    int y, mo, d, h, mi, s = 0, oh, om;
    char sign;
    int n = 0;
    if (sscanf(text, "%d-%d-%d %d:%d:%d %c%2d%2d%n", &y, &mo, &d, &h, &mi, &s, &sign, &oh, &om,
               &n) != 9 ||
        (size_t)n != strlen(text)) {
        s = 0;
        if (sscanf(text, "%d-%d-%d %d:%d %c%2d%2d%n", &y, &mo, &d, &h, &mi, &sign, &oh, &om, &n) !=
                8 ||
            (size_t)n != strlen(text) || (sign != '+' && sign != '-')) {
            print_error("bad time in a test: '%s'\n", text);
            fail();
        }
    }
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = s};
    int64_t wall = (int64_t)timegm(&tm);
    int64_t off = (sign == '-' ? -1 : 1) * (oh * 3600 + om * 60);
    return (wall - off) * SKT_NS;
}

/* ns as local time with its offset, for messages. */
static inline const char *skt_show(int64_t ns, char *buf, size_t len)
{
    if (ns == SK_COND_NO_CHANGE) {
        snprintf(buf, len, "no change");
        return buf;
    }
    if (ns == SK_COND_NEVER) {
        snprintf(buf, len, "never");
        return buf;
    }
    time_t t = (time_t)(ns >= 0 ? ns / SKT_NS : -((-ns + SKT_NS - 1) / SKT_NS));
    struct tm tm;
    localtime_r(&t, &tm);
    char b[48];
    strftime(b, sizeof b, "%Y-%m-%d %H:%M:%S %z", &tm);
    long frac = (long)(ns - (int64_t)t * SKT_NS);
    if (frac != 0)
        snprintf(buf, len, "%s +%ld ns", b, frac);
    else
        snprintf(buf, len, "%s", b);
    return buf;
}

/* The condition in text, or the test fails with the parser's message. */
static inline sk_cond *skt_cond(const char *text)
{
    sk_cond *c = NULL;
    sk_cond_parse_error err;
    int rc = sk_cond_parse(text, &c, &err);
    if (rc != SK_OK) {
        print_error("'%s' does not parse: %s\n", text, err.message);
        fail();
    }
    return c;
}

/* A run log: outcomes of tasks at instants. */
#define SKT_LOG_MAX 64
struct skt_log {
    int n;
    int queries; /* how often conditions asked */
    struct {
        const char *task;
        sk_cond_outcome outcome; /* SUCCEEDED or FAILED */
        int64_t at;
    } runs[SKT_LOG_MAX];
};

static inline void skt_log_add(struct skt_log *log, const char *task, sk_cond_outcome outcome,
                               int64_t at)
{
    if (log->n == SKT_LOG_MAX)
        fail();
    log->runs[log->n].task = task;
    log->runs[log->n].outcome = outcome;
    log->runs[log->n].at = at;
    log->n++;
}

/* sk_cond_log_fn over a struct skt_log. */
static inline int64_t skt_log_last(void *arg, const char *task, sk_cond_outcome outcome)
{
    struct skt_log *log = arg;
    log->queries++;
    int64_t best = SK_COND_NEVER;
    for (int i = 0; i < log->n; i++) {
        if (strcmp(log->runs[i].task, task) != 0)
            continue;
        if (outcome != SK_COND_FINISHED && log->runs[i].outcome != outcome)
            continue;
        if (log->runs[i].at > best)
            best = log->runs[i].at;
    }
    return best;
}

#endif
