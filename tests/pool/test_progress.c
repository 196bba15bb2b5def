/* SPDX-License-Identifier: MIT */
/*
 * The progress of long maps: the callback's numbers, the bar's line at
 * every width, that nothing is drawn unasked, and the bar in a real
 * terminal (tmux, several widths): one line that never wraps, redrawn in
 * place, gone when the map is done.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pool_support.h"

#include "pool/progress.h"

#include <limits.h>
#include <math.h>

/* ---------------------------------------------------------------- format */

static void test_line_fits_every_width(void **state)
{
    (void)state;
    sk_pool_progress p = {.done = 4500,
                          .total = 10000,
                          .failed = 0,
                          .elapsed = 2.3,
                          .rate = 1956.5,
                          .eta = 2.8,
                          .finished = false};
    char line[600];
    for (int cols = 0; cols <= 300; cols++) {
        size_t len = pool_progress_format(line, sizeof line, cols, &p);
        assert_int_equal(len, strlen(line));
        if (cols > 0)
            assert_cmp(len, <=, (size_t)(cols - 1));
        else
            assert_int_equal(len, 0);
    }
    pool_progress_format(line, sizeof line, 80, &p);
    assert_non_null(strstr(line, " 45%|"));
    assert_non_null(strstr(line, "| 4500/10000 [00:02<00:02, 1.96k items/s]"));
    pool_progress_format(line, sizeof line, 30, &p); /* no room for a bar: the numbers */
    assert_string_equal(line, " 45% 4500/10000");
    p.failed = 7;
    pool_progress_format(line, sizeof line, 120, &p);
    assert_non_null(strstr(line, ", 7 failed]"));
    p.eta = NAN;
    p.rate = 0;
    pool_progress_format(line, sizeof line, 120, &p);
    assert_non_null(strstr(line, "<?, ? items/s"));
    /* A buffer smaller than the terminal: cut to the buffer. */
    assert_int_equal(pool_progress_format(line, 10, 200, &p), 9);
}

/* -------------------------------------------------------------- callback */

#define N_ITEMS 3000
#define FAILING 10 /* items 0, 300, 600, ...: their function returns 1 */

static int slowish(const void *item, void *result, const void *arg)
{
    (void)arg;
    int32_t x;
    memcpy(&x, item, sizeof x);
    struct timespec ts = {0, 200 * 1000}; /* 0.2 ms: a 3000-item map takes ~0.3 s */
    nanosleep(&ts, NULL);
    memcpy(result, &x, sizeof x);
    return x % (N_ITEMS / FAILING) == 0 ? 1 : 0;
}

struct reports {
    int calls;
    size_t last_done;
    bool monotonic, saw_finished, finished_twice;
    sk_pool_progress final;
};

static void record(const sk_pool_progress *p, void *ctx)
{
    struct reports *r = ctx;
    r->calls++;
    if (p->done < r->last_done || p->total != N_ITEMS || p->done > p->total ||
        p->failed > p->done || p->elapsed < 0)
        r->monotonic = false;
    r->last_done = p->done;
    if (p->finished) {
        r->finished_twice = r->saw_finished;
        r->saw_finished = true;
        r->final = *p;
    }
}

static void test_callback_reports_the_map(void **state)
{
    (void)state;
    struct reports r = {.monotonic = true};
    sk_pool_config cfg = small_cfg(2);
    cfg.progress = record;
    cfg.progress_ctx = &r;
    cfg.batch = 50;
    sk_pool *pool = new_pool(&cfg);
    int32_t *items = xmalloc(N_ITEMS * sizeof *items), *results = xmalloc(N_ITEMS * sizeof *items);
    for (int i = 0; i < N_ITEMS; i++)
        items[i] = i;
    sk_pool_job job = {.fn = slowish, .item_size = sizeof(int32_t), .result_size = sizeof(int32_t)};
    assert_rc(sk_pool_map(pool, &job, items, N_ITEMS, results, NULL), SK_EPROCESS);
    assert_true(r.monotonic);
    assert_true(r.saw_finished);
    assert_false(r.finished_twice);
    assert_cmp(r.calls, >=, 2); /* at least one report while it ran, and the end */
    assert_int_equal(r.final.done, N_ITEMS);
    assert_int_equal(r.final.total, N_ITEMS);
    assert_int_equal(r.final.failed, FAILING);
    assert_cmp(r.final.rate, >, 0);
    assert_cmp(r.final.elapsed, >, 0);
    release_pool(pool);
}

