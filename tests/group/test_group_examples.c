/* SPDX-License-Identifier: MIT */
/*
 * The group examples, run as a user runs them (example_support.h: bounded,
 * in a process group of their own, nothing left behind):
 * examples/service_tree must bring back each of its four children after a
 * SIGKILL and get a pong from the listener each time; examples/
 * shell_pipeline must keep lines flowing through producer | grep | sink
 * across grep's restart.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "support.h"
#include "example_support.h"

static void test_service_tree(void **state)
{
    (void)state;
    struct skt_run *r = skt_run_example("service_tree", NULL, NULL);
    skt_expect_exit("service_tree", r, 0);
    skt_expect_line("service_tree", r, false, "all children came back");
    skt_expect_line("service_tree", r, false, "4 restarts; stopping");
    const char *names[] = {"listener", "worker-1", "worker-2", "helper"};
    for (int i = 0; i < 4; i++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "  %s is back as pid ", names[i]);
        int pid = -1, pong = -1;
        const char *rest = skt_line_after("service_tree", r, false, prefix);
        if (sscanf(rest, "%d; pong from %d", &pid, &pong) != 2 || pid <= 1 || pong <= 1) {
            skt_print_run("service_tree", r);
            fail_msg("%s: \"%s\"", names[i], rest);
        }
    }
}

static void test_shell_pipeline(void **state)
{
    (void)state;
    struct skt_run *r = skt_run_example("shell_pipeline", NULL, NULL);
    skt_expect_exit("shell_pipeline", r, 0);
    skt_expect_line("shell_pipeline", r, false, "the pipeline survived");
    long before = atol(skt_line_after("shell_pipeline", r, false, "lines before the kill: "));
    long after = atol(skt_line_after("shell_pipeline", r, false, "lines after the restart: "));
    long total = atol(skt_line_after("shell_pipeline", r, false, "lines in all: "));
    assert_true(before > 0);
    assert_true(after > before);
    assert_true(total >= after);
    skt_line_after("shell_pipeline", r, false, "  [pipeline] grep     restarting");
    skt_line_after("shell_pipeline", r, false, "  [pipeline] sink     restarting");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_service_tree),
        SKT_TEST(test_shell_pipeline),
    };
    return skt_run(argc, argv, tests);
}
