/* SPDX-License-Identifier: MIT */
/*
 * Spawned programs (include/skproc/spawn.h): exit codes, signals, exec
 * failures, environment and working directory, every stdio mode, megabytes
 * on stdout and stderr at once, stdin, lines, pollable fds, what the
 * program inherits (/proc/PID/fd), a daemonizing program ended with its
 * tree, lives, timeouts, stop, timers, and 1,000 spawns leaking nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>

typedef struct {
    sk_process base;
} prog;

/* A started program of cfg with p->config set by cfg_fn (may be NULL). */
static prog *spawn(const sk_spawn_config *cfg, void (*cfg_fn)(sk_config *))
{
    prog *p = skt_new(prog);
    assert_rc(sk_spawn_init(&p->base, cfg), SK_OK);
    if (cfg_fn != NULL)
        cfg_fn(&p->base.config);
    assert_rc(sk_start(&p->base), SK_OK);
    return p;
}

static sk_spawn_config sh_cfg(const char *script)
{
    static const char *argv[4];
    argv[0] = "sh";
    argv[1] = "-c";
    argv[2] = script;
    argv[3] = NULL;
    return (sk_spawn_config){.argv = argv};
}

static void supervise(sk_config *c)
{
    c->supervise = true;
}

static void three_lives(sk_config *c)
{
    c->lives = 3;
}

/* Runs script with stdout and stderr piped; returns stdout (free it). */
static char *run_out(sk_spawn_config cfg, void (*cfg_fn)(sk_config *), prog **out_p)
{
    cfg.stdio[1].mode = SK_STDIO_PIPE;
    prog *p = spawn(&cfg, cfg_fn);
    char *out = NULL;
    assert_rc(sk_spawn_communicate(&p->base, NULL, 0, &out, NULL, NULL, NULL, 10), SK_OK);
    assert_rc(sk_wait(&p->base, 10), SK_OK);
    if (out_p != NULL)
        *out_p = p;
    return out;
}

static void test_exit_codes(void **state)
{
    (void)state;
    const char *tru[] = {"/bin/true", NULL};
    for (int sup = 0; sup < 2; sup++) {
        prog *p = spawn(&(sk_spawn_config){.argv = tru}, sup ? supervise : NULL);
        assert_rc(sk_wait(&p->base, 10), SK_OK);
        assert_null(sk_error_of(&p->base));
        assert_rc(sk_result(&p->base, NULL), SK_OK);
        assert_int_equal(sk_spawn_status(&p->base), 0);
        const sk_timer *t = sk_timer_of(&p->base, SK_RUN);
        assert_non_null(t);
        assert_int_equal(sk_timer_count(t), 1);

        sk_spawn_config c = sh_cfg("exit 3");
        p = spawn(&c, sup ? supervise : NULL);
        assert_rc(sk_wait(&p->base, 10), SK_OK);
        const sk_error *e = sk_error_of(&p->base);
        assert_non_null(e);
        assert_int_equal(e->kind, SK_CRASH_ERROR);
        assert_int_equal(e->exit_status, 3);
        assert_int_equal(e->signal, 0);
        assert_string_equal(e->message, "Program sh exited with status 3");
        assert_int_equal(sk_spawn_status(&p->base), 3);
        assert_rc(sk_result(&p->base, NULL), SK_EPROCESS);
    }
}

static void test_signals(void **state)
{
    (void)state;
    for (int sup = 0; sup < 2; sup++) {
        sk_spawn_config c = sh_cfg("kill -SEGV $$");
        prog *p = spawn(&c, sup ? supervise : NULL);
        assert_rc(sk_wait(&p->base, 10), SK_OK);
        const sk_error *e = sk_error_of(&p->base);
        assert_non_null(e);
        assert_int_equal(e->kind, SK_CRASH_ERROR);
        assert_int_equal(e->signal, SIGSEGV);
        assert_non_null(strstr(e->message, "Program sh was ended by signal 11"));
        assert_int_equal(sk_spawn_status(&p->base), -SIGSEGV);
    }
}

