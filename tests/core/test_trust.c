/* SPDX-License-Identifier: MIT */
/*
 * The trust rule, one test per check the library makes: a child that
 * writes what it should not (the ring's control block, the error record,
 * the result length, the worker's pid, the timers, the lives count) costs
 * at most its own messages or its own process, and the calls that refuse
 * bad input (config values, malformed listen formats, sk_init on a live
 * handle) refuse it before anything happens. Each test names the check it
 * pins; without that check, it fails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support.h"

#include "core/result.h"
#include "core/runtime.h"

#include <grp.h>
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/resource.h>

/* sk_tell of one int32 (tell takes pointers, as tpl does). */
static int tell_int(sk_process *p, int32_t v)
{
    return sk_tell(p, "i", &v);
}

/* -------------------------------------------------- steps from the test */

/* The test asks a hook for step k (req) and waits until the hook says it
 * has done it (done). */
struct steps {
    _Atomic int req;
    _Atomic int done;
};

typedef struct {
    sk_process base;
    struct steps *st;
    pid_t victim; /* a process the worker pretends is its own */
    int mode;
} hostile;

static void step(struct steps *st, int k)
{
    atomic_store(&st->req, k);
    skt_wait_until(atomic_load(&st->done) == k, 10.0 * skt_slowdown());
}

/* In a hook: waits for the test's request for step k (or a stop). */
static bool hook_await(sk_process *self, struct steps *st, int k)
{
    while (atomic_load(&st->req) < k) {
        if (atomic_load(&self->rt->sh->stop))
            return false;
        skt_sleep(0.0002);
    }
    return true;
}

static void hook_done(struct steps *st, int k)
{
    atomic_store(&st->done, k);
}

static hostile *new_hostile(const sk_class *cls)
{
    hostile *h = skt_new(hostile);
    h->st = skt_shared(sizeof *h->st);
    assert_rc(sk_init(&h->base, cls), SK_OK);
    return h;
}

/* ---------------------------------------------------------- the rings */

/* A parent global the worker names by address: nothing of it may change. */
static unsigned char parent_canary[4096];

/* The ring to the parent: head far ahead of tail, then a tail ahead of
 * head; then the ring to the worker: a head (and tail) that points just
 * before the end of the data area, unaligned, then the address of a parent
 * global. */
static int ring_forger_run(sk_process *self)
{
    hostile *h = (hostile *)self;
    struct sk_runtime *rt = self->rt;
    struct sk_ring_ctl *to_parent = &rt->sh->rings[0];
    struct sk_ring_ctl *to_worker = &rt->sh->rings[1];
    uint64_t size = rt->ep.in.size; /* the worker's in: the ring to the worker */

    if (!hook_await(self, h->st, 1))
        return 0;
    tell_int(self, 7);
    atomic_store(&to_parent->head, atomic_load(&to_parent->tail) + ((uint64_t)1 << 40));
    hook_done(h->st, 1);

    if (!hook_await(self, h->st, 2))
        return 0;
    tell_int(self, 8);
    atomic_store(&to_parent->tail, atomic_load(&to_parent->head) + 4096);
    hook_done(h->st, 2);

    if (!hook_await(self, h->st, 3))
        return 0;
    uint64_t at = 5 * size + size - 3; /* 3 bytes before the end, unaligned */
    atomic_store(&to_worker->tail, at);
    atomic_store(&to_worker->head, at);
    hook_done(h->st, 3);

    if (!hook_await(self, h->st, 4))
        return 0;
    uint64_t addr = (uint64_t)(uintptr_t)parent_canary;
    atomic_store(&to_worker->tail, addr);
    atomic_store(&to_worker->head, addr + 1);
    hook_done(h->st, 4);

    hook_await(self, h->st, 5);
    sk_stop(self);
    return 0;
}

static const sk_class ring_forger_class = {.name = "ring_forger", .run = ring_forger_run};

struct guard {
    void *at;
    size_t len;
};

static void guard_unmap(void *arg)
{
    struct guard *g = arg;
    munmap(g->at, g->len);
    free(g);
}

/* A page right after the process's mapping, filled with a pattern: a write
 * past the end of the ring to the worker lands there. */
