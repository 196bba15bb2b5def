/* SPDX-License-Identifier: MIT */
/*
 * A flow run's session directory: private (0700, under $TMPDIR), the same
 * path in every hook of every process, and gone however the run ends:
 * end of stream, an error status, a crash that stops the flow, a stop, a
 * release without either, a failed start, and the parent SIGKILLed.
 *
 * Every test points $TMPDIR at a base directory of its own and checks,
 * besides the session directory, that the base is empty at the end.
 * Waits on what another process does are bounded polls on a condition.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define GONE_WITHIN 10.0 /* seconds, at most, for a janitor to act */

enum behave { BEHAVE, ERROR_ON, CRASH_ON, SLOW, FAIL_START };

/* What the step processes saw, in memory shared with the test. */
struct seen {
    char path[8][512]; /* the session directory, per process (step * 2 + process) */
    _Atomic int pid[8];
    _Atomic long handled, crashes;
};

typedef struct {
    int64_t value;
    uint64_t pad[7];
} task64;

typedef struct {
    sk_step base;
    enum behave how;
    uint64_t on;
    struct seen *seen;
} writer;

#define WRITER(s) SK_CONTAINER_OF(s, writer, base)

static int slot_of(sk_step *self)
{
    return sk_step_index(self) * 2 + sk_step_process(self);
}

/* Records the path it was given and leaves a file of its own there. */
static int writer_start(sk_step *self)
{
    writer *w = WRITER(self);
    int slot = slot_of(self);
    const char *dir = sk_step_session_dir(self);
    atomic_store(&w->seen->pid[slot], (int)getpid());
    snprintf(w->seen->path[slot], sizeof w->seen->path[slot], "%s", dir != NULL ? dir : "(null)");
    if (w->how == FAIL_START)
        return sk_step_fail(self, 3, "no model to load");
    if (dir == NULL)
        return 0;
    char file[600];
    snprintf(file, sizeof file, "%s/started-%d", dir, slot);
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return sk_step_fail(self, errno, "open %s: %s", file, strerror(errno));
    close(fd);
    return 0;
}

/* One file per task, in a subdirectory (the removal is recursive). */
static int writer_handle(sk_step *self, sk_task *tasks, size_t n)
{
    writer *w = WRITER(self);
    const char *dir = sk_step_session_dir(self);
    char sub[600], file[700];
    snprintf(sub, sizeof sub, "%s/step-%d", dir, sk_step_index(self));
    if (mkdir(sub, 0700) != 0 && errno != EEXIST)
        return sk_step_fail(self, errno, "mkdir %s: %s", sub, strerror(errno));
    for (size_t i = 0; i < n; i++) {
        if (tasks[i].id == w->on && w->how == ERROR_ON)
            return sk_step_error(self, "task %llu is poison", (unsigned long long)tasks[i].id);
        if (tasks[i].id == w->on && w->how == CRASH_ON &&
            atomic_fetch_add(&w->seen->crashes, 1) == 0)
            skt_die_by(SIGSEGV);
        if (w->how == SLOW)
            skt_sleep(0.05);
        snprintf(file, sizeof file, "%s/task-%llu", sub, (unsigned long long)tasks[i].id);
        int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
            return sk_step_fail(self, errno, "open %s: %s", file, strerror(errno));
        close(fd);
        ((task64 *)tasks[i].record)->value++;
        atomic_fetch_add(&w->seen->handled, 1);
    }
    return 0;
}

static const sk_step_class writer_class = {
    .name = "writer", .start = writer_start, .handle = writer_handle};

/* ------------------------------------------------------------- fixtures */

static char base[256]; /* this test's $TMPDIR */

