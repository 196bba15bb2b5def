/* SPDX-License-Identifier: MIT */
/*
 * A server rank killed in the middle of a map, and the journal. This
 * program is the test (run as usual) and, with --ranks DIR, the MPI program
 * it launches with `mpirun -n 3` (SKT_MPIRUN): rank 0 maps 3000 slow items
 * with a journal in DIR, every item run appends its index to DIR/exec.log,
 * and every rank writes its pid to DIR/rank-R.pid.
 *
 *   1. mpirun as it is: rank 1 is killed mid-map; mpirun ends the job
 *      within bounds, non-zero, and no process of the job is left.
 *   2. mpirun --enable-recovery: rank 1 is killed again; rank 0 itself
 *      says which rank died and which items were in flight on it.
 *   3. the same command again: it resumes from the journal, every result
 *      is right, and no item the journal holds runs again.
 *
 * With --split DIR, the MPI program maps and imaps fast items in batches
 * large enough to travel split (mpi/wire.h), with a journal in DIR: run
 * twice, the second run takes every batch from the journal, right.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "skproc.h"
#include "skproc/mpi.h"
#include "support.h"

#include <fcntl.h>
#include <sys/stat.h>

#define ITEMS 3000

/* ------------------------------------------------------------ the ranks */

static char exec_log[512];

static int slow_triple(const void *item, void *result, const void *arg)
{
    (void)arg;
    int32_t x = *(const int32_t *)item;
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
    char line[32];
    int len = snprintf(line, sizeof line, "%d\n", (int)x);
    int fd = open(exec_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) {
        if (write(fd, line, (size_t)len) != len)
            x = -1;
        close(fd);
    }
    *(int64_t *)result = 3 * (int64_t)x;
    return 0;
}

static const sk_pool_job slow_job = {
    .fn = slow_triple, .item_size = sizeof(int32_t), .result_size = sizeof(int64_t)};

/* sk_mpi_start with a journal at DIR/name: 0 on rank 0 (*pool set), 1 when
 * it failed, -1 on a server rank once it has served. */
static int start_journaled(int *argc, char ***argv, const char *dir, const char *name,
                           sk_mpi_config *cfg, sk_pool **pool)
{
    static char journal[512];
    snprintf(journal, sizeof journal, "%s/%s", dir, name);
    cfg->journal = journal;
    if (sk_mpi_start(pool, cfg, argc, argv) != SK_OK) {
        fprintf(stderr, "sk_mpi_start: %s\n", sk_last_error_message());
        return 1;
    }
    return *pool == NULL ? -1 : 0;
}

/* Items 0 .. n - 1. */
static int32_t *counting(int n)
{
    int32_t *items = malloc((size_t)n * sizeof *items);
    for (int i = 0; items != NULL && i < n; i++)
        items[i] = i;
    return items;
}

/* Maps items (0 .. n - 1) with job, whose results are 3 * item (int64):
 * its rc, and into *wrong how many results are not (none counted after a
 * failed map when only_ok). */
static int map_tripled(sk_pool *pool, const sk_pool_job *job, const int32_t *items, int n,
                       bool only_ok, int *wrong)
{
    int64_t *results = calloc((size_t)n, sizeof *results);
    int rc = sk_pool_map(pool, job, items, (size_t)n, results, NULL);
    *wrong = 0;
    for (int i = 0; (rc == SK_OK || !only_ok) && i < n; i++)
        *wrong += results[i] != 3 * (int64_t)i;
    free(results);
    return rc;
}