static unsigned char *guard_after(const struct sk_runtime *rt)
{
    void *want = (char *)rt->sh + rt->map_size;
    void *at = mmap(want, 4096, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (at == MAP_FAILED || at != want) {
        if (at != MAP_FAILED)
            munmap(at, 4096);
        return NULL;
    }
    struct guard *g = malloc(sizeof *g);
    assert_non_null(g);
    *g = (struct guard){at, 4096};
    skt_defer(guard_unmap, g);
    memset(at, 0xC3, 4096);
    return at;
}

static bool all_bytes(const unsigned char *p, size_t n, unsigned char v)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != v)
            return false;
    return true;
}

/* Pins ring_front's checks (a tail more than the ring apart from head is
 * SK_ECORRUPT and everything published is dropped) and ring_reserve's
 * (an unaligned head from the peer is SK_ECORRUPT: the wrap marker would
 * be written past the data area). */
static void test_ring_forged_control(void **state)
{
    (void)state;
    memset(parent_canary, 0x5A, sizeof parent_canary);
    hostile *h = new_hostile(&ring_forger_class);
    assert_rc(sk_start(&h->base), SK_OK);
    unsigned char *guard = guard_after(h->base.rt);
    if (guard == NULL)
        print_message("note: no free page after the mapping; the guard check is skipped\n");

    int32_t v = 0;
    step(h->st, 1); /* head far ahead */
    assert_rc(sk_listen(&h->base, 5, "i", &v), SK_ECORRUPT);
    assert_rc(sk_listen(&h->base, 0, "i", &v), SK_ETIMEDOUT); /* all of it dropped */

    step(h->st, 2); /* tail ahead of head */
    assert_rc(sk_listen(&h->base, 5, "i", &v), SK_ECORRUPT);
    assert_rc(sk_listen(&h->base, 0, "i", &v), SK_ETIMEDOUT);

    step(h->st, 3); /* the ring to the worker: head unaligned, 3 bytes before its end */
    int rc = tell_int(&h->base, 1);
    assert_true(rc == SK_OK || rc == SK_ECORRUPT);
    if (guard != NULL)
        assert_true(all_bytes(guard, 4096, 0xC3));
    assert_rc(rc, SK_ECORRUPT);

    step(h->st, 4); /* head and tail: the address of a parent global */
    rc = tell_int(&h->base, 2);
    assert_true(rc == SK_OK || rc == SK_ECORRUPT || rc == SK_EFULL);
    assert_true(all_bytes(parent_canary, sizeof parent_canary, 0x5A));
    if (guard != NULL)
        assert_true(all_bytes(guard, 4096, 0xC3));

    atomic_store(&h->st->req, 5);
    assert_rc(sk_wait(&h->base, 10 * skt_slowdown()), SK_OK);
    assert_no_error(&h->base);
}

/* ------------------------------------------------------ error records */

static int fail_run(sk_process *self)
{
    return sk_fail(self, 5, "the first failure");
}

/* The error hook runs after the engine wrote the record: it fills it with
 * 'A', no terminator anywhere, kind and section out of range. */
static int scribble_error(sk_process *self)
{
    memset(&self->rt->sh->error, 'A', sizeof self->rt->sh->error);
    return 0;
}

/* Without an error hook: the run hook writes the record and the outcome
 * itself and leaves. */
static int scribble_error_and_leave(sk_process *self)
{
    struct sk_shared *sh = self->rt->sh;
    memset(&sh->error, 'A', sizeof sh->error);
    sh->outcome = SK_OUTCOME_FAILED;
    atomic_store(&sh->engine_done, 1);
    _exit(0);
}

static const sk_class error_scribbler_class = {
    .name = "error_scribbler", .run = fail_run, .error = scribble_error};
static const sk_class error_leaver_class = {.name = "error_leaver",
                                            .run = scribble_error_and_leave};

static void check_scribbled_error(const sk_class *cls)
{
    hostile *h = new_hostile(cls);
    assert_rc(sk_start(&h->base), SK_OK);
    assert_rc(sk_wait(&h->base, 10 * skt_slowdown()), SK_OK);
    assert_rc(sk_result(&h->base, NULL), SK_EPROCESS);
    const sk_error *e = sk_error_of(&h->base);
    assert_non_null(e);
    assert_cmp(strnlen(e->message, sizeof e->message), <, sizeof e->message);
    assert_cmp(strnlen(e->cause, sizeof e->cause), <, sizeof e->cause);
    assert_cmp((unsigned)e->kind, <=, (unsigned)SK_CRASH_ERROR);
    assert_cmp((int)e->section, >=, (int)SK_NO_SECTION);
    assert_cmp((int)e->section, <=, (int)SK_FULL_RUN);
    assert_cmp(e->lives_spent, >=, 0);
    assert_string_not_equal(sk_error_name(e->kind), "UnknownError");
    char buf[2048];
    int n = sk_error_format(e, buf, sizeof buf);
    assert_cmp(n, >, 0);
    assert_non_null(strstr(buf, "AAAA"));
    assert_true(sk_error_is(e, SK_PROCESS_ERROR));
}

