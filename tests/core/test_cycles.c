/* SPDX-License-Identifier: MIT */
/*
 * 10,000 start/kill cycles (1,000 under sanitizers) leave nothing behind:
 * the fd count is unchanged after every cycle, no memfd mapping survives
 * sk_release, no child is left (not even a zombie), no stray process with
 * our name keeps running, and RSS does not grow (< 8 MB after a warm-up of
 * 100 cycles).
 *
 * Kills land at different moments: right after sk_start (the supervisor
 * may not have forked the worker yet), and once the worker is looping.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "support.h"

#include <ctype.h>

#define CYCLES (SKT_SANITIZED ? 1000 : 10000)
#define WARMUP 100
#define RSS_GROWTH_KB (8 * 1024)

typedef struct {
    sk_process base;
} spinner;

static int spinner_run(sk_process *self)
{
    (void)self;
    usleep(200);
    return 0;
}

static const sk_class spinner_class = {.name = "spinner", .run = spinner_run};

/* Lines of /proc/self/maps backed by the library's memfd. */
static int skproc_mappings(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f) != NULL)
        if (strstr(line, "memfd:skproc") != NULL)
            n++;
    fclose(f);
    return n;
}

/* Live processes (not zombies) other than us with our name and in our
 * process group: a worker or supervisor that escaped its kill. */
static int strays(void)
{
    char self_comm[64] = "";
    FILE *f = fopen("/proc/self/comm", "r");
    assert_non_null(f);
    if (fgets(self_comm, sizeof self_comm, f) == NULL)
        self_comm[0] = '\0';
    fclose(f);
    DIR *d = opendir("/proc");
    assert_non_null(d);
    int n = 0;
    pid_t me = getpid();
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        if (!isdigit((unsigned char)ent->d_name[0]) || atoi(ent->d_name) == me)
            continue;
        char path[320], comm[64] = "";
        snprintf(path, sizeof path, "/proc/%s/comm", ent->d_name);
        FILE *c = fopen(path, "r");
        if (c == NULL)
            continue;
        bool same = fgets(comm, sizeof comm, c) != NULL && strcmp(comm, self_comm) == 0;
        fclose(c);
        if (!same)
            continue;
        struct skt_proc_stat st;
        if (skt_proc_stat(atoi(ent->d_name), &st) && st.pgrp == getpgrp() && st.state != 'Z' &&
            st.state != 'X')
            n++;
    }
    closedir(d);
    return n;
}

static double kill_max, kill_sum;

static void one_cycle(int i)
{
    spinner s;
    memset(&s, 0, sizeof s);
    assert_rc(sk_init(&s.base, &spinner_class), SK_OK);
    assert_rc(sk_start(&s.base), SK_OK);
    /* Every tenth cycle: kill a worker that is really looping. */
    if (i % 10 == 0)
        assert_running(&s.base, 10.0);
    /* sk_fd's epoll fd and pidfd dup must go with sk_release too. */
    if (i % 7 == 0)
        assert_cmp(sk_fd(&s.base), >=, 0);
    pid_t worker = sk_pid(&s.base);
    double t0 = skt_now();
    assert_rc(sk_kill(&s.base), SK_OK);
    double took = skt_now() - t0;
    kill_sum += took;
    if (took > kill_max)
        kill_max = took;
    assert_false(sk_alive(&s.base));
    assert_rc(sk_result(&s.base, NULL), SK_EKILLED);
    if (worker > 0) {
        /* Immediate: the worker has ended by the time sk_kill returns (it
         * may linger as a zombie of whoever adopted it). */
        assert_true(skt_pid_ended(worker));
    }
    sk_release(&s.base);
}

