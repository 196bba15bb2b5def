/* SPDX-License-Identifier: MIT */
/*
 * Process start: what one short-lived process costs, from nothing to its
 * result in the parent's hands.
 *
 *   start.raw      the physical floor: pipe, fork, the child writes 8 bytes
 *                  and _exits, the parent reads them and waitpid()s
 *   start.raw2     the floor of skproc's architecture: the same with two
 *                  nested forks (a child that forks the grandchild which
 *                  writes, as skproc's supervisor forks the worker)
 *   start.skproc   sk_init + sk_start + sk_result("I") + sk_release of a
 *                  class whose run hook runs once (runs = 1) and whose
 *                  result hook returns an int64
 *   start.skproc.sup  the same with lives = 2, which needs a supervisor
 *                  (the worker is then a fork of a fork)
 *
 * and raw and both skproc kinds again while the parent has touched 0, 64, 256 and
 * 1024 MB of heap (quick: 0 and 256), because fork() copies the parent's
 * page tables: its cost grows with the parent's resident memory. Last, the
 * largest size once more in transparent huge pages (MADV_HUGEPAGE), which
 * make those page tables 512 times smaller.
 *
 * The kinds of op run in turn (raw, raw2, skproc, ..., raw, ...), each op timed
 * on its own; the value of a measurement is the median op in microseconds.
 * Every line also says how many minor page faults one op cost, the
 * parent's and its reaped descendants' together ("minflt").
 *
 * --plain-only skips the memory sweep (run.py uses it for the LD_BIND_NOW=1
 * comparison).
 */
#include "common.h"

#include <skproc.h>

#include <fcntl.h>
#include <inttypes.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define AREA "process start"

/* ------------------------------------------------------------ the ops */

/* The floor: everything a "start a process, get one value back" needs. */
static void raw_op(void)
{
    int fds[2];
    BENCH_CHECK(pipe2(fds, O_CLOEXEC) == 0, "pipe2");
    pid_t pid = fork();
    BENCH_CHECK(pid >= 0, "fork");
    if (pid == 0) {
        int64_t v = 1;
        ssize_t n = write(fds[1], &v, sizeof v);
        _exit(n == (ssize_t)sizeof v ? 0 : 1);
    }
    close(fds[1]);
    int64_t v = 0;
    ssize_t n;
    while ((n = read(fds[0], &v, sizeof v)) < 0 && errno == EINTR)
        ;
    BENCH_CHECK(n == (ssize_t)sizeof v && v == 1, "read from the child");
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        BENCH_CHECK(errno == EINTR, "waitpid");
    BENCH_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child's exit");
}

/* The floor of a supervisor + worker design: the child forks the worker,
 * which writes the value; the child reaps it and exits. */
static void raw2_op(void)
{
    int fds[2];
    BENCH_CHECK(pipe2(fds, O_CLOEXEC) == 0, "pipe2");
    pid_t pid = fork();
    BENCH_CHECK(pid >= 0, "fork");
    if (pid == 0) {
        pid_t worker = fork();
        if (worker < 0)
            _exit(1);
        if (worker == 0) {
            int64_t v = 1;
            ssize_t n = write(fds[1], &v, sizeof v);
            _exit(n == (ssize_t)sizeof v ? 0 : 1);
        }
        int status;
        while (waitpid(worker, &status, 0) < 0)
            if (errno != EINTR)
                _exit(1);
        _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
    }
    close(fds[1]);
    int64_t v = 0;
    ssize_t n;
    while ((n = read(fds[0], &v, sizeof v)) < 0 && errno == EINTR)
        ;
    BENCH_CHECK(n == (ssize_t)sizeof v && v == 1, "read from the grandchild");
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        BENCH_CHECK(errno == EINTR, "waitpid");
    BENCH_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child's exit");
}

typedef struct {
    sk_process base;
    int64_t count;
} trivial;

static int trivial_run(sk_process *self)
{
    SK_CONTAINER_OF(self, trivial, base)->count++;
    return 0;
}

static int trivial_result(sk_process *self)
{
    return sk_return(self, "I", &SK_CONTAINER_OF(self, trivial, base)->count);
}

static const sk_class trivial_class = {
    .name = "trivial", .run = trivial_run, .result = trivial_result};