/* Pins sk_error_sanitize in process_finalize: a record with no NUL in
 * message or cause comes back terminated within its arrays. */
static void test_error_record_unterminated(void **state)
{
    (void)state;
    check_scribbled_error(&error_scribbler_class); /* supervised (an error hook) */
    check_scribbled_error(&error_leaver_class);    /* unsupervised */
    assert_no_children();
}

/* ----------------------------------------------------- result length */

enum { RESULT_HUGE_LEN, RESULT_GIB_LEN, RESULT_NOTHING_WRITTEN };

static int stop_run(sk_process *self)
{
    hostile *h = (hostile *)self;
    if (h->mode == RESULT_NOTHING_WRITTEN) {
        self->rt->sh->result_len = 100;
        self->rt->sh->has_result = 1;
    }
    sk_stop(self);
    return 0;
}

static int forged_result(sk_process *self)
{
    hostile *h = (hostile *)self;
    if (h->mode == RESULT_NOTHING_WRITTEN)
        return 0;
    int32_t x = 42;
    int rc = sk_return(self, "i", &x);
    self->rt->sh->result_len = h->mode == RESULT_HUGE_LEN ? UINT64_MAX / 2 : (uint64_t)1 << 30;
    return rc;
}

static const sk_class result_forger_class = {
    .name = "result_forger", .run = stop_run, .result = forged_result};

/* Pins result_image's check of the length against what the memfd holds:
 * SK_ECORRUPT, not a huge malloc, not a short read taken for a result. */
static void test_result_length_forged(void **state)
{
    (void)state;
    int modes[] = {RESULT_HUGE_LEN, RESULT_GIB_LEN, RESULT_NOTHING_WRITTEN};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        hostile *h = new_hostile(&result_forger_class);
        h->mode = modes[i];
        assert_rc(sk_start(&h->base), SK_OK);
        int32_t v = 0;
        assert_rc(sk_result(&h->base, "i", &v), SK_ECORRUPT);
        assert_rc(sk_result(&h->base, NULL), SK_ECORRUPT);
        const void *img = NULL;
        size_t len = 1;
        assert_rc(sk_result_image(&h->base, &img, &len), SK_ECORRUPT);
        assert_null(img);
        assert_cmp(len, ==, 0);
        sk_release(&h->base);
    }
    assert_no_children();
}

/* ------------------------------------------------------------- the pid */

static int pid_forger_run(sk_process *self)
{
    hostile *h = (hostile *)self;
    atomic_store(&self->rt->sh->worker_pid, h->victim);
    hook_done(h->st, 1);
    for (;;)
        pause();
    return 0;
}

static const sk_class pid_forger_class = {.name = "pid_forger", .run = pid_forger_run};

static pid_t victim_pid;

/* In teardown, also when an assertion ended the test early. */
static void victim_end(void *arg)
{
    (void)arg;
    if (victim_pid > 0) {
        kill(victim_pid, SIGKILL);
        waitpid(victim_pid, NULL, 0);
    }
    victim_pid = 0;
}

/* Pins sk_kill's and sk_pid's distrust of sh->worker_pid: the worker names
 * a process of the test's; the supervisor is stopped so that sk_kill takes
 * its fallback; the named process lives on. */
