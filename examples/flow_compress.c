/* SPDX-License-Identifier: MIT */
/*
 * flow_compress: a three-step flow that compresses the files of a
 * directory tree with zlib and checks what it wrote.
 *
 *   read      2 processes         reads the file, records its size and crc32
 *   compress  2 processes,        reads it again, compress2()es it into
 *             batches of up to 8  <session dir>/<task id>.z, records that name and
 *             (5 ms batch timeout) the compressed size
 *   checksum  1 process           reads the .z file, computes its crc32 and
 *                                 adler32, uncompresses it and checks the
 *                                 length and crc32 against what read saw
 *
 * A task is a fixed-size record of plain bytes (at most 64 KiB, no
 * pointers): a file's contents cannot travel in it. So each step works from
 * what the record names: the path (the second read of a file comes from the
 * page cache), then the compressed file in the run's session directory
 * (sk_step_session_dir: private to the run, the same in every process,
 * removed by the flow however the run ends, so this program never cleans
 * up after itself).
 *
 * The parent walks the tree (nftw; the first MAX regular files under 1 MiB),
 * submits one task per file and collects results in the order they finish.
 * The flow holds at most queue_size tasks that are not yet collected; when
 * a submit finds it full (SK_EFULL) the parent collects a result first:
 * room is made by collecting, so a single thread that only submitted with
 * an endless timeout would wait forever.
 *
 * It prints the totals and every task that failed, with the step, the
 * process and the error. Exit status 0 when every file went through.
 *
 *     build/default/examples/flow_compress [DIR [MAX]]
 *
 * DIR defaults to /usr/include, else /usr/share/doc; MAX to 1000 files.
 *
 * Build: gcc -std=c11 flow_compress.c $(pkg-config --cflags --libs skproc zlib)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw */
#endif
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include <skproc.h>

#define MAX_SIZE (1 << 20) /* files of 1 MiB and more are left out */

/* One task: what the parent fills in, then what each step adds. */
typedef struct {
    char path[1024];       /* parent: the file */
    uint64_t size;         /* read: its length */
    uint32_t crc;          /* read: crc32 of its bytes */
    char packed[32];       /* compress: the compressed file, in the temporary directory */
    uint64_t packed_size;  /* compress: its length */
    uint32_t packed_crc;   /* checksum: crc32 of the compressed bytes */
    uint32_t packed_adler; /* checksum: adler32 of the compressed bytes */
} file_task;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads up to cap bytes of path into buf: 0 and *len, or an errno value
 * (EFBIG when the file holds more than cap bytes). */
static int read_file(const char *path, unsigned char *buf, size_t cap, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    size_t got = 0;
    int err = 0;
    for (;;) {
        ssize_t n = read(fd, buf + got, cap - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = errno;
            break;
        }
        if (n == 0)
            break;
        got += (size_t)n;
        if (got == cap) { /* full: anything more is too much */
            unsigned char extra;
            if (read(fd, &extra, 1) > 0)
                err = EFBIG;
            break;
        }
    }
    close(fd);
    *len = got;
    return err;
}

static int write_file(const char *path, const unsigned char *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno;
    int err = 0;
    for (size_t done = 0; done < len && err == 0;) {
        ssize_t n = write(fd, buf + done, len - done);
        if (n < 0 && errno != EINTR)
            err = errno;
        else if (n > 0)
            done += (size_t)n;
    }
    if (close(fd) != 0 && err == 0)
        err = errno;
    return err;
}

/* ------------------------------------------------------------ the steps */

/* Every step has the same fields: two buffers that each process allocates
 * in its start hook and frees in its stop hook. */
typedef struct {
    sk_step base;
    unsigned char *raw, *packed; /* a file's bytes, compressed bytes */
    size_t raw_cap, packed_cap;
} file_step;

#define FILE_STEP(s) SK_CONTAINER_OF(s, file_step, base)

static int buffers_start(sk_step *self)
{
    file_step *s = FILE_STEP(self);
    s->raw_cap = MAX_SIZE;
    s->packed_cap = compressBound(MAX_SIZE);
    s->raw = malloc(s->raw_cap);
    s->packed = malloc(s->packed_cap);
    if (s->raw == NULL || s->packed == NULL)
        return sk_step_fail(self, ENOMEM, "no memory for the buffers");
    return 0;
}

static int buffers_stop(sk_step *self)
{
    file_step *s = FILE_STEP(self);
    free(s->raw);
    free(s->packed);
    s->raw = s->packed = NULL;
    return 0;
}

static void packed_path(const file_step *s, const file_task *t, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", sk_step_session_dir(&s->base), t->packed);
}

static int read_handle(sk_step *self, sk_task *tasks, size_t count)
{
    file_step *s = FILE_STEP(self);
    for (size_t i = 0; i < count; i++) {
        file_task *t = tasks[i].record;
        size_t len;
        int err = read_file(t->path, s->raw, s->raw_cap, &len);
        if (err != 0) {
            sk_task_fail(self, &tasks[i], err, "%s: %s", t->path, strerror(err));
            continue;
        }
        t->size = len;
        t->crc = (uint32_t)crc32(crc32(0, Z_NULL, 0), s->raw, (uInt)len);
    }
    return 0;
}

