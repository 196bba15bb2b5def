/* SPDX-License-Identifier: MIT */
/*
 * shell_pipeline: the programs of a shell pipeline as supervised children.
 *
 *     producer | grep --line-buffered 7 | sink
 *
 * as a group with the rest_for_one strategy: when a program dies, it and
 * the programs after it are started again (the ones before go on). The
 * pipes between the programs are made and held by the parent, as s6's
 * fd holder does, and handed to each program as its stdin or stdout
 * (SK_STDIO_FD): a restarted program reads from and writes to the same
 * pipe as the one before it, so the programs around it never see an end of
 * file or a broken pipe, and what was waiting in the pipe is not lost.
 *
 * The program lets the pipeline run until the sink has written a few
 * lines, kills grep with SIGKILL, shows the group restart grep and the
 * sink, waits for more lines, then stops the pipeline (the sink first, the
 * producer last) and counts the lines the sink wrote. Exit status 0 when
 * lines came through before and after the kill.
 *
 *     build/default/examples/shell_pipeline
 *
 * Build: gcc -std=c11 shell_pipeline.c $(pkg-config --cflags --libs skproc)
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <skproc.h>

static void on_event(const sk_group_event *ev, void *ctx)
{
    (void)ctx;
    if (ev->child != NULL)
        printf("  [%s] %-8s %s\n", ev->group, ev->child, sk_group_event_name(ev->kind));
}

/* Lines in path so far. */
static long count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    long n = 0;
    int c;
    if (f == NULL)
        return 0;
    while ((c = getc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* Waits up to 10 s for path to hold more than `than` lines; returns the
 * count then. */
static long wait_for_lines(const char *path, long than)
{
    long n = count_lines(path);
    for (int i = 0; i < 1000 && n <= than; i++) {
        nanosleep(&(struct timespec){.tv_nsec = 10000000}, NULL);
        n = count_lines(path);
    }
    return n;
}

int main(void)
{
    char out[] = "/tmp/shell_pipeline-XXXXXX";
    int out_fd = mkstemp(out);
    int a[2], b[2]; /* producer -> grep, grep -> sink */
    if (out_fd < 0 || pipe2(a, O_CLOEXEC) != 0 || pipe2(b, O_CLOEXEC) != 0) {
        perror("setup");
        return 1;
    }

    const char *producer_argv[] = {
        "sh", "-c", "i=0; while :; do i=$((i+1)); echo \"event $i\"; sleep 0.001; done", NULL};
    const char *grep_argv[] = {"grep", "--line-buffered", "7", NULL};
    const char *sink_argv[] = {"cat", NULL};

    sk_spawn_config producer_cfg = {.argv = producer_argv};
    producer_cfg.stdio[1] = (sk_stdio){.mode = SK_STDIO_FD, .fd = a[1]};
    sk_spawn_config grep_cfg = {.argv = grep_argv};
    grep_cfg.stdio[0] = (sk_stdio){.mode = SK_STDIO_FD, .fd = a[0]};
    grep_cfg.stdio[1] = (sk_stdio){.mode = SK_STDIO_FD, .fd = b[1]};
    sk_spawn_config sink_cfg = {.argv = sink_argv};
    sink_cfg.stdio[0] = (sk_stdio){.mode = SK_STDIO_FD, .fd = b[0]};
    sink_cfg.stdio[1] = (sk_stdio){.mode = SK_STDIO_FD, .fd = out_fd};

    sk_process producer, grep, sink;
    sk_spawn_init(&producer, &producer_cfg);
    sk_spawn_init(&grep, &grep_cfg);
    sk_spawn_init(&sink, &sink_cfg);

    sk_group *g;
    sk_group_config gc = {.name = "pipeline",
                          .strategy = SK_REST_FOR_ONE,
                          .intensity = 5,
                          .period = 10,
                          .on_event = on_event};
    sk_group_create(&g, &gc);
    sk_group_child children[] = {{.name = "producer", .process = &producer, .shutdown = 1},
                                 {.name = "grep", .process = &grep, .shutdown = 1},
                                 {.name = "sink", .process = &sink, .shutdown = 1}};
    for (int i = 0; i < 3; i++)
        sk_group_add(g, &children[i]);
    if (sk_group_start(g) != SK_OK) {
        fprintf(stderr, "start: %s\n", sk_group_error_of(g)->error.message);
        return 1;
    }

    long before = wait_for_lines(out, 10);
    pid_t grep_pid = sk_group_pid(g, "grep");
    printf("lines before the kill: %ld\nkilling grep (pid %d)\n", before, (int)grep_pid);
    if (grep_pid > 0) /* never kill(-1, ...) */
        kill(grep_pid, SIGKILL);
    long after = wait_for_lines(out, before + 10);
    printf("lines after the restart: %ld\n", after);

    sk_group_stop(g);
    sk_group_release(g);
    for (int i = 0; i < 2; i++) {
        close(a[i]);
        close(b[i]);
    }
    close(out_fd);
    long total = count_lines(out);
    unlink(out);
    printf("lines in all: %ld\n", total);
    bool ok = before > 10 && after > before + 10 && grep_pid > 0;
    printf(ok ? "the pipeline survived\n" : "the pipeline did not survive\n");
    return ok ? 0 : 1;
}