static void test_forged_worker_pid(void **state)
{
    (void)state;
    pid_t victim = fork();
    assert_cmp(victim, >=, 0);
    if (victim == 0) {
        for (;;)
            pause();
    }
    victim_pid = victim;
    skt_defer(victim_end, NULL);
    hostile *h = new_hostile(&pid_forger_class);
    h->victim = victim;
    h->base.config.supervise = true;
    assert_rc(sk_start(&h->base), SK_OK);
    skt_wait_until(atomic_load(&h->st->done) == 1, 10.0 * skt_slowdown());
    assert_cmp(sk_pid(&h->base), !=, victim);
    assert_cmp(kill(h->base.rt->child_pid, SIGSTOP), ==, 0); /* the supervisor */
    assert_rc(sk_kill(&h->base), SK_OK);
    assert_false(sk_alive(&h->base));
    assert_cmp(kill(victim, 0), ==, 0);
    assert_cmp(waitpid(victim, NULL, WNOHANG), ==, 0); /* not even a zombie */
    sk_release(&h->base);
    kill(victim, SIGKILL);
    assert_cmp(waitpid(victim, NULL, 0), ==, victim);
    victim_pid = 0;
    assert_no_children();
}

/* ------------------------------------------------------------ config */

static int stop_at_once(sk_process *self)
{
    sk_stop(self);
    return 0;
}

static const sk_class quick_class = {.name = "quick", .run = stop_at_once};

static void check_refused(void (*set)(sk_config *), const char *field)
{
    hostile *h = new_hostile(&quick_class);
    set(&h->base.config);
    assert_true(skt_no_children());
    assert_rc(sk_start(&h->base), SK_EINVAL);
    assert_true(skt_no_children());
    assert_false(sk_alive(&h->base));
    const char *why = sk_last_error_message();
    assert_non_null(why);
    if (strstr(why, field) == NULL)
        fail_msg("sk_last_error_message() is \"%s\"; it does not name %s", why, field);
    assert_rc(sk_wait(&h->base, 0), SK_OK); /* never started */
    sk_release(&h->base);
}

static void nan_join_in(sk_config *c)
{
    c->join_in = NAN;
}
static void nan_prerun(sk_config *c)
{
    c->timeouts.prerun = NAN;
}
static void nan_run(sk_config *c)
{
    c->timeouts.run = NAN;
}
static void nan_postrun(sk_config *c)
{
    c->timeouts.postrun = NAN;
}
static void nan_onfinish(sk_config *c)
{
    c->timeouts.onfinish = NAN;
}
static void nan_result(sk_config *c)
{
    c->timeouts.result = NAN;
}
static void nan_error(sk_config *c)
{
    c->timeouts.error = -NAN;
}
static void capacity_over(sk_config *c)
{
    c->capacity = SK_MAX_CAPACITY + 1;
}
static void capacity_overflow(sk_config *c)
{
    c->capacity = SIZE_MAX / 2 - 100;
}
static void max_message_over(sk_config *c)
{
    c->max_message = SK_MAX_MAX_MESSAGE + 1;
}

/* Pins config_check: meaningless values are refused before anything is
 * forked, with the field named; infinities mean "never" and "default". */
static void test_config_refused_before_fork(void **state)
{
    (void)state;
    check_refused(nan_join_in, "join_in");
    check_refused(nan_prerun, "timeouts.prerun");
    check_refused(nan_run, "timeouts.run");
    check_refused(nan_postrun, "timeouts.postrun");
    check_refused(nan_onfinish, "timeouts.onfinish");
    check_refused(nan_result, "timeouts.result");
    check_refused(nan_error, "timeouts.error");
    check_refused(capacity_over, "capacity");
    check_refused(capacity_overflow, "capacity");
    check_refused(max_message_over, "max_message");

    for (int sign = 1; sign >= -1; sign -= 2) {
        hostile *h = new_hostile(&quick_class);
        sk_config *c = &h->base.config;
        c->join_in = sign * INFINITY;
        c->timeouts.prerun = c->timeouts.run = c->timeouts.postrun = sign * INFINITY;
        c->timeouts.onfinish = c->timeouts.result = c->timeouts.error = sign * INFINITY;
        assert_rc(sk_start(&h->base), SK_OK);
        assert_rc(sk_wait(&h->base, 10 * skt_slowdown()), SK_OK);
        assert_no_error(&h->base);
        assert_rc(sk_result(&h->base, NULL), SK_OK);
        sk_release(&h->base);
    }
    assert_no_children();
}

/* ---------------------------------------------------- listen formats */

static int echo_once(sk_process *self)
{
    int32_t cmd = 0;
    if (sk_listen(self, -1, "i", &cmd) == SK_OK)
        tell_int(self, cmd + 41);
    sk_stop(self);
    return 0;
}

static const sk_class echo_class = {.name = "echo", .run = echo_once};

