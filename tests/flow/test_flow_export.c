/* SPDX-License-Identifier: MIT */
/*
 * Flow metrics exporters: the Prometheus text (exact text of a fixed
 * snapshot, escaping, NaN, refusals, failing streams, promtool as a real
 * parser and linter) and StatsD over UDP (deltas, gauges, timings, packing
 * into datagrams, bad hosts, no listener). Snapshots are built by hand: the
 * exporters read nothing but sk_flow_metrics and the timer getters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "support.h"

#include "core/timer.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <locale.h>
#include <math.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define MS 1000000LL /* ns */

/* ------------------------------------------------------------ snapshots */

static struct sk_timer *new_timer(void)
{
    struct sk_timer *t = xcalloc(1, sizeof *t);
    return t;
}

static struct sk_timer *timer_of(int n, const int64_t *ns)
{
    struct sk_timer *t = new_timer();
    for (int i = 0; i < n; i++)
        sk_timer_add(t, ns[i]);
    return t;
}

/* The fixed snapshot of the golden text: two steps, the first named with a
 * quote and a backslash, a NULL timer and an empty one. */
struct fixture {
    sk_flow_metrics m;
    sk_flow_step_metrics step[2];
    struct sk_timer *latency, *handle0, *handle1, *wait1;
};

static void fixture_fill(struct fixture *f)
{
    memset(f, 0, sizeof *f);
    f->latency = timer_of(2, (int64_t[]){1 * MS, 3 * MS});
    f->handle0 = timer_of(4, (int64_t[]){500 * MS, 500 * MS, 500 * MS, 500 * MS});
    f->handle1 = new_timer(); /* no samples */
    f->wait1 = timer_of(1, (int64_t[]){100 * MS});
    f->step[0] = (sk_flow_step_metrics){
        .name = "ad\"d\\er",
        .index = 0,
        .processes = 2,
        .tasks_in = 10,
        .tasks_out = 9,
        .tasks_failed = 1,
        .tasks_skipped = 2,
        .batches = 4,
        .batch_sizes = {1, 2, 1}, /* sizes 1, 2-3, 2-3, 4-7 */
        .queue_depth = 3,
        .restarts = 1,
        .handle = f->handle0,
        .queue_wait = NULL,
    };
    f->step[1] = (sk_flow_step_metrics){
        .name = "sink",
        .index = 1,
        .processes = 1,
        .tasks_in = 7,
        .tasks_out = 7,
        .batches = 7,
        .batch_sizes = {7},
        .handle = f->handle1,
        .queue_wait = f->wait1,
    };
    f->m = (sk_flow_metrics){
        .steps = 2,
        .step = f->step,
        .submitted = 12,
        .completed = 7,
        .failed = 1,
        .in_flight = 4,
        .elapsed = 2.5,
        .throughput = 3.2,
        .latency = f->latency,
    };
}

static void free_text(void *p)
{
    free(p);
}

/* The Prometheus text of m, in memory (freed after the test). */
static char *text_of(const sk_flow_metrics *m, const char *prefix)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    int rc = sk_flow_metrics_prometheus(m, prefix, out);
    fclose(out);
    skt_defer(free_text, text);
    assert_rc(rc, SK_OK);
    return text;
}

/* Prints both texts from the first line that differs. */
static void assert_text(const char *got, const char *want)
{
    if (strcmp(got, want) == 0)
        return;
    size_t i = 0, line = 1, start = 0;
    for (; got[i] != '\0' && got[i] == want[i]; i++)
        if (got[i] == '\n') {
            line++;
            start = i + 1;
        }
    print_message("    texts differ at line %zu:\n    got:  %.200s\n    want: %.200s\n", line,
                  got + start, want + start);
    fail();
}

/* ----------------------------------------------------------- prometheus */

