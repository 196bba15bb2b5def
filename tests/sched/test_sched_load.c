/* SPDX-License-Identifier: MIT */
/*
 * Loading tasks from shared objects (sk_sched_load): the path pattern, the
 * walk, and the libraries tests/sched/tasks/ holds, built by
 * tests/SConscript into SKT_SCHED_TASKS_DIR:
 *
 *   a/tasks.so      adds "a.main", a task run in the session's thread
 *   b/c/tasks.so    adds "bc.process", a process task
 *   bad/tasks.so    its register function fails (a condition that does not
 *                   parse) and returns what sk_sched_add said
 *   nosym/tasks.so  exports no skproc_sched_register
 *
 * The tasks write their name to the descriptor in $SKT_SCHED_TASKS_FD, so
 * the tests see the loaded code run (a fake clock, sk_sched_step). Other
 * trees are made in a temporary folder: copies of a/tasks.so at depths, a
 * text file named tasks.so, a hidden folder, a link loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support.h"

#include "example_support.h"
#include "sched/loader.h"

#include <fcntl.h>
#include <sys/stat.h>

#ifndef SKT_SCHED_TASKS_DIR
#error "tests/SConscript defines SKT_SCHED_TASKS_DIR"
#endif

#define NS INT64_C(1000000000)

/* ------------------------------------------------------------ helpers */

static int report[2] = {-1, -1}; /* the tasks write their names here */

static int64_t fake_now(void *arg)
{
    return *(int64_t *)arg;
}

struct session {
    sk_sched *s;
    int64_t now;
};

static void release_session(void *arg)
{
    struct session *ss = arg;
    sk_sched_release(ss->s);
    ss->s = NULL;
    free(ss);
}

static void close_report(void *arg)
{
    (void)arg;
    for (int i = 0; i < 2; i++)
        if (report[i] >= 0)
            close(report[i]);
    report[0] = report[1] = -1;
    unsetenv("SKT_SCHED_TASKS_FD");
}

/* The report pipe the task libraries write to (read at their register
 * call), closed when the test ends. */
static void open_report(void)
{
    assert_int_equal(pipe2(report, O_CLOEXEC), 0);
    skt_defer(close_report, NULL);
    char fd[16];
    snprintf(fd, sizeof fd, "%d", report[1]);
    assert_int_equal(setenv("SKT_SCHED_TASKS_FD", fd, 1), 0);
}

/* A session on a fake clock (a Monday noon, UTC), released when the test
 * ends. */
static struct session *new_session(void)
{
    struct session *ss = calloc(1, sizeof *ss);
    assert_non_null(ss);
    ss->now = INT64_C(1700481600) * NS; /* 2023-11-20 12:00 UTC */
    sk_sched_config cfg = {.clock = fake_now, .clock_arg = &ss->now, .no_signals = true};
    assert_int_equal(sk_sched_create(&ss->s, &cfg), SK_OK);
    skt_defer(release_session, ss);
    return ss;
}

/* The names the tasks wrote so far, one per line, sorted, into buf. */
static const char *reported(char *buf, size_t cap)
{
    size_t len = 0;
    while (skt_poll_in(report[0], 0) > 0 && len + 1 < cap) {
        ssize_t n = read(report[0], buf + len, cap - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return buf;
}

/* True when a library under path is mapped in this process. */
static bool mapped(const char *path)
{
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f) != NULL)
        found = strstr(line, path) != NULL;
    fclose(f);
    return found;
}

static void make_dirs(const char *root, const char *rel)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%.512s/%.512s", root, rel);
    for (char *c = path + strlen(root) + 1; *c; c++) {
        if (*c == '/') {
            *c = '\0';
            assert_true(mkdir(path, 0700) == 0 || errno == EEXIST);
            *c = '/';
        }
    }
}