/* Points $TMPDIR at a new directory of the test's own. */
static void use_base(void)
{
    snprintf(base, sizeof base, "%s", skt_use_tmpdir("skt-flow-session"));
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

struct run {
    sk_flow *flow;
    writer w[2];
    struct seen *seen;
};

/* Two steps of two processes each; step `bad` behaves as `how` on `on`. */
static struct run *new_run(int bad, enum behave how, uint64_t on, bool crash_stops_flow,
                           const sk_flow_config *cfg_in)
{
    struct run *rn = calloc(1, sizeof *rn);
    assert_non_null(rn);
    rn->seen = skt_shared(sizeof *rn->seen);
    sk_flow_config cfg = {.task_size = sizeof(task64), .stop_timeout = 2.0};
    if (cfg_in != NULL)
        cfg = *cfg_in;
    assert_rc(sk_flow_create(&rn->flow, &cfg), SK_OK);
    for (int s = 0; s < 2; s++) {
        writer *w = &rn->w[s];
        assert_rc(sk_step_init(&w->base, &writer_class), SK_OK);
        w->base.config.processes = 2;
        w->base.config.batch_size = 4;
        w->base.config.crash_stops_flow = crash_stops_flow;
        w->how = s == bad ? how : BEHAVE;
        w->on = on;
        w->seen = rn->seen;
        assert_rc(sk_flow_add(rn->flow, &w->base), SK_OK);
    }
    return rn;
}

static void end_run(struct run *rn)
{
    sk_flow_release(rn->flow);
    free(rn);
}

/* Starts the run and checks the directory: under $TMPDIR, named by the
 * prefix, a directory of ours with mode 0700, the path every process saw,
 * with every process's file in it. Returns a copy of the path. */
static void start_and_check(struct run *rn, const char *prefix, char *path, size_t size)
{
    assert_rc(sk_flow_start(rn->flow), SK_OK);
    const char *dir = sk_flow_session_dir(rn->flow);
    assert_non_null(dir);
    snprintf(path, size, "%s", dir);
    char want[300];
    snprintf(want, sizeof want, "%s/%s-", base, prefix);
    assert_int_equal(strncmp(path, want, strlen(want)), 0);
    assert_int_equal(strlen(path), strlen(want) + 6); /* the XXXXXX of mkdtemp */
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0700);
    assert_int_equal(st.st_uid, geteuid());
    for (int slot = 0; slot < 4; slot++) {
        assert_string_equal(rn->seen->path[slot], path);
        char file[600];
        snprintf(file, sizeof file, "%s/started-%d", path, slot);
        assert_true(exists(file));
    }
}

/* Submits n tasks, keeping what fits; collects what comes back. */
static long submit_n(struct run *rn, long n)
{
    long in = 0;
    for (long i = 0; i < n; i++) {
        task64 t = {.value = i};
        if (sk_flow_submit(rn->flow, &t, 5.0, 0, NULL) == SK_OK)
            in++;
    }
    return in;
}

/* Starts rn (start_and_check) and submits 20 tasks, one of which ends the
 * run: the wait says SK_EPROCESS, and the directory is gone with nothing
 * else left in the base. */
static void run_to_fatal_end(struct run *rn)
{
    char path[512];
    start_and_check(rn, "skflow", path, sizeof path);
    assert_int_equal(submit_n(rn, 20), 20);
    assert_rc(sk_flow_wait(rn->flow, 10.0), SK_EPROCESS);
    assert_false(exists(path));
    assert_int_equal(skt_dir_entries(base), 0);
}

/* ---------------------------------------------------------------- tests */

/* End of stream: every hook of every process sees the same private
 * directory and writes into it; after sk_flow_wait it is gone. */
static void test_end_of_stream_removes(void **state)
{
    (void)state;
    use_base();
    struct run *rn = new_run(-1, BEHAVE, 0, false, NULL);
    assert_null(sk_flow_session_dir(rn->flow)); /* not before start */
    char path[512];
    start_and_check(rn, "skflow", path, sizeof path);
    assert_int_equal(submit_n(rn, 40), 40);
    for (int i = 0; i < 40; i++) {
        task64 out;
        sk_flow_result r;
        assert_rc(sk_flow_collect(rn->flow, 10.0, &out, &r), SK_OK);
        assert_rc(r.status, SK_OK);
        char file[700];
        for (int s = 0; s < 2; s++) {
            snprintf(file, sizeof file, "%s/step-%d/task-%llu", path, s, (unsigned long long)r.id);
            assert_true(exists(file));
        }
    }
    assert_rc(sk_flow_close(rn->flow), SK_OK);
    assert_rc(sk_flow_wait(rn->flow, 10.0), SK_OK);
    assert_false(exists(path));
    assert_null(sk_flow_session_dir(rn->flow));
    assert_int_equal(skt_dir_entries(base), 0);
    end_run(rn);
}

/* An error status ends the run: the directory goes with it. */
static void test_error_status_removes(void **state)
{
    (void)state;
    use_base();
    struct run *rn = new_run(1, ERROR_ON, 5, false, NULL);
    run_to_fatal_end(rn);
    assert_string_equal(sk_flow_error(rn->flow)->error.cause, "task 5 is poison");
    end_run(rn);
}

