/* SPDX-License-Identifier: MIT */
/*
 * Readiness (config.ready, sk_ready, sk_wait_ready, SK_EVENT_READY) and a
 * spawned program's ready_fd: ready from prerun and from run, the waits'
 * outcomes (timeout, crash, clean end, kill), SK_READY_ON_START at once,
 * the READY event once and in order, readiness kept across a restart, a
 * message arriving during the wait still read afterwards (and sk_fd), a
 * program's ready line (unsupervised and supervised), 8 MiB of garbage on
 * the ready pipe, a program that closes it, the fds a program sees, and a
 * worker scribbling the ready flag. Then sk_process_rearm: a crashed
 * process started again, a program rearmed 200 times, 500 cycles leaking
 * no fd and no child.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support.h"

#include "core/events.h"
#include "core/process.h"
#include "core/runtime.h"
#include "core/spawn.h"
#include "os/fd.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <sys/resource.h>

#define BOUND (10 * skt_slowdown())

/* ------------------------------------------------------------ recorder */

#define MAX_SEEN 64

struct recorder {
    int n;
    sk_event_kind kind[MAX_SEEN];
    pid_t pid[MAX_SEEN];
};

static void record(const sk_event *ev, void *ctx)
{
    struct recorder *r = ctx;
    if (r->n >= MAX_SEEN)
        return;
    r->kind[r->n] = ev->kind;
    r->pid[r->n++] = ev->pid;
}

static int count_kind(const struct recorder *r, sk_event_kind kind)
{
    int n = 0;
    for (int i = 0; i < r->n; i++)
        n += r->kind[i] == kind;
    return n;
}

/* The kinds seen, as "start ready finish". */
static const char *kinds_of(const struct recorder *r)
{
    static char buf[512];
    buf[0] = '\0';
    for (int i = 0; i < r->n; i++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", i ? " " : "",
                 sk_event_name(r->kind[i]));
    return buf;
}

#define assert_kinds(r, want) assert_string_equal(kinds_of(r), (want))

static struct recorder *watch(sk_process *p)
{
    struct recorder *r = xcalloc(1, sizeof *r);
    p->config.on_event = record;
    p->config.event_ctx = r;
    return r;
}

/* ------------------------------------------------------------ helpers */

/* A pipe whose read end a hook waits on (a gate the test opens). */
struct gate {
    int rd, wr;
};

static void gate_close(void *arg)
{
    struct gate *g = arg;
    if (g->rd >= 0)
        close(g->rd);
    if (g->wr >= 0)
        close(g->wr);
    g->rd = g->wr = -1;
}

static struct gate *gate_new(void)
{
    struct gate *g = xcalloc(1, sizeof *g);
    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    g->rd = fds[0];
    g->wr = fds[1];
    skt_defer(gate_close, g);
    return g;
}

static void gate_open(struct gate *g)
{
    skt_write_byte(g->wr, 'g');
}

/* CPU seconds this process used so far. */
static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* ------------------------------------------------------------- hooks */

enum ready_at { AT_NEVER, AT_PRERUN, AT_RUN };

/* What the workers share with the test, across restarts. */
struct across {
    _Atomic int workers;     /* workers that began (their first prerun) */
    _Atomic int ready_rc;    /* what sk_ready said, + 100 (0: not called) */
    _Atomic int crash_after; /* 1: the next run after readiness crashes (once) */
    _Atomic int phase;       /* the hostile test's step */
    _Atomic int phase_done;
};

typedef struct {
    sk_process base;
    enum ready_at at;
    long ready_run;   /* AT_RUN: on this run */
    int gate;         /* >= 0: wait for a byte before sk_ready */
    bool crash_first; /* the first attempt crashes in prerun, before readiness */
    bool twice;       /* call sk_ready twice */
    bool begun;       /* this worker ran prerun once (each worker's own copy) */
    struct across *x;
} rp;

#define RP(p) SK_CONTAINER_OF(p, rp, base)

static void rp_declare(sk_process *self)
{
    rp *r = RP(self);
    if (r->gate >= 0 && skt_read_byte(r->gate, 60) < 0)
        return;
    int rc = sk_ready(self);
    if (r->twice)
        rc = rc ? rc : sk_ready(self);
    atomic_store(&r->x->ready_rc, rc + 100);
}

/* prerun runs every iteration: a worker's first one counts it, and
 * declares readiness (each worker again: sk_ready is idempotent). */
static int rp_prerun(sk_process *self)
{
    rp *r = RP(self);
    if (r->begun)
        return 0;
    r->begun = true;
    int n = atomic_fetch_add(&r->x->workers, 1);
    if (r->crash_first && n == 0)
        skt_die_by(SIGSEGV);
    if (r->at == AT_PRERUN)
        rp_declare(self);
    return 0;
}

static int rp_run(sk_process *self)
{
    rp *r = RP(self);
    if (r->at == AT_RUN && sk_current_run(self) == r->ready_run)
        rp_declare(self);
    if (atomic_load(&self->rt->sh->ready) && atomic_exchange(&r->x->crash_after, 0))
        skt_die_by(SIGKILL);
    skt_sleep(0.001);
    return 0;
}

static int rp_result(sk_process *self)
{
    int64_t run = sk_current_run(self);
    return sk_return(self, "I", &run);
}

static const sk_class rp_class = {
    .name = "ready", .prerun = rp_prerun, .run = rp_run, .result = rp_result};