/* One start + result + release. lives = 2 is the cheapest setting that
 * makes a process supervised (a restart needs someone outside the worker):
 * the same trivial process then runs with a supervisor. */
static void skproc_start_result(int lives)
{
    trivial t = {.count = 0};
    BENCH_CHECK(sk_init(&t.base, &trivial_class) == SK_OK, "sk_init");
    t.base.config.runs = 1;
    t.base.config.lives = lives;
    BENCH_CHECK(sk_start(&t.base) == SK_OK, "sk_start");
    int64_t v = 0;
    int rc = sk_result(&t.base, "I", &v);
    if (rc != SK_OK || v != 1) {
        fprintf(stderr, "bench: sk_result: %s, value %" PRId64 "\n", sk_strerror(rc), v);
        exit(1);
    }
    sk_release(&t.base);
}

static void skproc_op(void)
{
    skproc_start_result(1);
}

static void skproc_supervised_op(void)
{
    skproc_start_result(2);
}

/* The same process, instrumented (never timed): the worker's result hook
 * returns its own page-fault count and whether the parent forked it
 * directly, so that one start's faults can be split between the parent,
 * the worker (up to its result hook) and the rest (a supervisor if there is
 * one, and the worker's result and exit). */
static pid_t bench_pid; /* the benchmark's own pid, inherited by the children */

static int faults_result(sk_process *self)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    int64_t faults = u.ru_minflt;
    int64_t direct = getppid() == bench_pid;
    return sk_return(self, "II", &faults, &direct);
}

static const sk_class faults_class = {
    .name = "faults", .run = trivial_run, .result = faults_result};

static void fault_breakdown(const char *key, int lives, long ops)
{
    long parent[4] = {0, 0, 0, 0}; /* sk_init+sk_start, sk_result, sk_release, total */
    long worker = 0, children = 0, direct = 0;
    struct rusage u;
    bench_pid = getpid();
    for (long i = 0; i < ops; i++) {
        trivial t = {.count = 0};
        getrusage(RUSAGE_CHILDREN, &u);
        long c0 = u.ru_minflt;
        getrusage(RUSAGE_SELF, &u);
        long p0 = u.ru_minflt;
        BENCH_CHECK(sk_init(&t.base, &faults_class) == SK_OK, "sk_init");
        t.base.config.runs = 1;
        t.base.config.lives = lives;
        BENCH_CHECK(sk_start(&t.base) == SK_OK, "sk_start");
        getrusage(RUSAGE_SELF, &u);
        long p1 = u.ru_minflt;
        int64_t w = 0, d = 0;
        BENCH_CHECK(sk_result(&t.base, "II", &w, &d) == SK_OK, "sk_result");
        getrusage(RUSAGE_SELF, &u);
        long p2 = u.ru_minflt;
        sk_release(&t.base);
        getrusage(RUSAGE_SELF, &u);
        long p3 = u.ru_minflt;
        getrusage(RUSAGE_CHILDREN, &u);
        children += u.ru_minflt - c0;
        parent[0] += p1 - p0;
        parent[1] += p2 - p1;
        parent[2] += p3 - p2;
        parent[3] += p3 - p0;
        worker += (long)w;
        direct += d != 0;
    }
    double n = (double)ops;
    /* forks: 1 when the parent forked the worker itself, 2 with a
     * supervisor in between (as seen by every op; 0 if it varied). */
    int forks = direct == ops ? 1 : direct == 0 ? 2 : 0;
    printf("{\"type\":\"info\",\"key\":\"%s\",\"ops\":%ld,\"lives\":%d,\"forks\":%d,"
           "\"parent\":%.1f,\"parent_start\":%.1f,\"parent_result\":%.1f,"
           "\"parent_release\":%.1f,\"worker_to_result_hook\":%.1f,\"rest\":%.1f}\n",
           key, ops, lives, forks, (double)parent[3] / n, (double)parent[0] / n,
           (double)parent[1] / n, (double)parent[2] / n, (double)worker / n,
           (double)(children - worker) / n);
    fflush(stdout);
}

/* ------------------------------------------------------------ measuring */

struct plan {
    long ops;          /* at most this many ops */
    long min_ops;      /* at least this many, whatever the budget */
    int64_t budget_ns; /* stop early once this much time was spent; 0: none */
};

/* Minor page faults so far: ours and those of every reaped descendant. */
static long minor_faults(void)
{
    struct rusage self, children;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &children);
    return self.ru_minflt + children.ru_minflt;
}

