/* SPDX-License-Identifier: MIT */
/*
 * Signals: EINTR never surfaces from the library (a SIGALRM every
 * millisecond, no SA_RESTART), SIGPIPE never kills the parent through the
 * library but does end a worker that writes to the user's own broken pipe,
 * the library installs no signal handler and leaves the parent's mask
 * alone, a parent that ignores SIGCHLD still gets correct outcomes, and a
 * signal sent to the worker alone ends it with its default action while the
 * supervisor shrugs signals off.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <cmocka.h>

#include "support.h"

#include <ctype.h>
#include <sys/time.h>

#define BOUND 10.0

/* --------------------------------------------------------- SIGALRM storm */

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

static struct sigaction saved_alarm;

/* A SIGALRM every millisecond, with a handler that does not restart
 * system calls: every blocking call in its way sees EINTR. */
static void storm_start(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART */
    assert_int_equal(sigaction(SIGALRM, &sa, &saved_alarm), 0);
    struct itimerval it = {.it_interval = {0, 1000}, .it_value = {0, 1000}};
    assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
    alarms = 0;
}

static void storm_stop(void)
{
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    sigaction(SIGALRM, &saved_alarm, NULL);
}

/* ------------------------------------------------------------ a talker */

enum act {
    ACT_TELL,         /* run: sleep 50 ms, tell 42, sleep 50 ms, tell 43, sleep 100 ms */
    ACT_LISTEN_STORM, /* run: own SIGALRM storm, then listen for the parent's message */
    ACT_WRITE_PIPE,   /* run: write to the user's pipe whose read end is closed */
    ACT_LOOP,         /* run: 1 ms naps until stopped */
    ACT_DIE_ON_MSG,   /* run: listen for one message, then _exit(5) */
    ACT_REPORT,       /* run: record the worker's mask and SIGCHLD disposition */
    ACT_SEGV,         /* run: die by SIGSEGV */
};

struct seen {
    _Atomic int blocked_usr1, blocked_int, sigchld_ignored, reported;
    _Atomic int worker_alarms;
};

typedef struct {
    sk_process base;
    enum act act;
    int fd;
    struct seen *seen;
} talker;

#define TALKER(p) SK_CONTAINER_OF(p, talker, base)

static int talker_run(sk_process *self)
{
    talker *t = TALKER(self);
    switch (t->act) {
    case ACT_TELL: {
        int v = 42;
        skt_sleep(0.05);
        if (sk_tell(self, "i", &v) != SK_OK)
            return sk_fail(self, 1, "tell 42");
        skt_sleep(0.05);
        v = 43;
        if (sk_tell(self, "i", &v) != SK_OK)
            return sk_fail(self, 1, "tell 43");
        skt_sleep(0.1);
        return 0;
    }
    case ACT_LISTEN_STORM: {
        storm_start(); /* the worker's own timer: itimers are not inherited */
        int v = 0;
        int rc = sk_listen(self, 5.0, "i", &v);
        int got = alarms;
        storm_stop();
        atomic_store(&t->seen->worker_alarms, got);
        if (rc != SK_OK)
            return sk_fail(self, rc, "listen under SIGALRM: %s", sk_strerror(rc));
        return v == 7 ? 0 : sk_fail(self, 2, "got %d", v);
    }
    case ACT_WRITE_PIPE: {
        ssize_t n = write(t->fd, "x", 1);
        if (n < 0)
            return sk_fail(self, errno, "write: %s", strerror(errno));
        return 0;
    }
    case ACT_LOOP:
        usleep(1000);
        return 0;
    case ACT_DIE_ON_MSG: {
        int v;
        sk_listen(self, 5.0, "i", &v);
        _exit(5);
    }
    case ACT_REPORT: {
        sigset_t mask;
        sigprocmask(SIG_SETMASK, NULL, &mask);
        struct sigaction chld;
        sigaction(SIGCHLD, NULL, &chld);
        atomic_store(&t->seen->blocked_usr1, sigismember(&mask, SIGUSR1));
        atomic_store(&t->seen->blocked_int, sigismember(&mask, SIGINT));
        atomic_store(&t->seen->sigchld_ignored, chld.sa_handler == SIG_IGN);
        atomic_store(&t->seen->reported, 1);
        return 0;
    }
    case ACT_SEGV:
        skt_die_by(SIGSEGV);
        return 0;
    }
    return 0;
}