static rp *rp_new(enum ready_at at, bool supervised)
{
    rp *r = skt_new(rp);
    r->at = at;
    r->gate = -1;
    r->x = skt_shared(sizeof *r->x);
    assert_rc(sk_init(&r->base, &rp_class), SK_OK);
    r->base.config.ready = SK_READY_ON_NOTIFY;
    r->base.config.supervise = supervised;
    return r;
}

/* ------------------------------------------------------ hooks: tests */

/* Ready at the end of prerun, once the test opens the gate: not before. */
static void test_ready_from_prerun(void **state)
{
    (void)state;
    for (int sup = 0; sup < 2; sup++) {
        rp *r = rp_new(AT_PRERUN, sup);
        struct gate *g = gate_new();
        r->gate = g->rd;
        assert_rc(sk_start(&r->base), SK_OK);
        assert_rc(sk_wait_ready(&r->base, 0), SK_ETIMEDOUT);
        assert_rc(sk_wait_ready(&r->base, 0.05), SK_ETIMEDOUT);
        gate_open(g);
        assert_rc(sk_wait_ready(&r->base, BOUND), SK_OK);
        skt_wait_until(atomic_load(&r->x->ready_rc) != 0, BOUND); /* stored after sk_ready */
        assert_int_equal(atomic_load(&r->x->ready_rc), 100 + SK_OK);
        assert_rc(sk_wait_ready(&r->base, 0), SK_OK);
        assert_true(sk_alive(&r->base));
        assert_rc(sk_stop(&r->base), SK_OK);
        assert_rc(sk_wait(&r->base, BOUND), SK_OK);
        assert_no_error(&r->base);
        assert_rc(sk_wait_ready(&r->base, 0), SK_OK); /* ready, then finished */
    }
}

/* Ready from run, on run 3: the loop is there by then. */
static void test_ready_from_run(void **state)
{
    (void)state;
    for (int sup = 0; sup < 2; sup++) {
        rp *r = rp_new(AT_RUN, sup);
        r->ready_run = 3;
        assert_rc(sk_start(&r->base), SK_OK);
        assert_rc(sk_wait_ready(&r->base, -1), SK_OK);
        assert_cmp(sk_current_run(&r->base), >=, 3);
        assert_rc(sk_kill(&r->base), SK_OK);
        assert_rc(sk_wait_ready(&r->base, 0), SK_OK); /* ready, then killed */
    }
}

/* Never ready: SK_ETIMEDOUT after the timeout, asleep meanwhile. */
static void test_wait_ready_timeout(void **state)
{
    (void)state;
    for (int sup = 0; sup < 2; sup++) {
        rp *r = rp_new(AT_NEVER, sup);
        assert_rc(sk_start(&r->base), SK_OK);
        double t0 = skt_now(), c0 = cpu_seconds();
        assert_rc(sk_wait_ready(&r->base, 0.3), SK_ETIMEDOUT);
        double took = skt_now() - t0, cpu = cpu_seconds() - c0;
        assert_dbl_ge(took, 0.3);
        assert_dbl_lt(took, 5.0 * skt_slowdown());
        assert_dbl_lt(cpu, 0.1 * skt_slowdown()); /* it slept */
        assert_true(sk_alive(&r->base));
        assert_rc(sk_stop(&r->base), SK_OK);
        assert_rc(sk_wait(&r->base, BOUND), SK_OK);
        assert_no_error(&r->base);
    }
}

/* A crash before readiness: SK_EPROCESS with the crash error, the process
 * reaped and final as after sk_wait. */
static void test_crash_before_ready(void **state)
{
    (void)state;
    for (int sup = 0; sup < 2; sup++) {
        rp *r = rp_new(AT_PRERUN, sup);
        r->crash_first = true;
        struct recorder *rec = watch(&r->base);
        assert_rc(sk_start(&r->base), SK_OK);
        assert_rc(sk_wait_ready(&r->base, BOUND), SK_EPROCESS);
        const sk_error *e = sk_error_of(&r->base);
        assert_non_null(e);
        assert_int_equal(e->kind, SK_CRASH_ERROR);
        assert_int_equal(e->signal, SIGSEGV);
        assert_int_equal(e->section, SK_PRERUN);
        assert_false(sk_alive(&r->base));
        assert_rc(sk_wait(&r->base, 0), SK_OK);
        assert_rc(sk_result(&r->base, NULL), SK_EPROCESS);
        assert_rc(sk_wait_ready(&r->base, 0), SK_EPROCESS);
        assert_kinds(rec, "start crash finish");
        assert_no_children();
    }
}

/* Finished well without ever declaring readiness: SK_ECLOSED. */
static void test_finished_before_ready(void **state)
{
    (void)state;
    for (int sup = 0; sup < 2; sup++) {
        rp *r = rp_new(AT_NEVER, sup);
        r->base.config.runs = 3;
        assert_rc(sk_start(&r->base), SK_OK);
        assert_rc(sk_wait_ready(&r->base, BOUND), SK_ECLOSED);
        assert_null(sk_error_of(&r->base));
        int64_t run = -1;
        assert_rc(sk_result(&r->base, "I", &run), SK_OK);
        assert_int_equal(run, 3);
        assert_no_children();
    }
}

/* Killed before readiness: SK_EKILLED. */
static void test_killed_before_ready(void **state)
{
    (void)state;
    for (int sup = 0; sup < 2; sup++) {
        rp *r = rp_new(AT_NEVER, sup);
        assert_rc(sk_start(&r->base), SK_OK);
        assert_running(&r->base, BOUND);
        assert_rc(sk_kill(&r->base), SK_OK);
        assert_rc(sk_wait_ready(&r->base, BOUND), SK_EKILLED);
        assert_rc(sk_wait_ready(&r->base, -1), SK_EKILLED);
    }
}