/* ------------------------------------------------------ a real terminal */

/* The examples' directory of this build: this program is
 * <variant>/tests/test_progress, the example <variant>/examples/pool_progress. */
static bool example_path(char *buf, size_t cap)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return false;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash == NULL)
        return false;
    *slash = '\0';
    slash = strrchr(self, '/');
    if (slash == NULL)
        return false;
    *slash = '\0';
    if (strlen(self) + sizeof "/examples/pool_progress" > cap)
        return false;
    strcpy(buf, self);
    strcat(buf, "/examples/pool_progress");
    return access(buf, X_OK) == 0;
}

/* The pane's visible lines, one string each, into lines (at most max). */
static int capture(const char *session, char lines[][512], int max)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "tmux capture-pane -p -t %s 2>/dev/null", session);
    FILE *f = popen(cmd, "r");
    if (f == NULL)
        return -1;
    int n = 0;
    while (n < max && fgets(lines[n], 512, f) != NULL) {
        lines[n][strcspn(lines[n], "\n")] = '\0';
        n++;
    }
    pclose(f);
    return n;
}

/* A line of the pool's bar: "  45%|###..." or, too narrow for a bar,
 * " 45% 4500/10000". */
static bool is_bar_line(const char *line)
{
    const char *p = line;
    while (*p == ' ')
        p++;
    int digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 4) {
        p++;
        digits++;
    }
    return digits > 0 && digits <= 3 && p[0] == '%' && (p[1] == '|' || p[1] == ' ');
}

static int count_bar_lines(char lines[][512], int n, int width, int *too_wide)
{
    int bars = 0;
    for (int i = 0; i < n; i++) {
        if (is_bar_line(lines[i])) {
            bars++;
            if ((int)strlen(lines[i]) > width - 1)
                (*too_wide)++;
        }
    }
    return bars;
}

static void check_in_tmux(const char *example, int width)
{
    char session[64], cmd[PATH_MAX + 256];
    snprintf(session, sizeof session, "skproc-progress-%d-%d", (int)getpid(), width);
    /* The example's output stays on the screen until the test kills the
     * session: "; read" keeps the shell open after it ends. */
    snprintf(cmd, sizeof cmd,
             "tmux new-session -d -s %s -x %d -y 40 \"%s; echo EXAMPLE-DONE; sleep 60\"", session,
             width, example);
    assert_int_equal(system(cmd), 0);
    static char lines[40][512];
    int max_bars = 0, too_wide = 0, captures = 0;
    double deadline = skt_now() + 60 * skt_slowdown();
    bool done = false;
    while (!done && skt_now() < deadline) {
        int n = capture(session, lines, 40);
        assert_cmp(n, >=, 0);
        captures++;
        int bars = count_bar_lines(lines, n, width, &too_wide);
        if (bars > max_bars)
            max_bars = bars;
        for (int i = 0; i < n; i++)
            done = done || strstr(lines[i], "EXAMPLE-DONE") != NULL;
        skt_sleep(0.02);
    }
    assert_true(done);
    int n = capture(session, lines, 40);
    int after = count_bar_lines(lines, n, width, &too_wide);
    snprintf(cmd, sizeof cmd, "tmux kill-session -t %s 2>/dev/null", session);
    int rc = system(cmd);
    (void)rc;
    print_message("    width %d: %d captures, at most %d bar line(s) at once, %d after the end\n",
                  width, captures, max_bars, after);
    assert_int_equal(max_bars, 1); /* it was drawn, and never on two lines */
    assert_int_equal(too_wide, 0); /* never wider than the terminal */
    assert_int_equal(after, 0);    /* cleared when done */
    bool map_ok = false;
    for (int i = 0; i < n; i++)
        map_ok = map_ok || strstr(lines[i], "sk_pool_map of 1000 items: success") != NULL;
    assert_true(map_ok);
}

static void test_bar_in_a_real_terminal(void **state)
{
    (void)state;
    if (system("command -v tmux >/dev/null 2>&1") != 0) {
        print_message("    tmux is not installed (apt-get install tmux): not checked\n");
        skip();
    }
    char example[PATH_MAX];
    assert_true(example_path(example, sizeof example));
    skt_bound(240);
    const int widths[] = {40, 80, 132};
    for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++)
        check_in_tmux(example, widths[i]);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_line_fits_every_width),
        SKT_TEST(test_callback_reports_the_map),
        SKT_TEST(test_bar_in_a_real_terminal),
    };
    return skt_run(argc, argv, tests);
}