/* A crash the step's policy makes fatal ends the run without the step
 * ever closing its rings: the directory is still removed. */
static void test_crash_removes(void **state)
{
    (void)state;
    use_base();
    struct run *rn = new_run(0, CRASH_ON, 3, true, NULL);
    run_to_fatal_end(rn);
    assert_int_equal(atomic_load(&rn->seen->crashes), 1);
    end_run(rn);
}

/* A crash the step survives (the process is restarted): the restarted
 * process finds the same directory, with what was written before. */
static void test_crash_restart_keeps_dir(void **state)
{
    (void)state;
    use_base();
    struct run *rn = new_run(0, CRASH_ON, 3, false, NULL);
    rn->w[0].base.config.restarts = 2;
    char path[512];
    start_and_check(rn, "skflow", path, sizeof path);
    assert_int_equal(submit_n(rn, 20), 20);
    for (int i = 0; i < 20; i++) {
        sk_flow_result r;
        assert_rc(sk_flow_collect(rn->flow, 10.0, NULL, &r), SK_OK);
    }
    assert_int_equal(atomic_load(&rn->seen->crashes), 1);
    assert_true(exists(path));
    for (int slot = 0; slot < 4; slot++) /* the restarted one too */
        assert_string_equal(rn->seen->path[slot], path);
    assert_rc(sk_flow_close(rn->flow), SK_OK);
    assert_rc(sk_flow_wait(rn->flow, 10.0), SK_OK);
    assert_false(exists(path));
    end_run(rn);
}

/* sk_flow_stop with tasks still queued, and sk_flow_release with neither
 * a wait nor a stop: the directory goes in both. */
static void test_stop_and_release_remove(void **state)
{
    (void)state;
    use_base();
    struct run *rn = new_run(1, SLOW, 0, false, NULL);
    char path[512];
    start_and_check(rn, "skflow", path, sizeof path);
    assert_int_equal(submit_n(rn, 40), 40);
    assert_rc(sk_flow_stop(rn->flow), SK_OK);
    assert_false(exists(path));
    end_run(rn);

    rn = new_run(1, SLOW, 0, false, NULL);
    start_and_check(rn, "skflow", path, sizeof path);
    assert_int_equal(submit_n(rn, 40), 40);
    end_run(rn);
    assert_false(exists(path));
    assert_int_equal(skt_dir_entries(base), 0);
}

/* A start hook that fails: sk_flow_start fails, and nothing is left, the
 * directory neither. */
static void test_failed_start_removes(void **state)
{
    (void)state;
    use_base();
    struct run *rn = new_run(1, FAIL_START, 0, false, NULL);
    assert_rc(sk_flow_start(rn->flow), SK_EPROCESS);
    assert_true(skt_no_children());
    /* Step 1's first process saw the directory before it failed; it is gone. */
    assert_int_equal(strncmp(rn->seen->path[2], base, strlen(base)), 0);
    assert_false(exists(rn->seen->path[2]));
    assert_null(sk_flow_session_dir(rn->flow));
    assert_int_equal(skt_dir_entries(base), 0);
    end_run(rn);
}

/* The parent of a flow (a child of the test) is SIGKILLed while its steps
 * write into the directory: the steps end with it, and the janitor removes
 * the directory once they are all gone. */