static const char golden[] =
    "# HELP skproc_flow_tasks_submitted_total Tasks put into the flow.\n"
    "# TYPE skproc_flow_tasks_submitted_total counter\n"
    "skproc_flow_tasks_submitted_total 12\n"
    "# HELP skproc_flow_tasks_completed_total Tasks that came out with SK_OK.\n"
    "# TYPE skproc_flow_tasks_completed_total counter\n"
    "skproc_flow_tasks_completed_total 7\n"
    "# HELP skproc_flow_tasks_failed_total Tasks that came out failed (any status but SK_OK).\n"
    "# TYPE skproc_flow_tasks_failed_total counter\n"
    "skproc_flow_tasks_failed_total 1\n"
    "# HELP skproc_flow_tasks_in_flight Tasks submitted and not yet out.\n"
    "# TYPE skproc_flow_tasks_in_flight gauge\n"
    "skproc_flow_tasks_in_flight 4\n"
    "# HELP skproc_flow_elapsed_seconds Seconds since the flow started.\n"
    "# TYPE skproc_flow_elapsed_seconds gauge\n"
    "skproc_flow_elapsed_seconds 2.5\n"
    "# HELP skproc_flow_throughput_tasks_per_second Tasks out (ok or failed) per second, "
    "averaged since the flow started.\n"
    "# TYPE skproc_flow_throughput_tasks_per_second gauge\n"
    "skproc_flow_throughput_tasks_per_second 3.2\n"
    "# HELP skproc_flow_latency_seconds Seconds from submit to coming out of the last step.\n"
    "# TYPE skproc_flow_latency_seconds summary\n"
    "skproc_flow_latency_seconds{quantile=\"0.5\"} 0.002\n"
    "skproc_flow_latency_seconds{quantile=\"0.9\"} 0.0028\n"
    "skproc_flow_latency_seconds{quantile=\"0.99\"} 0.00298\n"
    "skproc_flow_latency_seconds_sum 0.004\n"
    "skproc_flow_latency_seconds_count 2\n"
    "# HELP skproc_flow_step_processes Processes of the step.\n"
    "# TYPE skproc_flow_step_processes gauge\n"
    "skproc_flow_step_processes{step=\"ad\\\"d\\\\er\",index=\"0\"} 2\n"
    "skproc_flow_step_processes{step=\"sink\",index=\"1\"} 1\n"
    "# HELP skproc_flow_step_tasks_total Tasks of the step: taken from its input queue (in), "
    "passed on (out), failed for good in it (failed), passed on untouched by its condition "
    "(skipped).\n"
    "# TYPE skproc_flow_step_tasks_total counter\n"
    "skproc_flow_step_tasks_total{step=\"ad\\\"d\\\\er\",index=\"0\",outcome=\"in\"} 10\n"
    "skproc_flow_step_tasks_total{step=\"ad\\\"d\\\\er\",index=\"0\",outcome=\"out\"} 9\n"
    "skproc_flow_step_tasks_total{step=\"ad\\\"d\\\\er\",index=\"0\",outcome=\"failed\"} 1\n"
    "skproc_flow_step_tasks_total{step=\"ad\\\"d\\\\er\",index=\"0\",outcome=\"skipped\"} 2\n"
    "skproc_flow_step_tasks_total{step=\"sink\",index=\"1\",outcome=\"in\"} 7\n"
    "skproc_flow_step_tasks_total{step=\"sink\",index=\"1\",outcome=\"out\"} 7\n"
    "skproc_flow_step_tasks_total{step=\"sink\",index=\"1\",outcome=\"failed\"} 0\n"
    "skproc_flow_step_tasks_total{step=\"sink\",index=\"1\",outcome=\"skipped\"} 0\n"
    "# HELP skproc_flow_step_batches_total Handle calls of the step.\n"
    "# TYPE skproc_flow_step_batches_total counter\n"
    "skproc_flow_step_batches_total{step=\"ad\\\"d\\\\er\",index=\"0\"} 4\n"
    "skproc_flow_step_batches_total{step=\"sink\",index=\"1\"} 7\n"
    "# HELP skproc_flow_step_batch_size Tasks per handle call (no _sum: not recorded).\n"
    "# TYPE skproc_flow_step_batch_size histogram\n"
    "skproc_flow_step_batch_size_bucket{step=\"ad\\\"d\\\\er\",index=\"0\",le=\"1\"} 1\n"
    "skproc_flow_step_batch_size_bucket{step=\"ad\\\"d\\\\er\",index=\"0\",le=\"3\"} 3\n"
    "skproc_flow_step_batch_size_bucket{step=\"ad\\\"d\\\\er\",index=\"0\",le=\"7\"} 4\n"
    "skproc_flow_step_batch_size_bucket{step=\"ad\\\"d\\\\er\",index=\"0\",le=\"15\"} 4\n"
    "skproc_flow_step_batch_size_bucket{step=\"ad\\\"d\\\\er\",index=\"0\",le=\"31\"} 4\n"
    "skproc_flow_step_batch_size_bucket{step=\"ad\\\"d\\\\er\",index=\"0\",le=\"63\"} 4\n"
    "skproc_flow_step_batch_size_bucket{step=\"ad\\\"d\\\\er\",index=\"0\",le=\"127\"} 4\n"
    "skproc_flow_step_batch_size_bucket{step=\"ad\\\"d\\\\er\",index=\"0\",le=\"255\"} 4\n"
    "skproc_flow_step_batch_size_bucket{step=\"ad\\\"d\\\\er\",index=\"0\",le=\"511\"} 4\n"
    "skproc_flow_step_batch_size_bucket{step=\"ad\\\"d\\\\er\",index=\"0\",le=\"1023\"} 4\n"
    "skproc_flow_step_batch_size_bucket{step=\"ad\\\"d\\\\er\",index=\"0\",le=\"2047\"} 4\n"
    "skproc_flow_step_batch_size_bucket{step=\"ad\\\"d\\\\er\",index=\"0\",le=\"4095\"} 4\n"
    "skproc_flow_step_batch_size_bucket{step=\"ad\\\"d\\\\er\",index=\"0\",le=\"8191\"} 4\n"
    "skproc_flow_step_batch_size_bucket{step=\"ad\\\"d\\\\er\",index=\"0\",le=\"+Inf\"} 4\n"
    "skproc_flow_step_batch_size_count{step=\"ad\\\"d\\\\er\",index=\"0\"} 4\n"
    "skproc_flow_step_batch_size_bucket{step=\"sink\",index=\"1\",le=\"1\"} 7\n"
    "skproc_flow_step_batch_size_bucket{step=\"sink\",index=\"1\",le=\"3\"} 7\n"
    "skproc_flow_step_batch_size_bucket{step=\"sink\",index=\"1\",le=\"7\"} 7\n"
    "skproc_flow_step_batch_size_bucket{step=\"sink\",index=\"1\",le=\"15\"} 7\n"
    "skproc_flow_step_batch_size_bucket{step=\"sink\",index=\"1\",le=\"31\"} 7\n"
    "skproc_flow_step_batch_size_bucket{step=\"sink\",index=\"1\",le=\"63\"} 7\n"
    "skproc_flow_step_batch_size_bucket{step=\"sink\",index=\"1\",le=\"127\"} 7\n"
    "skproc_flow_step_batch_size_bucket{step=\"sink\",index=\"1\",le=\"255\"} 7\n"
    "skproc_flow_step_batch_size_bucket{step=\"sink\",index=\"1\",le=\"511\"} 7\n"
    "skproc_flow_step_batch_size_bucket{step=\"sink\",index=\"1\",le=\"1023\"} 7\n"
    "skproc_flow_step_batch_size_bucket{step=\"sink\",index=\"1\",le=\"2047\"} 7\n"
    "skproc_flow_step_batch_size_bucket{step=\"sink\",index=\"1\",le=\"4095\"} 7\n"
    "skproc_flow_step_batch_size_bucket{step=\"sink\",index=\"1\",le=\"8191\"} 7\n"
    "skproc_flow_step_batch_size_bucket{step=\"sink\",index=\"1\",le=\"+Inf\"} 7\n"
    "skproc_flow_step_batch_size_count{step=\"sink\",index=\"1\"} 7\n"
    "# HELP skproc_flow_step_queue_depth Tasks waiting in the step's input queue.\n"
    "# TYPE skproc_flow_step_queue_depth gauge\n"
    "skproc_flow_step_queue_depth{step=\"ad\\\"d\\\\er\",index=\"0\"} 3\n"
    "skproc_flow_step_queue_depth{step=\"sink\",index=\"1\"} 0\n"
    "# HELP skproc_flow_step_restarts_total Restarts of the step's processes after crashes and "
    "timeouts.\n"
    "# TYPE skproc_flow_step_restarts_total counter\n"
    "skproc_flow_step_restarts_total{step=\"ad\\\"d\\\\er\",index=\"0\"} 1\n"
    "skproc_flow_step_restarts_total{step=\"sink\",index=\"1\"} 0\n"
    "# HELP skproc_flow_step_handle_seconds Seconds per handle call.\n"
    "# TYPE skproc_flow_step_handle_seconds summary\n"
    "skproc_flow_step_handle_seconds{step=\"ad\\\"d\\\\er\",index=\"0\",quantile=\"0.5\"} 0.5\n"
    "skproc_flow_step_handle_seconds{step=\"ad\\\"d\\\\er\",index=\"0\",quantile=\"0.9\"} 0.5\n"
    "skproc_flow_step_handle_seconds{step=\"ad\\\"d\\\\er\",index=\"0\",quantile=\"0.99\"} 0.5\n"
    "skproc_flow_step_handle_seconds_sum{step=\"ad\\\"d\\\\er\",index=\"0\"} 2\n"
    "skproc_flow_step_handle_seconds_count{step=\"ad\\\"d\\\\er\",index=\"0\"} 4\n"
    "skproc_flow_step_handle_seconds{step=\"sink\",index=\"1\",quantile=\"0.5\"} NaN\n"
    "skproc_flow_step_handle_seconds{step=\"sink\",index=\"1\",quantile=\"0.9\"} NaN\n"
    "skproc_flow_step_handle_seconds{step=\"sink\",index=\"1\",quantile=\"0.99\"} NaN\n"
    "skproc_flow_step_handle_seconds_sum{step=\"sink\",index=\"1\"} 0\n"
    "skproc_flow_step_handle_seconds_count{step=\"sink\",index=\"1\"} 0\n"
    "# HELP skproc_flow_step_queue_wait_seconds Seconds a frame of tasks waited in the step's "
    "input queue.\n"
    "# TYPE skproc_flow_step_queue_wait_seconds summary\n"
    "skproc_flow_step_queue_wait_seconds{step=\"ad\\\"d\\\\er\",index=\"0\",quantile=\"0.5\"} NaN\n"
    "skproc_flow_step_queue_wait_seconds{step=\"ad\\\"d\\\\er\",index=\"0\",quantile=\"0.9\"} NaN\n"
    "skproc_flow_step_queue_wait_seconds{step=\"ad\\\"d\\\\er\",index=\"0\",quantile=\"0.99\"} "
    "NaN\n"
    "skproc_flow_step_queue_wait_seconds_sum{step=\"ad\\\"d\\\\er\",index=\"0\"} 0\n"
    "skproc_flow_step_queue_wait_seconds_count{step=\"ad\\\"d\\\\er\",index=\"0\"} 0\n"
    "skproc_flow_step_queue_wait_seconds{step=\"sink\",index=\"1\",quantile=\"0.5\"} 0.1\n"
    "skproc_flow_step_queue_wait_seconds{step=\"sink\",index=\"1\",quantile=\"0.9\"} 0.1\n"
    "skproc_flow_step_queue_wait_seconds{step=\"sink\",index=\"1\",quantile=\"0.99\"} 0.1\n"
    "skproc_flow_step_queue_wait_seconds_sum{step=\"sink\",index=\"1\"} 0.1\n"
    "skproc_flow_step_queue_wait_seconds_count{step=\"sink\",index=\"1\"} 1\n";

