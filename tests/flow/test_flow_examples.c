/* SPDX-License-Identifier: MIT */
/*
 * The flow examples, run as a user runs them: examples/flow_poll (numbers
 * on stdin), flow_error and flow_compress (built only when pkg-config found
 * zlib; skipped otherwise) are started from this build's examples/
 * directory, stdin from a pipe filled beforehand, stdout and stderr read
 * through pipes. Each run is bounded: past SKT_EXAMPLE_BOUND seconds (times
 * skt_slowdown()) the example and everything in its process group are
 * killed and the test fails, so a hung example never hangs the suite.
 *
 * Each run must end with the exit status the example documents and print
 * the lines that show it did its job (every result of flow_poll, the error
 * status and failed tasks of flow_error, the file count and byte total of
 * flow_compress over a tree this test makes). Every run gets a $TMPDIR of
 * its own, which must be empty afterwards: the flow's session directory
 * was removed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "support.h"

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sys/stat.h>

#include "example_support.h"

/* ----------------------------------------------------------- flow_poll */

#define POLL_LIMIT 3037000499LL /* flow_poll's largest number */

/* Every number comes out squared plus 1000, in the order of the lines;
 * 2,000 lines against a queue of 16: the example had to pause stdin. */
static void test_flow_poll(void **state)
{
    (void)state;
    enum { LINES = 2000 };
    static char input[LINES * 16];
    static long long value[LINES];
    size_t len = 0;
    for (int i = 0; i < LINES; i++) {
        value[i] = i == 0 ? POLL_LIMIT : i == 1 ? -POLL_LIMIT : (long long)(i - LINES / 2) * 7;
        len += (size_t)snprintf(input + len, sizeof input - len, "%lld\n", value[i]);
    }
    struct skt_run *r = skt_run_example("flow_poll", NULL, input);
    skt_expect_exit("flow_poll", r, 0);
    /* The results, one line each, in the order of the input. */
    const char *line = r->out;
    for (int i = 0; i < LINES; i++) {
        char want[128];
        snprintf(want, sizeof want, "line %d: %lld^2 + 1000 = %lld\n", i + 1, value[i],
                 value[i] * value[i] + 1000);
        if (strncmp(line, want, strlen(want)) != 0) {
            skt_print_run("flow_poll", r);
            fail_msg("result %d: expected \"%.*s\"", i + 1, (int)strlen(want) - 1, want);
        }
        line += strlen(want);
    }
    long polls, pauses;
    char tail[64];
    const char *rest =
        skt_line_after("flow_poll", r, false, "2000 results, 0 wrong, 0 lines not numbers; ");
    assert_int_equal(sscanf(rest, "%ld polls, stdin paused %ld times %63s", &polls, &pauses, tail),
                     3);
    assert_string_equal(tail, "for");
    assert_cmp(polls, >, 0);
    assert_cmp(pauses, >, 0); /* its first read alone holds hundreds of lines */
    assert_int_equal(r->err_len, 0);
}

/* A line that is not a number (or too big) is reported on stderr and
 * makes the exit status 1; the other lines still get their results. */
static void test_flow_poll_bad_lines(void **state)
{
    (void)state;
    struct skt_run *r = skt_run_example("flow_poll", NULL, "3\nseven\n\n3037000500\n-4\n");
    skt_expect_exit("flow_poll", r, 1);
    skt_expect_line("flow_poll", r, false, "line 1: 3^2 + 1000 = 1009");
    skt_expect_line("flow_poll", r, false, "line 5: -4^2 + 1000 = 1016");
    skt_line_after("flow_poll", r, false, "2 results, 0 wrong, 2 lines not numbers; ");
    skt_expect_line("flow_poll", r, true, "line 2: not a number (or too big): seven");
    skt_expect_line("flow_poll", r, true, "line 4: not a number (or too big): 3037000500");

    /* No input at all: no results, and success. */
    r = skt_run_example("flow_poll", NULL, "");
    skt_expect_exit("flow_poll", r, 0);
    skt_line_after("flow_poll", r, false, "0 results, 0 wrong, 0 lines not numbers; ");
}

/* ---------------------------------------------------------- flow_error */

/* The negative record ends the flow with an error status: sk_flow_wait
 * says SK_EPROCESS, sk_flow_error names validate and the message, every
 * task still in the flow comes out failed with SK_ECLOSED (the bad one
 * among them), and submit refuses more. */