static int talker_result(sk_process *self)
{
    int64_t runs = sk_current_run(self);
    return sk_return(self, "I", &runs);
}

static const sk_class talker_class = {
    .name = "talker",
    .run = talker_run,
    .result = talker_result,
};

static talker *talker_new(enum act act, long runs)
{
    talker *t = skt_new(talker);
    assert_rc(sk_init(&t->base, &talker_class), SK_OK);
    t->act = act;
    t->fd = -1;
    t->base.config.runs = runs;
    t->seen = skt_shared(sizeof *t->seen);
    return t;
}

/* Sets sig's disposition, returning the old one through old. */
static void set_disposition(int sig, void (*handler)(int), struct sigaction *old)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(sig, &sa, old), 0);
}

/* ----------------------------------------------------------- EINTR */

static void test_eintr_never_surfaces_in_parent(void **state)
{
    (void)state;
    storm_start();
    talker *t = talker_new(ACT_TELL, 1);
    talker *forever = talker_new(ACT_LOOP, 0);
    int rc_start = sk_start(&t->base);
    int rc_start2 = sk_start(&forever->base);

    int a = 0, b = 0;
    int rc_listen1 = sk_listen(&t->base, -1, "i", &a);
    int rc_listen2 = sk_listen(&t->base, 5.0, "i", &b);
    /* A bounded wait runs its full course (no early return on EINTR). */
    double t0 = skt_now();
    int rc_short = sk_wait(&t->base, 0.02);
    double short_took = skt_now() - t0;
    int rc_wait = sk_wait(&t->base, -1);
    int64_t runs = -1;
    int rc_result = sk_result(&t->base, "I", &runs);
    bool running = skt_wait_running(&forever->base, BOUND);
    int rc_stop = sk_stop(&forever->base);
    int rc_wait2 = sk_wait(&forever->base, BOUND);
    int got = alarms;
    storm_stop();

    print_message("    %d SIGALRMs during the calls\n", got);
    assert_rc(rc_start, SK_OK);
    assert_rc(rc_start2, SK_OK);
    assert_rc(rc_listen1, SK_OK);
    assert_rc(rc_listen2, SK_OK);
    assert_int_equal(a, 42);
    assert_int_equal(b, 43);
    assert_rc(rc_short, SK_ETIMEDOUT);
    assert_cmp(short_took, >=, 0.02 - 0.001);
    assert_rc(rc_wait, SK_OK);
    assert_rc(rc_result, SK_OK);
    assert_int_equal(runs, 1);
    assert_true(running);
    assert_rc(rc_stop, SK_OK);
    assert_rc(rc_wait2, SK_OK);
    assert_no_error(&forever->base);
    assert_cmp(got, >, 50); /* the storm really blew: ~200 ms of 1 ms ticks */
}

/* sk_kill under the storm. */
static void test_eintr_kill(void **state)
{
    (void)state;
    talker *t = talker_new(ACT_LOOP, 0);
    storm_start();
    int rc_start = sk_start(&t->base);
    bool running = skt_wait_running(&t->base, BOUND);
    int rc_kill = sk_kill(&t->base);
    int rc_result = sk_result(&t->base, NULL);
    storm_stop();
    assert_rc(rc_start, SK_OK);
    assert_true(running);
    assert_rc(rc_kill, SK_OK);
    assert_rc(rc_result, SK_EKILLED);
    assert_false(sk_alive(&t->base));
}