static void test_parent_sigkill_removes(void **state)
{
    (void)state;
    use_base();
    struct seen *seen = skt_shared(sizeof *seen);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t parent = fork();
    assert_true(parent >= 0);
    if (parent == 0) {
        close(fds[0]);
        sk_flow *flow;
        sk_flow_config cfg = {.task_size = sizeof(task64)};
        writer w[2];
        if (sk_flow_create(&flow, &cfg) != SK_OK)
            _exit(2);
        for (int s = 0; s < 2; s++) {
            sk_step_init(&w[s].base, &writer_class);
            w[s].base.config.processes = 2;
            w[s].how = s == 1 ? SLOW : BEHAVE;
            w[s].on = 0;
            w[s].seen = seen;
            sk_flow_add(flow, &w[s].base);
        }
        if (sk_flow_start(flow) != SK_OK)
            _exit(3);
        for (int i = 0; i < 200; i++) {
            task64 t = {.value = i};
            sk_flow_submit(flow, &t, 0, 0, NULL);
        }
        const char *dir = sk_flow_session_dir(flow);
        if (write(fds[1], dir, strlen(dir) + 1) < 0)
            _exit(4);
        for (;;)
            pause(); /* until SIGKILLed */
    }
    close(fds[1]);
    char path[512] = {0};
    ssize_t got = 0, r;
    while ((r = read(fds[0], path + got, sizeof path - 1 - (size_t)got)) > 0)
        if (memchr(path + got, '\0', (size_t)r) != NULL || (got += r) >= (ssize_t)sizeof path - 1)
            break;
    close(fds[0]);
    assert_true(r > 0);
    assert_true(exists(path));
    skt_wait_until(atomic_load(&seen->handled) > 0, 10.0); /* steps are writing */
    pid_t steps[4];
    for (int slot = 0; slot < 4; slot++) {
        steps[slot] = atomic_load(&seen->pid[slot]);
        assert_true(steps[slot] > 0);
        assert_string_equal(seen->path[slot], path);
    }
    assert_int_equal(kill(parent, SIGKILL), 0);
    int status;
    assert_int_equal(waitpid(parent, &status, 0), parent);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    for (int slot = 0; slot < 4; slot++)
        skt_wait_until(skt_pid_ended(steps[slot]), GONE_WITHIN);
    skt_wait_until(!exists(path), GONE_WITHIN);
    skt_wait_until(skt_dir_entries(base) == 0, GONE_WITHIN);
}

/* Options: a prefix of one's own; no directory at all; prefixes refused;
 * a $TMPDIR where no directory can be made fails the start, naming it. */
static void test_options_and_refusals(void **state)
{
    (void)state;
    use_base();
    sk_flow_config cfg = {.task_size = sizeof(task64), .session_prefix = "ingest"};
    struct run *rn = new_run(-1, BEHAVE, 0, false, &cfg);
    char path[512];
    start_and_check(rn, "ingest", path, sizeof path);
    end_run(rn);
    assert_false(exists(path));

    cfg = (sk_flow_config){.task_size = sizeof(task64), .no_session_dir = true};
    rn = new_run(-1, BEHAVE, 0, false, &cfg);
    assert_rc(sk_flow_start(rn->flow), SK_OK);
    assert_null(sk_flow_session_dir(rn->flow));
    for (int slot = 0; slot < 4; slot++)
        assert_string_equal(rn->seen->path[slot], "(null)");
    end_run(rn);
    assert_int_equal(skt_dir_entries(base), 0);

    const char *bad[] = {"", "a/b", "/abs"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sk_flow *flow = NULL;
        cfg = (sk_flow_config){.task_size = 8, .session_prefix = bad[i]};
        assert_rc(sk_flow_create(&flow, &cfg), SK_EINVAL);
        assert_null(flow);
    }
    char longer[300];
    memset(longer, 'p', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    sk_flow *flow = NULL;
    cfg = (sk_flow_config){.task_size = 8, .session_prefix = longer};
    assert_rc(sk_flow_create(&flow, &cfg), SK_EINVAL);
    assert_null(sk_step_session_dir(NULL));
    assert_null(sk_flow_session_dir(NULL));

    char missing[300];
    snprintf(missing, sizeof missing, "%s/not-there", base);
    assert_int_equal(setenv("TMPDIR", missing, 1), 0);
    rn = new_run(-1, BEHAVE, 0, false, NULL);
    assert_rc(sk_flow_start(rn->flow), SK_ESYS);
    const sk_flow_result *e = sk_flow_error(rn->flow);
    assert_non_null(e);
    assert_non_null(strstr(e->error.message, missing));
    assert_true(skt_no_children());
    for (int slot = 0; slot < 4; slot++) /* no step process ran */
        assert_int_equal(atomic_load(&rn->seen->pid[slot]), 0);
    end_run(rn);
    assert_int_equal(skt_dir_entries(base), 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_end_of_stream_removes),   SKT_TEST(test_error_status_removes),
        SKT_TEST(test_crash_removes),           SKT_TEST(test_crash_restart_keeps_dir),
        SKT_TEST(test_stop_and_release_remove), SKT_TEST(test_failed_start_removes),
        SKT_TEST(test_parent_sigkill_removes),  SKT_TEST(test_options_and_refusals),
    };
    return skt_run(argc, argv, tests);
}