/* Pins sk_msg_format_check before listen waits: a malformed format on an
 * empty channel is SK_EINVAL at once, whatever the timeout; with a message
 * waiting, it stays queued. */
static void test_listen_malformed_format(void **state)
{
    (void)state;
    skt_bound(20);
    hostile *h = new_hostile(&echo_class);
    assert_rc(sk_start(&h->base), SK_OK);
    const char *bad[] = {"A(i)", "S(", "ii)", ""};
    int32_t a = 0, b = 0;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        double t0 = skt_now();
        assert_rc(sk_listen(&h->base, -1, bad[i], &a, &b), SK_EINVAL);
        assert_rc(sk_listen(&h->base, 4.0, bad[i], &a, &b), SK_EINVAL);
        assert_dbl_lt(skt_now() - t0, 1.0);
    }
    assert_rc(tell_int(&h->base, 1), SK_OK);
    /* The answer arrives; a malformed format leaves it where it is. */
    struct sk_ring_ctl *c = &h->base.rt->sh->rings[0];
    skt_wait_until(atomic_load(&c->head) != atomic_load(&c->tail), 10 * skt_slowdown());
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = sk_listen(&h->base, 0, bad[i], &a, &b);
        assert_true(rc == SK_EINVAL || rc == SK_EFORMAT);
        rc = sk_listen(&h->base, 1.0, bad[i], &a, &b);
        assert_true(rc == SK_EINVAL || rc == SK_EFORMAT);
    }
    int32_t v = 0;
    assert_rc(sk_listen(&h->base, 0, "i", &v), SK_OK);
    assert_int_equal(v, 42);
    assert_rc(sk_wait(&h->base, 10 * skt_slowdown()), SK_OK);
}

/* ------------------------------------------------- result, empty format */

static int publish(sk_process *self)
{
    int32_t x = 9;
    return sk_return(self, "i", &x);
}

static const sk_class publisher_class = {
    .name = "publisher", .run = stop_at_once, .result = publish};

/* Pins sk_result(p, "") == sk_result(p, NULL). */
static void test_result_empty_format(void **state)
{
    (void)state;
    hostile *h = new_hostile(&publisher_class);
    assert_rc(sk_start(&h->base), SK_OK);
    assert_rc(sk_result(&h->base, ""), SK_OK);
    assert_rc(sk_result(&h->base, NULL), SK_OK);
    int32_t v = 0;
    assert_rc(sk_result(&h->base, "i", &v), SK_OK);
    assert_int_equal(v, 9);
}

/* ----------------------------------------------------- tiny limits */

static int spin_run(sk_process *self)
{
    (void)self;
    skt_spin_forever();
    return 0;
}

static int idle_run(sk_process *self)
{
    (void)self;
    return 0;
}

static const sk_class spinner_class = {.name = "spinner", .run = spin_run};
static const sk_class idler_class = {.name = "idler", .run = idle_run};

/* Pins sk_seconds_to_ns: a positive limit under 1 ns is a limit. */
static void test_limits_under_one_ns(void **state)
{
    (void)state;
    skt_bound(40);
    hostile *h = new_hostile(&spinner_class);
    h->base.config.timeouts.run = 1e-10;
    assert_rc(sk_start(&h->base), SK_OK);
    assert_rc(sk_wait(&h->base, 10 * skt_slowdown()), SK_OK);
    const sk_error *e = sk_error_of(&h->base);
    assert_non_null(e);
    assert_int_equal(e->kind, SK_TIMEOUT_ERROR);
    assert_int_equal(e->section, SK_RUN);
    sk_release(&h->base);

    hostile *j = new_hostile(&idler_class);
    j->base.config.join_in = 1e-10;
    assert_rc(sk_start(&j->base), SK_OK);
    assert_rc(sk_wait(&j->base, 10 * skt_slowdown()), SK_OK);
    assert_no_error(&j->base);
    assert_cmp(sk_current_run(&j->base), <=, 1);
    sk_release(&j->base);
    assert_no_children();
}

/* ------------------------------------------------ worker fork failure */

/* Counts the processes (threads count too) of uid. */
static int user_tasks(uid_t uid)
{
    DIR *d = opendir("/proc");
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        char path[300], line[256];
        snprintf(path, sizeof path, "/proc/%s/status", de->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        unsigned ruid = 0;
        int threads = 1;
        bool mine = false;
        while (fgets(line, sizeof line, f) != NULL) {
            if (sscanf(line, "Uid: %u", &ruid) == 1)
                mine = ruid == uid;
            sscanf(line, "Threads: %d", &threads);
        }
        fclose(f);
        if (mine)
            n += threads;
    }
    closedir(d);
    return n;
}

