/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for what a parent reads from memory its child can write:
 * the status page (the error record, the result's length, the timers, the
 * rings' control blocks) and the rings' data. Each input is a set of
 * patches over that state, written after a few well-formed frames and a
 * well-formed result were put in place, so that the fuzzer starts from a
 * working channel and damages it. Then the parent-side calls run on it:
 * sk_listen and sk_listen_message until the ring is drained, sk_tell into
 * the ring to the worker, sk_result / sk_result_image, the error record's
 * read-back (as sk_wait does it: copied, then sanitized) and formatting,
 * every timer getter, sk_current_run and sk_pid.
 *
 * The trust rule says none of that may crash, read or write outside what
 * skproc mapped, or return an undocumented code: ASan and UBSan watch the
 * memory (the rings are one heap block, so a write past the ring to the
 * worker hits its redzone), and check() aborts on a broken invariant.
 *
 * Like fuzz_decoder.c it needs no child: a parent-role sk_runtime, marked
 * finished so that an empty ring answers SK_ECLOSED at once, whose status
 * page and rings live in heap blocks; the result lives in a real memfd.
 * sk_tell is called with the handle marked running (tell does not wait).
 *
 * Input: byte 0 chooses how many frames are put in the ring to the parent
 * (bits 0-1), whether a result is published (bit 2), whether the process
 * was supervised (bit 3); byte 1 adds slack to the memfd's size; the rest
 * is patches of (region: 1 byte, offset: 4 bytes, length: 1 byte, bytes),
 * region 0 the status page before the timers, 1 the timers, 2 the ring to
 * the parent's data, 3 the ring to the worker's data, 4 one timer's header
 * and first samples, 5 the rings' control blocks (4 and 5 lie inside 0
 * and 1: smaller targets, found sooner).
 *
 * Run (CI: 45 s): build/fuzz/fuzz_shared -max_total_time=45 -max_len=1024
 */
#include "codec/message.h"
#include "core/channel.h"
#include "core/error.h"
#include "core/result.h"
#include "core/handle.h"
#include "core/runtime.h"
#include "os/shm.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define FUZZ_CAPACITY 4096
#define FUZZ_MAX_MESSAGE 1024
#define MAX_PATCHES 64

static struct sk_runtime rt;
static struct sk_shared *sh;
static char *rings;
static size_t ring_size; /* one ring's data */
static sk_process proc;
static struct sk_endpoint worker; /* the child's end, to put well-formed frames in */
static void *frame_img, *result_img;
static size_t frame_len, result_len;

struct patch {
    unsigned char *at;
    size_t len;
};
static struct patch patches[MAX_PATCHES];
static int n_patches;

static int hook(sk_process *self)
{
    (void)self;
    return 0;
}

static const sk_class fuzz_class = {.name = "fuzz",
                                    .prerun = hook,
                                    .run = hook,
                                    .postrun = hook,
                                    .onfinish = hook,
                                    .result = hook,
                                    .error = hook};

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_shared: invariant broken: %s\n", what);
        abort();
    }
}