/* One kind of op being measured, and what it got. */
struct kind {
    void (*op)(void);
    double *us; /* one sample per op */
    long faults;
    struct bench_stats st;
    double minflt; /* per op */
};

/*
 * Runs the ops of every kind in turn (a, b, c, a, b, c, ...), so that a
 * change in the machine's load hits all of them alike, until plan.ops
 * rounds or the time budget is spent.
 */
static void measure(struct kind *k, size_t nk, struct plan plan)
{
    for (size_t j = 0; j < nk; j++) {
        for (int i = 0; i < 5; i++) /* warm up: page in code, settle allocators */
            k[j].op();
        k[j].us = malloc((size_t)plan.ops * sizeof *k[j].us);
        BENCH_CHECK(k[j].us != NULL, "malloc");
        k[j].faults = 0;
    }
    int64_t begin = bench_now_ns();
    long n = 0;
    while (n < plan.ops) {
        int64_t t1 = 0;
        for (size_t j = 0; j < nk; j++) {
            long f0 = minor_faults();
            int64_t t0 = bench_now_ns();
            k[j].op();
            t1 = bench_now_ns();
            k[j].faults += minor_faults() - f0;
            k[j].us[n] = (double)(t1 - t0) / 1e3;
        }
        n++;
        if (plan.budget_ns && n >= plan.min_ops && t1 - begin >= plan.budget_ns)
            break;
    }
    for (size_t j = 0; j < nk; j++) {
        k[j].st = bench_summarize(k[j].us, n);
        k[j].minflt = (double)k[j].faults / (double)n;
        free(k[j].us);
        k[j].us = NULL;
    }
}

/* One line; short_name is how other rows' ratios name this one; extra (may
 * be NULL) adds JSON members. */
static void emit(const char *key, const char *name, const char *short_name, const struct kind *r,
                 const char *extra)
{
    char more[320];
    snprintf(more, sizeof more, "\"short\":\"%s\",\"minflt\":%.1f%s%s", short_name, r->minflt,
             extra ? "," : "", extra ? extra : "");
    bench_emit(AREA, key, name, "us", r->st.median, &r->st, more);
}

/* The parent's extra heap, kept until exit on purpose. Stored in a global
 * so that the compiler cannot drop the malloc + memset as dead code. */
static char *heap_blocks[16];
static size_t heap_nblocks;
static long heap_mb;

/* Grows the parent's touched (resident) heap to mb megabytes in total. */
static void heap_grow_to(long mb)
{
    if (mb <= heap_mb)
        return;
    BENCH_CHECK(heap_nblocks < sizeof heap_blocks / sizeof heap_blocks[0], "heap block slots");
    size_t len = (size_t)(mb - heap_mb) << 20;
    char *block = malloc(len);
    BENCH_CHECK(block != NULL, "malloc of the parent's heap");
    memset(block, 1, len);
    heap_blocks[heap_nblocks++] = block;
    heap_mb = mb;
}

/* Frees the heap heap_grow_to took (glibc returns such big blocks to the
 * kernel at once: they are mmap()ed). */
static void heap_release(void)
{
    for (size_t i = 0; i < heap_nblocks; i++)
        free(heap_blocks[i]);
    heap_nblocks = 0;
    heap_mb = 0;
}

/* Touches mb megabytes of anonymous memory that the kernel may back with
 * 2 MB pages (MADV_HUGEPAGE; whether it does depends on
 * /sys/kernel/mm/transparent_hugepage/enabled). Kept until exit. */
static void heap_grow_huge(long mb)
{
    size_t len = (size_t)mb << 20;
    if (len == 0)
        return;
    void *block = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    BENCH_CHECK(block != MAP_FAILED, "mmap of the parent's heap");
    madvise(block, len, MADV_HUGEPAGE); /* EINVAL without THP: plain pages then */
    memset(block, 1, len);
    heap_blocks[heap_nblocks++] = block;
    heap_mb = mb;
}

/* How much of our memory the kernel backs with transparent huge pages. */
static long anon_huge_mb(void)
{
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    if (f == NULL)
        return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb < 0 ? -1 : kb / 1024;
}