/* The worker's own sk_listen under its own storm. */
static void test_eintr_never_surfaces_in_worker(void **state)
{
    (void)state;
    talker *t = talker_new(ACT_LISTEN_STORM, 1);
    assert_rc(sk_start(&t->base), SK_OK);
    skt_sleep(0.05); /* give the worker's listen time to be interrupted */
    int v = 7;
    assert_rc(sk_tell(&t->base, "i", &v), SK_OK);
    assert_rc(sk_wait(&t->base, BOUND), SK_OK);
    skt_print_error_of(&t->base);
    assert_no_error(&t->base);
    print_message("    the worker took %d SIGALRMs in sk_listen\n",
                  atomic_load(&t->seen->worker_alarms));
    assert_cmp(atomic_load(&t->seen->worker_alarms), >, 10);
}

/* ----------------------------------------------------------- SIGPIPE */

/* The user's own broken pipe, SIGPIPE at its default: the worker dies of
 * it, and the library reports it rather than hiding it. */
static void test_sigpipe_in_hook_is_a_crash(void **state)
{
    (void)state;
    struct sigaction old;
    set_disposition(SIGPIPE, SIG_DFL, &old);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    close(fds[0]);
    talker *t = talker_new(ACT_WRITE_PIPE, 1);
    t->fd = fds[1];
    int rc = sk_start(&t->base);
    int rc_wait = sk_wait(&t->base, BOUND);
    close(fds[1]);
    sigaction(SIGPIPE, &old, NULL);
    assert_rc(rc, SK_OK);
    assert_rc(rc_wait, SK_OK);
    skt_print_error_of(&t->base);
    const sk_error *e = sk_error_of(&t->base);
    assert_non_null(e);
    assert_int_equal(e->kind, SK_CRASH_ERROR);
    assert_int_equal(e->signal, SIGPIPE);
    assert_int_equal(e->section, SK_RUN);
    assert_int_equal(e->run, 0);
}

/* The parent ignores SIGPIPE: so does the worker (the disposition passes
 * through), and the hook sees EPIPE. */
static void test_sigpipe_ignored_by_parent_passes_through(void **state)
{
    (void)state;
    struct sigaction old;
    set_disposition(SIGPIPE, SIG_IGN, &old);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    close(fds[0]);
    talker *t = talker_new(ACT_WRITE_PIPE, 1);
    t->fd = fds[1];
    int rc = sk_start(&t->base);
    int rc_wait = sk_wait(&t->base, BOUND);
    close(fds[1]);
    sigaction(SIGPIPE, &old, NULL);
    assert_rc(rc, SK_OK);
    assert_rc(rc_wait, SK_OK);
    const sk_error *e = sk_error_of(&t->base);
    assert_non_null(e);
    assert_int_equal(e->kind, SK_RUN_ERROR);
    assert_int_equal(e->code, EPIPE);
}

/* The worker dies while the parent tells to it: the parent is never hit by
 * SIGPIPE, and tell says SK_ECLOSED once the end is known. */
static void test_parent_never_gets_sigpipe(void **state)
{
    (void)state;
    struct sigaction old;
    set_disposition(SIGPIPE, SIG_DFL, &old);
    talker *t = talker_new(ACT_DIE_ON_MSG, 1);
    assert_rc(sk_start(&t->base), SK_OK);
    int v = 1, bad = 0, told = 0;
    double deadline = skt_now() + BOUND;
    while (sk_alive(&t->base) && skt_now() < deadline) {
        int rc = sk_tell(&t->base, "i", &v);
        if (rc == SK_OK)
            told++;
        else if (rc != SK_EFULL && rc != SK_ECLOSED)
            bad = rc;
    }
    for (int i = 0; i < 100; i++) { /* and some more into the dead channel */
        int rc = sk_tell(&t->base, "i", &v);
        if (rc != SK_OK && rc != SK_EFULL && rc != SK_ECLOSED)
            bad = rc;
    }
    int rc_wait = sk_wait(&t->base, BOUND);
    int rc_tell = sk_tell(&t->base, "i", &v);
    int w;
    int rc_listen = sk_listen(&t->base, 0, "i", &w);
    sigset_t pending;
    sigpending(&pending);
    sigaction(SIGPIPE, &old, NULL);
    assert_rc(bad, SK_OK);
    assert_cmp(told, >=, 1);
    assert_rc(rc_wait, SK_OK);
    assert_rc(rc_tell, SK_ECLOSED);
    assert_rc(rc_listen, SK_ECLOSED);
    assert_false(sigismember(&pending, SIGPIPE));
    const sk_error *e = sk_error_of(&t->base);
    assert_non_null(e);
    assert_int_equal(e->kind, SK_CRASH_ERROR);
    assert_int_equal(e->exit_status, 5);
}