static void test_prometheus_golden(void **state)
{
    (void)state;
    struct fixture f;
    fixture_fill(&f);
    assert_text(text_of(&f.m, NULL), golden);
}

/* Every HELP is followed by its TYPE, each family appears once, and every
 * sample line belongs to the family declared last. */
static void test_prometheus_families(void **state)
{
    (void)state;
    struct fixture f;
    fixture_fill(&f);
    char *text = text_of(&f.m, "app:flow_x");
    char seen[64][96];
    int n_seen = 0;
    char family[96] = "", type[16] = "";
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char name[96];
        if (strncmp(line, "# HELP ", 7) == 0) {
            assert_int_equal(sscanf(line + 7, "%95s", family), 1);
            for (int i = 0; i < n_seen; i++)
                assert_string_not_equal(seen[i], family);
            assert_true(n_seen < 64);
            strcpy(seen[n_seen++], family);
            assert_int_equal(strncmp(family, "app:flow_x_", 11), 0);
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            assert_int_equal(sscanf(line + 7, "%95s %15s", name, type), 2);
            assert_string_equal(name, family);
            if (strcmp(type, "counter") == 0)
                assert_string_equal(family + strlen(family) - 6, "_total");
            continue;
        }
        size_t len = strcspn(line, "{ ");
        assert_true(len < sizeof name);
        memcpy(name, line, len);
        name[len] = '\0';
        size_t fl = strlen(family);
        assert_int_equal(strncmp(name, family, fl), 0);
        const char *suffix = name + fl;
        if (strcmp(type, "summary") == 0)
            assert_true(!*suffix || !strcmp(suffix, "_sum") || !strcmp(suffix, "_count"));
        else if (strcmp(type, "histogram") == 0)
            assert_true(!strcmp(suffix, "_bucket") || !strcmp(suffix, "_count"));
        else
            assert_string_equal(suffix, "");
    }
    assert_int_equal(n_seen, 15);
}

