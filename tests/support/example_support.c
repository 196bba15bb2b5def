/* SPDX-License-Identifier: MIT */
/* Running the examples: see example_support.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "support.h"
#include "example_support.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

/* ------------------------------------------------------------- running */

/* A new empty directory under $TMPDIR (or /tmp) into buf. */
void skt_make_temp_dir(char *buf, size_t cap, const char *tag)
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

void skt_print_run(const char *name, const struct skt_run *r)
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
struct skt_run *skt_run_example(const char *name, const char *const *args, const char *input)
{
    char path[PATH_MAX];
    if (!skt_example_path(name, path, sizeof path))
        fail_msg("examples/%s is not built next to this test (scons builds it first)", name);
    skt_bound(SKT_EXAMPLE_BOUND + 30.0); /* the watchdog waits for this run's own bound */
    struct skt_run *r = xcalloc(1, sizeof *r);
    char tmpdir[PATH_MAX];
    skt_make_temp_dir(tmpdir, sizeof tmpdir, "tmpdir");
    skt_defer_rm_rf(tmpdir);

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

    double deadline = skt_now() + SKT_EXAMPLE_BOUND * skt_slowdown();
    bool out_open = true, err_open = true, exited = false;
    while (out_open || err_open || !exited) {
        if (skt_now() > deadline) {
            kill(-pid, SIGKILL);
            while (!exited && waitpid(pid, &r->status, 0) < 0 && errno == EINTR)
                ;
            close(out[0]);
            close(err[0]);
            skt_print_run(name, r);
            fail_msg("examples/%s still ran after %.0f s: killed", name,
                     SKT_EXAMPLE_BOUND * skt_slowdown());
        }
        struct pollfd fds[2] = {{.fd = out_open ? out[0] : -1, .events = POLLIN},
                                {.fd = err_open ? err[0] : -1, .events = POLLIN}};
        if (out_open || err_open)
            (void)poll(fds, 2, 50);
        else
            skt_sleep(0.01);
        if (fds[0].revents != 0)
            out_open = drain(out[0], r->out, &r->out_len, SKT_EXAMPLE_OUT_CAP, "stdout");
        if (fds[1].revents != 0)
            err_open = drain(err[0], r->err, &r->err_len, SKT_EXAMPLE_ERR_CAP, "stderr");
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
        skt_print_run(name, r);
        fail_msg("examples/%s left %d entries in its $TMPDIR %s", name, skt_dir_entries(tmpdir),
                 tmpdir);
    }
    return r;
}

void skt_expect_exit(const char *name, const struct skt_run *r, int code)
{
    if (!WIFEXITED(r->status) || WEXITSTATUS(r->status) != code) {
        skt_print_run(name, r);
        if (WIFSIGNALED(r->status))
            fail_msg("examples/%s was killed by signal %d; expected exit status %d", name,
                     WTERMSIG(r->status), code);
        fail_msg("examples/%s exited with status %d; expected %d", name, WEXITSTATUS(r->status),
                 code);
    }
}

/* The line after the one at l (the end of the text after the last). */
const char *skt_next_line(const char *l)
{
    size_t len = strcspn(l, "\n");
    return l + len + (l[len] == '\n');
}

/* The first line of text that starts with prefix: what follows the prefix
 * (up to the newline) into rest; false when there is none. */
bool skt_find_line(const char *text, const char *prefix, char *rest, size_t cap)
{
    size_t plen = strlen(prefix);
    for (const char *line = text; *line != '\0'; line = skt_next_line(line)) {
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
const char *skt_line_after(const char *name, const struct skt_run *r, bool err, const char *prefix)
{
    static char rest[4096];
    if (!skt_find_line(err ? r->err : r->out, prefix, rest, sizeof rest)) {
        skt_print_run(name, r);
        fail_msg("examples/%s printed no line starting \"%s\" on %s", name, prefix,
                 err ? "stderr" : "stdout");
    }
    return rest;
}

/* A whole line, exactly. */
void skt_expect_line(const char *name, const struct skt_run *r, bool err, const char *line)
{
    const char *rest = skt_line_after(name, r, err, line);
    if (*rest != '\0') {
        skt_print_run(name, r);
        fail_msg("examples/%s: \"%s\" is followed by \"%s\"", name, line, rest);
    }
}

void skt_defer_rm_rf(const char *dir)
{
    skt_defer(remove_tree_cb, strdup(dir));
}