static void test_exec_failures(void **state)
{
    (void)state;
    const char *dir = skt_use_tmpdir("skt-spawn");
    char plain[512];
    snprintf(plain, sizeof plain, "%s/not-executable", dir);
    int fd = open(plain, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "#!/bin/sh\n", 10), 10);
    close(fd);
    const char *missing[] = {"/nonexistent/skproc-no-such-program", NULL};
    const char *missing_path[] = {"skproc-no-such-program-in-path", NULL};
    const char *not_exec[] = {plain, NULL};
    struct {
        const char *const *argv;
        int err;
    } cases[] = {{missing, ENOENT}, {missing_path, ENOENT}, {not_exec, EACCES}};
    for (int sup = 0; sup < 2; sup++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            prog *p = spawn(&(sk_spawn_config){.argv = cases[i].argv}, sup ? three_lives : NULL);
            assert_rc(sk_wait(&p->base, 10), SK_OK);
            const sk_error *e = sk_error_of(&p->base);
            assert_non_null(e);
            assert_int_equal(e->kind, SK_PROCESS_ERROR);
            assert_false(sk_error_is(e, SK_CRASH_ERROR));
            assert_int_equal(e->reason, SK_ESYS);
            assert_int_equal(e->code, cases[i].err);
            assert_non_null(strstr(e->message, cases[i].argv[0]));
            assert_non_null(strstr(e->message, strerror(cases[i].err)));
            assert_int_equal(sk_attempts(&p->base), 1); /* never retried */
            assert_rc(sk_spawn_status(&p->base), SK_ESYS);
        }
    /* A bad working directory is an error of the same kind. */
    sk_spawn_config c = sh_cfg("true");
    c.cwd = "/nonexistent-dir";
    prog *p = spawn(&c, NULL);
    assert_rc(sk_wait(&p->base, 10), SK_OK);
    assert_non_null(sk_error_of(&p->base));
    assert_int_equal(sk_error_of(&p->base)->code, ENOENT);
    assert_non_null(strstr(sk_error_of(&p->base)->cause, "chdir"));
}

static void test_env_and_cwd(void **state)
{
    (void)state;
    setenv("SKT_SPAWN_INHERITED", "yes", 1);
    const char *add[] = {"SKT_SPAWN_ADDED=1", "SKT_SPAWN_INHERITED=replaced", NULL};
    sk_spawn_config c = sh_cfg("echo \"$SKT_SPAWN_INHERITED $SKT_SPAWN_ADDED $HOME\"; pwd");
    c.env = add;
    c.cwd = "/";
    char *out = run_out(c, NULL, NULL);
    char want[1024];
    snprintf(want, sizeof want, "replaced 1 %s\n/\n", getenv("HOME") ? getenv("HOME") : "");
    assert_string_equal(out, want);
    free(out);

    const char *only[] = {"A=b", "PATH=/bin:/usr/bin", NULL};
    c = sh_cfg("env | sort");
    c.env = only;
    c.env_mode = SK_ENV_REPLACE;
    out = run_out(c, NULL, NULL);
    /* sh may add PWD, SHLVL, _: everything of ours is gone but A and PATH. */
    assert_non_null(strstr(out, "A=b\n"));
    assert_null(strstr(out, "SKT_SPAWN_INHERITED"));
    free(out);

    /* Inherited with nothing added, and a program found in PATH. */
    const char *printenv[] = {"printenv", "SKT_SPAWN_INHERITED", NULL};
    out = run_out((sk_spawn_config){.argv = printenv}, supervise, NULL);
    assert_string_equal(out, "yes\n");
    free(out);
    unsetenv("SKT_SPAWN_INHERITED");
}