/* SK_READY_ON_START: ready at once, whatever the hooks do; sk_ready in a
 * hook is SK_OK and changes nothing; no READY event. */
static void test_on_start_immediate(void **state)
{
    (void)state;
    for (int sup = 0; sup < 2; sup++) {
        rp *r = rp_new(AT_PRERUN, sup);
        r->base.config.ready = SK_READY_ON_START;
        struct gate *g = gate_new();
        r->gate = g->rd; /* prerun holds until the gate opens */
        struct recorder *rec = watch(&r->base);
        assert_rc(sk_start(&r->base), SK_OK);
        assert_rc(sk_wait_ready(&r->base, 0), SK_OK);
        gate_open(g);
        skt_wait_until(atomic_load(&r->x->ready_rc) != 0, BOUND);
        assert_int_equal(atomic_load(&r->x->ready_rc), 100 + SK_OK);
        assert_rc(sk_stop(&r->base), SK_OK);
        assert_rc(sk_wait(&r->base, BOUND), SK_OK);
        assert_rc(sk_wait_ready(&r->base, 0), SK_OK);
        assert_kinds(rec, "start finish");
    }
}

/* READY once (sk_ready called twice), after START, before FINISH, naming
 * the worker. */
static void test_ready_event_once_in_order(void **state)
{
    (void)state;
    assert_string_equal(sk_event_name(SK_EVENT_READY), "ready");
    assert_int_equal(SK_EVENT_READY, SK_EVENT_FINISH + 1);
    for (int sup = 0; sup < 2; sup++) {
        rp *r = rp_new(AT_PRERUN, sup);
        r->twice = true;
        struct recorder *rec = watch(&r->base);
        assert_rc(sk_start(&r->base), SK_OK);
        assert_rc(sk_wait_ready(&r->base, BOUND), SK_OK);
        assert_kinds(rec, "start ready");
        assert_int_equal(rec->pid[1], sk_pid(&r->base));
        assert_rc(sk_wait_ready(&r->base, 0), SK_OK);
        assert_rc(sk_stop(&r->base), SK_OK);
        assert_rc(sk_wait(&r->base, BOUND), SK_OK);
        assert_kinds(rec, "start ready finish");
        assert_int_equal(atomic_load(&r->x->ready_rc), 100 + SK_OK);
    }
    /* Delivered by sk_wait as it happens, too. */
    rp *r = rp_new(AT_RUN, true);
    r->ready_run = 2;
    r->base.config.runs = 4;
    struct recorder *rec = watch(&r->base);
    assert_rc(sk_start(&r->base), SK_OK);
    assert_rc(sk_wait(&r->base, BOUND), SK_OK);
    assert_kinds(rec, "start ready finish");
}

/* Misuse: sk_ready from the parent, calls before sk_start, a bad mode. */
static void test_ready_misuse(void **state)
{
    (void)state;
    rp *r = rp_new(AT_NEVER, false);
    assert_rc(sk_ready(&r->base), SK_ESTATE);
    assert_non_null(strstr(sk_last_error_message(), "sk_wait_ready"));
    assert_rc(sk_wait_ready(&r->base, 0), SK_ESTATE);
    assert_non_null(strstr(sk_last_error_message(), "not started"));
    assert_rc(sk_ready(NULL), SK_EINVAL);
    assert_rc(sk_wait_ready(NULL, 0), SK_EINVAL);
    r->base.config.ready = (sk_ready_mode)7;
    assert_rc(sk_start(&r->base), SK_EINVAL);
    assert_non_null(strstr(sk_last_error_message(), "config.ready"));
    r->base.config.ready = SK_READY_ON_NOTIFY;
    assert_rc(sk_start(&r->base), SK_OK);
    assert_rc(sk_ready(&r->base), SK_ESTATE); /* started: still the parent */
    assert_rc(sk_kill(&r->base), SK_OK);
}

/* Lives: the first worker crashes before readiness and is replaced; the
 * next one declares it. Then a crash after readiness: the restarted worker
 * leaves it ready, and its own sk_ready makes no second READY. */
static void test_ready_kept_across_restart(void **state)
{
    (void)state;
    rp *r = rp_new(AT_PRERUN, false);
    r->base.config.lives = 3;
    r->crash_first = true;
    struct recorder *rec = watch(&r->base);
    assert_rc(sk_start(&r->base), SK_OK);
    assert_rc(sk_wait_ready(&r->base, BOUND), SK_OK);
    assert_int_equal(sk_restarts(&r->base), 1);
    assert_kinds(rec, "start crash restart ready");
    pid_t first = sk_pid(&r->base);
    atomic_store(&r->x->crash_after, 1);
    skt_wait_until(sk_restarts(&r->base) == 2, BOUND);
    assert_rc(sk_wait_ready(&r->base, 0), SK_OK);
    skt_wait_until(atomic_load(&r->x->workers) == 3, BOUND);
    skt_wait_until(sk_pid(&r->base) > 0 && sk_pid(&r->base) != first, BOUND);
    assert_rc(sk_wait_ready(&r->base, 0), SK_OK);
    assert_rc(sk_stop(&r->base), SK_OK);
    assert_rc(sk_wait(&r->base, BOUND), SK_OK);
    assert_no_error(&r->base);
    assert_kinds(rec, "start crash restart ready crash restart finish");
    assert_int_equal(count_kind(rec, SK_EVENT_READY), 1);
    assert_rc(sk_wait_ready(&r->base, 0), SK_OK);
}