/* ------------------------------------------------------- no handlers */

struct disposition {
    bool valid;
    struct sigaction sa;
};

static void snapshot(struct disposition *d, sigset_t *mask)
{
    for (int sig = 1; sig < NSIG; sig++) {
        memset(&d[sig].sa, 0, sizeof d[sig].sa);
        d[sig].valid = sigaction(sig, NULL, &d[sig].sa) == 0;
    }
    sigprocmask(SIG_SETMASK, NULL, mask);
}

static bool same_set(const sigset_t *a, const sigset_t *b)
{
    for (int sig = 1; sig < NSIG; sig++)
        if (sigismember(a, sig) != sigismember(b, sig))
            return false;
    return true;
}

static void assert_unchanged(const struct disposition *before, const sigset_t *mask_before,
                             const char *after_what)
{
    struct disposition after[NSIG];
    sigset_t mask_after;
    snapshot(after, &mask_after);
    for (int sig = 1; sig < NSIG; sig++) {
        if (!before[sig].valid)
            continue;
        const struct sigaction *x = &before[sig].sa, *y = &after[sig].sa;
        if (!after[sig].valid || x->sa_handler != y->sa_handler || x->sa_flags != y->sa_flags ||
            !same_set(&x->sa_mask, &y->sa_mask)) {
            print_error("after %s: the disposition of signal %d (%s) changed\n", after_what, sig,
                        strsignal(sig));
            fail();
        }
    }
    if (!same_set(mask_before, &mask_after)) {
        print_error("after %s: the signal mask changed\n", after_what);
        fail();
    }
}

static void test_no_signal_handler_installed(void **state)
{
    (void)state;
    static struct disposition before[NSIG];
    sigset_t mask;
    snapshot(before, &mask);
    /* The ones that matter most, named. */
    const int named[] = {SIGCHLD, SIGPIPE, SIGALRM, SIGTERM, SIGINT};
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
        assert_true(before[named[i]].valid);

    talker *t = talker_new(ACT_TELL, 1);
    assert_unchanged(before, &mask, "sk_init");
    assert_rc(sk_start(&t->base), SK_OK);
    assert_unchanged(before, &mask, "sk_start");
    assert_cmp(sk_fd(&t->base), >=, 0);
    int a = 0;
    assert_rc(sk_listen(&t->base, BOUND, "i", &a), SK_OK);
    assert_rc(sk_tell(&t->base, "i", &a), SK_OK);
    assert_rc(sk_wait(&t->base, BOUND), SK_OK);
    int64_t runs;
    assert_rc(sk_result(&t->base, "I", &runs), SK_OK);
    assert_unchanged(before, &mask, "sk_fd/sk_listen/sk_tell/sk_wait/sk_result");

    /* A crash, a timeout, a stop and a kill go through other paths. */
    talker *c = talker_new(ACT_SEGV, 1);
    assert_rc(sk_start(&c->base), SK_OK);
    assert_rc(sk_wait(&c->base, BOUND), SK_OK);
    assert_non_null(sk_error_of(&c->base));
    talker *l = talker_new(ACT_LOOP, 0);
    assert_rc(sk_start(&l->base), SK_OK);
    assert_running(&l->base, BOUND);
    assert_rc(sk_stop(&l->base), SK_OK);
    assert_rc(sk_wait(&l->base, BOUND), SK_OK);
    talker *k = talker_new(ACT_LOOP, 0);
    assert_rc(sk_start(&k->base), SK_OK);
    assert_rc(sk_kill(&k->base), SK_OK);
    sk_release(&k->base);
    sk_release(&l->base);
    sk_release(&c->base);
    sk_release(&t->base);
    assert_unchanged(before, &mask, "crash/stop/kill/release");
}