static void test_stdio_modes(void **state)
{
    (void)state;
    const char *dir = skt_use_tmpdir("skt-spawn");
    char in_path[512], out_path[512];
    snprintf(in_path, sizeof in_path, "%s/in", dir);
    snprintf(out_path, sizeof out_path, "%s/out", dir);
    FILE *f = fopen(in_path, "we");
    assert_non_null(f);
    fputs("from a file\n", f);
    fclose(f);

    for (int sup = 0; sup < 2; sup++) {
        /* stdin from a file, stdout to a file, stderr to /dev/null */
        sk_spawn_config c = sh_cfg("cat; echo err >&2");
        c.stdio[0] = (sk_stdio){.mode = SK_STDIO_FILE, .path = in_path};
        c.stdio[1] = (sk_stdio){.mode = SK_STDIO_FILE, .path = out_path};
        c.stdio[2].mode = SK_STDIO_DEVNULL;
        prog *p = spawn(&c, sup ? supervise : NULL);
        assert_rc(sk_wait(&p->base, 10), SK_OK);
        assert_null(sk_error_of(&p->base));
        char buf[64] = {0};
        int fd = open(out_path, O_RDONLY | O_CLOEXEC);
        assert_int_equal(read(fd, buf, sizeof buf - 1), 12);
        close(fd);
        assert_string_equal(buf, "from a file\n");

        /* stdin /dev/null; stderr into stdout (2>&1) */
        c = sh_cfg("cat; echo out; echo err >&2");
        c.stdio[0].mode = SK_STDIO_DEVNULL;
        c.stdio[2].mode = SK_STDIO_STDOUT;
        char *out = run_out(c, sup ? supervise : NULL, NULL);
        assert_string_equal(out, "out\nerr\n");
        free(out);

        /* inherited stdin: the test's own; the program does not read it */
        c = sh_cfg("test -t 0 || true");
        p = spawn(&c, NULL);
        assert_rc(sk_wait(&p->base, 10), SK_OK);
        assert_null(sk_error_of(&p->base));
    }
    /* Not a pipe: no fd */
    const char *tru[] = {"/bin/true", NULL};
    prog *p = spawn(&(sk_spawn_config){.argv = tru}, NULL);
    assert_rc(sk_spawn_fd(&p->base, 1), SK_EINVAL);
    assert_rc(sk_spawn_write(&p->base, "x", 1, 0, NULL), SK_EINVAL);
    assert_rc(sk_wait(&p->base, 10), SK_OK);
}

/* SK_STDIO_FD: two programs joined by a pipe the test holds, the second
 * restarted (lives) and reading on from the same pipe; a bad fd. */
static void test_stdio_fd_pipeline(void **state)
{
    (void)state;
    for (int sup = 0; sup < 2; sup++) {
        int fds[2];
        assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
        sk_spawn_config w = sh_cfg("echo one; echo two");
        w.stdio[1] = (sk_stdio){.mode = SK_STDIO_FD, .fd = fds[1]};
        prog *writer = spawn(&w, sup ? supervise : NULL);
        assert_rc(sk_wait(&writer->base, 10), SK_OK);
        assert_null(sk_error_of(&writer->base));
        close(fds[1]); /* the last writer: the reader sees the end */
        /* The reader's first life reads one line and fails; its second
         * reads the rest from the same pipe. */
        static const char *argv[] = {"sh", "-c", "read l; echo \"got $l\"; [ \"$l\" = two ]", NULL};
        sk_spawn_config r = {.argv = argv};
        r.stdio[0] = (sk_stdio){.mode = SK_STDIO_FD, .fd = fds[0]};
        char *out = run_out(r, three_lives, NULL);
        assert_string_equal(out, "got one\ngot two\n");
        free(out);
        close(fds[0]);
    }
    int closed = 1000; /* not open: sk_start's own fds take the lowest free numbers */
    assert_int_equal(fcntl(closed, F_GETFD), -1);
    sk_spawn_config bad = sh_cfg("true");
    bad.stdio[0] = (sk_stdio){.mode = SK_STDIO_FD, .fd = closed};
    prog *p = skt_new(prog);
    assert_rc(sk_spawn_init(&p->base, &bad), SK_OK);
    assert_rc(sk_start(&p->base), SK_ESYS);
    assert_non_null(strstr(sk_last_error_message(), "fd"));
    bad.stdio[0].fd = -1;
    prog *q = skt_new(prog);
    assert_rc(sk_spawn_init(&q->base, &bad), SK_EINVAL);
}

/* Megabytes on stdout and stderr at once, and on stdin: communicate never
 * blocks on one pipe while the program waits on another. */