static int compress_handle(sk_step *self, sk_task *tasks, size_t count)
{
    file_step *s = FILE_STEP(self);
    for (size_t i = 0; i < count; i++) {
        file_task *t = tasks[i].record;
        size_t len;
        int err = read_file(t->path, s->raw, s->raw_cap, &len);
        if (err != 0) {
            sk_task_fail(self, &tasks[i], err, "%s: %s", t->path, strerror(err));
            continue;
        }
        if (len != t->size) {
            sk_task_fail(self, &tasks[i], EAGAIN, "%s: changed since it was read", t->path);
            continue;
        }
        uLongf packed_len = (uLongf)s->packed_cap;
        int zrc = compress2(s->packed, &packed_len, s->raw, (uLong)len, Z_DEFAULT_COMPRESSION);
        if (zrc != Z_OK) {
            sk_task_fail(self, &tasks[i], zrc, "%s: compress2: %s", t->path, zError(zrc));
            continue;
        }
        char path[1100];
        snprintf(t->packed, sizeof t->packed, "%" PRIu64 ".z", tasks[i].id);
        packed_path(s, t, path, sizeof path);
        err = write_file(path, s->packed, packed_len);
        if (err != 0) {
            sk_task_fail(self, &tasks[i], err, "%s: %s", path, strerror(err));
            continue;
        }
        t->packed_size = packed_len;
    }
    return 0;
}

static int checksum_handle(sk_step *self, sk_task *tasks, size_t count)
{
    file_step *s = FILE_STEP(self);
    for (size_t i = 0; i < count; i++) {
        file_task *t = tasks[i].record;
        char path[1100];
        packed_path(s, t, path, sizeof path);
        size_t len;
        int err = read_file(path, s->packed, s->packed_cap, &len);
        if (err != 0) {
            sk_task_fail(self, &tasks[i], err, "%s: %s", path, strerror(err));
            continue;
        }
        if (len != t->packed_size) {
            sk_task_fail(self, &tasks[i], EIO, "%s: %zu bytes, compress wrote %" PRIu64, path, len,
                         t->packed_size);
            continue;
        }
        t->packed_crc = (uint32_t)crc32(crc32(0, Z_NULL, 0), s->packed, (uInt)len);
        t->packed_adler = (uint32_t)adler32(adler32(0, Z_NULL, 0), s->packed, (uInt)len);
        uLongf raw_len = (uLongf)s->raw_cap;
        int zrc = uncompress(s->raw, &raw_len, s->packed, (uLong)len);
        if (zrc != Z_OK) {
            sk_task_fail(self, &tasks[i], zrc, "%s: uncompress: %s", path, zError(zrc));
            continue;
        }
        uint32_t crc = (uint32_t)crc32(crc32(0, Z_NULL, 0), s->raw, (uInt)raw_len);
        if (raw_len != t->size || crc != t->crc) {
            sk_task_fail(self, &tasks[i], EIO,
                         "%s: uncompresses to %lu bytes, crc32 %08" PRIx32 "; the file had %" PRIu64
                         " bytes, crc32 %08" PRIx32,
                         t->path, (unsigned long)raw_len, crc, t->size, t->crc);
            continue;
        }
        unlink(path); /* checked: not needed any more */
    }
    return 0;
}

static const sk_step_class read_class = {
    .name = "read", .start = buffers_start, .handle = read_handle, .stop = buffers_stop};
static const sk_step_class compress_class = {
    .name = "compress", .start = buffers_start, .handle = compress_handle, .stop = buffers_stop};
static const sk_step_class checksum_class = {
    .name = "checksum", .start = buffers_start, .handle = checksum_handle, .stop = buffers_stop};

/* ------------------------------------------------------------ the parent */

/* What the parent keeps; nftw's callback has no argument, hence statics. */
static struct {
    sk_flow *flow;
    file_step *steps[3];
    long max_files, submitted, ok, failed;
    uint64_t bytes_in, bytes_out;
    uint32_t crcs, adlers; /* xor of the checksums of the compressed files */
    int walk_rc;           /* what stopped the walk early: an SK_E* code, or 0 */
} run;

/* One task out of the flow. */
static void take(const file_task *t, const sk_flow_result *r)
{
    if (r->status == SK_OK) {
        run.ok++;
        run.bytes_in += t->size;
        run.bytes_out += t->packed_size;
        run.crcs ^= t->packed_crc;
        run.adlers ^= t->packed_adler;
        return;
    }
    run.failed++;
    const char *step = r->step >= 0 && r->step < 3 ? run.steps[r->step]->base.cls->name : "-";
    printf("failed: task %" PRIu64 " %s\n  step %d '%s', process %d: %s\n  %s\n", r->id, t->path,
           r->step, step, r->process, sk_strerror(r->status), r->error.message);
    if (r->error.cause[0] != '\0')
        printf("  %s\n", r->error.cause);
}