static int ranks_main(int argc, char **argv, const char *dir)
{
    snprintf(exec_log, sizeof exec_log, "%s/exec.log", dir);
    const char *rank = getenv("OMPI_COMM_WORLD_RANK"); /* Open MPI's, else MPICH's */
    if (rank == NULL)
        rank = getenv("PMI_RANK");
    char path[512];
    snprintf(path, sizeof path, "%s/rank-%s.pid", dir, rank != NULL ? rank : "x");
    FILE *f = fopen(path, "w");
    if (f != NULL) {
        fprintf(f, "%d\n", (int)getpid());
        fclose(f);
    }
    sk_mpi_register_job("slow_triple", &slow_job);
    sk_mpi_config cfg = {.pool = {.workers = 2, .batch = 10}, .rank_timeout = 2.0};
    sk_pool *pool;
    int started = start_journaled(&argc, &argv, dir, "journal", &cfg, &pool);
    if (started != 0)
        return started > 0;
    int32_t *items = counting(ITEMS);
    int wrong;
    int rc = map_tripled(pool, &slow_job, items, ITEMS, true, &wrong);
    printf("map rc=%d resumed=%zu wrong=%d\n", rc, sk_mpi_resumed(pool), wrong);
    if (rc != SK_OK)
        printf("error: %s\n", sk_last_error_message());
    fflush(stdout);
    free(items);
    sk_mpi_stop(pool); /* after a death: MPI_Abort, no return */
    return rc == SK_OK && wrong == 0 ? 0 : 1;
}

#define SPLIT_ITEMS 200000

static int triple64(const void *item, void *result, const void *arg)
{
    (void)arg;
    *(int64_t *)result = 3 * (int64_t) * (const int32_t *)item;
    return 0;
}

static const sk_pool_job triple64_job = {
    .fn = triple64, .item_size = sizeof(int32_t), .result_size = sizeof(int64_t)};

/* A map (its results received into the caller's array) and an imap (into
 * rank 0's buffers) of batches of 20000 items, both journaled. */
static int split_main(int argc, char **argv, const char *dir)
{
    sk_mpi_register_job("triple64", &triple64_job);
    sk_mpi_config cfg = {.pool = {.workers = 1, .batch = 20000}};
    sk_pool *pool;
    int started = start_journaled(&argc, &argv, dir, "journal-split", &cfg, &pool);
    if (started != 0)
        return started > 0;
    int32_t *items = counting(SPLIT_ITEMS);
    int wrong;
    int map_rc = map_tripled(pool, &triple64_job, items, SPLIT_ITEMS, false, &wrong);
    sk_pool_call *call = NULL;
    int imap_rc = sk_pool_imap(pool, &triple64_job, items, SPLIT_ITEMS, &call);
    for (int i = 0; imap_rc == SK_OK && i < SPLIT_ITEMS; i++) {
        int64_t r = -1;
        size_t at = 0;
        int rc = sk_pool_next(call, -1, &at, &r);
        if (rc != SK_OK)
            imap_rc = rc;
        wrong += rc == SK_OK && (at != (size_t)i || r != 3 * (int64_t)i);
    }
    sk_pool_call_free(call);
    printf("split map rc=%d imap rc=%d resumed=%zu wrong=%d\n", map_rc, imap_rc,
           sk_mpi_resumed(pool), wrong);
    fflush(stdout);
    free(items);
    int stop = sk_mpi_stop(pool);
    return map_rc == SK_OK && imap_rc == SK_OK && wrong == 0 && stop == SK_OK ? 0 : 1;
}

/* ------------------------------------------------------------ the test */

static char dir[256];