/* Copies file from into root/rel, making the folders on the way. */
static void copy_file(const char *from, const char *root, const char *rel)
{
    make_dirs(root, rel);
    char to[PATH_MAX];
    snprintf(to, sizeof to, "%.512s/%.512s", root, rel);
    int in = open(from, O_RDONLY | O_CLOEXEC);
    assert_true(in >= 0);
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
    assert_true(out >= 0);
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        assert_true(skt_write_all(out, buf, (size_t)n));
    assert_int_equal(n, 0);
    close(in);
    close(out);
}

static void write_text(const char *root, const char *rel, const char *text)
{
    make_dirs(root, rel);
    char to[PATH_MAX];
    snprintf(to, sizeof to, "%.512s/%.512s", root, rel);
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(out >= 0);
    assert_true(skt_write_all(out, text, strlen(text)));
    close(out);
}

/* ------------------------------------------------------------ patterns */

static void test_path_match(void **state)
{
    (void)state;
    static const struct {
        const char *pattern, *path;
        bool match;
    } cases[] = {
        {"**/tasks.so", "tasks.so", true}, /* "**" spans no folder, too */
        {"**/tasks.so", "a/tasks.so", true},
        {"**/tasks.so", "a/b/c/tasks.so", true},
        {"**/tasks.so", "a/b/c/tasks.sox", false},
        {"**/tasks.so", "a/.hidden/tasks.so", false}, /* as '*' does not match ".x" */
        {"**/tasks.so", ".hidden/tasks.so", false},
        {"**/*.so", "a/b.so", true},
        {"**/*.so", "a/.b.so", false},
        {"jobs/*.so", "jobs/x.so", true},
        {"jobs/*.so", "jobs/sub/x.so", false}, /* '*' does not cross '/' */
        {"jobs/*.so", "x.so", false},
        {"jobs/**/*.so", "jobs/x.so", true},
        {"jobs/**/*.so", "jobs/a/b/x.so", true},
        {"jobs/**/*.so", "other/a/x.so", false},
        {"a/**/b/**/c.so", "a/x/b/y/z/c.so", true},
        {"a/**/b/**/c.so", "a/b/c.so", true},
        {"a/**/b/**/c.so", "a/x/y/c.so", false},
        {"**/**/**/x", "x", true}, /* consecutive "**" are one */
        {"**", "a/b/c", true},     /* a final "**": everything under */
        {"a/**", "a/b", true},
        {"a/**", "a", false},
        {"?/t[a-z]sks.so", "b/tasks.so", true},
        {"?/t[a-z]sks.so", "bb/tasks.so", false},
        {"*", "tasks.so", true},
        {"*", "a/tasks.so", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool got = sk_sched_path_match(cases[i].pattern, cases[i].path);
        if (got != cases[i].match)
            fail_msg("'%s' against '%s': %s, expected %s", cases[i].pattern, cases[i].path,
                     got ? "match" : "no match", cases[i].match ? "a match" : "none");
    }
}

static void test_bad_arguments(void **state)
{
    (void)state;
    struct session *ss = new_session();
    assert_int_equal(sk_sched_load(NULL, SKT_SCHED_TASKS_DIR, "**/tasks.so"), SK_EINVAL);
    assert_int_equal(sk_sched_load(ss->s, NULL, "**/tasks.so"), SK_EINVAL);
    assert_int_equal(sk_sched_load(ss->s, SKT_SCHED_TASKS_DIR, NULL), SK_EINVAL);
    assert_int_equal(sk_sched_load(ss->s, SKT_SCHED_TASKS_DIR, ""), SK_EINVAL);
    assert_non_null(strstr(sk_last_error_message(), "is empty"));
    assert_int_equal(sk_sched_load(ss->s, SKT_SCHED_TASKS_DIR, "/abs/*.so"), SK_EINVAL);
    assert_non_null(strstr(sk_last_error_message(), "absolute"));
    assert_int_equal(sk_sched_load(ss->s, SKT_SCHED_TASKS_DIR, "a//tasks.so"), SK_EINVAL);
    assert_int_equal(sk_sched_load(ss->s, SKT_SCHED_TASKS_DIR, "a/"), SK_EINVAL);
    assert_non_null(strstr(sk_last_error_message(), "empty segment"));
    /* A folder that is not there: SK_ESYS, naming it. */
    assert_int_equal(sk_sched_load(ss->s, SKT_SCHED_TASKS_DIR "/none", "**/tasks.so"), SK_ESYS);
    assert_non_null(strstr(sk_last_error_message(), "/none"));
    assert_non_null(strstr(sk_last_error_message(), "No such file"));
}

/* --------------------------------------------------------- real loads */

static void test_load_one_and_run_it(void **state)
{
    (void)state;
    int fds = skt_fd_count();
    open_report();
    struct session *ss = new_session();
    assert_false(mapped(SKT_SCHED_TASKS_DIR "/a/tasks.so"));
    assert_int_equal(sk_sched_load(ss->s, SKT_SCHED_TASKS_DIR, "a/tasks.so"), 1);
    assert_true(mapped(SKT_SCHED_TASKS_DIR "/a/tasks.so"));
    assert_false(mapped(SKT_SCHED_TASKS_DIR "/b/c/tasks.so"));
    /* "every 60 seconds", never ran: due at the first cycle, run there
     * (main mode: within the step). */
    char buf[256];
    assert_int_equal(sk_sched_step(ss->s), SK_OK);
    assert_string_equal(reported(buf, sizeof buf), "a.main\n");
    /* Not again before a minute has passed, then again. */
    ss->now += 30 * NS;
    assert_int_equal(sk_sched_step(ss->s), SK_OK);
    assert_string_equal(reported(buf, sizeof buf), "");
    ss->now += 30 * NS;
    assert_int_equal(sk_sched_step(ss->s), SK_OK);
    assert_string_equal(reported(buf, sizeof buf), "a.main\n");
    /* Released: the library is closed; no descriptor is left. */
    sk_sched_release(ss->s);
    ss->s = NULL;
    assert_false(mapped(SKT_SCHED_TASKS_DIR "/a/tasks.so"));
    close_report(NULL);
    assert_int_equal(skt_fd_count(), fds);
}

static void test_load_nested_process_task(void **state)
{
    (void)state;
    open_report();
    struct session *ss = new_session();
    /* Only b/c matches: "**" spans the c folder. */
    assert_int_equal(sk_sched_load(ss->s, SKT_SCHED_TASKS_DIR, "b/**/tasks.so"), 1);
    assert_false(mapped(SKT_SCHED_TASKS_DIR "/a/tasks.so"));
    assert_int_equal(sk_sched_step(ss->s), SK_OK);
    assert_int_equal(sk_sched_join(ss->s, 30 * skt_slowdown()), SK_OK);
    char buf[256];
    assert_string_equal(reported(buf, sizeof buf), "bc.process\n");
    sk_sched_release(ss->s);
    ss->s = NULL;
    assert_no_children();
}

static void test_load_all_with_failures(void **state)
{
    (void)state;
    open_report();
    struct session *ss = new_session();
    /* a, b/c, bad and nosym match: two load, two fail, in path order. */
    assert_int_equal(sk_sched_load(ss->s, SKT_SCHED_TASKS_DIR, "**/tasks.so"), SK_EINVAL);
    const char *msg = sk_last_error_message();
    printf("sk_sched_load said: %s\n", msg);
    assert_non_null(strstr(msg, "2 failed, 2 loaded"));
    const char *bad = strstr(msg, "bad/tasks.so: skproc_sched_register returned -1 (");
    const char *nosym = strstr(msg, "nosym/tasks.so: no skproc_sched_register function");
    assert_non_null(bad);
    assert_non_null(nosym);
    assert_true(bad < nosym);
    /* What sk_sched_add told bad's register function comes along. */
    assert_non_null(strstr(msg, "): the start condition: expected 'between'"));
    /* The library without the function is closed again; the others stay. */
    assert_false(mapped(SKT_SCHED_TASKS_DIR "/nosym/tasks.so"));
    assert_true(mapped(SKT_SCHED_TASKS_DIR "/bad/tasks.so"));
    /* The good ones' tasks are there and run. */
    assert_int_equal(sk_sched_step(ss->s), SK_OK);
    assert_int_equal(sk_sched_join(ss->s, 30 * skt_slowdown()), SK_OK);
    char buf[256];
    const char *got = reported(buf, sizeof buf);
    assert_true(strcmp(got, "a.main\nbc.process\n") == 0 ||
                strcmp(got, "bc.process\na.main\n") == 0);
    /* Loading a again adds its task again: the name is taken. */
    assert_int_equal(sk_sched_load(ss->s, SKT_SCHED_TASKS_DIR, "a/*.so"), SK_EINVAL);
    assert_non_null(strstr(sk_last_error_message(), "a/tasks.so: skproc_sched_register returned"));
}

static void test_load_tree(void **state)
{
    (void)state;
    char root[512];
    skt_make_temp_dir(root, sizeof root, "sched-load");
    skt_defer_rm_rf(root);
    const char *a = SKT_SCHED_TASKS_DIR "/a/tasks.so";
    copy_file(a, root, "x/y/z/tasks.so");
    copy_file(a, root, ".hidden/tasks.so"); /* "**" does not enter it */
    copy_file(SKT_SCHED_TASKS_DIR "/b/c/tasks.so", root,
              "x/other.so"); /* "**" "/tasks.so" misses it */
    write_text(root, "notes/tasks.so", "not a shared object\n");
    char loop[PATH_MAX];
    snprintf(loop, sizeof loop, "%s/x/loop", root);
    assert_int_equal(symlink("..", loop), 0); /* not followed: no loop */
    char full_notes[PATH_MAX];
    snprintf(full_notes, sizeof full_notes, "%s/notes/tasks.so", root);

    open_report();
    struct session *ss = new_session();
    assert_int_equal(sk_sched_load(ss->s, root, "**/tasks.so"), SK_EINVAL);
    const char *msg = sk_last_error_message();
    printf("sk_sched_load said: %s\n", msg);
    assert_non_null(strstr(msg, "1 failed, 1 loaded: notes/tasks.so: "));
    assert_null(strstr(msg, full_notes)); /* dlerror's text, without the whole path again */
    assert_int_equal(sk_sched_step(ss->s), SK_OK);
    char buf[256];
    assert_string_equal(reported(buf, sizeof buf), "a.main\n");

    /* Patterns that match nothing load nothing, and that is no failure. */
    struct session *other = new_session();
    assert_int_equal(sk_sched_load(other->s, root, "*.so"), 0);
    assert_int_equal(sk_sched_load(other->s, root, "y/**/tasks.so"), 0);
    assert_int_equal(sk_sched_load(other->s, root, "x/*/tasks.so"), 0);
    /* One folder at each '*'. */
    assert_int_equal(sk_sched_load(other->s, root, "x/*/*/tasks.so"), 1);
    /* A root given with a trailing '/' names the same files. */
    char slash[PATH_MAX];
    snprintf(slash, sizeof slash, "%s/", root);
    struct session *third = new_session();
    assert_int_equal(sk_sched_load(third->s, slash, "x/**/*.so"), 2); /* other.so, y/z/tasks.so */
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_path_match),
        SKT_TEST(test_bad_arguments),
        SKT_TEST(test_load_one_and_run_it),
        SKT_TEST(test_load_nested_process_task),
        SKT_TEST(test_load_all_with_failures),
        SKT_TEST(test_load_tree),
    };
    return skt_run(argc, argv, tests);
}