static void test_megabytes_both_streams(void **state)
{
    (void)state;
    const size_t mb = 6u << 20;
    for (int sup = 0; sup < 2; sup++) {
        sk_spawn_config c = sh_cfg("head -c 6291456 /dev/zero >&2 & "
                                   "head -c 6291456 /dev/zero; wait");
        c.stdio[1].mode = SK_STDIO_PIPE;
        c.stdio[2].mode = SK_STDIO_PIPE;
        prog *p = spawn(&c, sup ? supervise : NULL);
        char *out = NULL, *err = NULL;
        size_t out_len = 0, err_len = 0;
        assert_rc(sk_spawn_communicate(&p->base, NULL, 0, &out, &out_len, &err, &err_len, 30),
                  SK_OK);
        assert_int_equal(out_len, mb);
        assert_int_equal(err_len, mb);
        free(out);
        free(err);
        assert_rc(sk_wait(&p->base, 10), SK_OK);
        assert_null(sk_error_of(&p->base));

        /* 4 MB through cat, copied to both streams by tee. */
        c = sh_cfg("tee /dev/stderr");
        for (int i = 0; i < 3; i++)
            c.stdio[i].mode = SK_STDIO_PIPE;
        p = spawn(&c, sup ? supervise : NULL);
        size_t n = 4u << 20;
        char *in = malloc(n);
        for (size_t i = 0; i < n; i++)
            in[i] = (char)('a' + i % 26);
        assert_rc(sk_spawn_communicate(&p->base, in, n, &out, &out_len, &err, &err_len, 30), SK_OK);
        assert_int_equal(out_len, n);
        assert_int_equal(err_len, n);
        assert_memory_equal(out, in, n);
        assert_memory_equal(err, in, n);
        free(in);
        free(out);
        free(err);
        assert_rc(sk_wait(&p->base, 10), SK_OK);
        assert_null(sk_error_of(&p->base));
    }
}

static void test_lines_write_poll(void **state)
{
    (void)state;
    /* communicate with no input closes stdin: cat ends. */
    const char *cat[] = {"cat", NULL};
    sk_spawn_config cc = {.argv = cat};
    cc.stdio[0].mode = cc.stdio[1].mode = SK_STDIO_PIPE;
    prog *q = spawn(&cc, NULL);
    char *o = NULL;
    assert_rc(sk_spawn_communicate(&q->base, NULL, 0, &o, NULL, NULL, NULL, 10), SK_OK);
    assert_string_equal(o, "");
    free(o);
    assert_rc(sk_wait(&q->base, 10), SK_OK);
    assert_null(sk_error_of(&q->base));

    sk_spawn_config c = sh_cfg("while read l; do echo \"got $l\"; done; printf 'no newline'");
    c.stdio[0].mode = SK_STDIO_PIPE;
    c.stdio[1].mode = SK_STDIO_PIPE;
    prog *p = spawn(&c, NULL);
    int fd = sk_spawn_fd(&p->base, 1);
    assert_true(fd > 2);
    assert_true(sk_spawn_fd(&p->base, 0) > 2);
    char line[64];
    assert_rc((int)sk_spawn_read_line(&p->base, 1, line, sizeof line, 0.05), SK_ETIMEDOUT);
    assert_rc(sk_spawn_write(&p->base, "one\ntwo\n", 8, 5, NULL), SK_OK);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 5000), 1);
    assert_int_equal(sk_spawn_read_line(&p->base, 1, line, sizeof line, 5), 8);
    assert_string_equal(line, "got one\n");
    assert_int_equal(sk_spawn_read_line(&p->base, 1, line, sizeof line, 5), 8);
    assert_string_equal(line, "got two\n");
    /* A line longer than the buffer comes in pieces. */
    assert_rc(sk_spawn_write(&p->base, "0123456789\n", 11, 5, NULL), SK_OK);
    assert_int_equal(sk_spawn_read_line(&p->base, 1, line, 8, 5), 7);
    assert_string_equal(line, "got 012");
    assert_int_equal(sk_spawn_read_line(&p->base, 1, line, sizeof line, 5), 8);
    assert_string_equal(line, "3456789\n");
    assert_rc(sk_spawn_close_stdin(&p->base), SK_OK);
    assert_rc(sk_spawn_fd(&p->base, 0), SK_ESTATE);
    assert_int_equal(sk_spawn_read_line(&p->base, 1, line, sizeof line, 5), 10);
    assert_string_equal(line, "no newline");
    assert_int_equal(sk_spawn_read_line(&p->base, 1, line, sizeof line, 5), 0);
    assert_int_equal(sk_spawn_read(&p->base, 1, line, sizeof line, 5), 0);
    assert_rc(sk_wait(&p->base, 10), SK_OK);
    assert_null(sk_error_of(&p->base));

    /* Writing to a program that closed its stdin: SK_ECLOSED, no SIGPIPE. */
    c = sh_cfg("exec 0<&-; sleep 0.1");
    c.stdio[0].mode = SK_STDIO_PIPE;
    p = spawn(&c, NULL);
    static char big[1 << 20];
    size_t written = 0;
    assert_rc(sk_spawn_write(&p->base, big, sizeof big, 10, &written), SK_ECLOSED);
    assert_rc(sk_wait(&p->base, 10), SK_OK);
}

