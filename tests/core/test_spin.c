/* SPDX-License-Identifier: MIT */
/*
 * config.spin: a waiting sk_listen spins for a bounded time before it
 * sleeps. Replies still arrive whole and in order with and without the
 * spin, an idle wait costs at most the spin in CPU time, once, a
 * supervisor spins only just before a deadline it enforces, and a bad
 * value is refused with a reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "support.h"

#include <math.h>
#include <sched.h>
#include <sys/resource.h>

typedef struct {
    sk_process base;
    int cpu; /* where the child pins itself; -1: anywhere */
} echo;

/* The first two CPUs this process may use, or false with fewer. */
static bool two_cpus(int *a, int *b)
{
    cpu_set_t set;
    *a = *b = -1;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return false;
    for (int c = 0; c < CPU_SETSIZE && *b < 0; c++)
        if (CPU_ISSET(c, &set))
            *(*a < 0 ? a : b) = c;
    return *b >= 0;
}

static void pin(int cpu)
{
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    sched_setaffinity(0, sizeof one, &one);
}

/* Answers n with n + 1 until it gets -1. */
static int echo_run(sk_process *self)
{
    int cpu = SK_CONTAINER_OF(self, echo, base)->cpu;
    if (cpu >= 0)
        pin(cpu);
    for (;;) {
        int32_t n;
        int rc = sk_listen(self, 10.0, "i", &n);
        if (rc == SK_ECLOSED)
            return 0;
        if (rc != SK_OK)
            return sk_fail(self, rc, "listen: %s", sk_strerror(rc));
        if (n < 0)
            return 0;
        int32_t reply = n + 1;
        rc = sk_tell_wait(self, 10.0, "i", &reply);
        if (rc != SK_OK)
            return sk_fail(self, rc, "tell: %s", sk_strerror(rc));
    }
}

static const sk_class echo_class = {.name = "echo", .run = echo_run};

/* CPU seconds of this process (RUSAGE_SELF) or of its reaped
 * descendants (RUSAGE_CHILDREN). */