static long file_lines(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    long n = 0;
    int c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static char *file_text(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return strdup("");
    char *buf = calloc(1, 1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static pid_t rank_pid(int r)
{
    char name[32];
    snprintf(name, sizeof name, "rank-%d.pid", r);
    char *text = file_text(name);
    pid_t pid = (pid_t)atol(text);
    free(text);
    return pid;
}

/* Starts mpirun on this program in its own session, output to
 * DIR/NAME.out and DIR/NAME.err. */
static pid_t launch_mode(const char *name, bool recovery, const char *mode)
{
    char words[1024];
    snprintf(words, sizeof words, "%s", SKT_MPIRUN);
    char *argv[64];
    int argc = 0;
    argv[argc++] = "timeout";
    argv[argc++] = "--kill-after=5";
    argv[argc++] = "90";
    for (char *w = strtok(words, " "); w != NULL && argc < 50; w = strtok(NULL, " "))
        argv[argc++] = w;
    if (recovery)
        argv[argc++] = "--enable-recovery";
    char self[512];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(len > 0);
    self[len] = '\0';
    argv[argc++] = self;
    argv[argc++] = (char *)mode;
    argv[argc++] = dir;
    argv[argc] = NULL;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setsid();
        char path[512];
        snprintf(path, sizeof path, "%s/%s.out", dir, name);
        int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        snprintf(path, sizeof path, "%s/%s.err", dir, name);
        int err = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(out, 1);
        dup2(err, 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static pid_t launch(const char *name, bool recovery)
{
    return launch_mode(name, recovery, "--ranks");
}

/* Waits for mpirun; its exit status, or -1 after 120 s. */
static int reap(pid_t pid, double *took)
{
    double t0 = skt_now();
    int status;
    while (skt_now() - t0 < 120) {
        pid_t got = waitpid(pid, &status, WNOHANG);
        if (got == pid) {
            *took = skt_now() - t0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        usleep(20000);
    }
    assert_true(pid > 1);
    kill(-pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

/* Kills rank 1 once the journal holds some finished batches. */
static void kill_rank1_midway(void)
{
    double t0 = skt_now();
    while (file_lines("exec.log") < 400 && skt_now() - t0 < 60)
        usleep(10000);
    assert_true(file_lines("exec.log") >= 400);
    assert_true(file_lines("exec.log") < ITEMS); /* mid-map */
    pid_t victim = rank_pid(1);
    assert_true(victim > 1);
    assert_int_equal(kill(victim, SIGKILL), 0);
}

/* No process whose command line names DIR (the ranks and their pools'
 * processes, forked from them) is left. */
static int job_processes(void)
{
    int n = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (atoi(e->d_name) <= 1 || atoi(e->d_name) == getpid())
            continue;
        char path[300], cmd[4096];
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t len = read(fd, cmd, sizeof cmd - 1);
        close(fd);
        for (ssize_t i = 0; i < len; i++)
            if (cmd[i] == '\0')
                cmd[i] = ' ';
        if (len > 0) {
            cmd[len] = '\0';
            if (strstr(cmd, dir) != NULL && strstr(cmd, "--ranks") != NULL)
                n++;
        }
    }
    closedir(d);
    return n;
}

static void wait_no_job_processes(void)
{
    double t0 = skt_now();
    while (job_processes() > 0 && skt_now() - t0 < 10)
        usleep(20000);
    assert_int_equal(job_processes(), 0);
}

static void killed_rank_then_resume(void **state)
{
    (void)state;
    skt_bound(400);
    snprintf(dir, sizeof dir, "/tmp/skt-mpi-death-XXXXXX");
    assert_non_null(mkdtemp(dir));
    char path[512];

    /* 1. mpirun as it is: the job ends, bounded, non-zero, nothing left. */
    pid_t run = launch("run1", false);
    kill_rank1_midway();
    double took;
    int rc = reap(run, &took);
    print_message("run 1 (mpirun ends the job): exit %d after %.1f s\n", rc, took);
    assert_true(rc != 0 && rc != -1);
    wait_no_job_processes();
    long journaled_1 = file_lines("exec.log");

    /* 2. --enable-recovery (Open MPI's; MPICH's mpiexec has none): rank 0
     * names the dead rank and its items. */
    snprintf(path, sizeof path, "%s/exec.log", dir);
    char old[512];
    snprintf(old, sizeof old, "%s/exec1.log", dir);
    rename(path, old);
#ifdef SKT_MPI_OPENMPI
    {
        run = launch("run2", true);
        kill_rank1_midway();
        rc = reap(run, &took);
        char *err = file_text("run2.err");
        print_message("run 2 (--enable-recovery): exit %d after %.1f s\n", rc, took);
        assert_true(rc != -1);
        assert_true(took < 60);
        const char *report = strstr(err, "skproc-mpi: rank 1 (");
        assert_non_null(report);
        print_message("%.*s\n", (int)strcspn(report, "\n"), report);
        assert_non_null(strstr(err, "items in flight on it: "));
        assert_non_null(strstr(err, "MPI_Abort"));
        char *out = file_text("run2.out");
        assert_non_null(strstr(out, "map rc=-")); /* the map failed */
        free(out);
        free(err);
        wait_no_job_processes();
        snprintf(old, sizeof old, "%s/exec2.log", dir);
        rename(path, old);
    }
#endif

    /* 3. The same command again resumes: no journaled item runs again. */
    run = launch("run3", false);
    rc = reap(run, &took);
    char *out = file_text("run3.out");
    print_message("run 3 (resume): exit %d after %.1f s: %s", rc, took, out);
    assert_int_equal(rc, 0);
    size_t resumed = 0;
    int wrong = -1;
    const char *at = strstr(out, "map rc=0 resumed=");
    assert_non_null(at);
    assert_int_equal(sscanf(at, "map rc=0 resumed=%zu wrong=%d", &resumed, &wrong), 2);
    assert_int_equal(wrong, 0);
    assert_true(resumed >= 300);
    assert_true(journaled_1 > 0);
    long ran = file_lines("exec.log");
    print_message("resumed %zu items, ran %ld\n", resumed, ran);
    assert_int_equal((size_t)ran, ITEMS - resumed); /* not one item twice */
    char *log = file_text("exec.log");
    char *seen = calloc(ITEMS, 1);
    for (char *line = strtok(log, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        int i = atoi(line);
        assert_true(i >= 0 && i < ITEMS);
        assert_int_equal(seen[i], 0);
        seen[i] = 1;
    }
    free(seen);
    free(log);
    free(out);
    wait_no_job_processes();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* Batches that travel split (their items and results as BODY messages,
 * the results received into the caller's array for the map, into rank 0's
 * buffers for the imap) are journaled as whole messages: the same command
 * again takes all of them from the journal, with the right results. */
static void journal_holds_split_results(void **state)
{
    (void)state;
    skt_bound(200);
    snprintf(dir, sizeof dir, "/tmp/skt-mpi-split-XXXXXX");
    assert_non_null(mkdtemp(dir));
    for (int run = 1; run <= 2; run++) {
        char name[16];
        snprintf(name, sizeof name, "split%d", run);
        double took;
        int rc = reap(launch_mode(name, false, "--split"), &took);
        snprintf(name, sizeof name, "split%d.out", run);
        char *out = file_text(name);
        print_message("split run %d: exit %d after %.1f s: %s", run, rc, took, out);
        assert_int_equal(rc, 0);
        size_t resumed = 0;
        int wrong = -1;
        const char *at = strstr(out, "split map rc=0 imap rc=0 resumed=");
        assert_non_null(at);
        assert_int_equal(
            sscanf(at, "split map rc=0 imap rc=0 resumed=%zu wrong=%d", &resumed, &wrong), 2);
        assert_int_equal(wrong, 0);
        assert_int_equal(resumed, run == 1 ? 0 : 2 * SPLIT_ITEMS);
        free(out);
    }
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* examples/mpi_wordlen prints the same alone (a local pool) and under
 * mpirun -n 3 (server ranks). */
static char *run_capture(const char *cmd)
{
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    char *buf = calloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    assert_int_equal(pclose(f), 0);
    return buf;
}

static void example_same_alone_and_under_mpirun(void **state)
{
    (void)state;
    /* this build's example: VARIANT/tests/test_mpi_death -> VARIANT/examples */
    char prog[600];
    ssize_t len = readlink("/proc/self/exe", prog, sizeof prog - 1);
    assert_true(len > 0);
    prog[len] = '\0';
    char *tests_dir = strrchr(prog, '/');
    assert_non_null(tests_dir);
    *tests_dir = '\0';
    char *variant = strrchr(prog, '/');
    assert_non_null(variant);
    snprintf(variant, sizeof prog - (size_t)(variant - prog), "/examples/mpi_wordlen");
    if (access(prog, X_OK) != 0)
        skip();
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "env -u OMPI_COMM_WORLD_SIZE -u PMI_SIZE timeout 60 %s", prog);
    char *alone = run_capture(cmd);
    snprintf(cmd, sizeof cmd, "timeout 60 %s %s", SKT_MPIRUN, prog);
    char *ranks = run_capture(cmd);
    assert_non_null(strstr(alone, "34 words in all"));
    assert_string_equal(alone, ranks);
    free(alone);
    free(ranks);
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "--ranks") == 0)
        return ranks_main(argc, argv, argv[2]);
    if (argc >= 3 && strcmp(argv[1], "--split") == 0)
        return split_main(argc, argv, argv[2]);
    const struct CMUnitTest tests[] = {
        SKT_TEST(killed_rank_then_resume),
        SKT_TEST(journal_holds_split_results),
        SKT_TEST(example_same_alone_and_under_mpirun),
    };
    return skt_run(argc, argv, tests);
}