/* A process that tells a message and only later becomes ready. */
typedef struct {
    sk_process base;
    int tell_gate, ready_gate;
} teller;

static int teller_prerun(sk_process *self)
{
    teller *t = SK_CONTAINER_OF(self, teller, base);
    if (skt_read_byte(t->tell_gate, 60) < 0)
        return -1;
    int32_t v = 42;
    sk_tell(self, "i", &v);
    if (skt_read_byte(t->ready_gate, 60) < 0)
        return -1;
    return sk_ready(self);
}

static int teller_run(sk_process *self)
{
    int32_t v;
    int rc = sk_listen(self, -1, "i", &v);
    if (rc == SK_ECLOSED)
        sk_stop(self);
    return 0;
}

static const sk_class teller_class = {.name = "teller", .prerun = teller_prerun, .run = teller_run};

static bool fd_readable(int fd, double timeout)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int n;
    while ((n = poll(&pfd, 1, (int)(timeout * 1000))) < 0 && errno == EINTR)
        ;
    return n > 0;
}

/* The message that arrives while the parent sits in sk_wait_ready stays
 * for sk_listen, and sk_fd polls readable for it; readiness makes sk_fd
 * readable once, and sk_listen quiets it. */
static void test_message_during_wait_ready(void **state)
{
    (void)state;
    for (int sup = 0; sup < 2; sup++) {
        teller *t = skt_new(teller);
        struct gate *tg = gate_new(), *rg = gate_new();
        t->tell_gate = tg->rd;
        t->ready_gate = rg->rd;
        assert_rc(sk_init(&t->base, &teller_class), SK_OK);
        t->base.config.ready = SK_READY_ON_NOTIFY;
        t->base.config.supervise = sup;
        assert_rc(sk_start(&t->base), SK_OK);
        int fd = sk_fd(&t->base);
        assert_true(fd >= 0);
        assert_false(fd_readable(fd, 0));
        gate_open(tg); /* the message comes while we wait */
        assert_rc(sk_wait_ready(&t->base, 0.5), SK_ETIMEDOUT);
        assert_true(fd_readable(fd, BOUND));
        int32_t v = 0;
        assert_rc(sk_listen(&t->base, 0, "i", &v), SK_OK);
        assert_int_equal(v, 42);
        assert_rc(sk_listen(&t->base, 0, "i", &v), SK_ETIMEDOUT);
        assert_false(fd_readable(fd, 0));
        gate_open(rg);
        assert_true(fd_readable(fd, BOUND)); /* readiness rings it */
        assert_rc(sk_wait_ready(&t->base, 0), SK_OK);
        assert_rc(sk_listen(&t->base, 0, "i", &v), SK_ETIMEDOUT);
        assert_false(fd_readable(fd, 0));
        assert_rc(sk_stop(&t->base), SK_OK);
        assert_rc(sk_wait(&t->base, BOUND), SK_OK);
        assert_no_error(&t->base);
    }
}

/* A worker that scribbles the ready flag and rings the ready doorbell
 * while the parent waits: zeros only (the parent times out on time), then
 * random values (any non-zero is ready), then zero again (it stays ready),
 * and forged READY entries in the event log (one READY event in all). */
typedef struct {
    sk_process base;
    struct across *x;
} scribbler;

static void scribble_step(struct across *x, int k)
{
    atomic_store(&x->phase, k);
    skt_wait_until(atomic_load(&x->phase_done) >= k, BOUND);
}

static int scribbler_run(sk_process *self)
{
    scribbler *s = SK_CONTAINER_OF(self, scribbler, base);
    struct sk_shared *sh = self->rt->sh;
    uint32_t seed = (uint32_t)getpid();
    for (int k = 1; k <= 3; k++) {
        while (atomic_load(&s->x->phase) < k && !atomic_load(&sh->stop)) {
            seed = seed * 1103515245u + 12345u;
            if (k == 1) {
                atomic_store(&sh->ready, 0);
            } else if (k == 2) {
                atomic_store(&sh->ready, seed | 1u);
            } else {
                atomic_store(&sh->ready, 0);
                sk_event_log(self->rt, SK_EVENT_READY, (int)(seed % 100) - 50, -(long)seed,
                             (pid_t)seed, NULL);
            }
            if (self->rt->ready_doorbell >= 0)
                sk_doorbell_ring(self->rt->ready_doorbell);
            if (seed % 64 == 0)
                skt_sleep(0.0002);
        }
        atomic_store(&s->x->phase_done, k);
    }
    sk_stop(self);
    return 0;
}

static const sk_class scribbler_class = {.name = "scribbler", .run = scribbler_run};

static void test_hostile_ready_flag(void **state)
{
    (void)state;
    for (int sup = 0; sup < 2; sup++) {
        scribbler *s = skt_new(scribbler);
        s->x = skt_shared(sizeof *s->x);
        assert_rc(sk_init(&s->base, &scribbler_class), SK_OK);
        s->base.config.ready = SK_READY_ON_NOTIFY;
        s->base.config.supervise = sup;
        struct recorder *rec = watch(&s->base);
        assert_rc(sk_start(&s->base), SK_OK);
        double t0 = skt_now();
        assert_rc(sk_wait_ready(&s->base, 0.3), SK_ETIMEDOUT);
        assert_dbl_lt(skt_now() - t0, 5.0 * skt_slowdown());
        scribble_step(s->x, 1);
        assert_rc(sk_wait_ready(&s->base, BOUND), SK_OK);
        scribble_step(s->x, 2);
        assert_rc(sk_wait_ready(&s->base, 0), SK_OK);
        scribble_step(s->x, 3);
        assert_rc(sk_wait_ready(&s->base, 0), SK_OK);
        assert_rc(sk_wait(&s->base, BOUND), SK_OK);
        assert_no_error(&s->base);
        assert_int_equal(count_kind(rec, SK_EVENT_READY), 1);
        assert_int_equal(rec->kind[0], SK_EVENT_START);
        assert_int_equal(rec->kind[rec->n - 1], SK_EVENT_FINISH);
        assert_rc(sk_wait_ready(&s->base, 0), SK_OK);
    }
}