static void test_flow_error(void **state)
{
    (void)state;
    const char *ex = "flow_error";
    struct skt_run *r = skt_run_example(ex, NULL, NULL);
    skt_expect_exit(ex, r, 0);
    char want[256];

    skt_expect_line(ex, r, false, "40 records submitted and collected: 40 ok");
    long more = -1;
    for (const char *l = r->out; *l != '\0' && more < 0; l = skt_next_line(l)) {
        int end = 0; /* sscanf counts conversions, not the text matched after them */
        if (sscanf(l, "%ld more submitted; record 60 is negative%n", &more, &end) != 1 ||
            end == 0 || (l[end] != '\n' && l[end] != '\0'))
            more = -1;
    }
    /* Record 60 is the 21st of the second 60: it went in, and so did those
     * before it; the error may have refused some after it. */
    assert_cmp(more, >=, 21);
    assert_cmp(more, <=, 60);

    snprintf(want, sizeof want, "sk_flow_wait: SK_EPROCESS (%s)", sk_strerror(SK_EPROCESS));
    skt_expect_line(ex, r, false, want);
    int process = -1;
    const char *rest = skt_line_after(ex, r, false, "sk_flow_error: step 0 (validate), process ");
    assert_int_equal(sscanf(rest, "%d", &process), 1);
    assert_true(process == 0 || process == 1);
    skt_expect_line(ex, r, false, "  record 60 is negative: -60"); /* its sk_step_error message */

    rest = skt_line_after(ex, r, false, "task 60 (value -60): SK_ECLOSED, step 0, process ");
    assert_int_equal(sscanf(rest, "%d", &process), 1);
    assert_true(process == 0 || process == 1);

    long ok, since, failed;
    char then[128];
    rest = skt_line_after(ex, r, false, "collected: ");
    assert_int_equal(sscanf(rest,
                            "%ld ok (%ld since the first 40), %ld failed with SK_ECLOSED, "
                            "then %127[^\n]",
                            &ok, &since, &failed, then),
                     4);
    assert_int_equal(since, ok - 40);
    assert_int_equal(ok + failed, 40 + more); /* none lost */
    assert_cmp(failed, >=, 1);                /* the bad one at least */
    assert_string_equal(then, sk_strerror(SK_ECLOSED));

    snprintf(want, sizeof want, "sk_flow_submit afterwards: %s", sk_strerror(SK_ECLOSED));
    skt_expect_line(ex, r, false, want);
    skt_expect_line(ex, r, false, "ok: the flow stopped as it should");
    assert_int_equal(r->err_len, 0);
}

/* -------------------------------------------------------- flow_compress */

#ifdef SKPROC_HAVE_ZLIB
/* Writes len bytes of compressible text to dir/name. */
static void write_text(const char *dir, const char *name, size_t len)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (size_t i = 0; i < len; i++)
        fputc("the quick brown fox jumps over the lazy dog\n"[(i * 7 + i / 101) % 44], f);
    assert_int_equal(fclose(f), 0);
}
#endif

/* A tree of files of known sizes goes through read, compress and
 * checksum: every regular file under 1 MiB, none failed, their bytes
 * counted exactly, the output smaller than the input. A MAX argument stops
 * the walk there; a MAX of 0 is a usage error. */
static void test_flow_compress(void **state)
{
    (void)state;
#ifndef SKPROC_HAVE_ZLIB
    print_message("    zlib not found by pkg-config: examples/flow_compress not built\n");
    skip();
#else
    const char *ex = "flow_compress";
    char dir[PATH_MAX], sub[PATH_MAX + 8], link[PATH_MAX + 8];
    skt_make_temp_dir(dir, sizeof dir, "compress");
    skt_defer_rm_rf(dir);
    snprintf(sub, sizeof sub, "%s/sub", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    static const size_t sizes[] = {0, 1, 100, 4096, 65536, 300000, (1 << 20) - 1};
    enum { FILES = sizeof sizes / sizeof sizes[0] };
    uint64_t total = 0;
    for (size_t i = 0; i < FILES; i++) {
        char name[32];
        snprintf(name, sizeof name, "f%zu.txt", i);
        write_text(i % 2 ? sub : dir, name, sizes[i]);
        total += sizes[i];
    }
    write_text(dir, "too-big", 1 << 20); /* 1 MiB: left out */
    snprintf(link, sizeof link, "%s/link", dir);
    assert_int_equal(symlink("f0.txt", link), 0); /* not a regular file: left out */

    const char *all[] = {dir, NULL};
    struct skt_run *r = skt_run_example(ex, all, NULL);
    skt_expect_exit(ex, r, 0);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "compressing up to 1000 files under 1 MiB from %s", dir);
    skt_expect_line(ex, r, false, want);
    snprintf(want, sizeof want, "files     %d compressed and checked, 0 failed", (int)FILES);
    skt_expect_line(ex, r, false, want);
    snprintf(want, sizeof want, "bytes in  %" PRIu64, total);
    skt_expect_line(ex, r, false, want);
    uint64_t out = 0;
    const char *rest = skt_line_after(ex, r, false, "bytes out ");
    assert_int_equal(sscanf(rest, "%" SCNu64, &out), 1);
    assert_cmp(out, >, 0);
    assert_cmp(out, <, total / 4); /* the text repeats itself */
    skt_line_after(ex, r, false, "checksums crc32 ");
    assert_null(strstr(r->out, "failed: task"));

    const char *three[] = {dir, "3", NULL};
    r = skt_run_example(ex, three, NULL);
    skt_expect_exit(ex, r, 0);
    snprintf(want, sizeof want, "compressing up to 3 files under 1 MiB from %s", dir);
    skt_expect_line(ex, r, false, want);
    skt_expect_line(ex, r, false, "files     3 compressed and checked, 0 failed");

    const char *none[] = {dir, "0", NULL};
    r = skt_run_example(ex, none, NULL);
    skt_expect_exit(ex, r, 2);
    skt_line_after(ex, r, true, "usage: ");
#endif
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_flow_poll),
        SKT_TEST(test_flow_poll_bad_lines),
        SKT_TEST(test_flow_error),
        SKT_TEST(test_flow_compress),
    };
    return skt_run(argc, argv, tests);
}
