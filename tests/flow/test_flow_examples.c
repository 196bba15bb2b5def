/* SPDX-License-Identifier: MIT */
/*
 * The flow examples, run as a user runs them: examples/flow_poll (numbers
 * on stdin), flow_error and flow_compress (built only when pkg-config found
 * zlib; skipped otherwise) are started from this build's examples/
 * directory, stdin from a pipe filled beforehand, stdout and stderr read
 * through pipes. Each run is bounded: past RUN_BOUND seconds (times
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

#define RUN_BOUND 30.0 /* seconds per run of an example (times skt_slowdown()) */
#define OUT_CAP (256 * 1024)
#define ERR_CAP (64 * 1024)

/* ------------------------------------------------------------- running */

/* One run of an example: its exit status and what it printed. */
struct run {
    int status; /* from waitpid */
    char out[OUT_CAP + 1], err[ERR_CAP + 1];
    size_t out_len, err_len;
};

/* A new empty directory under $TMPDIR (or /tmp) into buf. */
static void make_temp_dir(char *buf, size_t cap, const char *tag)
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || *base == '\0')
        base = "/tmp";
    int len = snprintf(buf, cap, "%s/skt-%s-XXXXXX", base, tag);
    assert_true(len > 0 && (size_t)len < cap);
    assert_non_null(mkdtemp(buf));
}

static void remove_tree_cb(void *dir)
{
    skt_rm_rf(dir);
    free(dir);
}

/* Appends what fd has to buf (cap bytes at most; more is an error);
 * false at EOF. */
static bool drain(int fd, char *buf, size_t *len, size_t cap, const char *what)
{
    char chunk[4096];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof chunk)) < 0 && errno == EINTR)
        ;
    if (n <= 0)
        return false;
    if (*len + (size_t)n > cap)
        fail_msg("the example printed more than %zu bytes on %s", cap, what);
    memcpy(buf + *len, chunk, (size_t)n);
    *len += (size_t)n;
    buf[*len] = '\0';
    return true;
}

static void print_run(const char *name, const struct run *r)
{
    print_error("---- %s stdout (%zu bytes)\n%s---- %s stderr (%zu bytes)\n%s----\n", name,
                r->out_len, r->out, name, r->err_len, r->err);
}

/* Runs examples/<name> with args (NULL-terminated, after argv[0]) and
 * input on stdin (NULL: /dev/null), in a process group of its own and with
 * a $TMPDIR of its own. Returns when it has exited and closed its stdout
 * and stderr (it and every process it started), or kills the whole group
 * at the bound and fails. Fails too when the run left anything in its
 * $TMPDIR. */
static struct run *run_example(const char *name, const char *const *args, const char *input)
{
    char path[PATH_MAX];
    if (!skt_example_path(name, path, sizeof path))
        fail_msg("examples/%s is not built next to this test (scons builds it first)", name);
    skt_bound(RUN_BOUND + 30.0); /* the watchdog waits for this run's own bound */
    struct run *r = xcalloc(1, sizeof *r);
    char tmpdir[PATH_MAX];
    make_temp_dir(tmpdir, sizeof tmpdir, "tmpdir");
    skt_defer(remove_tree_cb, strdup(tmpdir));

    const char *argv[16] = {path};
    size_t argc = 1;
    for (; args != NULL && args[argc - 1] != NULL; argc++) {
        assert_true(argc < 15);
        argv[argc] = args[argc - 1];
    }
    argv[argc] = NULL;