static void test_prometheus_escaping(void **state)
{
    (void)state;
    /* Newline, quote, backslash, valid UTF-8 (é), a stray byte and a cut
     * sequence. */
    sk_flow_step_metrics st = {.name = "a\nb\"c\\d \xc3\xa9 \xff|\xe2\x82", .index = 7};
    sk_flow_metrics m = {.steps = 1, .step = &st};
    char *text = text_of(&m, "x");
    const char *want = "x_step_queue_depth{step=\"a\\nb\\\"c\\\\d \xc3\xa9 \xef\xbf\xbd|"
                       "\xef\xbf\xbd\xef\xbf\xbd\",index=\"7\"} 0\n";
    assert_non_null(strstr(text, want));
    /* A NULL name is an empty label, and no raw newline is inside a
     * sample line: every line starts with '#' or the prefix. */
    st.name = NULL;
    text = text_of(&m, "x");
    assert_non_null(strstr(text, "x_step_restarts_total{step=\"\",index=\"7\"} 0\n"));
    for (const char *l = text; *l != '\0'; l = strchr(l, '\n') + 1)
        assert_true(l[0] == '#' || strncmp(l, "x_", 2) == 0);
}

/* Empty and NULL timers: NaN quantiles, zero sum and count. */
static void test_prometheus_nan(void **state)
{
    (void)state;
    sk_flow_metrics m = {.latency = NULL};
    char *text = text_of(&m, NULL);
    assert_non_null(strstr(text, "skproc_flow_latency_seconds{quantile=\"0.5\"} NaN\n"
                                 "skproc_flow_latency_seconds{quantile=\"0.9\"} NaN\n"
                                 "skproc_flow_latency_seconds{quantile=\"0.99\"} NaN\n"
                                 "skproc_flow_latency_seconds_sum 0\n"
                                 "skproc_flow_latency_seconds_count 0\n"));
    m.latency = new_timer();
    char *again = text_of(&m, NULL);
    assert_string_equal(again, text);
    /* Non-finite gauges as the format spells them. */
    m.elapsed = INFINITY;
    m.throughput = NAN;
    text = text_of(&m, NULL);
    assert_non_null(strstr(text, "skproc_flow_elapsed_seconds +Inf\n"));
    assert_non_null(strstr(text, "skproc_flow_throughput_tasks_per_second NaN\n"));
}