enum {
    FORK_OK = 0,
    FORK_SETUP = 2,
    FORK_START = 3,
    FORK_NO_ERROR = 4,
    FORK_KIND = 5,
    FORK_SECTION = 6,
    FORK_NOT_TESTED = 7
};

/* In a forked child of the test, as nobody with room for exactly one more
 * process: sk_start forks the supervisor, which cannot fork the worker. */
static int fork_failure_verdict(void)
{
    if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
        return FORK_SETUP;
    int n = user_tasks(65534);
    if (n < 1)
        return FORK_SETUP;
    struct rlimit lim = {(rlim_t)n + 1, (rlim_t)n + 1};
    if (setrlimit(RLIMIT_NPROC, &lim) != 0)
        return FORK_SETUP;
    static hostile h;
    if (sk_init(&h.base, &quick_class) != SK_OK)
        return FORK_SETUP;
    h.base.config.supervise = true;
    if (sk_start(&h.base) != SK_OK)
        return FORK_NOT_TESTED; /* the supervisor could not be forked either */
    if (sk_wait(&h.base, 20) != SK_OK)
        return FORK_START;
    const sk_error *e = sk_error_of(&h.base);
    int verdict = FORK_OK;
    if (e == NULL)
        verdict = FORK_NO_ERROR;
    else if (e->kind != SK_PROCESS_ERROR)
        verdict = FORK_KIND;
    else if (e->section != SK_NO_SECTION || strcmp(sk_section_name(e->section), "none") != 0)
        verdict = FORK_SECTION;
    if (e != NULL && verdict != FORK_OK) {
        char buf[2048];
        sk_error_format(e, buf, sizeof buf);
        fprintf(stderr, "%s", buf);
    }
    sk_release(&h.base);
    return verdict;
}

/* Pins SK_NO_SECTION in supervisor_finish_with: a worker that could not be
 * forked is a ProcessError in section "none". */
static void test_worker_fork_failure(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        print_message("note: not root: RLIMIT_NPROC cannot be set for another user; skipped\n");
        skip();
    }
    pid_t pid = fork();
    assert_cmp(pid, >=, 0);
    if (pid == 0) {
        fflush(NULL);
        _exit(fork_failure_verdict());
    }
    int status = 0;
    assert_cmp(waitpid(pid, &status, 0), ==, pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == FORK_NOT_TESTED) {
        print_message("note: other processes of nobody took the one fork left; skipped\n");
        skip();
    }
    assert_int_equal(WEXITSTATUS(status), FORK_OK);
}

/* ------------------------------------------------------------- sk_init */

static int block_run(sk_process *self)
{
    (void)self;
    pause();
    return 0;
}

static const sk_class blocker_class = {.name = "blocker", .run = block_run};

/* Pins sk_init's registry check: an initialized handle is refused, started
 * or not, and its child goes on; garbage in the struct is not a handle. */
static void test_init_refuses_initialized(void **state)
{
    (void)state;
    hostile *h = new_hostile(&blocker_class);
    assert_rc(sk_init(&h->base, &blocker_class), SK_ESTATE); /* initialized, not started */
    assert_non_null(strstr(sk_last_error_message(), "already initialized"));
    assert_rc(sk_start(&h->base), SK_OK);
    pid_t child = h->base.rt->child_pid;
    assert_rc(sk_init(&h->base, &quick_class), SK_ESTATE);
    assert_non_null(strstr(sk_last_error_message(), "runs"));
    assert_true(sk_alive(&h->base));
    assert_cmp(kill(child, 0), ==, 0);
    assert_rc(sk_kill(&h->base), SK_OK);
    assert_false(sk_alive(&h->base));
    sk_release(&h->base);
    assert_no_children();
    assert_rc(sk_init(&h->base, &quick_class), SK_OK); /* after release */
    assert_rc(sk_start(&h->base), SK_OK);
    assert_rc(sk_wait(&h->base, 10 * skt_slowdown()), SK_OK);
    assert_no_error(&h->base);
    sk_release(&h->base);

    hostile *garbage = skt_new(hostile);
    memset(garbage, 0xA5, sizeof *garbage);
    sk_process *g = &garbage->base;
    assert_rc(sk_init(g, &quick_class), SK_OK); /* teardown releases it from here on */
    assert_rc(sk_start(g), SK_OK);
    assert_rc(sk_wait(g, 10 * skt_slowdown()), SK_OK);
    assert_no_error(g);
    sk_release(g);
    assert_no_children();
}