/* ----------------------------------------------------- spawned programs */

typedef struct {
    sk_process base;
} prog;

static void supervise(sk_config *c)
{
    c->supervise = true;
}

static void two_lives(sk_config *c)
{
    c->lives = 2;
}

static prog *spawn_ready(const char *script, int ready_fd, void (*cfg_fn)(sk_config *),
                         struct recorder **rec)
{
    const char *argv[] = {"sh", "-c", script, NULL};
    sk_spawn_config c = {.argv = argv, .ready_fd = ready_fd};
    prog *p = skt_new(prog);
    assert_rc(sk_spawn_init(&p->base, &c), SK_OK);
    if (cfg_fn != NULL)
        cfg_fn(&p->base.config);
    if (rec != NULL)
        *rec = watch(&p->base);
    assert_rc(sk_start(&p->base), SK_OK);
    return p;
}

/* The ready line, unsupervised and supervised: ready, then stopped. */
static void test_program_ready_line(void **state)
{
    (void)state;
    void (*how[])(sk_config *) = {NULL, supervise, two_lives};
    for (int k = 0; k < 3; k++) {
        struct recorder *rec;
        prog *p = spawn_ready("sleep 0.05; echo >&3; exec sleep 30", 3, how[k], &rec);
        assert_rc(sk_wait_ready(&p->base, 0), SK_ETIMEDOUT);
        assert_rc(sk_wait_ready(&p->base, BOUND), SK_OK);
        assert_true(sk_alive(&p->base));
        assert_kinds(rec, "start ready");
        assert_int_equal(rec->pid[1], sk_pid(&p->base));
        assert_rc(sk_stop(&p->base), SK_OK);
        assert_rc(sk_wait(&p->base, BOUND), SK_OK);
        assert_null(sk_error_of(&p->base)); /* ended by sk_stop's SIGTERM */
        assert_kinds(rec, "start ready finish");
        assert_rc(sk_wait_ready(&p->base, 0), SK_OK);
    }
}

/* A line in pieces, and at another fd number. */
static void test_program_ready_pieces(void **state)
{
    (void)state;
    prog *p = spawn_ready("printf ab >&5; sleep 0.05; printf 'c\\nrest' >&5; exec sleep 30", 5,
                          NULL, NULL);
    assert_rc(sk_wait_ready(&p->base, BOUND), SK_OK);
    assert_rc(sk_kill(&p->base), SK_OK);
}

/* 8 MiB without a newline: never ready, the parent drains it while it
 * waits (the program is not blocked), times out, and is fine; a newline
 * afterwards still counts. */
static void test_program_ready_garbage(void **state)
{
    (void)state;
    const char *argv[] = {
        "sh", "-c",
        "head -c 8388608 /dev/zero | tr '\\0' x >&3; echo done; read go; echo >&3; exec sleep 30",
        NULL};
    sk_spawn_config c = {.argv = argv, .ready_fd = 3};
    c.stdio[0].mode = SK_STDIO_PIPE;
    c.stdio[1].mode = SK_STDIO_PIPE;
    for (int sup = 0; sup < 2; sup++) {
        long heap = skt_heap_kb();
        prog *p = skt_new(prog);
        assert_rc(sk_spawn_init(&p->base, &c), SK_OK);
        p->base.config.supervise = sup;
        assert_rc(sk_start(&p->base), SK_OK);
        char line[64];
        long n;
        double end = skt_now() + 60 * skt_slowdown();
        while ((n = sk_spawn_read_line(&p->base, 1, line, sizeof line, 0.05)) == SK_ETIMEDOUT) {
            assert_rc(sk_wait_ready(&p->base, 0.05), SK_ETIMEDOUT);
            assert_dbl_lt(skt_now(), end);
        }
        assert_int_equal(n, 5);
        assert_string_equal(line, "done\n");
        assert_rc(sk_wait_ready(&p->base, 0.1), SK_ETIMEDOUT);
        assert_true(sk_alive(&p->base));
        assert_int_lt(skt_heap_kb() - heap, 1024);
        assert_rc(sk_spawn_write(&p->base, "go\n", 3, BOUND, NULL), SK_OK);
        assert_rc(sk_wait_ready(&p->base, BOUND), SK_OK);
        assert_rc(sk_kill(&p->base), SK_OK);
    }
}

/* A program that closes its ready fd: the parent stops looking (no spin
 * on the end of file) and says SK_ECLOSED when it exits 0, SK_EPROCESS
 * when it fails. */