/* The fds of the test without close-on-exec (the harness's, the shell's):
 * a program may inherit those, and nothing else. */
static bool test_fd_inheritable(int fd)
{
    int flags = fcntl(fd, F_GETFD);
    return flags >= 0 && !(flags & FD_CLOEXEC);
}

/* The fds of the program's /proc entry above 2; fails on one the test
 * did not leave inheritable (or any, with close_fds). */
static void check_program_fds(pid_t pid, bool close_fds)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    assert_non_null(d);
    int low = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        int fd = atoi(de->d_name);
        if (fd <= 2) {
            low++;
            continue;
        }
        char fdpath[64 + 256], target[256] = {0};
        snprintf(fdpath, sizeof fdpath, "%s/%.200s", path, de->d_name);
        ssize_t n = readlink(fdpath, target, sizeof target - 1);
        (void)n;
        if (close_fds || !test_fd_inheritable(fd))
            print_error("the program has fd %d: %s\n", fd, target);
        assert_false(close_fds);
        assert_true(test_fd_inheritable(fd));
    }
    closedir(d);
    assert_int_equal(low, 3);
}

/* The fds of the program: its three stdio fds and nothing of skproc's,
 * even with other handles running and their pipes open. */
static void test_no_fd_leak_into_program(void **state)
{
    (void)state;
    const char *cat[] = {"cat", NULL};
    sk_spawn_config other = {.argv = cat};
    other.stdio[0].mode = SK_STDIO_PIPE;
    other.stdio[1].mode = SK_STDIO_PIPE;
    prog *o = spawn(&other, NULL);
    /* An inheritable fd of the caller's own: kept, or closed by close_fds. */
    int mine = open("/dev/null", O_RDONLY);
    assert_true(mine > 2);
    for (int k = 0; k < 4; k++) {
        bool sup = k & 1, close_fds = k & 2;
        sk_spawn_config c = sh_cfg("exec sleep 30");
        c.stdio[1].mode = SK_STDIO_PIPE;
        c.stdio[2].mode = SK_STDIO_PIPE;
        c.close_fds = close_fds;
        prog *p = spawn(&c, sup ? supervise : NULL);
        pid_t pid = -1;
        for (double end = skt_now() + 10 * skt_slowdown(); skt_now() < end; skt_sleep(0.005)) {
            pid = sk_pid(&p->base);
            char exe[64], link[256] = {0};
            snprintf(exe, sizeof exe, "/proc/%d/exe", (int)pid);
            if (pid > 0 && readlink(exe, link, sizeof link - 1) > 0 && strstr(link, "sleep"))
                break;
            pid = -1;
        }
        assert_true(pid > 0);
        /* sleep opens locale files while it starts: look once it sleeps. */
        skt_sleep(0.2);
        check_program_fds(pid, close_fds);
        char fdpath[64];
        snprintf(fdpath, sizeof fdpath, "/proc/%d/fd/%d", (int)pid, mine);
        assert_int_equal(access(fdpath, F_OK) == 0, !close_fds);
        assert_rc(sk_kill(&p->base), SK_OK);
    }
    close(mine);
    assert_rc(sk_spawn_close_stdin(&o->base), SK_OK);
    char buf[8];
    assert_int_equal(sk_spawn_read(&o->base, 1, buf, sizeof buf, 10), 0);
    assert_rc(sk_wait(&o->base, 10), SK_OK);
}

/* A program that double-forks a daemon in a session of its own: ended
 * with the program, by sk_kill and when the program exits by itself. */
static void test_daemon_tree(void **state)
{
    (void)state;
    for (int how = 0; how < 2; how++) {
        sk_spawn_config c = sh_cfg(how == 0 ? "(setsid sleep 300 & echo $!); sleep 300"
                                            : "(setsid sleep 300 & echo $!); sleep 0.2");
        c.stdio[1].mode = SK_STDIO_PIPE;
        prog *p = spawn(&c, supervise);
        char line[32];
        assert_true(sk_spawn_read_line(&p->base, 1, line, sizeof line, 10) > 0);
        pid_t daemon = (pid_t)atoi(line);
        assert_true(daemon > 0);
        assert_false(skt_pid_ended(daemon));
        if (how == 0)
            assert_rc(sk_kill(&p->base), SK_OK);
        else
            assert_rc(sk_wait(&p->base, 10), SK_OK);
        skt_wait_until(skt_pid_ended(daemon), 5);
    }
}

