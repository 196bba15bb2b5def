/* SPDX-License-Identifier: MIT */
/*
 * Bounded spin-waits. A waiter that expects its peer within microseconds
 * spins with the CPU's pause hint for a bounded time before it sleeps, so
 * that a quick answer costs no wake-up (a sleeping CPU takes tens to
 * hundreds of microseconds to wake, more on a virtual machine). One loop
 * for every such wait (messages, the pool's hand-offs, the supervisor's
 * deadlines) and one rule for how long a spin may be.
 */
#ifndef SKPROC_OS_SPIN_H
#define SKPROC_OS_SPIN_H

#include "os/clock.h"
#include "os/cpu.h"
#include "os/futex.h"

#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

/* Spins until ready(ctx) says so (true) or the clock reaches until_ns
 * (false). The clock is read once every 64 looks. Inline, so that a ready
 * function known at the call site is inlined into the loop. */
static inline bool sk_spin_until(int64_t until_ns, bool (*ready)(const void *ctx), const void *ctx)
{
    for (int64_t now = sk_now_ns(); now < until_ns; now = sk_now_ns())
        for (int i = 0; i < 64; i++) {
            if (ready(ctx))
                return true;
            sk_cpu_relax();
        }
    return false;
}

/* The spin a waiter may do, in seconds, from a configured one: none with
 * no_spin, or with one CPU online unless a spin was asked for (there a
 * spin only keeps the peer it waits for off the CPU); default_s when spin
 * is 0 or less (or NaN); at most max_s. The CPU count is read once per
 * process (sk_cpus_online), not on every call. */
static inline double sk_spin_seconds(double spin, bool no_spin, double default_s, double max_s)
{
    if (no_spin || !(spin > 0 || sk_cpus_online() > 1))
        return 0;
    if (!(spin > 0))
        return default_s;
    return spin > max_s ? max_s : spin;
}

#endif