static void test_program_closes_ready_fd(void **state)
{
    (void)state;
    for (int sup = 0; sup < 2; sup++) {
        prog *p = spawn_ready("exec 3>&-; exit 0", 3, sup ? supervise : NULL, NULL);
        assert_rc(sk_wait_ready(&p->base, BOUND), SK_ECLOSED);
        assert_null(sk_error_of(&p->base));
        assert_int_equal(sk_spawn_status(&p->base), 0);

        p = spawn_ready("exec 3>&-; sleep 0.3", 3, sup ? supervise : NULL, NULL);
        double c0 = cpu_seconds();
        assert_rc(sk_wait_ready(&p->base, BOUND), SK_ECLOSED);
        assert_dbl_lt(cpu_seconds() - c0, 0.1 * skt_slowdown());

        p = spawn_ready("exec 3>&-; exit 3", 3, sup ? supervise : NULL, NULL);
        assert_rc(sk_wait_ready(&p->base, BOUND), SK_EPROCESS);
        assert_int_equal(sk_error_of(&p->base)->exit_status, 3);
    }
    /* Killed before its line: SK_EKILLED. */
    prog *p = spawn_ready("exec sleep 30", 3, NULL, NULL);
    assert_rc(sk_kill(&p->base), SK_OK);
    assert_rc(sk_wait_ready(&p->base, 0), SK_EKILLED);
}

/* Supervised with lives: the first attempt fails before its line, the
 * second writes it; then it fails after its line and the restarted
 * program (which writes nothing) leaves it ready; one READY in all. */
static void test_program_ready_supervised_lives(void **state)
{
    (void)state;
    const char *dir = skt_use_tmpdir("skproc-ready");
    char script[512];
    snprintf(script, sizeof script,
             "if [ -e %s/a ]; then if [ -e %s/b ]; then exec sleep 30; fi; touch %s/b; echo >&3; "
             "read go; exit 1; fi; touch %s/a; exit 1",
             dir, dir, dir, dir);
    const char *argv[] = {"sh", "-c", script, NULL};
    sk_spawn_config c = {.argv = argv, .ready_fd = 3};
    c.stdio[0].mode = SK_STDIO_PIPE;
    prog *p = skt_new(prog);
    assert_rc(sk_spawn_init(&p->base, &c), SK_OK);
    p->base.config.lives = 3;
    struct recorder *rec = watch(&p->base);
    assert_rc(sk_start(&p->base), SK_OK);
    assert_rc(sk_wait_ready(&p->base, BOUND), SK_OK);
    assert_int_equal(sk_restarts(&p->base), 1);
    assert_kinds(rec, "start crash restart ready");
    assert_rc(sk_spawn_write(&p->base, "go\n", 3, BOUND, NULL), SK_OK);
    skt_wait_until(sk_restarts(&p->base) == 2, BOUND);
    assert_rc(sk_wait_ready(&p->base, 0), SK_OK);
    assert_true(sk_alive(&p->base));
    assert_rc(sk_kill(&p->base), SK_OK);
    assert_int_equal(count_kind(rec, SK_EVENT_READY), 1);
    assert_rc(sk_wait_ready(&p->base, 0), SK_OK);
}

/* fd's target ("pipe:[123]") and its open flags, from /proc. */
static bool fd_target(pid_t pid, int fd, char *buf, size_t len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)pid, fd);
    ssize_t n = readlink(path, buf, len - 1);
    if (n < 0)
        return false;
    buf[n] = '\0';
    return true;
}

static int fd_flags(pid_t pid, int fd)
{
    char path[64], line[128];
    snprintf(path, sizeof path, "/proc/%d/fdinfo/%d", (int)pid, fd);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -1;
    int flags = -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "flags: %o", (unsigned *)&flags) == 1)
            break;
    fclose(f);
    return flags;
}

/* The program's fds above 2: exactly `want` (ready_fd), or also the
 * test's own inheritable ones when close_fds is off. True when so. */
static bool program_fds_are(pid_t pid, int want, bool close_fds)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return false;
    bool ok = true, seen = false;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        int fd = atoi(de->d_name);
        if (fd <= 2)
            continue;
        if (fd == want) {
            seen = true;
            continue;
        }
        int fl = fcntl(fd, F_GETFD);
        ok = ok && !close_fds && fl >= 0 && !(fl & FD_CLOEXEC); /* the test's own */
    }
    closedir(d);
    return ok && seen;
}

/* /proc/PID/fd of the program: the ready pipe's write end at exactly
 * ready_fd, nothing of skproc's; the parent's read end close-on-exec and
 * non-blocking; a supervisor holds the write end only. */
static void test_program_fds(void **state)
{
    (void)state;
    for (int k = 0; k < 4; k++) {
        bool sup = k & 1, close_fds = k & 2;
        int want = close_fds ? 7 : 3;
        const char *argv[] = {
            "sh", "-c", close_fds ? "echo >&7; exec sleep 30" : "echo >&3; exec sleep 30", NULL};
        sk_spawn_config c = {.argv = argv, .ready_fd = want, .close_fds = close_fds};
        prog *p = skt_new(prog);
        assert_rc(sk_spawn_init(&p->base, &c), SK_OK);
        p->base.config.supervise = sup;
        assert_rc(sk_start(&p->base), SK_OK);
        assert_rc(sk_wait_ready(&p->base, BOUND), SK_OK);
        pid_t pid = sk_pid(&p->base);
        assert_true(pid > 0);
        skt_wait_until(program_fds_are(pid, want, close_fds), BOUND);
        int rd = p->base.rt->spawn->ready_parent;
        assert_true(rd > 2);
        assert_true(fcntl(rd, F_GETFD) & FD_CLOEXEC);
        assert_true(fcntl(rd, F_GETFL) & O_NONBLOCK);
        char mine[128], theirs[128];
        assert_true(fd_target(getpid(), rd, mine, sizeof mine));
        assert_true(fd_target(pid, want, theirs, sizeof theirs));
        assert_string_equal(mine, theirs); /* the same pipe */
        assert_int_equal(fd_flags(pid, want) & O_ACCMODE, O_WRONLY);
        assert_int_equal(fcntl(rd, F_GETFL) & O_ACCMODE, O_RDONLY);
        if (sup) {
            pid_t super = p->base.rt->child_pid;
            char path[64];
            snprintf(path, sizeof path, "/proc/%d/fd", (int)super);
            DIR *d = opendir(path);
            assert_non_null(d);
            struct dirent *de;
            int ends = 0;
            while ((de = readdir(d)) != NULL) {
                char t[128];
                if (de->d_name[0] == '.' || !fd_target(super, atoi(de->d_name), t, sizeof t) ||
                    strcmp(t, mine) != 0)
                    continue;
                ends++;
                assert_int_equal(fd_flags(super, atoi(de->d_name)) & O_ACCMODE, O_WRONLY);
            }
            closedir(d);
            assert_int_equal(ends, 1);
        }
        assert_rc(sk_kill(&p->base), SK_OK);
    }
}

