/* SPDX-License-Identifier: MIT */
/*
 * Hostile children: a worker that scribbles over everything it shares with
 * its parent (every field of the status page, both rings' control blocks,
 * the rings' data) while the parent tells, listens, waits, kills, reads the
 * result, the error and the timers, and releases. Whatever the worker
 * writes, the parent must not crash, must not wait past its timeouts, must
 * get one of the documented return codes, and must be left with no child
 * and no extra fd. The supervisor holds the same rule against its worker:
 * it must never die of what its worker wrote. The events it delivers
 * (config.on_event) and the recoveries it reports stay in range.
 *
 * Two kinds of cases: targeted (each field, with 0, -1, a huge value, the
 * value plus or minus one, the address of a parent global and a text fill)
 * and random (seeded random bytes at random offsets, then the worker keeps
 * talking, exits, crashes or blocks). Under sanitizers and valgrind fewer
 * cases run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support.h"

#include "core/runtime.h"

#include <math.h>
#include <stdatomic.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define UNDER_VALGRIND() (RUNNING_ON_VALGRIND != 0)
#else
#define UNDER_VALGRIND() false
#endif

#define FRAME_MAGIC 0x534b4d47u /* ring.c's frame magic: "SKMG" */

/* sk_tell of one int32 (tell takes pointers, as tpl does). */
static int tell_int(sk_process *p, int32_t v)
{
    return sk_tell(p, "i", &v);
}

/* ------------------------------------------------------ what is forged */

struct field {
    const char *name;
    size_t off, size;
};

#define SH(f)                                                                                      \
    {                                                                                              \
#f, offsetof(struct sk_shared, f), sizeof(((struct sk_shared *)0)->f)                      \
    }
#define RING(i, f)                                                                                 \
    {                                                                                              \
        "rings[" #i "]." #f, offsetof(struct sk_shared, rings[i].f),                               \
            sizeof(((struct sk_shared *)0)->rings[i].f)                                            \
    }
#define TIMER(s, f)                                                                                \
    {                                                                                              \
        "timers[" #s "]." #f, offsetof(struct sk_shared, timers[s].f),                             \
            sizeof(((struct sk_shared *)0)->timers[s].f)                                           \
    }

static const struct field fields[] = {
    SH(seq),
    SH(section),
    SH(section_start_ns),
    SH(current_run),
    SH(engine_done),
    SH(stop),
    SH(kill_requested),
    SH(lives_used),
    SH(worker_pid),
    SH(supervisor_wake),
    SH(start_ns),
    SH(recycle),
    SH(last_fault),
    SH(faults),
    SH(outcome),
    SH(error),
    SH(error.kind),
    SH(error.section),
    SH(error.run),
    SH(error.timeout),
    SH(error.message),
    SH(error.cause),
    SH(error.lives_spent),
    SH(error.reason),
    SH(error.code),
    SH(has_result),
    SH(result_len),
    SH(spent_count),
    SH(spent),
    SH(spent[0].kind),
    SH(spent[0].message),
    SH(restarts),
    SH(spawns),
    SH(events_written),
    SH(events),
    SH(events[0].stamp),
    SH(events[0].kind),
    SH(events[0].section),
    SH(events[0].has_error),
    SH(events[0].error.cause),
    TIMER(SK_RUN, count),
    TIMER(SK_RUN, total_ns),
    TIMER(SK_RUN, min_ns),
    TIMER(SK_RUN, max_ns),
    TIMER(SK_RUN, mean_ns),
    TIMER(SK_RUN, m2_ns2),
    TIMER(SK_RUN, exact),
    TIMER(SK_FULL_RUN, count),
    TIMER(SK_FULL_RUN, hist),
    RING(0, head),
    RING(0, tail),
    RING(0, wseq),
    RING(0, waiting),
    RING(0, armed),
    RING(0, closed),
    RING(0, room_waiting),
    RING(0, rseq),
    RING(0, reader_cpu),
    RING(1, head),
    RING(1, tail),
    RING(1, wseq),
    RING(1, waiting),
    RING(1, armed),
    RING(1, closed),
    RING(1, room_waiting),
    RING(1, rseq),
    RING(1, reader_cpu),
};
#define N_FIELDS (sizeof fields / sizeof fields[0])

enum value { V_ZERO, V_ONES, V_HUGE, V_PLUS1, V_MINUS1, V_PTR, V_TEXT, V_COUNT };
static const char *const value_names[V_COUNT] = {"0",  "-1",          "huge",    "+1",
                                                 "-1", "parent addr", "'A' fill"};