static double cpu_seconds_of(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static void ping_pong(double spin, bool no_spin)
{
    echo *e = skt_new(echo);
    assert_rc(sk_init(&e->base, &echo_class), SK_OK);
    e->cpu = -1;
    e->base.config.runs = 1;
    e->base.config.spin = spin;
    e->base.config.no_spin = no_spin;
    assert_rc(sk_start(&e->base), SK_OK);
    for (int32_t i = 0; i < 2000; i++) {
        assert_rc(sk_tell_wait(&e->base, 10.0, "i", &i), SK_OK);
        int32_t got = -1;
        assert_rc(sk_listen(&e->base, 10.0, "i", &got), SK_OK);
        assert_int_equal(got, i + 1);
    }
    int32_t end = -1;
    assert_rc(sk_tell(&e->base, "i", &end), SK_OK);
    assert_rc(sk_wait(&e->base, 10.0), SK_OK);
    assert_no_error(&e->base);
}

static void test_replies_arrive_with_and_without_spin(void **state)
{
    (void)state;
    ping_pong(0, false);    /* the default */
    ping_pong(0, true);     /* never spin */
    ping_pong(1e-3, false); /* a long spin */
}

/* The parent's CPU time over an idle listen of 0.3 s: the spin once (with
 * generous room for the rest of the call), never a busy wait. */
static double idle_listen_cpu(double spin, bool no_spin, int child_cpu)
{
    echo *e = skt_new(echo);
    assert_rc(sk_init(&e->base, &echo_class), SK_OK);
    e->cpu = child_cpu;
    e->base.config.runs = 1;
    e->base.config.spin = spin;
    e->base.config.no_spin = no_spin;
    assert_rc(sk_start(&e->base), SK_OK);
    int32_t got;
    if (child_cpu >= 0) /* the child has pinned itself once it waits */
        skt_sleep(0.05);
    double t0 = cpu_seconds_of(RUSAGE_SELF);
    assert_rc(sk_listen(&e->base, 0.3, "i", &got), SK_ETIMEDOUT);
    double used = cpu_seconds_of(RUSAGE_SELF) - t0;
    int32_t end = -1;
    assert_rc(sk_tell(&e->base, "i", &end), SK_OK);
    assert_rc(sk_wait(&e->base, 10.0), SK_OK);
    return used;
}

static void test_idle_wait_costs_at_most_the_spin(void **state)
{
    (void)state;
    double quiet = idle_listen_cpu(0, true, -1);
    double deflt = idle_listen_cpu(0, false, -1);
    /* The spin is skipped beside a peer on the same CPU: pin the two apart
     * to see it. */
    int a, b;
    bool apart = two_cpus(&a, &b);
    cpu_set_t mine;
    sched_getaffinity(0, sizeof mine, &mine);
    if (apart)
        pin(a);
    double spun = idle_listen_cpu(20e-3 /* cut to SK_MAX_SPIN */, false, apart ? b : -1);
    sched_setaffinity(0, sizeof mine, &mine);
    print_message("idle 0.3 s listen, CPU: no_spin %.6f s, default %.6f s, spin 10 ms %.6f s\n",
                  quiet, deflt, spun);
    assert_dbl_lt(quiet, 0.02);
    assert_dbl_lt(deflt, 0.02 + SK_DEFAULT_SPIN);
    /* It spun (a generous lower bound: on a loaded machine the spinning
     * process gets only a share of a CPU), and for SK_MAX_SPIN at most, not
     * the 20 ms asked. */
    if (apart)
        assert_dbl_ge(spun, SK_MAX_SPIN * 0.2);
    assert_dbl_lt(spun, 0.02 + SK_MAX_SPIN);
}

typedef struct {
    sk_process base;
    bool hangs; /* sleeps 30 s (until the timeout ends it), else 0.3 s */
} sleeper;

static int sleeper_run(sk_process *self)
{
    skt_sleep(SK_CONTAINER_OF(self, sleeper, base)->hangs ? 30.0 : 0.3);
    return 0;
}

static const sk_class sleeper_class = {.name = "sleeper", .run = sleeper_run};

/* The CPU time of a supervised process (its supervisor and worker, both
 * reaped) whose run hook sleeps, with timeouts.run = timeout; *late: how
 * long after the timeout sk_wait returned (negative when the hook ended
 * first). */
static double supervised_sleep_cpu(double timeout, bool hangs, bool no_spin, double *late)
{
    sleeper *p = skt_new(sleeper);
    assert_rc(sk_init(&p->base, &sleeper_class), SK_OK);
    p->hangs = hangs;
    p->base.config.runs = 1;
    p->base.config.timeouts.run = timeout;
    p->base.config.no_spin = no_spin;
    double c0 = cpu_seconds_of(RUSAGE_CHILDREN), w0 = skt_now();
    assert_rc(sk_start(&p->base), SK_OK);
    assert_rc(sk_wait(&p->base, 10.0), SK_OK);
    *late = skt_now() - w0 - timeout;
    if (hangs)
        assert_int_equal(sk_error_of(&p->base)->kind, SK_TIMEOUT_ERROR);
    else
        assert_no_error(&p->base);
    return cpu_seconds_of(RUSAGE_CHILDREN) - c0;
}

/* The supervisor spins only in the last 0.2 ms before a deadline it is
 * about to enforce: a hook that sleeps well within its timeout costs no
 * CPU, nor does a hook that hangs until its timeout (beyond that spin);
 * with no_spin the timeout is enforced all the same. */
static void test_supervisor_spins_only_near_a_deadline(void **state)
{
    (void)state;
    double late;
    double idle = supervised_sleep_cpu(2.0, false, false, &late);
    double hung = supervised_sleep_cpu(0.3, true, false, &late);
    double hung_late = late;
    double quiet = supervised_sleep_cpu(0.3, true, true, &late);
    print_message("supervised sleeper, CPU: within its timeout %.6f s, hung %.6f s (late %.6f s), "
                  "hung with no_spin %.6f s (late %.6f s)\n",
                  idle, hung, hung_late, quiet, late);
    assert_dbl_lt(idle, 0.1); /* a busy wait over the 0.3 s sleep would be 0.3 s */
    assert_dbl_lt(hung, 0.1);
    assert_dbl_lt(quiet, 0.1);
    assert_dbl_lt(hung_late, 1.0 * skt_slowdown());
    assert_dbl_lt(late, 1.0 * skt_slowdown());
}

static void test_nan_spin_is_refused(void **state)
{
    (void)state;
    echo *e = skt_new(echo);
    assert_rc(sk_init(&e->base, &echo_class), SK_OK);
    e->base.config.spin = NAN;
    assert_rc(sk_start(&e->base), SK_EINVAL);
    assert_string_equal(sk_last_error_message(), "config.spin is NaN");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_replies_arrive_with_and_without_spin),
        SKT_TEST(test_idle_wait_costs_at_most_the_spin),
        SKT_TEST(test_supervisor_spins_only_near_a_deadline),
        SKT_TEST(test_nan_spin_is_refused),
    };
    return skt_run(argc, argv, tests);
}
