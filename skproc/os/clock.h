/* SPDX-License-Identifier: MIT */
/* The one clock skproc uses: CLOCK_MONOTONIC in nanoseconds, comparable
 * across the parent, the supervisor and the worker. */
#ifndef SKPROC_CLOCK_H
#define SKPROC_CLOCK_H

#include <stdint.h>
#include <time.h>

#define SK_NS_PER_SEC INT64_C(1000000000)

static inline int64_t sk_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * SK_NS_PER_SEC + ts.tv_nsec;
}

/* Seconds (as in the config) to nanoseconds; <= 0 means "none" and gives
 * 0, and any positive limit is at least 1 ns (never "none"). */
static inline int64_t sk_seconds_to_ns(double s)
{
    if (!(s > 0))
        return 0;
    if (s > 9.0e9) /* beyond ~285 years: treat as forever */
        return INT64_MAX / 4;
    int64_t ns = (int64_t)(s * 1e9);
    return ns > 0 ? ns : 1;
}

/* The deadline of a wait of `timeout` seconds from now, on the sk_now_ns
 * clock: negative waits forever (INT64_MAX), 0 only looks (0). */
static inline int64_t sk_deadline_ns(double timeout)
{
    if (timeout < 0)
        return INT64_MAX;
    if (timeout == 0)
        return 0;
    return sk_now_ns() + sk_seconds_to_ns(timeout);
}

static inline struct timespec sk_ns_to_timespec(int64_t ns)
{
    struct timespec ts = {.tv_sec = ns / SK_NS_PER_SEC, .tv_nsec = ns % SK_NS_PER_SEC};
    return ts;
}

#endif