    int in[2], out[2], err[2];
    assert_int_equal(pipe2(in, O_CLOEXEC), 0);
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    assert_int_equal(pipe2(err, O_CLOEXEC), 0);
    /* All of stdin goes into the pipe before the start: it must fit. */
    size_t in_len = input != NULL ? strlen(input) : 0;
    assert_true(in_len <= (size_t)fcntl(in[1], F_GETPIPE_SZ));
    for (size_t done = 0; done < in_len;) {
        ssize_t n = write(in[1], input + done, in_len - done);
        assert_true(n > 0);
        done += (size_t)n;
    }
    close(in[1]);
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(null_fd >= 0);

    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setpgid(0, 0);
        setenv("TMPDIR", tmpdir, 1);
        if (dup2(input != NULL ? in[0] : null_fd, STDIN_FILENO) < 0 ||
            dup2(out[1], STDOUT_FILENO) < 0 || dup2(err[1], STDERR_FILENO) < 0)
            _exit(126);
        execv(path, (char *const *)argv);
        _exit(127);
    }
    setpgid(pid, pid); /* also here: no race with the kill below */
    close(in[0]);
    close(null_fd);
    close(out[1]);
    close(err[1]);

    double deadline = skt_now() + RUN_BOUND * skt_slowdown();
    bool out_open = true, err_open = true, exited = false;
    while (out_open || err_open || !exited) {
        if (skt_now() > deadline) {
            kill(-pid, SIGKILL);
            while (!exited && waitpid(pid, &r->status, 0) < 0 && errno == EINTR)
                ;
            close(out[0]);
            close(err[0]);
            print_run(name, r);
            fail_msg("examples/%s still ran after %.0f s: killed", name,
                     RUN_BOUND * skt_slowdown());
        }
        struct pollfd fds[2] = {{.fd = out_open ? out[0] : -1, .events = POLLIN},
                                {.fd = err_open ? err[0] : -1, .events = POLLIN}};
        if (out_open || err_open)
            (void)poll(fds, 2, 50);
        else
            skt_sleep(0.01);
        if (fds[0].revents != 0)
            out_open = drain(out[0], r->out, &r->out_len, OUT_CAP, "stdout");
        if (fds[1].revents != 0)
            err_open = drain(err[0], r->err, &r->err_len, ERR_CAP, "stderr");
        if (!exited) {
            pid_t w = waitpid(pid, &r->status, WNOHANG);
            assert_true(w >= 0 || errno == EINTR);
            exited = w == pid;
        }
    }
    close(out[0]);
    close(err[0]);
    /* Nothing it started is left, and its session directory is gone. */
    skt_wait_until(kill(-pid, 0) != 0 && errno == ESRCH, 5.0);
    if (skt_dir_entries(tmpdir) != 0) {
        print_run(name, r);
        fail_msg("examples/%s left %d entries in its $TMPDIR %s", name, skt_dir_entries(tmpdir),
                 tmpdir);
    }
    return r;
}

static void expect_exit(const char *name, const struct run *r, int code)
{
    if (!WIFEXITED(r->status) || WEXITSTATUS(r->status) != code) {
        print_run(name, r);
        if (WIFSIGNALED(r->status))
            fail_msg("examples/%s was killed by signal %d; expected exit status %d", name,
                     WTERMSIG(r->status), code);
        fail_msg("examples/%s exited with status %d; expected %d", name, WEXITSTATUS(r->status),
                 code);
    }
}

/* The line after the one at l (the end of the text after the last). */
static const char *next_line(const char *l)
{
    size_t len = strcspn(l, "\n");
    return l + len + (l[len] == '\n');
}

/* The first line of text that starts with prefix: what follows the prefix
 * (up to the newline) into rest; false when there is none. */
static bool find_line(const char *text, const char *prefix, char *rest, size_t cap)
{
    size_t plen = strlen(prefix);
    for (const char *line = text; *line != '\0'; line = next_line(line)) {
        size_t len = strcspn(line, "\n");
        if (len >= plen && memcmp(line, prefix, plen) == 0) {
            snprintf(rest, cap, "%.*s", (int)(len - plen), line + plen);
            return true;
        }
    }
    return false;
}

/* The rest of the line of r's output (stdout, or stderr with err) that
 * starts with prefix; fails, showing the output, when there is none. */
static const char *line_after(const char *name, const struct run *r, bool err, const char *prefix)
{
    static char rest[4096];
    if (!find_line(err ? r->err : r->out, prefix, rest, sizeof rest)) {
        print_run(name, r);
        fail_msg("examples/%s printed no line starting \"%s\" on %s", name, prefix,
                 err ? "stderr" : "stdout");
    }
    return rest;
}