/* Measures raw and skproc starts with the parent's heap as it is now. */
static void sweep_point(long mb, bool huge, struct plan plan)
{
    struct kind m[3] = {{.op = raw_op}, {.op = skproc_op}, {.op = skproc_supervised_op}};
    measure(m, 3, plan);

    const char *tag = huge ? "h" : "";
    const char *in_huge = huge ? " in huge pages" : "";
    char key[64], name[128], short_name[64], extra[200], huge_info[64] = "";
    if (huge)
        snprintf(huge_info, sizeof huge_info, ",\"huge_pages\":true,\"anon_huge_mb\":%ld",
                 anon_huge_mb());

    snprintf(key, sizeof key, "start.mem%ld%s.raw", mb, tag);
    snprintf(name, sizeof name, "raw fork+waitpid+pipe, parent %ld MB%s", mb, in_huge);
    snprintf(short_name, sizeof short_name, "raw fork, %ld MB%s", mb, huge ? " huge" : "");
    snprintf(extra, sizeof extra, "\"table\":\"parent memory\",\"mem_mb\":%ld%s", mb, huge_info);
    emit(key, name, short_name, &m[0], extra);

    static const char *const what[] = {"", ", supervised"};
    static const char *const what_key[] = {"", ".sup"};
    for (int j = 0; j < 2; j++) {
        snprintf(key, sizeof key, "start.mem%ld%s.skproc%s", mb, tag, what_key[j]);
        snprintf(name, sizeof name, "skproc start+result%s, parent %ld MB%s", what[j], mb, in_huge);
        snprintf(short_name, sizeof short_name, "skproc%s, %ld MB%s", what[j], mb,
                 huge ? " huge" : "");
        snprintf(extra, sizeof extra,
                 "\"table\":\"parent memory\",\"mem_mb\":%ld,\"baseline\":\"start.mem%ld%s.raw\"%s",
                 mb, mb, tag, huge_info);
        emit(key, name, short_name, &m[1 + j], extra);
    }
}

int main(int argc, char **argv)
{
    static const char *const flags[] = {"--plain-only", NULL};
    struct bench_opts o = bench_parse(argc, argv, flags);
    bool plain_only = o.extras & 1u;
    bench_print_info("bench_start");

    /* The plain start, with the parent as small as it is. */
    struct plan plain = {bench_ops(&o, 2000, 300), 0, 0};
    struct kind k[4] = {
        {.op = raw_op}, {.op = raw2_op}, {.op = skproc_op}, {.op = skproc_supervised_op}};
    measure(k, 4, plain);
    emit("start.raw", "raw fork+waitpid+pipe", "raw fork", &k[0], NULL);
    emit("start.raw2", "raw double fork (supervisor+worker floor)", "double fork", &k[1],
         "\"baseline\":\"start.raw\"");
    emit("start.skproc", "skproc start+result", "skproc", &k[2], "\"baseline\":\"start.raw\"");
    emit("start.skproc.sup", "skproc start+result, supervised (lives = 2)", "skproc supervised",
         &k[3], "\"baseline\":\"start.raw\"");
    fault_breakdown("start.skproc.faults", 1, o.quick ? 20 : 100);
    fault_breakdown("start.skproc.sup.faults", 2, o.quick ? 20 : 100);
    if (plain_only)
        return 0;

    /* Start-up against the parent's resident memory. A time budget keeps
     * the large sizes (tens of ms per op) from taking minutes. */
    static const long sizes_normal[] = {0, 64, 256, 1024};
    static const long sizes_quick[] = {0, 256};
    const long *sizes = o.quick ? sizes_quick : sizes_normal;
    size_t nsizes = o.quick ? sizeof sizes_quick / sizeof sizes_quick[0]
                            : sizeof sizes_normal / sizeof sizes_normal[0];
    struct plan sweep = {bench_ops(&o, 500, 100), o.quick ? 5 : 15,
                         o.ops > 0 ? 0 : (o.quick ? 250 : 1500) * INT64_C(1000000)};
    for (size_t i = 0; i < nsizes; i++) {
        heap_grow_to(sizes[i]);
        sweep_point(sizes[i], false, sweep);
    }

    /* The largest size again in transparent huge pages: fork copies one
     * page-table entry per 2 MB instead of one per 4 kB. */
    long largest = sizes[nsizes - 1];
    heap_release();
    heap_grow_huge(largest);
    sweep_point(largest, true, sweep);
    return 0;
}