static void test_start_kill_cycles(void **state)
{
    (void)state;
    skt_bound(300); /* about ten times what it takes on an idle machine */
    int fds = skt_fd_count();
    assert_no_children();
    double t0 = skt_now();
    long rss_after_warmup = 0, rss_max = 0;
    for (int i = 0; i < CYCLES; i++) {
        one_cycle(i);
        if (skt_fd_count() != fds) {
            print_error("cycle %d: %d fds, %d before\n", i, skt_fd_count(), fds);
            fail();
        }
        if (skproc_mappings() != 0) {
            print_error("cycle %d: a memfd:skproc mapping survived sk_release\n", i);
            fail();
        }
        if (!skt_no_children()) {
            print_error("cycle %d: a child (or zombie) is left\n", i);
            fail();
        }
        if (i % 100 == 0 && strays() != 0) {
            print_error("cycle %d: a supervisor or worker still runs after sk_release\n", i);
            fail();
        }
        if (i == WARMUP)
            rss_after_warmup = skt_rss_kb();
        if (i > WARMUP && i % 100 == 0) {
            long rss = skt_rss_kb();
            if (rss > rss_max)
                rss_max = rss;
        }
    }
    double took = skt_now() - t0;
    long rss_end = skt_rss_kb();
    if (rss_end > rss_max)
        rss_max = rss_end;
    print_message("    %d cycles in %.1f s (%.0f us each); RSS %ld KiB after warm-up, max %ld "
                  "KiB, end %ld KiB\n",
                  CYCLES, took, took / CYCLES * 1e6, rss_after_warmup, rss_max, rss_end);
    print_message("    sk_kill: mean %.0f us, worst %.2f ms\n", kill_sum / CYCLES * 1e6,
                  kill_max * 1e3);
    /* ASan keeps freed memory in quarantine (up to 256 MB by default), so
     * RSS grows there without any leak; LeakSanitizer checks leaks at exit
     * instead. */
    if (!SKT_SANITIZED)
        assert_cmp(rss_max - rss_after_warmup, <, RSS_GROWTH_KB);
    assert_int_equal(skt_fd_count(), fds);
    assert_int_equal(strays(), 0);
}

/* sk_kill right after sk_start, when the supervisor may be forking the
 * worker: once sk_kill returns, no process of ours may still run, not even
 * one that is about to die. Each cycle scans /proc, so fewer cycles. */
static void test_kill_leaves_nothing_running(void **state)
{
    (void)state;
    skt_bound(120); /* about ten times what it takes on an idle machine */
    const int cycles = SKT_SANITIZED ? 300 : 2000;
    int dirty = 0;
    double linger_max = 0;
    for (int i = 0; i < cycles; i++) {
        spinner s;
        memset(&s, 0, sizeof s);
        assert_rc(sk_init(&s.base, &spinner_class), SK_OK);
        assert_rc(sk_start(&s.base), SK_OK);
        if (i % 3 == 1)
            usleep((useconds_t)(i % 50)); /* land at different moments of the spawn */
        assert_rc(sk_kill(&s.base), SK_OK);
        sk_release(&s.base);
        double t0 = skt_now();
        if (strays() == 0)
            continue;
        dirty++;
        while (strays() != 0 && skt_now() - t0 < 1.0)
            skt_sleep(0.0001);
        double linger = skt_now() - t0;
        if (linger > linger_max)
            linger_max = linger;
    }
    print_message("    %d of %d kills returned while a process of ours still ran (it lingered "
                  "up to %.2f ms)\n",
                  dirty, cycles, linger_max * 1e3);
    assert_int_equal(strays(), 0);
    assert_int_equal(dirty, 0);
}

/* A worker spinning with every signal blocked: sk_kill still ends it at
 * once (SIGKILL cannot be blocked), and nothing is left. */
static int blocked_run(sk_process *self)
{
    (void)self;
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    skt_spin_forever();
    return 0;
}

static const sk_class blocked_class = {.name = "blocked", .run = blocked_run};

static void test_kill_spinner_with_signals_blocked(void **state)
{
    (void)state;
    int fds = skt_fd_count();
    double worst = 0;
    for (int i = 0; i < 50; i++) {
        spinner s;
        memset(&s, 0, sizeof s);
        assert_rc(sk_init(&s.base, &blocked_class), SK_OK);
        assert_rc(sk_start(&s.base), SK_OK);
        double deadline = skt_now() + 10.0;
        while (sk_pid(&s.base) <= 0 && skt_now() < deadline)
            skt_sleep(0.0001);
        pid_t worker = sk_pid(&s.base);
        assert_cmp(worker, >, 0);
        double t0 = skt_now();
        assert_rc(sk_kill(&s.base), SK_OK);
        double took = skt_now() - t0;
        if (took > worst)
            worst = took;
        assert_true(skt_pid_ended(worker));
        sk_release(&s.base);
        assert_no_children();
        assert_int_equal(skproc_mappings(), 0);
    }
    print_message("    sk_kill of a spinner with all signals blocked: worst %.2f ms\n",
                  worst * 1e3);
    assert_cmp(worst, <, 1.0);
    assert_int_equal(skt_fd_count(), fds);
    assert_int_equal(strays(), 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_start_kill_cycles),
        SKT_TEST(test_kill_spinner_with_signals_blocked),
        SKT_TEST(test_kill_leaves_nothing_running),
    };
    return skt_run(argc, argv, tests);
}