/* ------------------------------------------------- SIGCHLD ignored */

static void test_sigchld_ignored_by_parent(void **state)
{
    (void)state;
    struct sigaction old;
    set_disposition(SIGCHLD, SIG_IGN, &old);

    /* Success, with the user's SIGCHLD disposition seen in the worker. */
    talker *ok = talker_new(ACT_REPORT, 3);
    int rc_ok = sk_start(&ok->base);
    int rc_ok_wait = sk_wait(&ok->base, BOUND);
    int64_t runs = -1;
    int rc_ok_result = sk_result(&ok->base, "I", &runs);

    /* A crash: its signal must survive the kernel reaping for us. */
    talker *crash = talker_new(ACT_SEGV, 1);
    int rc_crash = sk_start(&crash->base);
    int rc_crash_wait = sk_wait(&crash->base, BOUND);

    /* A restart after a crash, which the supervisor must see. */
    talker *again = talker_new(ACT_SEGV, 1);
    again->base.config.lives = 2;
    int rc_again = sk_start(&again->base);
    int rc_again_wait = sk_wait(&again->base, BOUND);

    /* A kill. */
    talker *killed = talker_new(ACT_LOOP, 0);
    int rc_killed = sk_start(&killed->base);
    bool running = skt_wait_running(&killed->base, BOUND);
    int rc_kill = sk_kill(&killed->base);
    int rc_killed_result = sk_result(&killed->base, NULL);

    sigaction(SIGCHLD, &old, NULL);

    assert_rc(rc_ok, SK_OK);
    assert_rc(rc_ok_wait, SK_OK);
    assert_rc(rc_ok_result, SK_OK);
    assert_int_equal(runs, 3);
    assert_no_error(&ok->base);
    assert_int_equal(atomic_load(&ok->seen->reported), 1);
    assert_int_equal(atomic_load(&ok->seen->sigchld_ignored), 1);

    assert_rc(rc_crash, SK_OK);
    assert_rc(rc_crash_wait, SK_OK);
    skt_print_error_of(&crash->base);
    const sk_error *e = sk_error_of(&crash->base);
    assert_non_null(e);
    assert_int_equal(e->kind, SK_CRASH_ERROR);
    assert_int_equal(e->signal, SIGSEGV);

    assert_rc(rc_again, SK_OK);
    assert_rc(rc_again_wait, SK_OK);
    e = sk_error_of(&again->base);
    assert_non_null(e);
    assert_int_equal(e->kind, SK_CRASH_ERROR);
    assert_int_equal(e->lives_spent, 2);

    assert_rc(rc_killed, SK_OK);
    assert_true(running);
    assert_rc(rc_kill, SK_OK);
    assert_rc(rc_killed_result, SK_EKILLED);
}

/* ------------------------------------------------ signals and masks */

/* The worker runs with the parent's mask (SIGUSR1 blocked here, SIGINT
 * not), not the supervisor's everything-blocked mask. */
static void test_worker_gets_parent_mask(void **state)
{
    (void)state;
    sigset_t usr1, old;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, &old);
    talker *t = talker_new(ACT_REPORT, 1);
    int rc = sk_start(&t->base);
    sigprocmask(SIG_SETMASK, &old, NULL);
    assert_rc(rc, SK_OK);
    assert_rc(sk_wait(&t->base, BOUND), SK_OK);
    assert_no_error(&t->base);
    assert_int_equal(atomic_load(&t->seen->reported), 1);
    assert_int_equal(atomic_load(&t->seen->blocked_usr1), 1);
    assert_int_equal(atomic_load(&t->seen->blocked_int), 0);
}