static void check_code(int rc, const int *ok, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        if (rc == ok[i])
            return;
    fprintf(stderr, "fuzz_shared: %s returned %d (%s)\n", what, rc, sk_strerror(rc));
    abort();
}
#define CHECK_CODE(rc, ...)                                                                        \
    do {                                                                                           \
        const int ok_[] = {__VA_ARGS__};                                                           \
        check_code((rc), ok_, sizeof ok_ / sizeof ok_[0], #rc);                                    \
    } while (0)

/* sk_tell of one int32 (tell takes pointers, as tpl does). */
static int tell_int(sk_process *p, int32_t v)
{
    return sk_tell(p, "i", &v);
}

static int pack(void **img, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = sk_msg_pack(fmt, ap, img, len);
    va_end(ap);
    return rc;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    size_t page = sk_page_round(sizeof(struct sk_shared));
    sh = aligned_alloc(4096, page);
    check(sh != NULL, "status page");
    memset(sh, 0, page);
    size_t span = sk_channel_span(FUZZ_CAPACITY, FUZZ_MAX_MESSAGE);
    ring_size = span / 2;
    rings = aligned_alloc(4096, span);
    check(rings != NULL, "rings");
    memset(rings, 0, span);
    rt.role = SK_ROLE_PARENT;
    rt.started = true;
    rt.finished = true;
    rt.sh = sh;
    rt.config.lives = 3;
    rt.config.capacity = FUZZ_CAPACITY;
    rt.config.max_message = FUZZ_MAX_MESSAGE;
    rt.memfd = memfd_create("fuzz-shared", MFD_CLOEXEC);
    check(rt.memfd >= 0, "memfd");
    rt.doorbell = rt.msg_doorbell = rt.epoll_fd = rt.epoll_pidfd = rt.child_pidfd = -1;
    rt.hook_section = -1;
    rt.result_offset = 0;
    sk_channel_init(&rt, rings, 0, FUZZ_CAPACITY, FUZZ_MAX_MESSAGE);
    worker = rt.ep;
    worker.in = rt.ep.out;
    worker.out = rt.ep.in;
    worker.memfd = worker.in_doorbell = worker.out_doorbell = -1;
    worker.peer_gone = NULL;
    proc.cls = &fuzz_class;
    proc.rt = &rt;
    sk_handle_seal(&proc); /* as sk_init does: calls check the seal */
    sk_tpl_hooks_install();
    int32_t x = 42;
    check(pack(&frame_img, &frame_len, "i", &x) == SK_OK, "frame image");
    check(pack(&result_img, &result_len, "i", &x) == SK_OK, "result image");
    return 0;
}

static uint64_t take(const uint8_t **p, size_t *n, unsigned k)
{
    uint64_t v = 0;
    for (unsigned i = 0; i<k && * n> 0; i++, (*p)++, (*n)--)
        v |= (uint64_t) * *p << (8 * i);
    return v;
}

/* Writes len bytes at `at` and remembers the range, to clear it after the
 * input (every input starts from the same state). */
static void patch(unsigned char *at, const uint8_t *bytes, size_t len)
{
    if (n_patches == MAX_PATCHES)
        return;
    memcpy(at, bytes, len);
    patches[n_patches++] = (struct patch){at, len};
}

static void apply_patches(const uint8_t *p, size_t n)
{
    size_t header = offsetof(struct sk_shared, timers);
    while (n >= 6) {
        unsigned region = (unsigned)take(&p, &n, 1) % 6;
        uint64_t off = take(&p, &n, 4);
        size_t len = 1 + (size_t)take(&p, &n, 1) % 32;
        if (len > n)
            len = n;
        if (len == 0)
            break;
        unsigned char *base;
        size_t size;
        switch (region) {
        case 0:
            base = (unsigned char *)sh;
            size = header;
            break;
        case 1:
            base = (unsigned char *)sh->timers;
            size = sizeof sh->timers;
            break;
        case 2:
            base = (unsigned char *)rings;
            size = ring_size;
            break;
        case 3:
            base = (unsigned char *)rings + ring_size;
            size = ring_size;
            break;
        case 4: /* one timer's header and first samples, where a getter looks first */
            base = (unsigned char *)&sh->timers[(off >> 24) % SK_SECTION_COUNT];
            size = offsetof(struct sk_timer, exact) + 32 * sizeof(int64_t);
            break;
        default: /* the rings' control blocks */
            base = (unsigned char *)sh->rings;
            size = sizeof sh->rings;
            break;
        }
        off %= size - len + 1;
        patch(base + off, p, len);
        p += len;
        n -= len;
    }
}

static void reset(void)
{
    for (int i = 0; i < n_patches; i++)
        memset(patches[i].at, 0, patches[i].len);
    n_patches = 0;
    memset(sh, 0, offsetof(struct sk_shared, timers));
    memset(rings, 0, 2 * ring_size);
    for (int s = 0; s < SK_SECTION_COUNT; s++)
        sk_timer_init(&sh->timers[s]);
    rt.ep.peeked = 0;
    free(rt.result_image);
    rt.result_image = NULL;
    rt.result_len = 0;
    rt.has_error = false;
    rt.finished = true;
    memset(&rt.error, 0, sizeof rt.error);
}

static void drain(void)
{
    for (int turn = 0; turn < 64; turn++) {
        int rc;
        if (turn % 2 == 0) {
            int32_t v;
            rc = sk_listen(&proc, 0, "i", &v);
            CHECK_CODE(rc, SK_OK, SK_ECLOSED, SK_ETIMEDOUT, SK_ECORRUPT, SK_EFORMAT);
            if (rc == SK_EFORMAT) { /* a valid image of another format: take it as it is */
                sk_message *m = NULL;
                rc = sk_listen_message(&proc, 0, &m);
                CHECK_CODE(rc, SK_OK, SK_ECORRUPT);
                sk_message_free(m);
            }
        } else {
            sk_message *m = NULL;
            rc = sk_listen_message(&proc, 0, &m);
            CHECK_CODE(rc, SK_OK, SK_ECLOSED, SK_ETIMEDOUT, SK_ECORRUPT);
            if (rc == SK_OK) {
                size_t len;
                const void *img = sk_message_image(m, &len);
                check(sk_msg_validate(img, len) == SK_OK, "a received message validates");
            }
            sk_message_free(m);
        }
        if (rc == SK_ECLOSED || rc == SK_ETIMEDOUT)
            return;
    }
}

static void tell(void)
{
    rt.finished = false; /* tell never waits: nothing looks at the child */
    for (int i = 0; i < 3; i++) {
        int rc = tell_int(&proc, i);
        CHECK_CODE(rc, SK_OK, SK_EFULL, SK_ECLOSED, SK_ECORRUPT);
    }
    char big[FUZZ_MAX_MESSAGE / 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char *s = big;
    CHECK_CODE(sk_tell(&proc, "s", &s), SK_OK, SK_EFULL, SK_ECLOSED, SK_ECORRUPT);
    rt.finished = true;
}

static void read_result(void)
{
    int32_t v;
    CHECK_CODE(sk_result(&proc, "i", &v), SK_OK, SK_EPROCESS, SK_EFORMAT, SK_ECORRUPT,
               SK_ENORESULT);
    CHECK_CODE(sk_result(&proc, NULL), SK_OK, SK_EPROCESS, SK_EFORMAT, SK_ECORRUPT);
    const void *img;
    size_t len;
    int rc = sk_result_image(&proc, &img, &len);
    CHECK_CODE(rc, SK_OK, SK_ECORRUPT);
    if (rc == SK_OK && img != NULL)
        check(len > 0 && len <= result_len + 255, "the result is no longer than the memfd");
}

/* What sk_wait does with the record when the process failed. */
static void read_error(void)
{
    if (sh->outcome != SK_OUTCOME_FAILED)
        return;
    rt.error = sh->error;
    sk_error_sanitize(&rt.error);
    rt.has_error = true;
    const sk_error *e = sk_error_of(&proc);
    check(e != NULL, "the error is there");
    check(memchr(e->message, 0, sizeof e->message) != NULL, "message terminated");
    check(memchr(e->cause, 0, sizeof e->cause) != NULL, "cause terminated");
    check((unsigned)e->kind <= SK_CRASH_ERROR, "kind in range");
    check((int)e->section >= SK_NO_SECTION && (int)e->section < SK_SECTION_COUNT,
          "section in range");
    char buf[2048];
    check(sk_error_format(e, buf, sizeof buf) > 0, "sk_error_format");
    check(sk_error_is(e, SK_PROCESS_ERROR), "every error is a ProcessError");
    check(strcmp(sk_error_name(e->kind), "UnknownError") != 0, "a known name");
}

static void read_timers(void)
{
    for (int s = 0; s < SK_SECTION_COUNT; s++) {
        const sk_timer *t = sk_timer_of(&proc, (sk_section)s);
        check(t != NULL, "every hook has a timer");
        volatile double sink = 0;
        sink += (double)sk_timer_count(t) + sk_timer_total(t) + sk_timer_mean(t);
        sink += sk_timer_min(t) + sk_timer_max(t) + sk_timer_last(t);
        sink += sk_timer_variance(t) + sk_timer_stdev(t) + sk_timer_median(t);
        sink +=
            sk_timer_percentile(t, 0) + sk_timer_percentile(t, 37.5) + sk_timer_percentile(t, 100);
        (void)sink;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reset();
    const uint8_t *p = data;
    size_t n = size;
    unsigned flags = (unsigned)take(&p, &n, 1);
    unsigned slack = (unsigned)take(&p, &n, 1);
    rt.supervised = flags & 8;
    for (unsigned i = 0; i < (flags & 3); i++)
        sk_ring_send(&worker, frame_img, frame_len);
    if (flags & 4) {
        check(pwrite(rt.memfd, result_img, result_len, 0) == (ssize_t)result_len, "pwrite");
        sh->has_result = 1;
        sh->result_len = result_len;
    }
    check(ftruncate(rt.memfd, (flags & 4) ? (off_t)(result_len + slack) : 0) == 0, "ftruncate");
    apply_patches(p, n);

    drain();
    tell();
    read_result();
    read_error();
    read_timers();
    (void)sk_current_run(&proc);
    check(sk_pid(&proc) == -1, "no pid after the end");
    return 0;
}