static void test_lives_timeout_stop(void **state)
{
    (void)state;
    const char *dir = skt_use_tmpdir("skt-spawn");
    char script[1024];
    /* Fails twice, then succeeds: three lives are enough. */
    snprintf(script, sizeof script, "echo x >> %s/count; test $(wc -l < %s/count) -ge 3", dir, dir);
    sk_spawn_config c = sh_cfg(script);
    prog *p = spawn(&c, three_lives);
    assert_rc(sk_wait(&p->base, 20), SK_OK);
    assert_null(sk_error_of(&p->base));
    assert_int_equal(sk_attempts(&p->base), 3);
    assert_int_equal(sk_restarts(&p->base), 2);

    /* Always fails: the last error after three attempts. */
    c = sh_cfg("exit 7");
    p = spawn(&c, three_lives);
    assert_rc(sk_wait(&p->base, 20), SK_OK);
    assert_non_null(sk_error_of(&p->base));
    assert_int_equal(sk_error_of(&p->base)->exit_status, 7);
    assert_int_equal(sk_attempts(&p->base), 3);

    /* timeouts.run bounds it. */
    c = sh_cfg("exec sleep 30");
    p = skt_new(prog);
    assert_rc(sk_spawn_init(&p->base, &c), SK_OK);
    p->base.config.timeouts.run = 0.2;
    double t0 = skt_now();
    assert_rc(sk_start(&p->base), SK_OK);
    assert_rc(sk_wait(&p->base, 20), SK_OK);
    assert_true(skt_now() - t0 < 5 * skt_slowdown());
    assert_non_null(sk_error_of(&p->base));
    assert_int_equal(sk_error_of(&p->base)->kind, SK_TIMEOUT_ERROR);

    /* sk_stop: SIGTERM, not a failure, not retried. */
    for (int sup = 0; sup < 2; sup++) {
        c = sh_cfg("exec sleep 30");
        p = spawn(&c, sup ? three_lives : NULL);
        skt_sleep(0.05);
        assert_rc(sk_stop(&p->base), SK_OK);
        assert_rc(sk_wait(&p->base, 10), SK_OK);
        assert_null(sk_error_of(&p->base));
        assert_int_equal(sk_spawn_status(&p->base), -SIGTERM);
        assert_int_equal(sk_attempts(&p->base), 1);
    }
}

static void test_refusals(void **state)
{
    (void)state;
    prog *p = skt_new(prog);
    assert_rc(sk_spawn_init(&p->base, NULL), SK_EINVAL);
    assert_rc(sk_spawn_init(NULL, &(sk_spawn_config){0}), SK_EINVAL);
    assert_rc(sk_spawn_init(&p->base, &(sk_spawn_config){0}), SK_EINVAL);
    const char *tru[] = {"/bin/true", NULL};
    sk_spawn_config c = {.argv = tru, .nrlimits = SK_SPAWN_MAX_RLIMITS + 1};
    assert_rc(sk_spawn_init(&p->base, &c), SK_EINVAL);
    c.nrlimits = 0;
    c.stdio[1].mode = SK_STDIO_STDOUT;
    assert_rc(sk_spawn_init(&p->base, &c), SK_EINVAL);
    c.stdio[1] = (sk_stdio){.mode = SK_STDIO_FILE};
    assert_rc(sk_spawn_init(&p->base, &c), SK_EINVAL);
    c.stdio[1].mode = SK_STDIO_PIPE;
    assert_rc(sk_spawn_init(&p->base, &c), SK_OK);
    char buf[4];
    assert_rc((int)sk_spawn_read(&p->base, 1, buf, sizeof buf, 0), SK_ESTATE);
    assert_rc(sk_spawn_status(&p->base), SK_ESTATE);
    sk_release(&p->base);
    /* A process of hooks is not a program. */
    assert_rc(sk_spawn_fd(&p->base, 1), SK_EINVAL);
}