/* SIGINT to the worker alone: its default action ends it, reported as a
 * crash with that signal. */
static void test_sigint_to_worker_is_a_crash(void **state)
{
    (void)state;
    talker *t = talker_new(ACT_LOOP, 0);
    assert_rc(sk_start(&t->base), SK_OK);
    assert_running(&t->base, BOUND);
    pid_t worker = sk_pid(&t->base);
    assert_cmp(worker, >, 0);
    assert_int_equal(kill(worker, SIGINT), 0);
    assert_rc(sk_wait(&t->base, BOUND), SK_OK);
    skt_print_error_of(&t->base);
    const sk_error *e = sk_error_of(&t->base);
    assert_non_null(e);
    assert_int_equal(e->kind, SK_CRASH_ERROR);
    assert_int_equal(e->signal, SIGINT);
    assert_int_equal(e->exit_status, 0);
    assert_int_equal(e->section, SK_RUN); /* the only hook: in it or just after */
}

/* The supervisor (the test's only child) takes no signal but SIGKILL: a
 * SIGTERM, SIGINT, SIGHUP or SIGUSR1 meant for someone else does not end
 * it, and the process goes on to a normal end. */
static void test_supervisor_ignores_stray_signals(void **state)
{
    (void)state;
    assert_no_children();
    talker *t = talker_new(ACT_LOOP, 0);
    t->base.config.lives = 2; /* lives > 1: the process has a supervisor */
    assert_rc(sk_start(&t->base), SK_OK);
    assert_running(&t->base, BOUND);

    /* Find the supervisor: the one process whose parent is us. */
    pid_t sup = -1;
    DIR *d = opendir("/proc");
    assert_non_null(d);
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        struct skt_proc_stat st;
        if (isdigit((unsigned char)ent->d_name[0]) && skt_proc_stat(atoi(ent->d_name), &st) &&
            st.ppid == getpid())
            sup = (pid_t)atoi(ent->d_name);
    }
    closedir(d);
    assert_cmp(sup, >, 0);
    assert_cmp(sup, !=, sk_pid(&t->base));

    const int stray[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGQUIT};
    for (size_t i = 0; i < sizeof stray / sizeof stray[0]; i++)
        assert_int_equal(kill(sup, stray[i]), 0);
    long at = sk_current_run(&t->base);
    /* Still alive and looping a while later. */
    double deadline = skt_now() + BOUND;
    while (sk_current_run(&t->base) < at + 20 && skt_now() < deadline)
        skt_sleep(0.001);
    assert_true(sk_alive(&t->base));
    assert_cmp(sk_current_run(&t->base), >=, at + 20);
    assert_rc(sk_stop(&t->base), SK_OK);
    assert_rc(sk_wait(&t->base, BOUND), SK_OK);
    assert_no_error(&t->base);
    int64_t runs = -1;
    assert_rc(sk_result(&t->base, "I", &runs), SK_OK);
    assert_cmp(runs, >=, at + 20);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_eintr_never_surfaces_in_parent),
        SKT_TEST(test_eintr_kill),
        SKT_TEST(test_eintr_never_surfaces_in_worker),
        SKT_TEST(test_sigpipe_in_hook_is_a_crash),
        SKT_TEST(test_sigpipe_ignored_by_parent_passes_through),
        SKT_TEST(test_parent_never_gets_sigpipe),
        SKT_TEST(test_no_signal_handler_installed),
        SKT_TEST(test_sigchld_ignored_by_parent),
        SKT_TEST(test_worker_gets_parent_mask),
        SKT_TEST(test_sigint_to_worker_is_a_crash),
        SKT_TEST(test_supervisor_ignores_stray_signals),
    };
    return skt_run(argc, argv, tests);
}