/* ------------------------------------------------------------- timers */

static int forge_timers(sk_process *self)
{
    struct sk_timer *t = &self->rt->sh->timers[SK_RUN];
    t->count = 2;
    t->exact[0] = INT64_MIN;
    t->exact[1] = INT64_MAX;
    t->min_ns = INT64_MIN;
    t->max_ns = INT64_MAX;
    t->total_ns = INT64_MAX;
    struct sk_timer *u = &self->rt->sh->timers[SK_FULL_RUN];
    u->count = SK_TIMER_EXACT + 10;
    u->min_ns = INT64_MIN;
    u->max_ns = INT64_MAX;
    memset(u->hist, 0xff, sizeof u->hist); /* sums past 2^64 */
    return 0;
}

static const sk_class timer_forger_class = {
    .name = "timer_forger", .run = stop_at_once, .onfinish = forge_timers};

/* Pins the timer getters against forged samples: the interpolation
 * between INT64_MIN and INT64_MAX does not overflow, and every getter
 * returns a number or NaN. */
static void test_timers_forged(void **state)
{
    (void)state;
    hostile *h = new_hostile(&timer_forger_class);
    assert_rc(sk_start(&h->base), SK_OK);
    assert_rc(sk_wait(&h->base, 10 * skt_slowdown()), SK_OK);
    assert_no_error(&h->base);
    const sk_timer *t = sk_timer_of(&h->base, SK_RUN);
    assert_non_null(t);
    double median = sk_timer_median(t);
    assert_false(isnan(median));
    assert_dbl_lt(fabs(median), 1.0); /* halfway between -2^63 and 2^63 ns */
    const sk_timer *u = sk_timer_of(&h->base, SK_FULL_RUN);
    for (double pct = 0; pct <= 100; pct += 12.5) {
        double q = sk_timer_percentile(u, pct);
        assert_true(isnan(q) || (q >= -1e10 && q <= 1e10));
    }
    (void)sk_timer_stdev(u);
    (void)sk_timer_mean(u);
}

/* ------------------------------------------------------- lives_used */

static int forge_lives_and_crash(sk_process *self)
{
    atomic_store(&self->rt->sh->lives_used, INT_MAX);
    skt_die_by(SIGSEGV);
    return 0;
}

static const sk_class lives_forger_class = {.name = "lives_forger", .run = forge_lives_and_crash};

/* Pins the parent's clamp of lives_used when it writes lives_spent: a
 * forged INT_MAX does not overflow into a negative count. */
static void test_lives_used_forged(void **state)
{
    (void)state;
    for (int supervised = 0; supervised <= 1; supervised++) {
        hostile *h = new_hostile(&lives_forger_class);
        h->base.config.supervise = supervised;
        h->base.config.lives = supervised ? 3 : 1;
        assert_rc(sk_start(&h->base), SK_OK);
        assert_rc(sk_wait(&h->base, 10 * skt_slowdown()), SK_OK);
        const sk_error *e = sk_error_of(&h->base);
        assert_non_null(e);
        assert_int_equal(e->kind, SK_CRASH_ERROR); /* the supervisor did not die of it */
        assert_int_equal(e->signal, SIGSEGV);
        assert_cmp(e->lives_spent, >=, 0);
        sk_release(&h->base);
    }
    assert_no_children();
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_ring_forged_control),
        SKT_TEST(test_error_record_unterminated),
        SKT_TEST(test_result_length_forged),
        SKT_TEST(test_forged_worker_pid),
        SKT_TEST(test_config_refused_before_fork),
        SKT_TEST(test_listen_malformed_format),
        SKT_TEST(test_result_empty_format),
        SKT_TEST(test_limits_under_one_ns),
        SKT_TEST(test_worker_fork_failure),
        SKT_TEST(test_init_refuses_initialized),
        SKT_TEST(test_timers_forged),
        SKT_TEST(test_lives_used_forged),
    };
    return skt_run(argc, argv, tests);
}
