/* SPDX-License-Identifier: MIT */
/*
 * Spawned programs: the time from asking for /bin/true to having reaped it.
 *
 *   spawn.raw     posix_spawn + waitpid: the floor, the cheapest way libc
 *                 offers (glibc's is clone(CLONE_VM | CLONE_VFORK) too)
 *   spawn.skproc  sk_spawn_init + sk_start + sk_wait + sk_release, inheriting
 *                 stdio, no supervisor: the fast path
 *   spawn.skproc_pipe  the same with stdout a pipe read to its end
 *                 (sk_spawn_communicate): what a caller of
 *                 subprocess.run(capture_output=True) pays; information
 *
 * The three are interleaved op by op, so that a slow moment of the machine
 * hits all of them alike; each row is the median of its ops.
 */
#include "common.h"

#include <skproc.h>

#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

#define AREA "spawned programs"

static char *const true_argv[] = {"/bin/true", NULL};

static double op_raw(void)
{
    int64_t t0 = bench_now_ns();
    pid_t pid;
    BENCH_CHECK(posix_spawn(&pid, "/bin/true", NULL, NULL, true_argv, environ) == 0, "posix_spawn");
    int status;
    while (waitpid(pid, &status, 0) < 0)
        BENCH_CHECK(errno == EINTR, "waitpid");
    BENCH_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "/bin/true failed");
    return (double)(bench_now_ns() - t0) / 1e3;
}

static double op_skproc(bool pipe)
{
    int64_t t0 = bench_now_ns();
    const char *argv[] = {"/bin/true", NULL};
    sk_spawn_config cfg = {.argv = argv};
    if (pipe)
        cfg.stdio[1].mode = SK_STDIO_PIPE;
    sk_process p;
    BENCH_CHECK(sk_spawn_init(&p, &cfg) == SK_OK, "sk_spawn_init");
    BENCH_CHECK(sk_start(&p) == SK_OK, "sk_start");
    if (pipe) {
        char *out = NULL;
        BENCH_CHECK(sk_spawn_communicate(&p, NULL, 0, &out, NULL, NULL, NULL, -1) == SK_OK,
                    "sk_spawn_communicate");
        free(out);
    }
    BENCH_CHECK(sk_wait(&p, -1) == SK_OK, "sk_wait");
    BENCH_CHECK(sk_error_of(&p) == NULL, "/bin/true failed");
    sk_release(&p);
    return (double)(bench_now_ns() - t0) / 1e3;
}

int main(int argc, char **argv)
{
    struct bench_opts o = bench_parse(argc, argv, NULL);
    long ops = bench_ops(&o, 3000, 300);
    bench_print_info("bench_spawn");
    double *raw = malloc((size_t)ops * sizeof *raw);
    double *sk = malloc((size_t)ops * sizeof *sk);
    double *skp = malloc((size_t)ops * sizeof *skp);
    BENCH_CHECK(raw != NULL && sk != NULL && skp != NULL, "malloc");
    for (int i = 0; i < 20; i++) { /* warm up: page cache, lazy binding */
        op_raw();
        op_skproc(false);
        op_skproc(true);
    }
    for (long i = 0; i < ops; i++) {
        /* the order turns, so that none always follows the same one */
        switch (i % 3) {
        case 0:
            raw[i] = op_raw();
            sk[i] = op_skproc(false);
            skp[i] = op_skproc(true);
            break;
        case 1:
            sk[i] = op_skproc(false);
            skp[i] = op_skproc(true);
            raw[i] = op_raw();
            break;
        default:
            skp[i] = op_skproc(true);
            raw[i] = op_raw();
            sk[i] = op_skproc(false);
            break;
        }
    }
    struct bench_stats s_raw = bench_summarize(raw, ops);
    struct bench_stats s_sk = bench_summarize(sk, ops);
    struct bench_stats s_skp = bench_summarize(skp, ops);
    bench_emit(AREA, "spawn.raw", "posix_spawn + waitpid of /bin/true (floor)", "us", s_raw.median,
               &s_raw, "\"short\":\"posix_spawn\"");
    bench_emit(AREA, "spawn.skproc", "skproc sk_spawn_init + start + wait + release of /bin/true",
               "us", s_sk.median, &s_sk, "\"short\":\"skproc\",\"baseline\":\"spawn.raw\"");
    bench_emit(AREA, "spawn.skproc_pipe",
               "skproc spawn of /bin/true with stdout piped and read (communicate)", "us",
               s_skp.median, &s_skp, "\"short\":\"skproc pipe\",\"baseline\":\"spawn.raw\"");
    free(raw);
    free(sk);
    free(skp);
    return 0;
}
