/* SPDX-License-Identifier: MIT */
/*
 * The scheduler's examples, run as a user runs them (example_support.h:
 * bounded, in a process group of their own, nothing left behind):
 * examples/sched_week must print the seed's week, run by run, the same on
 * every machine; examples/sched_end_condition must see one process task
 * ended by its end condition and one by its timeout, and say so from the
 * run log.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "support.h"
#include "example_support.h"

/* How many lines of r's output start with prefix. */
static int count_lines(const struct skt_run *r, const char *prefix)
{
    int n = 0;
    size_t len = strlen(prefix);
    for (const char *l = r->out; *l; l = skt_next_line(l))
        n += strncmp(l, prefix, len) == 0;
    return n;
}

/* Lines of a day, in their order within the day (runs due at the same
 * minute may come in either order: the checks below do not depend on it). */
static void test_sched_week(void **state)
{
    (void)state;
    struct skt_run *r = skt_run_example("sched_week", NULL, NULL);
    skt_expect_exit("sched_week", r, 0);
    /* Monday, whole: the pipeline at 07:00, up at 08:00, work at 09:00,
     * teeth again at 22:00. */
    static const char *const monday[] = {
        "Mon 07:00 get_data succeeded",   "Mon 07:00 transform_data succeeded",
        "Mon 07:00 store_data succeeded", "Mon 08:00 wake_up succeeded",
        "Mon 08:00 wash_teeth succeeded", "Mon 09:00 go_to_work succeeded",
        "Mon 22:00 wash_teeth succeeded",
    };
    for (size_t i = 0; i < sizeof monday / sizeof monday[0]; i++)
        skt_expect_line("sched_week", r, false, monday[i]);
    assert_int_equal(count_lines(r, "Mon "), 7);
    /* get_data, transform_data, store_data in that order: each waits for
     * the one before. */
    const char *get = strstr(r->out, "Mon 07:00 get_data");
    const char *transform = strstr(r->out, "Mon 07:00 transform_data");
    const char *store = strstr(r->out, "Mon 07:00 store_data");
    assert_true(get != NULL && transform != NULL && store != NULL);
    assert_true(get < transform && transform < store);
    /* Wednesday: the source is down, errors are reported, nothing is
     * transformed or stored. */
    skt_expect_line("sched_week", r, false, "Wed 07:00 get_data failed (the function returned 2)");
    skt_expect_line("sched_week", r, false, "Wed 07:00 report_errors succeeded");
    assert_int_equal(count_lines(r, "Wed 07:00 transform_data"), 0);
    assert_int_equal(count_lines(r, "Wed 07:00 store_data"), 0);
    assert_int_equal(count_lines(r, "Wed "), 6);
    /* The weekend: no work. */
    assert_int_equal(count_lines(r, "Sat 09:00 go_to_work"), 0);
    assert_int_equal(count_lines(r, "Sun 09:00 go_to_work"), 0);
    assert_int_equal(count_lines(r, "Sun "), 6);
    /* The week's counts. */
    static const struct {
        const char *task;
        int runs;
    } week[] = {{"wake_up", 7},        {"wash_teeth", 14}, {"go_to_work", 5},   {"get_data", 7},
                {"transform_data", 5}, {"store_data", 5},  {"report_errors", 2}};
    for (size_t i = 0; i < sizeof week / sizeof week[0]; i++) {
        char line[64], run_prefix[64];
        snprintf(line, sizeof line, "  %-15s %d", week[i].task, week[i].runs);
        skt_expect_line("sched_week", r, false, line);
        /* ... and as many lines of runs */
        int n = 0;
        snprintf(run_prefix, sizeof run_prefix, " %s ", week[i].task);
        for (const char *l = r->out; *l; l = skt_next_line(l)) {
            const char *nl = strchr(l, '\n');
            const char *hit = strstr(l, run_prefix);
            n += hit != NULL && (nl == NULL || hit < nl) && l[0] != ' ';
        }
        assert_int_equal(n, week[i].runs);
    }
    assert_int_equal(count_lines(r, ""), 45 + 8); /* 45 runs, the title, 7 counts */
}

static void test_sched_end_condition(void **state)
{
    (void)state;
    struct skt_run *r = skt_run_example("sched_end_condition", NULL, NULL);
    skt_expect_exit("sched_end_condition", r, 0);
    skt_expect_line("sched_end_condition", r, false, "15:00 check_mail started");
    skt_expect_line("sched_end_condition", r, false, "15:00 fetch_news started");
    /* check_mail ends once the simulated clock reaches 16:00, not before. */
    const char *at = skt_line_after("sched_end_condition", r, false, "16:0");
    assert_non_null(strstr(at, " check_mail ended: terminated"));
    skt_expect_line("sched_end_condition", r, false, "the log:");
    skt_expect_line("sched_end_condition", r, false,
                    "check_mail: terminated: Task 'check_mail' was ended by its end condition");
    /* fetch_news: ended at its timeout of 0.3 s, real time. */
    const char *news = skt_line_after("sched_end_condition", r, false, "fetch_news: terminated: ");
    if (strstr(news, "0.3s") == NULL || strstr(news, "imeout") == NULL) {
        skt_print_run("sched_end_condition", r);
        fail_msg("fetch_news: \"%s\"", news);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_sched_week),
        SKT_TEST(test_sched_end_condition),
    };
    return skt_run(argc, argv, tests);
}