/* What sk_spawn_init and sk_start refuse. */
static void test_program_ready_fd_refused(void **state)
{
    (void)state;
    const char *argv[] = {"true", NULL};
    int bad[] = {1, 2, -1, -3, INT32_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sk_process p;
        memset(&p, 0, sizeof p);
        sk_spawn_config c = {.argv = argv, .ready_fd = bad[i]};
        assert_rc(sk_spawn_init(&p, &c), SK_EINVAL);
        assert_non_null(strstr(sk_last_error_message(), "ready_fd"));
    }
    /* SK_READY_ON_NOTIFY for a program with nothing to notify through. */
    prog *p = skt_new(prog);
    assert_rc(sk_spawn_init(&p->base, &(sk_spawn_config){.argv = argv}), SK_OK);
    p->base.config.ready = SK_READY_ON_NOTIFY;
    assert_rc(sk_start(&p->base), SK_EINVAL);
    assert_non_null(strstr(sk_last_error_message(), "ready_fd"));
    /* Without ready_fd, a program is ready on start. */
    p->base.config.ready = SK_READY_ON_START;
    assert_rc(sk_start(&p->base), SK_OK);
    assert_rc(sk_wait_ready(&p->base, 0), SK_OK);
    assert_rc(sk_wait(&p->base, BOUND), SK_OK);
}

/* ------------------------------------------------------------- rearm */

typedef struct {
    sk_process base;
    struct across *x;
} once_crash;

static int once_crash_run(sk_process *self)
{
    once_crash *o = SK_CONTAINER_OF(self, once_crash, base);
    if (atomic_fetch_add(&o->x->workers, 1) == 0) /* the very first run call, of all workers */
        skt_die_by(SIGSEGV);
    return sk_ready(self);
}

static int once_crash_result(sk_process *self)
{
    int64_t v = 7 * sk_current_run(self);
    return sk_return(self, "I", &v);
}

static const sk_class once_crash_class = {
    .name = "once_crash", .run = once_crash_run, .result = once_crash_result};

/* Start, crash, rearm, start again: the second run's result, error,
 * timers and events are its own; p->config is as the user set it. */
static void test_rearm_after_crash(void **state)
{
    (void)state;
    once_crash *o = skt_new(once_crash);
    o->x = skt_shared(sizeof *o->x);
    assert_rc(sk_init(&o->base, &once_crash_class), SK_OK);
    assert_rc(sk_process_rearm(&o->base), SK_OK); /* never started: nothing to do */
    o->base.config.runs = 3;
    o->base.config.ready = SK_READY_ON_NOTIFY;
    o->base.config.timeouts.onfinish = 30;
    struct recorder *rec = watch(&o->base);
    sk_config before = o->base.config;
    assert_rc(sk_start(&o->base), SK_OK);
    assert_rc(sk_process_rearm(&o->base), SK_ESTATE); /* still running (or not waited) */
    assert_rc(sk_wait_ready(&o->base, BOUND), SK_EPROCESS);
    assert_int_equal(sk_error_of(&o->base)->kind, SK_CRASH_ERROR);
    int64_t v = -1;
    assert_rc(sk_result(&o->base, "I", &v), SK_EPROCESS);
    assert_rc(sk_process_rearm(&o->base), SK_OK);
    assert_memory_equal(&o->base.config, &before, sizeof before);
    assert_null(sk_error_of(&o->base));
    assert_int_equal(sk_attempts(&o->base), 0);
    assert_rc(sk_wait_ready(&o->base, 0), SK_ESTATE);
    assert_rc(sk_result(&o->base, "I", &v), SK_ESTATE);
    assert_rc(sk_start(&o->base), SK_OK);
    assert_rc(sk_wait_ready(&o->base, BOUND), SK_OK);
    assert_rc(sk_result(&o->base, "I", &v), SK_OK);
    assert_int_equal(v, 21);
    assert_null(sk_error_of(&o->base));
    assert_int_equal(sk_timer_count(sk_timer_of(&o->base, SK_RUN)), 3);
    assert_kinds(rec, "start crash finish start ready finish");
    /* After sk_kill too. */
    assert_rc(sk_process_rearm(&o->base), SK_OK);
    o->base.config.runs = 0;
    assert_rc(sk_start(&o->base), SK_OK);
    assert_rc(sk_wait_ready(&o->base, BOUND), SK_OK);
    assert_rc(sk_kill(&o->base), SK_OK);
    assert_rc(sk_process_rearm(&o->base), SK_OK);
    /* After a failed sk_start: startable once the config is right. */
    o->base.config.ready = (sk_ready_mode)9;
    assert_rc(sk_start(&o->base), SK_EINVAL);
    assert_rc(sk_process_rearm(&o->base), SK_OK);
    o->base.config.ready = SK_READY_ON_START;
    o->base.config.runs = 1;
    assert_rc(sk_start(&o->base), SK_OK);
    assert_rc(sk_result(&o->base, "I", &v), SK_OK);
    assert_int_equal(v, 7);
    /* Not a parent's handle, or none. */
    assert_rc(sk_process_rearm(NULL), SK_EINVAL);
}