/* What the worker does once it has scribbled. */
enum after { A_FINISH, A_EXIT, A_CRASH, A_TALK, A_BLOCK, A_COUNT };

/* A parent global whose address the worker writes. */
static unsigned char parent_global[256];

/* The test's view of the worker (shared memory). */
struct seen {
    _Atomic int scribbled;
};

typedef struct {
    sk_process base;
    struct seen *seen;
    int field;      /* targeted: index in fields[]; -1: random */
    enum value val; /* targeted */
    uint64_t seed;  /* random */
    enum after after;
    uint64_t rng;
} hostile;

/* ------------------------------------------------------------ worker side */

static uint64_t rnd(hostile *h)
{
    uint64_t x = h->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return h->rng = x;
}

static void put_int(unsigned char *at, size_t n, uint64_t v)
{
    for (size_t i = 0; i < n && i < 8; i++)
        at[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_int(const unsigned char *at, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n && i < 8; i++)
        v |= (uint64_t)at[i] << (8 * i);
    return v;
}

static void scribble_field(struct sk_shared *sh, const struct field *f, enum value val)
{
    unsigned char *at = (unsigned char *)sh + f->off;
    size_t n = f->size < 8 ? f->size : 8;
    uint64_t huge = n >= 8 ? INT64_MAX : ((uint64_t)1 << (8 * n - 1)) - 1;
    switch (val) {
    case V_ZERO:
        memset(at, 0, f->size);
        break;
    case V_ONES:
        memset(at, 0xff, f->size);
        break;
    case V_HUGE:
        if (f->size > 8)
            memset(at, 0x7f, f->size);
        else
            put_int(at, n, huge);
        break;
    case V_PLUS1:
        put_int(at, n, get_int(at, n) + 1);
        break;
    case V_MINUS1:
        put_int(at, n, get_int(at, n) - 1);
        break;
    case V_PTR:
        put_int(at, n, (uint64_t)(uintptr_t)parent_global);
        break;
    case V_TEXT:
    case V_COUNT:
        memset(at, 'A', f->size);
        break;
    }
}

/* Random bytes at random places: the status page's fields, the timers,
 * both rings' data; sometimes a frame of garbage or one that claims a huge
 * length, published. */
static void scribble_random(sk_process *self, hostile *h)
{
    struct sk_runtime *rt = self->rt;
    struct sk_shared *sh = rt->sh;
    size_t header = offsetof(struct sk_shared, timers);
    int writes = 1 + (int)(rnd(h) % 24);
    for (int i = 0; i < writes; i++) {
        uint64_t r = rnd(h);
        unsigned char bytes[8];
        put_int(bytes, 8, rnd(h));
        size_t n = 1 + r % 8;
        unsigned char *at;
        switch ((r >> 8) % 10) {
        case 0:
        case 1:
        case 2:
        case 3: /* the fields before the timers: rings' control, error, result */
            at = (unsigned char *)sh + (r >> 16) % (header - 8);
            break;
        case 4:
        case 5: { /* the timers */
            size_t span = sizeof sh->timers;
            at = (unsigned char *)sh->timers + (r >> 16) % (span - 8);
            break;
        }
        case 6:
        case 7: /* the ring to the parent (the worker's out) */
            at = (unsigned char *)rt->ep.out.data + (r >> 16) % (rt->ep.out.size - 8);
            break;
        case 8: /* the ring to the worker */
            at = (unsigned char *)rt->ep.in.data + (r >> 16) % (rt->ep.in.size - 8);
            break;
        default: { /* a frame of garbage or with a huge length, published */
            struct sk_ring_ctl *c = &sh->rings[0];
            uint64_t head = atomic_load(&c->head);
            unsigned char *f = (unsigned char *)rt->ep.out.data + (head % rt->ep.out.size & ~7ull);
            if (f + 16 > (unsigned char *)rt->ep.out.data + rt->ep.out.size)
                continue;
            uint32_t hdr[2] = {(r & 0x10000) ? FRAME_MAGIC : (uint32_t)rnd(h),
                               (r & 0x20000) ? UINT32_MAX - (uint32_t)(r >> 40) % 16
                                             : (uint32_t)(r >> 32)};
            memcpy(f, hdr, sizeof hdr);
            atomic_store(&c->head, head + 8 + 8 * ((r >> 20) % 4));
            continue;
        }
        }
        memcpy(at, bytes, n);
    }
}

static void scribble(sk_process *self, hostile *h)
{
    if (h->field >= 0)
        scribble_field(self->rt->sh, &fields[h->field], h->val);
    else
        scribble_random(self, h);
}

static int hostile_run(sk_process *self)
{
    hostile *h = (hostile *)self;
    long run = sk_current_run(self);
    if (run == 0) {
        h->rng = h->seed * 0x9E3779B97F4A7C15ull + 1;
        scribble(self, h);
        atomic_store(&h->seen->scribbled, 1);
        for (int i = 0; i < 3; i++)
            tell_int(self, i);
        int32_t v;
        sk_listen(self, 0.02, "i", &v);
        scribble(self, h);
    }
    switch (h->after) {
    case A_FINISH:
        sk_stop(self);
        return 0;
    case A_EXIT:
        _exit(3);
    case A_CRASH:
        skt_die_by(SIGSEGV);
        return 0;
    case A_TALK: /* scribbles and talks until the runs are done */
        scribble(self, h);
        tell_int(self, (int)run);
        return run % 7 == 6 ? sk_fail(self, 9, "soft failure on run %ld", run) : 0;
    case A_BLOCK:
    case A_COUNT:
        for (;;)
            pause();
    }
    return 0;
}

static int hostile_result(sk_process *self)
{
    int32_t x = 42;
    return sk_return(self, "i", &x);
}

static const sk_class hostile_class = {
    .name = "hostile", .run = hostile_run, .result = hostile_result};

/* ------------------------------------------------------------ parent side */

static bool is_code(int rc, const int *ok, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (rc == ok[i])
            return true;
    return false;
}

#define assert_code_in(rc, ...)                                                                    \
    do {                                                                                           \
        int rc_ = (rc);                                                                            \
        const int ok_[] = {__VA_ARGS__};                                                           \
        if (!is_code(rc_, ok_, sizeof ok_ / sizeof ok_[0]))                                        \
            fail_msg("%s: %s returned %d (%s), not a code documented here", what, #rc, rc_,        \
                     sk_strerror(rc_));                                                            \
    } while (0)

struct tally {
    int cases, killed, failed, ok;
};

static void check_error(const sk_process *p, bool supervised, const char *what)
{
    const sk_error *e = sk_error_of(p);
    if (e == NULL)
        return;
    if (strnlen(e->message, sizeof e->message) >= sizeof e->message ||
        strnlen(e->cause, sizeof e->cause) >= sizeof e->cause)
        fail_msg("%s: an error text is not terminated", what);
    if ((unsigned)e->kind > SK_CRASH_ERROR || (int)e->section < SK_NO_SECTION ||
        (int)e->section > SK_FULL_RUN || e->lives_spent < 1 || e->lives_spent > p->config.lives)
        fail_msg("%s: error kind %d section %d lives %d out of range", what, (int)e->kind,
                 (int)e->section, e->lives_spent);
    /* The reason is always a code skproc has a name for. */
    if (e->reason >= 0 || strcmp(sk_strerror(e->reason), "unknown error code") == 0)
        fail_msg("%s: error reason %d is not an SK_E* code", what, e->reason);
    char buf[2048];
    if (sk_error_format(e, buf, sizeof buf) <= 0)
        fail_msg("%s: sk_error_format failed", what);
    if (supervised && strstr(e->cause, "supervisor was ended by signal") != NULL)
        fail_msg("%s: the supervisor died of what its worker wrote:\n%s", what, buf);
}

static void read_timers(const sk_process *p)
{
    for (int s = 0; s < SK_SECTION_COUNT; s++) {
        const sk_timer *t = sk_timer_of(p, (sk_section)s);
        if (t == NULL)
            continue;
        volatile double sink = 0;
        sink += (double)sk_timer_count(t);
        sink += sk_timer_total(t) + sk_timer_mean(t) + sk_timer_median(t);
        sink += sk_timer_min(t) + sk_timer_max(t) + sk_timer_stdev(t);
        sink += sk_timer_variance(t) + sk_timer_last(t);
        sink +=
            sk_timer_percentile(t, 0) + sk_timer_percentile(t, 99.9) + sk_timer_percentile(t, 100);
        (void)sink;
    }
}

/* Events (config.on_event) from a hostile process: every field in range,
 * every text terminated, FINISH once. */
struct event_tally {
    int n, finishes;
    bool bad;
};

static void hostile_event(const sk_event *ev, void *ctx)
{
    struct event_tally *t = ctx;
    t->n++;
    t->finishes += ev->kind == SK_EVENT_FINISH;
    if ((unsigned)ev->kind > SK_EVENT_FINISH || (int)ev->section < SK_NO_SECTION ||
        (int)ev->section > SK_FULL_RUN || ev->run < 0 || !(ev->pid > 0 || ev->pid == -1))
        t->bad = true;
    const sk_error *e = ev->error;
    if (e != NULL && (strnlen(e->message, sizeof e->message) >= sizeof e->message ||
                      strnlen(e->cause, sizeof e->cause) >= sizeof e->cause ||
                      (unsigned)e->kind > SK_CRASH_ERROR))
        t->bad = true;
}

/* Recoveries (sk_attempts, ...) from a hostile process: within its lives. */
static void check_recoveries(const sk_process *p, int lives, const char *what)
{
    int attempts = sk_attempts(p), kept = sk_spent_error_count(p);
    if (attempts < 1 || attempts > lives || sk_restarts(p) < 0 || sk_restarts(p) > lives ||
        kept < 0 || kept > SK_MAX_SPENT_ERRORS || kept + sk_spent_errors_dropped(p) != attempts - 1)
        fail_msg("%s: attempts %d, restarts %d, spent %d + %d out of range", what, attempts,
                 sk_restarts(p), kept, sk_spent_errors_dropped(p));
    for (int i = 0; i < kept; i++) {
        const sk_error *e = sk_spent_error(p, i);
        if (e == NULL || strnlen(e->message, sizeof e->message) >= sizeof e->message ||
            strnlen(e->cause, sizeof e->cause) >= sizeof e->cause ||
            (unsigned)e->kind > SK_CRASH_ERROR)
            fail_msg("%s: spent error %d is not sane", what, i);
    }
}

/* One hostile process, from start to release, with every call checked. */
static void run_case(hostile *h, bool supervised, const char *what, struct tally *tally)
{
    int fds = skt_fd_count();
    sk_process *p = &h->base;
    h->seen = skt_shared(sizeof *h->seen);
    assert_rc(sk_init(p, &hostile_class), SK_OK);
    p->config.runs = 20;
    p->config.capacity = 4096;
    p->config.max_message = 1024;
    if (supervised) {
        p->config.lives = 2;
        p->config.timeouts.run = 5 * skt_slowdown();
    }
    struct event_tally events = {0};
    p->config.on_event = hostile_event;
    p->config.event_ctx = &events;
    assert_rc(sk_start(p), SK_OK);
    tally->cases++;

    /* While it runs. */
    double t0 = skt_now();
    while (!atomic_load(&h->seen->scribbled) && sk_alive(p) && skt_now() - t0 < 2 * skt_slowdown())
        skt_sleep(0.0002);
    (void)sk_current_run(p);
    pid_t pid = sk_pid(p);
    assert_true(pid == -1 || pid > 0);
    for (int i = 0; i < 2; i++)
        assert_code_in(tell_int(p, 100 + i), SK_OK, SK_EFULL, SK_ECLOSED, SK_ECORRUPT);
    int32_t w = 102;
    double before = skt_now();
    assert_code_in(sk_tell_wait(p, 0.05, "i", &w), SK_OK, SK_ETIMEDOUT, SK_ECLOSED, SK_ECORRUPT);
    assert_dbl_lt(skt_now() - before, 0.05 + 2 * skt_slowdown()); /* waiting for room is bounded */
    int32_t v = 0;
    before = skt_now();
    int rc = sk_listen(p, 0.05, "i", &v);
    assert_code_in(rc, SK_OK, SK_ETIMEDOUT, SK_ECLOSED, SK_ECORRUPT, SK_EFORMAT);
    assert_dbl_lt(skt_now() - before, 0.05 + 2 * skt_slowdown()); /* a generous bound */
    sk_message *m = NULL;
    rc = sk_listen_message(p, 0.01, &m);
    assert_code_in(rc, SK_OK, SK_ETIMEDOUT, SK_ECLOSED, SK_ECORRUPT);
    sk_message_free(m);

    /* The end. */
    double wait = h->after == A_BLOCK ? 0.02 : 2 * skt_slowdown();
    before = skt_now();
    rc = sk_wait(p, wait);
    assert_code_in(rc, SK_OK, SK_ETIMEDOUT);
    assert_dbl_lt(skt_now() - before, wait + 2 * skt_slowdown());
    if (rc == SK_ETIMEDOUT) {
        before = skt_now();
        assert_rc(sk_kill(p), SK_OK);
        assert_dbl_lt(skt_now() - before, 3 * skt_slowdown()); /* the 1 s fallback at most */
        tally->killed++;
    }
    assert_false(sk_alive(p));
    assert_rc(sk_wait(p, 0), SK_OK);

    /* After the end: what is left to read, the result, the error, the
     * timers. */
    for (int i = 0; i < 64; i++) {
        rc = sk_listen(p, 0, "i", &v);
        assert_code_in(rc, SK_OK, SK_ETIMEDOUT, SK_ECLOSED, SK_ECORRUPT, SK_EFORMAT);
        if (rc == SK_ECLOSED || rc == SK_ETIMEDOUT)
            break;
    }
    rc = sk_result(p, "i", &v);
    assert_code_in(rc, SK_OK, SK_EPROCESS, SK_EKILLED, SK_EFORMAT, SK_ECORRUPT);
    if (rc == SK_OK)
        tally->ok++;
    else if (rc == SK_EPROCESS)
        tally->failed++;
    assert_code_in(sk_result(p, NULL), SK_OK, SK_EPROCESS, SK_EKILLED, SK_EFORMAT, SK_ECORRUPT);
    check_error(p, supervised, what);
    read_timers(p);
    assert_code_in(tell_int(p, 1), SK_ECLOSED, SK_OK, SK_EFULL, SK_ECORRUPT);
    assert_cmp(sk_pid(p), ==, -1);
    check_recoveries(p, supervised ? 2 : 1, what);
    sk_release(p);
    if (events.bad || events.finishes != 1)
        fail_msg("%s: %d events, %d FINISH, %s", what, events.n, events.finishes,
                 events.bad ? "some out of range" : "all in range");

    assert_no_children();
    if (skt_fd_count() != fds)
        fail_msg("%s: %d fds open, %d before", what, skt_fd_count(), fds);
}

/* Fewer values per field where a process costs more. */
static bool value_runs(enum value v)
{
    if (skt_slowdown() <= 1)
        return true;
    if (UNDER_VALGRIND())
        return v == V_ONES || v == V_PTR;
    return v == V_ONES || v == V_HUGE || v == V_PTR || v == V_PLUS1;
}

static void targeted(bool supervised)
{
    skt_bound(300);
    struct tally tally = {0};
    int k = 0;
    for (size_t f = 0; f < N_FIELDS; f++) {
        for (int val = 0; val < V_COUNT; val++) {
            if (!value_runs((enum value)val))
                continue;
            hostile *h = skt_new(hostile);
            h->field = (int)f;
            h->val = (enum value)val;
            /* Block only now and then: each one costs a kill. */
            h->after = k % 11 == 10 ? A_BLOCK : (enum after)(k % 4);
            k++;
            char what[128];
            snprintf(what, sizeof what, "%s %s = %s, then %d", supervised ? "supervised" : "plain",
                     fields[f].name, value_names[val], (int)h->after);
            run_case(h, supervised, what, &tally);
        }
    }
    print_message("%d cases: %d results, %d errors, %d killed\n", tally.cases, tally.ok,
                  tally.failed, tally.killed);
}

static void test_targeted_plain(void **state)
{
    (void)state;
    targeted(false);
}

static void test_targeted_supervised(void **state)
{
    (void)state;
    targeted(true);
}

/* Random bytes at random offsets, many seeds; the seed is in the failure
 * message, and SKT_HOSTILE_SEED=n runs that one alone. */
static void test_random(void **state)
{
    (void)state;
    skt_bound(300);
    int seeds = UNDER_VALGRIND() ? 12 : skt_slowdown() > 1 ? 40 : 200;
    uint64_t first = 1;
    const char *one = getenv("SKT_HOSTILE_SEED");
    if (one != NULL) {
        first = strtoull(one, NULL, 0);
        seeds = 1;
    }
    struct tally tally = {0};
    for (uint64_t seed = first; seed < first + (uint64_t)seeds; seed++) {
        hostile *h = skt_new(hostile);
        h->field = -1;
        h->seed = seed;
        uint64_t pick = seed * 0x2545F4914F6CDD1Dull >> 32;
        h->after = pick % 13 == 12 ? A_BLOCK : (enum after)(pick % 4);
        bool supervised = (pick >> 8) & 1;
        char what[128];
        snprintf(what, sizeof what, "seed %llu (%s, then %d)", (unsigned long long)seed,
                 supervised ? "supervised" : "plain", (int)h->after);
        run_case(h, supervised, what, &tally);
    }
    print_message("%d cases: %d results, %d errors, %d killed\n", tally.cases, tally.ok,
                  tally.failed, tally.killed);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_targeted_plain),
        SKT_TEST(test_targeted_supervised),
        SKT_TEST(test_random),
    };
    return skt_run(argc, argv, tests);
}