static void test_prometheus_refusals(void **state)
{
    (void)state;
    struct fixture f;
    fixture_fill(&f);
    FILE *out = fopen("/dev/null", "w");
    assert_non_null(out);
    const char *bad[] = {"", "9flow", "my-flow", "flow.x", "a b", "é"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_rc(sk_flow_metrics_prometheus(&f.m, bad[i], out), SK_EINVAL);
    assert_non_null(strstr(sk_last_error_message(), "metric name"));
    const char *good[] = {"a", "_x", ":x", "Flow_1:y"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_rc(sk_flow_metrics_prometheus(&f.m, good[i], out), SK_OK);
    assert_rc(sk_flow_metrics_prometheus(NULL, NULL, out), SK_EINVAL);
    assert_rc(sk_flow_metrics_prometheus(&f.m, NULL, NULL), SK_EINVAL);
    sk_flow_metrics broken = {.steps = 1, .step = NULL};
    assert_rc(sk_flow_metrics_prometheus(&broken, NULL, out), SK_EINVAL);
    broken.steps = -1;
    assert_rc(sk_flow_metrics_prometheus(&broken, NULL, out), SK_EINVAL);
    fclose(out);
}

/* /dev/full: every write fails with ENOSPC, unbuffered at once, buffered
 * at the flush. */
static void test_prometheus_failed_stream(void **state)
{
    (void)state;
    struct fixture f;
    fixture_fill(&f);
    for (int buffered = 0; buffered <= 1; buffered++) {
        FILE *out = fopen("/dev/full", "w");
        assert_non_null(out);
        if (!buffered)
            setvbuf(out, NULL, _IONBF, 0);
        assert_rc(sk_flow_metrics_prometheus(&f.m, NULL, out), SK_ESYS);
        assert_non_null(strstr(sk_last_error_message(), "writing failed"));
        fclose(out);
    }
}

/* Numbers do not follow the program's locale, and the thread's locale is
 * as it was after the call. */
static void test_prometheus_locale(void **state)
{
    (void)state;
    struct fixture f;
    fixture_fill(&f);
    locale_t before = uselocale((locale_t)0);
    const char *comma[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "ru_RU.UTF-8"};
    const char *set = NULL;
    for (size_t i = 0; i < sizeof comma / sizeof comma[0] && set == NULL; i++)
        set = setlocale(LC_NUMERIC, comma[i]);
    if (set == NULL)
        print_message("    no locale with a decimal comma is installed: the text is checked "
                      "in the C locale only\n");
    else {
        char probe[16];
        snprintf(probe, sizeof probe, "%.1f", 2.5);
        assert_string_equal(probe, "2,5"); /* the locale took */
    }
    char *text = text_of(&f.m, NULL);
    setlocale(LC_NUMERIC, "C");
    assert_text(text, golden);
    assert_ptr_equal(uselocale((locale_t)0), before);
}

/* ---------------------------------------------------------- promtool */

static void remove_file(void *path)
{
    unlink(path);
    free(path);
}

/* promtool's verdict on text: its exit status, and what it printed. */
static int promtool(const char *text, char *said, size_t size)
{
    char *path = strdup("/tmp/skproc-export-XXXXXX");
    assert_non_null(path);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    skt_defer(remove_file, path);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s 2>&1", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t got = fread(said, 1, size - 1, p);
    said[got] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* Asserts that promtool takes text with nothing to say, printing what it
 * said when it does not. */
static void assert_promtool_clean(const char *text)
{
    char said[4096];
    int rc = promtool(text, said, sizeof said);
    if (rc != 0 || said[0] != '\0')
        print_message("    promtool (exit %d) said:\n%s\n", rc, said);
    assert_int_equal(rc, 0);
    assert_string_equal(said, ""); /* no lint either */
}

static bool have_promtool(void)
{
    if (system("command -v promtool >/dev/null 2>&1") == 0)
        return true;
    if (getenv("CI") != NULL)
        fail_msg("promtool is not installed and CI is set: apt-get install prometheus");
    print_message("    promtool is not installed (apt-get install prometheus): not checked\n");
    return false;
}

static void test_promtool_accepts(void **state)
{
    (void)state;
    if (!have_promtool())
        skip();
    skt_bound(120);
    struct fixture f;
    fixture_fill(&f);
    assert_promtool_clean(text_of(&f.m, NULL));

    /* Names that need escaping or replacing, and no step at all. */
    sk_flow_step_metrics st[2] = {{.name = "a\nb\"c\\d \xff", .index = 0},
                                  {.name = "", .index = 1}};
    sk_flow_metrics m = {.steps = 2, .step = st, .elapsed = NAN};
    assert_promtool_clean(text_of(&m, "other_prefix"));
    sk_flow_metrics none = {0};
    assert_promtool_clean(text_of(&none, NULL));
}

/* The checker checks: a counter without _total is linted. */
static void test_promtool_lints(void **state)
{
    (void)state;
    if (!have_promtool())
        skip();
    skt_bound(120);
    char said[4096];
    int rc =
        promtool("# HELP x_tasks Tasks.\n# TYPE x_tasks counter\nx_tasks 1\n", said, sizeof said);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(said, "_total"));
    rc = promtool("x{a=\"b} 1\n", said, sizeof said);
    assert_int_not_equal(rc, 0);
}

/* -------------------------------------------------------------- statsd */

struct listener {
    int fd;
    int port;
};

static void close_fd(void *p)
{
    close((int)(intptr_t)p);
}

static struct listener listen_udp(void)
{
    struct listener l;
    l.fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(l.fd >= 0);
    skt_defer(close_fd, (void *)(intptr_t)l.fd);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(l.fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(l.fd, (struct sockaddr *)&a, &len), 0);
    l.port = ntohs(a.sin_port);
    int big = 1 << 20;
    setsockopt(l.fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    return l;
}

static void close_sender(void *s)
{
    sk_statsd_close(s);
}

static sk_statsd *open_sender(int port, const char *prefix)
{
    sk_statsd *s = NULL;
    assert_rc(sk_statsd_open(&s, "127.0.0.1", port, prefix), SK_OK);
    assert_non_null(s);
    skt_defer(close_sender, s);
    return s;
}

#define MAX_LINES 4096

/* What one send delivered: its lines, and its datagrams' sizes. */
struct received {
    int datagrams;
    size_t biggest;
    int n;
    char line[MAX_LINES][256];
};

/* Receives every datagram sk_statsd_send just sent: the first within 5 s,
 * then until none comes for 200 ms (loopback delivers during send()). */
static void receive(struct listener *l, struct received *r)
{
    memset(r, 0, sizeof *r);
    char buf[65536];
    double deadline = skt_now() + 5.0;
    for (;;) {
        struct pollfd p = {.fd = l->fd, .events = POLLIN};
        int wait_ms = r->datagrams == 0 ? (int)((deadline - skt_now()) * 1000) : 200;
        if (wait_ms < 0)
            wait_ms = 0;
        int ready = poll(&p, 1, wait_ms);
        if (ready == 0)
            break;
        assert_int_equal(ready, 1);
        ssize_t got = recv(l->fd, buf, sizeof buf - 1, 0);
        assert_true(got > 0);
        buf[got] = '\0';
        r->datagrams++;
        if ((size_t)got > r->biggest)
            r->biggest = (size_t)got;
        assert_int_not_equal(buf[got - 1], '\n'); /* lines are joined, not ended */
        char *save = NULL;
        for (char *line = strtok_r(buf, "\n", &save); line != NULL;
             line = strtok_r(NULL, "\n", &save)) {
            assert_true(r->n < MAX_LINES);
            assert_true(strlen(line) < sizeof r->line[0]);
            strcpy(r->line[r->n++], line);
        }
        if (skt_now() > deadline)
            break;
    }
    assert_int_gt(r->datagrams, 0);
    assert_int_le(r->biggest, 1432);
}

/* Every line is name:value|c, |g or |ms, the name made of [A-Za-z0-9_.-]
 * and the value a plain non-negative number. */
static void assert_well_formed(const struct received *r)
{
    for (int i = 0; i < r->n; i++) {
        const char *l = r->line[i];
        const char *colon = strchr(l, ':'), *bar = strchr(l, '|');
        if (colon == NULL || bar == NULL || bar < colon)
            fail_msg("malformed line \"%s\"", l);
        for (const char *c = l; c < colon; c++)
            if (!(*c == '.' || *c == '_' || *c == '-' || (*c >= '0' && *c <= '9') ||
                  (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')))
                fail_msg("bad name in \"%s\"", l);
        char *end;
        double v = strtod(colon + 1, &end);
        if (end != bar || colon + 1 == bar || !(v >= 0) || colon[1] == '+')
            fail_msg("bad value in \"%s\"", l);
        if (strcmp(bar, "|c") != 0 && strcmp(bar, "|g") != 0 && strcmp(bar, "|ms") != 0)
            fail_msg("bad type in \"%s\"", l);
    }
}

/* The value and type of name, NULL when no line has it (and no line has it
 * twice). */
static const char *find(const struct received *r, const char *name)
{
    const char *found = NULL;
    size_t n = strlen(name);
    for (int i = 0; i < r->n; i++)
        if (strncmp(r->line[i], name, n) == 0 && r->line[i][n] == ':') {
            if (found != NULL)
                fail_msg("\"%s\" sent twice", name);
            found = r->line[i] + n + 1;
        }
    return found;
}

static void expect(const struct received *r, const char *name, const char *value_type)
{
    const char *got = find(r, name);
    if (got == NULL)
        fail_msg("no line for %s (want %s)", name, value_type);
    if (value_type == NULL || strcmp(got, value_type) != 0)
        fail_msg("%s: got %s, want %s", name, got, value_type ? value_type : "(nothing)");
}

static void expect_none(const struct received *r, const char *name)
{
    const char *got = find(r, name);
    if (got != NULL)
        fail_msg("%s sent (%s), want nothing", name, got);
}

static void test_statsd_deltas(void **state)
{
    (void)state;
    struct listener l = listen_udp();
    sk_statsd *s = open_sender(l.port, NULL);
    struct fixture f;
    fixture_fill(&f);
    struct received *r = xcalloc(1, sizeof *r);

    assert_rc(sk_statsd_send(s, &f.m), SK_OK);
    receive(&l, r);
    assert_well_formed(r);
    /* First send: the whole counts. */
    expect(r, "skproc.flow.submitted", "12|c");
    expect(r, "skproc.flow.completed", "7|c");
    expect(r, "skproc.flow.failed", "1|c");
    expect(r, "skproc.flow.in_flight", "4|g");
    expect(r, "skproc.flow.elapsed_seconds", "2.5|g");
    expect(r, "skproc.flow.throughput", "3.2|g");
    expect(r, "skproc.flow.latency", "2|ms"); /* (1 + 3) / 2 ms */
    expect(r, "skproc.flow.ad_d_er.tasks_in", "10|c");
    expect(r, "skproc.flow.ad_d_er.tasks_out", "9|c");
    expect(r, "skproc.flow.ad_d_er.tasks_failed", "1|c");
    expect(r, "skproc.flow.ad_d_er.tasks_skipped", "2|c");
    expect(r, "skproc.flow.ad_d_er.batches", "4|c");
    expect(r, "skproc.flow.ad_d_er.restarts", "1|c");
    expect(r, "skproc.flow.ad_d_er.batch_size.1_1", "1|c");
    expect(r, "skproc.flow.ad_d_er.batch_size.2_3", "2|c");
    expect(r, "skproc.flow.ad_d_er.batch_size.4_7", "1|c");
    expect_none(r, "skproc.flow.ad_d_er.batch_size.8_15");
    expect(r, "skproc.flow.ad_d_er.processes", "2|g");
    expect(r, "skproc.flow.ad_d_er.queue_depth", "3|g");
    expect(r, "skproc.flow.ad_d_er.handle_time", "500|ms");
    expect_none(r, "skproc.flow.ad_d_er.queue_wait"); /* NULL timer */
    expect(r, "skproc.flow.sink.tasks_in", "7|c");
    expect_none(r, "skproc.flow.sink.tasks_failed"); /* 0: no line */
    expect_none(r, "skproc.flow.sink.restarts");
    expect(r, "skproc.flow.sink.batch_size.1_1", "7|c");
    expect(r, "skproc.flow.sink.queue_depth", "0|g");
    expect_none(r, "skproc.flow.sink.handle_time"); /* no samples */
    expect(r, "skproc.flow.sink.queue_wait", "100|ms");
    assert_int_equal(r->n, 26);

    /* Counters grow, one timer gets a sample: only the increases go. */
    f.m.submitted += 5;
    f.m.in_flight = 9;
    f.step[0].tasks_in += 3;
    f.step[0].batches += 1;
    f.step[0].batch_sizes[1] += 1;
    f.step[0].queue_depth = 6;
    sk_timer_add(f.handle0, 1000 * MS);
    assert_rc(sk_statsd_send(s, &f.m), SK_OK);
    receive(&l, r);
    assert_well_formed(r);
    expect(r, "skproc.flow.submitted", "5|c");
    expect_none(r, "skproc.flow.completed");
    expect_none(r, "skproc.flow.failed");
    expect(r, "skproc.flow.in_flight", "9|g");
    expect(r, "skproc.flow.elapsed_seconds", "2.5|g");
    expect(r, "skproc.flow.throughput", "3.2|g");
    expect_none(r, "skproc.flow.latency");
    expect(r, "skproc.flow.ad_d_er.tasks_in", "3|c");
    expect_none(r, "skproc.flow.ad_d_er.tasks_out");
    expect(r, "skproc.flow.ad_d_er.batches", "1|c");
    expect(r, "skproc.flow.ad_d_er.batch_size.2_3", "1|c");
    expect_none(r, "skproc.flow.ad_d_er.batch_size.1_1");
    expect(r, "skproc.flow.ad_d_er.queue_depth", "6|g");
    expect(r, "skproc.flow.ad_d_er.processes", "2|g");
    expect(r, "skproc.flow.ad_d_er.handle_time", "1000|ms"); /* the new sample alone */
    expect_none(r, "skproc.flow.sink.tasks_in");
    expect_none(r, "skproc.flow.sink.queue_wait");
    expect(r, "skproc.flow.sink.processes", "1|g");
    assert_int_equal(r->n, 12);

    /* Nothing new: gauges only. A counter that went down (another flow)
     * starts again from zero. */
    f.m.completed = 2;
    assert_rc(sk_statsd_send(s, &f.m), SK_OK);
    receive(&l, r);
    expect(r, "skproc.flow.completed", "2|c");
    assert_int_equal(r->n, 8); /* 3 flow gauges, 2 per step, completed */
}

/* 40 steps with long names: several datagrams, none over 1432 bytes, no
 * line cut, every line there once. */
static void test_statsd_many_datagrams(void **state)
{
    (void)state;
    struct listener l = listen_udp();
    sk_statsd *s = open_sender(l.port, "app.flows.orders");
    enum { STEPS = 40 };
    sk_flow_step_metrics *st = xcalloc(STEPS, sizeof *st);
    char(*names)[64] = xcalloc(STEPS, sizeof *names);
    for (int i = 0; i < STEPS; i++) {
        snprintf(names[i], sizeof names[i], "a rather long step name, number %02d", i);
        st[i] = (sk_flow_step_metrics){.name = names[i],
                                       .index = i,
                                       .processes = 1 + i % 3,
                                       .tasks_in = 1000u + (uint64_t)i,
                                       .tasks_out = 990u + (uint64_t)i,
                                       .tasks_failed = (uint64_t)i % 2,
                                       .batches = 100,
                                       .batch_sizes = {[3] = 100},
                                       .queue_depth = (uint64_t)i};
    }
    sk_flow_metrics m = {.steps = STEPS, .step = st, .submitted = 1};
    struct received *r = xcalloc(1, sizeof *r);
    assert_rc(sk_statsd_send(s, &m), SK_OK);
    receive(&l, r);
    assert_well_formed(r);
    print_message("    %d lines in %d datagrams, the biggest %zu bytes\n", r->n, r->datagrams,
                  r->biggest);
    assert_int_gt(r->datagrams, 3);
    assert_int_gt(r->biggest, 1432 - 120); /* packed, not one line each */
    int per_step = 0;
    for (int i = 0; i < STEPS; i++) {
        char name[160], value[32];
        const char *key = "a_rather_long_step_name__number_";
        snprintf(name, sizeof name, "app.flows.orders.%s%02d.tasks_in", key, i);
        snprintf(value, sizeof value, "%d|c", 1000 + i);
        expect(r, name, value);
        snprintf(name, sizeof name, "app.flows.orders.%s%02d.queue_depth", key, i);
        snprintf(value, sizeof value, "%d|g", i);
        expect(r, name, value);
        snprintf(name, sizeof name, "app.flows.orders.%s%02d.batch_size.8_15", key, i);
        expect(r, name, "100|c");
        per_step += 6 + (i % 2); /* in, out, batches, bin, processes, depth, failed */
    }
    /* submitted, in_flight, elapsed_seconds, throughput + the steps'. */
    assert_int_equal(r->n, 4 + per_step);
}

/* Names: sanitized, unique, and "step" for an empty one. */
static void test_statsd_names(void **state)
{
    (void)state;
    struct listener l = listen_udp();
    sk_statsd *s = open_sender(l.port, "p");
    sk_flow_step_metrics st[4] = {{.name = "x.y", .index = 0, .tasks_in = 1},
                                  {.name = "x:y", .index = 1, .tasks_in = 2},
                                  {.name = NULL, .index = 2, .tasks_in = 3},
                                  {.name = "", .index = 3, .tasks_in = 4}};
    sk_flow_metrics m = {.steps = 4, .step = st, .elapsed = -1, .throughput = NAN};
    struct received *r = xcalloc(1, sizeof *r);
    assert_rc(sk_statsd_send(s, &m), SK_OK);
    receive(&l, r);
    assert_well_formed(r);
    expect(r, "p.x_y.tasks_in", "1|c");
    expect(r, "p.x_y_1.tasks_in", "2|c");
    expect(r, "p.step.tasks_in", "3|c");
    expect(r, "p.step_3.tasks_in", "4|c");
    expect_none(r, "p.elapsed_seconds"); /* negative */
    expect_none(r, "p.throughput");      /* NaN */

    /* The sender used for another flow: a position with another name
     * starts from zero. */
    st[0].name = "other";
    st[0].tasks_in = 5;
    st[1].tasks_in = 3;
    assert_rc(sk_statsd_send(s, &m), SK_OK);
    receive(&l, r);
    expect(r, "p.other.tasks_in", "5|c");
    expect(r, "p.x_y.tasks_in", "3|c"); /* now position 1's own name: new too */
}

static void test_statsd_refusals(void **state)
{
    (void)state;
    skt_bound(60);
    sk_statsd *s = (sk_statsd *)&s;
    assert_rc(sk_statsd_open(NULL, "127.0.0.1", 8125, NULL), SK_EINVAL);
    assert_rc(sk_statsd_open(&s, NULL, 8125, NULL), SK_EINVAL);
    assert_null(s);
    assert_rc(sk_statsd_open(&s, "", 8125, NULL), SK_EINVAL);
    assert_rc(sk_statsd_open(&s, "127.0.0.1", 0, NULL), SK_EINVAL);
    assert_rc(sk_statsd_open(&s, "127.0.0.1", 65536, NULL), SK_EINVAL);
    const char *bad[] = {"", ".a", "a.", "a..b", "a b", "a:b", "a|b", "a\nb"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_rc(sk_statsd_open(&s, "127.0.0.1", 8125, bad[i]), SK_EINVAL);
    char longest[202];
    memset(longest, 'a', 201);
    longest[201] = '\0';
    assert_rc(sk_statsd_open(&s, "127.0.0.1", 8125, longest), SK_EINVAL);
    longest[200] = '\0';
    assert_rc(sk_statsd_open(&s, "127.0.0.1", 8125, longest), SK_OK);
    sk_statsd_close(s);
    sk_statsd_close(NULL);

    /* A name that does not resolve (.invalid never does, RFC 6761). */
    int fds = skt_fd_count();
    s = (sk_statsd *)&s;
    int rc = sk_statsd_open(&s, "no-such-host.invalid", 8125, NULL);
    print_message("    no-such-host.invalid: %s (%s)\n", sk_strerror(rc), sk_last_error_message());
    assert_true(rc == SK_EINVAL || rc == SK_ESYS);
    assert_null(s);
    assert_int_equal(skt_fd_count(), fds);

    assert_rc(sk_statsd_send(NULL, NULL), SK_EINVAL);
    s = open_sender(9, NULL);
    assert_rc(sk_statsd_send(s, NULL), SK_EINVAL);
    sk_flow_metrics broken = {.steps = 2};
    assert_rc(sk_statsd_send(s, &broken), SK_EINVAL);
}

/* IPv6 and names work as well as IPv4 addresses. */
static void test_statsd_hosts(void **state)
{
    (void)state;
    struct listener l = listen_udp();
    sk_statsd *s = NULL;
    assert_rc(sk_statsd_open(&s, "localhost", l.port, NULL), SK_OK);
    skt_defer(close_sender, s);
    /* localhost may resolve to ::1 first: only an IPv4 answer reaches us. */
    sk_flow_metrics m = {.submitted = 1};
    assert_rc(sk_statsd_send(s, &m), SK_OK);

    int fd6 = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    if (fd6 < 0 || bind(fd6, (struct sockaddr *)&a6, sizeof a6) != 0) {
        print_message("    no IPv6 loopback: ::1 not checked\n");
        if (fd6 >= 0)
            close(fd6);
        return;
    }
    skt_defer(close_fd, (void *)(intptr_t)fd6);
    socklen_t len = sizeof a6;
    assert_int_equal(getsockname(fd6, (struct sockaddr *)&a6, &len), 0);
    sk_statsd *s6 = NULL;
    assert_rc(sk_statsd_open(&s6, "::1", ntohs(a6.sin6_port), "v6"), SK_OK);
    skt_defer(close_sender, s6);
    assert_rc(sk_statsd_send(s6, &m), SK_OK);
    struct listener l6 = {.fd = fd6};
    struct received *r = xcalloc(1, sizeof *r);
    receive(&l6, r);
    expect(r, "v6.submitted", "1|c");
}

/* No one listens: sending is not an error (the ECONNREFUSED each send
 * brings back is passed over), and no fd is left behind. */
static void test_statsd_no_listener(void **state)
{
    (void)state;
    int fds = skt_fd_count();
    /* A port that was free a moment ago. */
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    int port = ntohs(a.sin_port);
    /* The case in point: a plain socket gets ECONNREFUSED there. */
    int probe = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_int_equal(connect(probe, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(send(probe, "x", 1, 0), 1);
    skt_sleep(0.01);
    errno = 0;
    ssize_t again = send(probe, "x", 1, 0);
    int probe_errno = errno;
    close(probe);
    if (again < 0)
        assert_int_equal(probe_errno, ECONNREFUSED);
    else
        print_message("    no ECONNREFUSED on this host: only the plain case is checked\n");
    sk_statsd *s = NULL;
    assert_rc(sk_statsd_open(&s, "127.0.0.1", port, NULL), SK_OK);
    struct fixture f;
    fixture_fill(&f);
    for (int i = 0; i < 5; i++) {
        f.m.submitted++;
        assert_rc(sk_statsd_send(s, &f.m), SK_OK);
        skt_sleep(0.01); /* lets the ICMP come back */
    }
    sk_statsd_close(s);
    assert_int_equal(skt_fd_count(), fds);
}

/* A datagram that send() refuses: SK_ESYS when none of the call went, and
 * its counts go with the next call. The sender's socket is swapped under it
 * for one that was shut down (send() fails with EPIPE, and MSG_NOSIGNAL
 * keeps SIGPIPE away). */
static void test_statsd_failed_send_kept(void **state)
{
    (void)state;
    struct listener l = listen_udp();
    int lowest = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(lowest >= 0);
    close(lowest); /* the sender's socket takes the lowest free number */
    sk_statsd *s = open_sender(l.port, "k");
    struct sockaddr_in peer;
    socklen_t len = sizeof peer;
    assert_int_equal(getpeername(lowest, (struct sockaddr *)&peer, &len), 0);
    assert_int_equal(ntohs(peer.sin_port), l.port);

    int broken = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_int_equal(connect(broken, (struct sockaddr *)&peer, len), 0);
    assert_int_equal(shutdown(broken, SHUT_WR), 0);
    int saved = fcntl(lowest, F_DUPFD_CLOEXEC, 0);
    assert_true(saved >= 0);
    assert_int_equal(dup3(broken, lowest, O_CLOEXEC), lowest);

    sk_flow_step_metrics st = {.name = "s", .tasks_in = 4};
    sk_flow_metrics m = {.steps = 1, .step = &st, .submitted = 10};
    assert_rc(sk_statsd_send(s, &m), SK_ESYS);
    assert_non_null(strstr(sk_last_error_message(), strerror(EPIPE)));

    assert_int_equal(dup3(saved, lowest, O_CLOEXEC), lowest);
    close(saved);
    close(broken);
    m.submitted = 11;
    st.tasks_in = 5;
    assert_rc(sk_statsd_send(s, &m), SK_OK);
    struct received *r = xcalloc(1, sizeof *r);
    receive(&l, r);
    expect(r, "k.submitted", "11|c"); /* none of the first call was lost */
    expect(r, "k.s.tasks_in", "5|c");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_prometheus_golden),     SKT_TEST(test_prometheus_families),
        SKT_TEST(test_prometheus_escaping),   SKT_TEST(test_prometheus_nan),
        SKT_TEST(test_prometheus_refusals),   SKT_TEST(test_prometheus_failed_stream),
        SKT_TEST(test_prometheus_locale),     SKT_TEST(test_promtool_accepts),
        SKT_TEST(test_promtool_lints),        SKT_TEST(test_statsd_deltas),
        SKT_TEST(test_statsd_many_datagrams), SKT_TEST(test_statsd_names),
        SKT_TEST(test_statsd_refusals),       SKT_TEST(test_statsd_hosts),
        SKT_TEST(test_statsd_no_listener),    SKT_TEST(test_statsd_failed_send_kept),
    };
    return skt_run(argc, argv, tests);
}