/* A spawned program rearmed 200 times runs each time, with its argv, its
 * pipes and its ready pipe made afresh. */
static void test_rearm_program_200(void **state)
{
    (void)state;
    const char *argv[] = {"sh", "-c", "echo >&3; echo \"$0 $1\"", "hello", "again", NULL};
    sk_spawn_config c = {.argv = argv, .ready_fd = 3};
    c.stdio[1].mode = SK_STDIO_PIPE;
    prog *p = skt_new(prog);
    assert_rc(sk_spawn_init(&p->base, &c), SK_OK);
    argv[3] = "changed"; /* the plan holds its own copies */
    int rounds = SKT_SANITIZED ? 100 : 200;
    for (int i = 0; i < rounds; i++) {
        p->base.config.supervise = i % 2;
        assert_rc(sk_start(&p->base), SK_OK);
        assert_rc(sk_wait_ready(&p->base, BOUND), SK_OK);
        char line[64];
        assert_int_equal(sk_spawn_read_line(&p->base, 1, line, sizeof line, BOUND), 12);
        assert_string_equal(line, "hello again\n");
        assert_rc(sk_wait(&p->base, BOUND), SK_OK);
        assert_int_equal(sk_spawn_status(&p->base), 0);
        assert_rc(sk_process_rearm(&p->base), SK_OK);
        assert_rc(sk_spawn_fd(&p->base, 1), SK_ESTATE);
    }
}

/* 500 cycles of start, ready, end, rearm, for a process of hooks and for
 * a program with a ready fd: no fd and no child left over. */
static void test_rearm_no_leaks(void **state)
{
    (void)state;
    skt_bound(240);
    once_crash *o = skt_new(once_crash);
    o->x = skt_shared(sizeof *o->x);
    atomic_store(&o->x->workers, 1); /* never crashes */
    assert_rc(sk_init(&o->base, &once_crash_class), SK_OK);
    o->base.config.runs = 1;
    o->base.config.ready = SK_READY_ON_NOTIFY;
    const char *argv[] = {"sh", "-c", "echo >&3", NULL};
    sk_spawn_config c = {.argv = argv, .ready_fd = 3};
    c.stdio[1].mode = SK_STDIO_PIPE;
    prog *p = skt_new(prog);
    assert_rc(sk_spawn_init(&p->base, &c), SK_OK);
    int fds = -1;
    long heap = 0;
    int cycles = SKT_SANITIZED ? 200 : 500;
    for (int i = 0; i < cycles; i++) {
        if (i == 2) { /* after the first of each kind, supervised and not */
            fds = skt_fd_count();
            heap = skt_heap_kb();
        }
        o->base.config.supervise = i % 2;
        p->base.config.supervise = i % 2;
        assert_rc(sk_start(&o->base), SK_OK);
        assert_rc(sk_start(&p->base), SK_OK);
        if (i % 3 == 0)
            assert_true(sk_fd(&o->base) >= 0);
        assert_rc(sk_wait_ready(&o->base, BOUND), SK_OK);
        assert_rc(sk_wait_ready(&p->base, BOUND), SK_OK);
        int64_t v;
        assert_rc(sk_result(&o->base, "I", &v), SK_OK);
        if (i % 5 == 0)
            assert_rc(sk_kill(&p->base), SK_OK);
        assert_rc(sk_wait(&p->base, BOUND), SK_OK);
        assert_rc(sk_process_rearm(&o->base), SK_OK);
        assert_rc(sk_process_rearm(&p->base), SK_OK);
        assert_no_children();
    }
    assert_int_equal(skt_fd_count(), fds);
    assert_int_lt(skt_heap_kb() - heap, 512);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_ready_from_prerun),
        SKT_TEST(test_ready_from_run),
        SKT_TEST(test_wait_ready_timeout),
        SKT_TEST(test_crash_before_ready),
        SKT_TEST(test_finished_before_ready),
        SKT_TEST(test_killed_before_ready),
        SKT_TEST(test_on_start_immediate),
        SKT_TEST(test_ready_event_once_in_order),
        SKT_TEST(test_ready_misuse),
        SKT_TEST(test_ready_kept_across_restart),
        SKT_TEST(test_message_during_wait_ready),
        SKT_TEST(test_hostile_ready_flag),
        SKT_TEST(test_program_ready_line),
        SKT_TEST(test_program_ready_pieces),
        SKT_TEST(test_program_ready_garbage),
        SKT_TEST(test_program_closes_ready_fd),
        SKT_TEST(test_program_ready_supervised_lives),
        SKT_TEST(test_program_fds),
        SKT_TEST(test_program_ready_fd_refused),
        SKT_TEST(test_rearm_after_crash),
        SKT_TEST(test_rearm_program_200),
        SKT_TEST(test_rearm_no_leaks),
    };
    return skt_run(argc, argv, tests);
}
