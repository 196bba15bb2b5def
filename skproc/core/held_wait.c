/* SPDX-License-Identifier: MIT */
/*
 * The worker's side of a held start (core/held_start.c): the wait before
 * its first hook. It sleeps on its own doorbell, armed as sk_listen arms
 * it, so that sk_stop and sk_tell ring it too: a stop ends the wait (the
 * engine then goes to its ending hooks), a message does not. With the
 * release time known and spinning on, it wakes a little before that time
 * and looks for the release between sched_yield calls, so that the release
 * finds it running.
 */
#include "core/channel.h"
#include "core/held_wait.h"
#include "os/clock.h"
#include "os/fd.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <time.h>

static bool released_or_stopped(const void *ctx)
{
    const struct sk_shared *sh = ctx;
    return atomic_load_explicit(&sh->released, memory_order_acquire) || atomic_load(&sh->stop);
}

/* The pages of stack the engine and the first hook will use, written now:
 * they are the parent's copy-on-write pages until then, and each first
 * write after the release would cost a page fault (10 to 20 us on a
 * virtual machine). */
static __attribute__((noinline)) void stack_pretouch(void)
{
    volatile char pages[32 * 1024];
    for (size_t i = 0; i < sizeof pages; i += 4096)
        pages[i] = 0;
}

/* Looks for the release until until_ns, giving the CPU away between two
 * looks: a plain spin holds a CPU the session's thread may need to wake
 * up and make the release (with two CPUs and other work, a pure spin made
 * starts several times later, not earlier). */
static bool yield_until(int64_t until_ns, const struct sk_shared *sh)
{
    while (sk_now_ns() < until_ns) {
        if (released_or_stopped(sh))
            return true;
        sched_yield();
    }
    return released_or_stopped(sh);
}

void sk_worker_wait_release(struct sk_runtime *rt)
{
    struct sk_shared *sh = rt->sh;
    stack_pretouch();
    rt->cause_set = false; /* the runtime's page, which every hook writes */
    rt->hook_section = -1;
    int64_t spin_from = INT64_MAX, spin_until = INT64_MAX;
    if (rt->held_release_at > 0 && rt->config.spin > 0) {
        spin_from = rt->held_release_at - SK_HELD_SPIN_EARLY;
        spin_until = rt->held_release_at + SK_HELD_SPIN_LATE;
    }
    for (;;) {
        sk_ring_arm_doorbell(&rt->ep); /* sk_stop rings an armed doorbell */
        if (released_or_stopped(sh))
            break;
        int64_t now = sk_now_ns();
        if (now >= spin_from && now < spin_until) {
            if (yield_until(spin_until, sh))
                break;
            continue; /* the release is late: sleep for it */
        }
        struct timespec wait = sk_ns_to_timespec(spin_from - now);
        struct timespec *timeout = now < spin_from ? &wait : NULL;
        struct pollfd pfd = {.fd = rt->worker_doorbell, .events = POLLIN};
        if (ppoll(&pfd, 1, timeout, NULL) < 0 && errno != EINTR)
            break; /* nothing to wait on: go on rather than hang */
        sk_doorbell_drain(rt->worker_doorbell);
    }
    atomic_store(&rt->ep.in.ctl->armed, 0); /* no hook asked for it */
    sk_doorbell_drain(rt->worker_doorbell);
}