/* A whole line, exactly. */
static void expect_line(const char *name, const struct run *r, bool err, const char *line)
{
    const char *rest = line_after(name, r, err, line);
    if (*rest != '\0') {
        print_run(name, r);
        fail_msg("examples/%s: \"%s\" is followed by \"%s\"", name, line, rest);
    }
}

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
    struct run *r = run_example("flow_poll", NULL, input);
    expect_exit("flow_poll", r, 0);
    /* The results, one line each, in the order of the input. */
    const char *line = r->out;
    for (int i = 0; i < LINES; i++) {
        char want[128];
        snprintf(want, sizeof want, "line %d: %lld^2 + 1000 = %lld\n", i + 1, value[i],
                 value[i] * value[i] + 1000);
        if (strncmp(line, want, strlen(want)) != 0) {
            print_run("flow_poll", r);
            fail_msg("result %d: expected \"%.*s\"", i + 1, (int)strlen(want) - 1, want);
        }
        line += strlen(want);
    }
    long polls, pauses;
    char tail[64];
    const char *rest =
        line_after("flow_poll", r, false, "2000 results, 0 wrong, 0 lines not numbers; ");
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
    struct run *r = run_example("flow_poll", NULL, "3\nseven\n\n3037000500\n-4\n");
    expect_exit("flow_poll", r, 1);
    expect_line("flow_poll", r, false, "line 1: 3^2 + 1000 = 1009");
    expect_line("flow_poll", r, false, "line 5: -4^2 + 1000 = 1016");
    line_after("flow_poll", r, false, "2 results, 0 wrong, 2 lines not numbers; ");
    expect_line("flow_poll", r, true, "line 2: not a number (or too big): seven");
    expect_line("flow_poll", r, true, "line 4: not a number (or too big): 3037000500");

    /* No input at all: no results, and success. */
    r = run_example("flow_poll", NULL, "");
    expect_exit("flow_poll", r, 0);
    line_after("flow_poll", r, false, "0 results, 0 wrong, 0 lines not numbers; ");
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
    struct run *r = run_example(ex, NULL, NULL);
    expect_exit(ex, r, 0);
    char want[256];

    expect_line(ex, r, false, "40 records submitted and collected: 40 ok");
    long more = -1;
    for (const char *l = r->out; *l != '\0' && more < 0; l = next_line(l)) {
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
    expect_line(ex, r, false, want);
    int process = -1;
    const char *rest = line_after(ex, r, false, "sk_flow_error: step 0 (validate), process ");
    assert_int_equal(sscanf(rest, "%d", &process), 1);
    assert_true(process == 0 || process == 1);
    expect_line(ex, r, false, "  record 60 is negative: -60"); /* its sk_step_error message */

    rest = line_after(ex, r, false, "task 60 (value -60): SK_ECLOSED, step 0, process ");
    assert_int_equal(sscanf(rest, "%d", &process), 1);
    assert_true(process == 0 || process == 1);

    long ok, since, failed;
    char then[128];
    rest = line_after(ex, r, false, "collected: ");
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
    expect_line(ex, r, false, want);
    expect_line(ex, r, false, "ok: the flow stopped as it should");
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
    make_temp_dir(dir, sizeof dir, "compress");
    skt_defer(remove_tree_cb, strdup(dir));
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
    struct run *r = run_example(ex, all, NULL);
    expect_exit(ex, r, 0);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "compressing up to 1000 files under 1 MiB from %s", dir);
    expect_line(ex, r, false, want);
    snprintf(want, sizeof want, "files     %d compressed and checked, 0 failed", (int)FILES);
    expect_line(ex, r, false, want);
    snprintf(want, sizeof want, "bytes in  %" PRIu64, total);
    expect_line(ex, r, false, want);
    uint64_t out = 0;
    const char *rest = line_after(ex, r, false, "bytes out ");
    assert_int_equal(sscanf(rest, "%" SCNu64, &out), 1);
    assert_cmp(out, >, 0);
    assert_cmp(out, <, total / 4); /* the text repeats itself */
    line_after(ex, r, false, "checksums crc32 ");
    assert_null(strstr(r->out, "failed: task"));

    const char *three[] = {dir, "3", NULL};
    r = run_example(ex, three, NULL);
    expect_exit(ex, r, 0);
    snprintf(want, sizeof want, "compressing up to 3 files under 1 MiB from %s", dir);
    expect_line(ex, r, false, want);
    expect_line(ex, r, false, "files     3 compressed and checked, 0 failed");

    const char *none[] = {dir, "0", NULL};
    r = run_example(ex, none, NULL);
    expect_exit(ex, r, 2);
    line_after(ex, r, true, "usage: ");
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