static void test_settings(void **state)
{
    (void)state;
    sk_spawn_config c = sh_cfg("umask; ulimit -n; ps -o sid= -p $$ | tr -d ' '; echo $$");
    c.set_umask = true;
    c.umask = 077;
    c.new_session = true;
    c.nrlimits = 1;
    c.rlimits[0].resource = RLIMIT_NOFILE;
    c.rlimits[0].limit = (struct rlimit){.rlim_cur = 77, .rlim_max = 77};
    char *out = run_out(c, NULL, NULL);
    char um[16];
    int nofile = 0, sid = 0, pid = 0;
    assert_int_equal(sscanf(out, "%15s %d %d %d", um, &nofile, &sid, &pid), 4);
    assert_string_equal(um, "0077");
    assert_int_equal(nofile, 77);
    assert_int_equal(sid, pid);
    free(out);
    /* sk_pid names a supervised program in a session of its own too. */
    c = sh_cfg("exec sleep 30");
    c.new_session = true;
    prog *p = spawn(&c, supervise);
    pid_t seen = -1;
    for (double end = skt_now() + 10 * skt_slowdown(); skt_now() < end && seen <= 0;
         skt_sleep(0.002))
        seen = sk_pid(&p->base);
    assert_true(seen > 0);
    skt_wait_until(getsid(seen) == seen, 10);
    assert_rc(sk_kill(&p->base), SK_OK);
    if (geteuid() == 0) {
        c = sh_cfg("id -u; id -g");
        c.set_uid = c.set_gid = true;
        c.uid = 65534;
        c.gid = 65534;
        out = run_out(c, NULL, NULL);
        assert_string_equal(out, "65534\n65534\n");
        free(out);
    }
}

/* Spawns from several threads at once, each with pipes: every program
 * sees its own input, gives its own output, and ends (no pipe kept open
 * by a program another thread started at the same moment). */
static void *spawn_thread(void *arg)
{
    long id = (long)arg;
    const char *cat[] = {"cat", NULL};
    for (int i = 0; i < 40; i++) {
        sk_spawn_config c = {.argv = cat};
        c.stdio[0].mode = c.stdio[1].mode = SK_STDIO_PIPE;
        sk_process p;
        if (sk_spawn_init(&p, &c) != SK_OK || sk_start(&p) != SK_OK)
            return (void *)1;
        char in[32], *out = NULL;
        int n = snprintf(in, sizeof in, "thread %ld op %d\n", id, i);
        int rc = sk_spawn_communicate(&p, in, (size_t)n, &out, NULL, NULL, NULL, 20);
        bool ok = rc == SK_OK && out != NULL && strcmp(out, in) == 0 && sk_wait(&p, 20) == SK_OK &&
                  sk_error_of(&p) == NULL;
        free(out);
        sk_release(&p);
        if (!ok)
            return (void *)2;
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    int fds = skt_fd_count();
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, spawn_thread, (void *)i), 0);
    for (int i = 0; i < 4; i++) {
        void *r;
        assert_int_equal(pthread_join(t[i], &r), 0);
        assert_null(r);
    }
    assert_int_equal(skt_fd_count(), fds);
    assert_true(skt_no_children());
}

/* 1,000 spawns: no fd, no zombie, no heap left behind. */
static void test_cycles_leak_nothing(void **state)
{
    (void)state;
    const char *tru[] = {"/bin/true", NULL};
    int fds = skt_fd_count();
    int cycles = SKT_SANITIZED ? 300 : 1000;
    for (int i = 0; i < cycles; i++) {
        sk_spawn_config c = {.argv = tru};
        if (i % 2)
            c.stdio[1].mode = c.stdio[2].mode = SK_STDIO_PIPE;
        sk_process p;
        assert_rc(sk_spawn_init(&p, &c), SK_OK);
        assert_rc(sk_start(&p), SK_OK);
        if (i % 3 == 0)
            assert_rc(sk_wait(&p, 10), SK_OK);
        sk_release(&p);
    }
    assert_int_equal(skt_fd_count(), fds);
    assert_true(skt_no_children());
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_exit_codes),        SKT_TEST(test_signals),
        SKT_TEST(test_exec_failures),     SKT_TEST(test_env_and_cwd),
        SKT_TEST(test_stdio_modes),       SKT_TEST(test_megabytes_both_streams),
        SKT_TEST(test_lines_write_poll),  SKT_TEST(test_no_fd_leak_into_program),
        SKT_TEST(test_daemon_tree),       SKT_TEST(test_lives_timeout_stop),
        SKT_TEST(test_refusals),          SKT_TEST(test_settings),
        SKT_TEST(test_threads),           SKT_TEST(test_cycles_leak_nothing),
        SKT_TEST(test_stdio_fd_pipeline),
    };
    return skt_run(argc, argv, tests);
}