static int collect_one(double timeout)
{
    file_task t;
    sk_flow_result r;
    int rc = sk_flow_collect(run.flow, timeout, &t, &r);
    if (rc == SK_OK)
        take(&t, &r);
    return rc;
}

static int visit(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)ftw;
    if (type != FTW_F || !S_ISREG(sb->st_mode) || sb->st_size >= MAX_SIZE)
        return 0;
    file_task t = {0};
    if (strlen(path) >= sizeof t.path)
        return 0; /* does not fit the record */
    strcpy(t.path, path);
    for (;;) {
        int rc = sk_flow_submit(run.flow, &t, 0, 0, NULL);
        if (rc == SK_OK)
            break;
        if (rc != SK_EFULL) { /* SK_ECLOSED: the flow ended (an error status) */
            run.walk_rc = rc;
            return 1;
        }
        rc = collect_one(-1); /* full: make room */
        if (rc != SK_OK) {
            run.walk_rc = rc;
            return 1;
        }
    }
    return ++run.submitted >= run.max_files; /* non-zero stops the walk */
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1                            ? argv[1]
                      : access("/usr/include", R_OK) == 0 ? "/usr/include"
                                                          : "/usr/share/doc";
    run.max_files = argc > 2 ? atol(argv[2]) : 1000;
    if (run.max_files <= 0) {
        fprintf(stderr, "usage: %s [DIR [MAX_FILES]]\n", argv[0]);
        return 2;
    }
    sk_flow_config cfg = {.task_size = sizeof(file_task)};
    int rc = sk_flow_create(&run.flow, &cfg);
    if (rc != SK_OK) {
        fprintf(stderr, "sk_flow_create: %s\n", sk_strerror(rc));
        return 1;
    }
    static const sk_step_class *classes[3] = {&read_class, &compress_class, &checksum_class};
    static file_step steps[3]; /* in place until sk_flow_release */
    for (int i = 0; i < 3; i++) {
        sk_step_init(&steps[i].base, classes[i]);
        run.steps[i] = &steps[i];
    }
    steps[0].base.config.processes = 2;
    steps[1].base.config.processes = 2;
    steps[1].base.config.batch_size = 8;
    steps[1].base.config.batch_timeout = 0.005;
    steps[2].base.config.batch_size = 8;
    for (int i = 0; i < 3 && rc == SK_OK; i++)
        rc = sk_flow_add(run.flow, &steps[i].base);
    if (rc == SK_OK)
        rc = sk_flow_start(run.flow); /* forks 5 processes, returns when all are ready */
    if (rc != SK_OK) {
        const sk_flow_result *e = sk_flow_error(run.flow);
        fprintf(stderr, "could not start the flow: %s%s%s\n", sk_strerror(rc), e ? ": " : "",
                e ? e->error.message : "");
        sk_flow_release(run.flow);
        return 1;
    }

    double t0 = now();
    printf("compressing up to %ld files under 1 MiB from %s\n", run.max_files, dir);
    if (nftw(dir, visit, 16, FTW_PHYS) < 0)
        perror(dir);
    sk_flow_close(run.flow); /* end of stream: every step finishes what it holds */
    while ((rc = collect_one(-1)) == SK_OK)
        ;
    int wait_rc = sk_flow_wait(run.flow, 10.0);
    double took = now() - t0;
    if (rc != SK_ECLOSED || wait_rc != SK_OK || run.walk_rc != 0) {
        const sk_flow_result *e = sk_flow_error(run.flow);
        fprintf(stderr, "the flow failed: walk %s, collect %s, wait %s%s%s\n",
                sk_strerror(run.walk_rc), sk_strerror(rc), sk_strerror(wait_rc), e ? ": " : "",
                e ? e->error.message : "");
    }
    sk_flow_release(run.flow); /* the session directory goes with it */

    printf("files     %ld compressed and checked, %ld failed\n", run.ok, run.failed);
    printf("bytes in  %" PRIu64 "\n", run.bytes_in);
    printf("bytes out %" PRIu64 " (%.1f%% of the input)\n", run.bytes_out,
           run.bytes_in ? 100.0 * (double)run.bytes_out / (double)run.bytes_in : 0.0);
    printf("checksums crc32 %08" PRIx32 ", adler32 %08" PRIx32 " (xor over the .z files)\n",
           run.crcs, run.adlers);
    printf("time      %.3f s, %.0f files/s, %.1f MB/s\n", took, (double)run.submitted / took,
           (double)run.bytes_in / took / 1e6);
    bool good = run.ok > 0 && run.failed == 0 && run.ok == run.submitted && rc == SK_ECLOSED &&
                wait_rc == SK_OK && run.walk_rc == 0;
    return good ? 0 : 1;
}
