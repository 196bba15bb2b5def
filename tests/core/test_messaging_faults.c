/* SPDX-License-Identifier: MIT */
/*
 * Messaging under faults: the child dies after telling (everything told
 * arrives, then SK_ECLOSED); the worker is killed while it copies a 64 MiB
 * message (the parent never sees a partial one, and a restarted worker's
 * messages still arrive); the supervisor is killed while the parent
 * listens; and corrupt or oversized frames injected into either ring with
 * the test hook sk_channel_inject (bad magic, a length over max_message, a
 * length past what was published, a zero length, a broken wrap marker, a
 * valid header around a garbage or truncated tpl image) -- SK_ECORRUPT,
 * and the channel goes on.
 *
 * The frame layout is the one channel.h documents: u32 magic, u32 length,
 * the image, padding to 8. The magic values are copied into
 * codec_support.h on purpose: a change to the wire format should make
 * these tests fail loudly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "messaging_support.h"

#include "core/channel.h"
#include "core/runtime.h"

#include <fcntl.h>
#include <sched.h>
#include <stdatomic.h>
#include <tpl.h>

/* ------------------------------------------------------------- helpers */

static bool pattern_ok(const unsigned char *buf, size_t n, uint64_t seed)
{
    return pattern_check(buf, n, seed) == n;
}

/* A frame as channel.c writes it: header, bytes, zero padding to 8. Returns
 * its length. */
static size_t frame(unsigned char *out, uint32_t magic, uint32_t len, const void *body,
                    size_t body_len)
{
    size_t n = 0;
    put_frame(out, &n, magic, len, body, body_len);
    return n;
}

/* A valid frame holding the image of "i" v. */
static size_t valid_frame(unsigned char *out, int32_t v)
{
    size_t len;
    unsigned char *img = image_of_int(v, &len);
    size_t n = frame(out, FRAME_MAGIC, (uint32_t)len, img, len);
    free(img);
    return n;
}

/* -------------------------------------------------- the test process */

#define NR 8

typedef struct {
    sk_process base;
    long n;
    void *shared;
    int64_t r[NR];
} fp;

#define FP(p) SK_CONTAINER_OF(p, fp, base)

static int fp_result(sk_process *self)
{
    return sk_return(self, "I#", FP(self)->r, NR);
}

static fp *fp_new(const sk_class *cls)
{
    fp *m = skt_new(fp);
    assert_rc(sk_init(&m->base, cls), SK_OK);
    return m;
}

/* -------------------------------------------- the child dies after telling */

static int ten_then_die_run(sk_process *self)
{
    for (int32_t i = 0; i < 10; i++) {
        int rc;
        TELL_RETRY(rc, self, "i", &i);
        if (rc != SK_OK)
            return FAIL_RC(self, rc, "tell");
    }
    skt_die_by(SIGKILL);
    return 0;
}

static const sk_class ten_then_die_class = {.name = "ten_then_die", .run = ten_then_die_run};

static void test_child_dies_after_telling(void **state)
{
    (void)state;
    fp *m = fp_new(&ten_then_die_class);
    m->base.config.runs = 1;
    assert_rc(sk_start(&m->base), SK_OK);
    for (int32_t i = 0; i < 10; i++) {
        int32_t v = -1;
        assert_rc(sk_listen(&m->base, -1, "i", &v), SK_OK);
        assert_int_equal(v, i);
    }
    int32_t v;
    double t0 = skt_now();
    assert_rc(sk_listen(&m->base, -1, "i", &v), SK_ECLOSED);
    assert_cmp(skt_now() - t0, <, 10);
    assert_rc(sk_wait(&m->base, 30), SK_OK);
    const sk_error *e = sk_error_of(&m->base);
    assert_non_null(e);
    assert_int_equal(e->kind, SK_CRASH_ERROR);
    assert_int_equal(e->signal, SIGKILL);
    assert_rc(sk_listen(&m->base, 0, "i", &v), SK_ECLOSED);
}

/* The same, but the parent only starts reading after sk_wait. */
static void test_child_dies_then_parent_reads(void **state)
{
    (void)state;
    fp *m = fp_new(&ten_then_die_class);
    m->base.config.runs = 1;
    assert_rc(sk_start(&m->base), SK_OK);
    assert_rc(sk_wait(&m->base, 30), SK_OK);
    for (int32_t i = 0; i < 10; i++) {
        int32_t v = -1;
        assert_rc(sk_listen(&m->base, -1, "i", &v), SK_OK);
        assert_int_equal(v, i);
    }
    int32_t v;
    assert_rc(sk_listen(&m->base, -1, "i", &v), SK_ECLOSED);
}

/* ------------------------------------ killed while copying 64 MiB */

#define BIG ((size_t)64 << 20)

struct big_state {
    _Atomic int64_t sending; /* seq + 1 of the tell in progress */
    _Atomic int64_t sent;    /* tells completed */
    _Atomic int attempts;
    _Atomic pid_t pid;
};

/* The payload of message seq: a fixed pattern with seq in its first and last
 * 8 bytes. */
static void big_stamp(unsigned char *payload, uint64_t seq)
{
    memcpy(payload, &seq, 8);
    memcpy(payload + BIG - 8, &seq, 8);
}

/* Tells 64 MiB messages with no pause, the image made once and stamped
 * with the sequence number in place. A restarted worker (second attempt)
 * tells one small "i" and ends. */
static int big_sender_run(sk_process *self)
{
    fp *m = FP(self);
    struct big_state *st = m->shared;
    atomic_store(&st->pid, getpid());
    if (atomic_fetch_add(&st->attempts, 1) > 0) {
        int32_t done = -1;
        int rc;
        TELL_RETRY(rc, self, "i", &done);
        return rc == SK_OK ? 0 : FAIL_RC(self, rc, "done tell");
    }
    unsigned char *buf = malloc(BIG);
    if (buf == NULL)
        return sk_fail(self, SK_ENOMEM, "malloc");
    pattern_fill(buf, BIG, 77);
    tpl_bin bin = {.addr = buf, .sz = (uint32_t)BIG};
    tpl_node *tn = tpl_map("B", &bin);
    void *img = NULL;
    size_t len = 0;
    if (tn == NULL || tpl_pack(tn, 0) != 0 || tpl_dump(tn, TPL_MEM, &img, &len) != 0)
        return sk_fail(self, -1, "tpl");
    tpl_free(tn);
    free(buf);
    unsigned char *payload = (unsigned char *)img + len - BIG; /* B's bytes end the image */
    for (uint64_t seq = 0; seq < 1000; seq++) {
        big_stamp(payload, seq);
        atomic_store(&st->sending, (int64_t)seq + 1);
        int rc;
        while ((rc = sk_tell_image(self, img, len)) == SK_EFULL)
            sched_yield();
        if (rc != SK_OK)
            return FAIL_RC(self, rc, "big tell");
        atomic_store(&st->sent, (int64_t)seq + 1);
    }
    return 0; /* not reached: the parent kills it first */
}

static const sk_class big_sender_class = {.name = "big_sender", .run = big_sender_run};

/* Reads every message left: each 64 MiB one must be whole, in order. Returns
 * how many big ones; *small gets the small "i" if one came. */
static int read_big_messages(fp *m, int32_t *small)
{
    int count = 0;
    for (;;) {
        sk_message *msg = NULL;
        int rc = sk_listen_message(&m->base, 60, &msg);
        if (rc == SK_ECLOSED)
            return count;
        assert_rc(rc, SK_OK); /* never SK_ECORRUPT: no partial frame */
        if (strcmp(sk_message_format(msg), "i") == 0) {
            assert_rc(sk_message_unpack(msg, "i", small), SK_OK);
            sk_message_free(msg);
            continue;
        }
        assert_string_equal(sk_message_format(msg), "B");
        tpl_bin bin = {0};
        assert_rc(sk_message_unpack(msg, "B", &bin), SK_OK);
        sk_message_free(msg);
        assert_int_equal(bin.sz, BIG);
        uint64_t head, tail;
        memcpy(&head, bin.addr, 8);
        memcpy(&tail, (unsigned char *)bin.addr + BIG - 8, 8);
        assert_int_equal(head, (uint64_t)count);
        assert_int_equal(tail, (uint64_t)count);
        /* Between the stamps, the sender's pattern (block i is mix64(77 + i)). */
        unsigned char *p = bin.addr;
        assert_true(pattern_ok(p + 8, BIG - 16, 77 + 8));
        free(bin.addr);
        count++;
    }
}

static void kill_during_big_copy(int lives)
{
    fp *m = fp_new(&big_sender_class);
    m->base.config.runs = 1;
    m->base.config.lives = lives;
    m->base.config.max_message = BIG + 4096;
    m->base.config.capacity = (size_t)256 << 20; /* three in flight, no reader */
    struct big_state *st = skt_shared(sizeof *st);
    m->shared = st;
    assert_rc(sk_start(&m->base), SK_OK);
    /* Wait until the third tell has begun: the worker is copying it. */
    double deadline = skt_now() + 60;
    while (atomic_load(&st->sending) < 3) {
        assert_cmp(skt_now(), <, deadline);
        sched_yield();
    }
    pid_t pid = atomic_load(&st->pid);
    assert_cmp(pid, >, 0);
    assert_int_equal(kill(pid, SIGKILL), 0);
    int32_t small = 0;
    int count = read_big_messages(m, &small);
    int64_t sent = atomic_load(&st->sent);
    print_message("killed while sending message 3: %d whole messages arrived (%lld tells had "
                  "returned)\n",
                  count, (long long)sent);
    assert_cmp(count, >=, 2);
    assert_cmp(count, <=, 3);
    assert_true(count == sent || count == sent + 1);
    assert_rc(sk_wait(&m->base, 30), SK_OK);
    if (lives == 1) {
        const sk_error *e = sk_error_of(&m->base);
        assert_non_null(e);
        assert_int_equal(e->kind, SK_CRASH_ERROR);
    } else {
        assert_no_error(&m->base);
        assert_int_equal(small, -1); /* the restarted worker's message came through */
    }
}

static void test_kill_worker_copying_64mib(void **state)
{
    (void)state;
    kill_during_big_copy(1);
}

static void test_kill_worker_copying_64mib_then_restart(void **state)
{
    (void)state;
    kill_during_big_copy(2);
}

/* ---------------------------------------- the supervisor killed */

static int silent_run(sk_process *self)
{
    int32_t ready = 1, v;
    int rc = sk_tell(self, "i", &ready);
    if (rc != SK_OK)
        return FAIL_RC(self, rc, "silent tell");
    while ((rc = sk_listen(self, -1, "i", &v)) == SK_OK)
        ;
    return 0;
}

static const sk_class silent_class = {.name = "silent", .run = silent_run};

/* Killed from outside with no word on the channel: the parent's listen
 * notices on its own (it re-checks the supervisor) instead of hanging. */
static void test_supervisor_killed_while_listening(void **state)
{
    (void)state;
    fp *m = fp_new(&silent_class);
    m->base.config.lives = 2; /* lives > 1: the process has a supervisor */
    assert_rc(sk_start(&m->base), SK_OK);
    int32_t v;
    assert_rc(sk_listen(&m->base, 30, "i", &v), SK_OK);
    assert_int_equal(kill(m->base.rt->child_pid, SIGKILL), 0);
    double t0 = skt_now();
    assert_rc(sk_listen(&m->base, -1, "i", &v), SK_ECLOSED);
    assert_cmp(skt_now() - t0, <, 5);
    assert_rc(sk_wait(&m->base, 30), SK_OK);
    const sk_error *e = sk_error_of(&m->base);
    assert_non_null(e);
    assert_int_equal(e->kind, SK_PROCESS_ERROR);
}

/* ------------------------------------------------- after sk_kill */

/* Tells three messages, says so in shared memory, then waits forever. */
static int three_then_wait_run(sk_process *self)
{
    _Atomic int *told = FP(self)->shared;
    for (int32_t i = 0; i < 3; i++) {
        int rc;
        TELL_RETRY(rc, self, "i", &i);
        if (rc != SK_OK)
            return FAIL_RC(self, rc, "tell");
    }
    atomic_store(told, 1);
    int32_t v;
    while (sk_listen(self, -1, "i", &v) == SK_OK)
        ;
    return 0;
}

static const sk_class three_then_wait_class = {.name = "three_then_wait",
                                               .run = three_then_wait_run};

/* What the child told before it was killed is still there to read. */
static void test_messages_readable_after_kill(void **state)
{
    (void)state;
    fp *m = fp_new(&three_then_wait_class);
    _Atomic int *told = skt_shared(sizeof *told);
    m->shared = (void *)told;
    assert_rc(sk_start(&m->base), SK_OK);
    double deadline = skt_now() + 30;
    while (!atomic_load(told)) {
        assert_cmp(skt_now(), <, deadline);
        sched_yield();
    }
    assert_rc(sk_kill(&m->base), SK_OK);
    for (int32_t i = 0; i < 3; i++) {
        int32_t v = -1;
        assert_rc(sk_listen(&m->base, -1, "i", &v), SK_OK);
        assert_int_equal(v, i);
    }
    int32_t v;
    assert_rc(sk_listen(&m->base, -1, "i", &v), SK_ECLOSED);
    assert_rc(sk_tell(&m->base, "i", &v), SK_ECLOSED);
    assert_rc(sk_result(&m->base, NULL), SK_EKILLED);
}

/* ------------------------------------------------ injected frames */

/* A command loop: for "i" k it tells k messages 0..k-1. The parent injects
 * into the ring to the parent only while the child is idle here, so the
 * ring has one producer at a time. */
static int commands_run(sk_process *self)
{
    int32_t k;
    int rc;
    while ((rc = sk_listen(self, -1, "i", &k)) == SK_OK) {
        for (int32_t i = 0; i < k; i++) {
            TELL_RETRY(rc, self, "i", &i);
            if (rc != SK_OK)
                return FAIL_RC(self, rc, "commands tell");
        }
    }
    return rc == SK_ECLOSED ? 0 : FAIL_RC(self, rc, "commands listen");
}

static const sk_class commands_class = {.name = "commands", .run = commands_run};

static fp *commands_start(size_t max_message)
{
    fp *m = fp_new(&commands_class);
    m->base.config.max_message = max_message;
    assert_rc(sk_start(&m->base), SK_OK);
    return m;
}

/* The channel works: a command's answers arrive in order. */
static void assert_channel_works(fp *m, int32_t k)
{
    assert_rc(sk_tell(&m->base, "i", &k), SK_OK);
    for (int32_t i = 0; i < k; i++) {
        int32_t v = -1;
        assert_rc(sk_listen(&m->base, 30, "i", &v), SK_OK);
        assert_int_equal(v, i);
    }
    int32_t v;
    assert_rc(sk_listen(&m->base, 0, "i", &v), SK_ETIMEDOUT);
}

static void inject_to_parent(fp *m, const void *bytes, size_t len)
{
    assert_rc(sk_channel_inject(m->base.rt, true, bytes, len), SK_OK);
}

static void finish_commands(fp *m)
{
    assert_rc(sk_stop(&m->base), SK_OK);
    assert_rc(sk_wait(&m->base, 30), SK_OK);
    assert_no_error(&m->base);
}

/* Garbage headers: everything published so far is dropped. */
static void test_injected_bad_headers(void **state)
{
    (void)state;
    fp *m = commands_start(1 << 20);
    assert_channel_works(m, 3);
    unsigned char buf[256], good[64];
    size_t good_len = valid_frame(good, 7);
    int32_t v;
    uint8_t junk[16];
    memset(junk, 0xa5, sizeof junk);

    struct {
        const char *what;
        uint32_t magic, len;
    } bad[] = {
        {"bad magic", 0xdeadbeefu, 16},
        {"zero magic", 0, 16},
        {"wrap magic with bytes after it", WRAP_MAGIC, 0},
        {"length over max_message", FRAME_MAGIC, (1u << 20) + 1},
        {"length 0xffffffff", FRAME_MAGIC, 0xffffffffu},
        {"length past what was published", FRAME_MAGIC, 1000},
        {"length 0", FRAME_MAGIC, 0},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        size_t n = frame(buf, bad[k].magic, bad[k].len, junk, sizeof junk);
        /* A valid frame published right after the garbage goes with it. */
        memcpy(buf + n, good, good_len);
        inject_to_parent(m, buf, n + good_len);
        int rc = sk_listen(&m->base, 30, "i", &v);
        if (rc != SK_ECORRUPT)
            print_error("%s: got %s\n", bad[k].what, sk_strerror(rc));
        assert_rc(rc, SK_ECORRUPT);
        assert_rc(sk_listen(&m->base, 0, "i", &v), SK_ETIMEDOUT);
        /* Published later, a valid frame is received. */
        inject_to_parent(m, good, good_len);
        v = 0;
        assert_rc(sk_listen(&m->base, 30, "i", &v), SK_OK);
        assert_int_equal(v, 7);
        assert_channel_works(m, 2);
    }

    /* Fewer bytes than a header (padded to 8 by the hook: length 0). */
    uint32_t magic = FRAME_MAGIC;
    inject_to_parent(m, &magic, 4);
    sk_message *msg = NULL;
    assert_rc(sk_listen_message(&m->base, 30, &msg), SK_ECORRUPT);
    assert_null(msg);
    assert_channel_works(m, 2);
    finish_commands(m);
}

/* A valid header around a bad image: that message alone is dropped. */
static void test_injected_garbage_images(void **state)
{
    (void)state;
    fp *m = commands_start(1 << 20);
    unsigned char buf[512], good[64];
    size_t good_len = valid_frame(good, 8);
    size_t img_len;
    unsigned char *img = image_of_int(12345, &img_len);
    unsigned char body[128];

    for (int variant = 0; variant < 6; variant++) {
        size_t body_len = 0;
        const char *what = "";
        switch (variant) {
        case 0:
            what = "random bytes";
            for (size_t k = 0; k < 40; k++)
                body[k] = (unsigned char)(mix64(k) >> 7);
            body_len = 40;
            break;
        case 1:
            what = "a truncated image";
            memcpy(body, img, img_len - 1);
            body_len = img_len - 1;
            break;
        case 2:
            what = "an image with a trailing byte";
            memcpy(body, img, img_len);
            body[img_len] = 0;
            body_len = img_len + 1;
            break;
        case 3:
            what = "a broken 'tpl' magic";
            memcpy(body, img, img_len);
            body[0] = 'x';
            body_len = img_len;
            break;
        case 4:
            what = "a wrong total length inside the image";
            memcpy(body, img, img_len);
            body[4] ^= 0x10;
            body_len = img_len;
            break;
        case 5:
            what = "an unknown format character";
            memcpy(body, img, img_len);
            body[8] = 'q'; /* the format "i" follows the 8-byte preamble */
            body_len = img_len;
            break;
        }
        size_t n = frame(buf, FRAME_MAGIC, (uint32_t)body_len, body, body_len);
        memcpy(buf + n, good, good_len);
        inject_to_parent(m, buf, n + good_len);
        /* Whatever format is asked: corrupt, not a mismatch. */
        char *s = NULL;
        int rc = variant % 2 ? sk_listen(&m->base, 30, "s", &s) : sk_listen(&m->base, 30, "i", &s);
        if (rc != SK_ECORRUPT)
            print_error("%s: got %s\n", what, sk_strerror(rc));
        assert_rc(rc, SK_ECORRUPT);
        int32_t v = 0;
        assert_rc(sk_listen(&m->base, 30, "i", &v), SK_OK); /* the next frame survives */
        assert_int_equal(v, 8);
        /* The same through sk_listen_message. */
        inject_to_parent(m, buf, n + good_len);
        sk_message *msg = NULL;
        assert_rc(sk_listen_message(&m->base, 30, &msg), SK_ECORRUPT);
        assert_rc(sk_listen_message(&m->base, 30, &msg), SK_OK);
        assert_string_equal(sk_message_format(msg), "i");
        sk_message_free(msg);
        assert_channel_works(m, 2);
    }
    free(img);
    finish_commands(m);
}

/* A mismatch keeps the message; the corrupt one behind it is dropped when
 * it reaches the head. */
static void test_injected_mismatch_then_corrupt(void **state)
{
    (void)state;
    fp *m = commands_start(1 << 20);
    unsigned char buf[256];
    size_t n = valid_frame(buf, 99);
    unsigned char junk[24];
    memset(junk, 0x3c, sizeof junk);
    n += frame(buf + n, FRAME_MAGIC, sizeof junk, junk, sizeof junk);
    n += valid_frame(buf + n, 100);
    inject_to_parent(m, buf, n);
    char *s = NULL;
    int32_t v = 0;
    assert_rc(sk_listen(&m->base, 30, "s", &s), SK_EFORMAT);
    assert_rc(sk_listen(&m->base, 30, "s", &s), SK_EFORMAT);
    assert_rc(sk_listen(&m->base, 30, "i", &v), SK_OK);
    assert_int_equal(v, 99);
    assert_rc(sk_listen(&m->base, 30, "i", &v), SK_ECORRUPT);
    assert_rc(sk_listen(&m->base, 30, "i", &v), SK_OK);
    assert_int_equal(v, 100);
    assert_channel_works(m, 3);
    finish_commands(m);
}

/* An injected frame as large as max_message allows, then one byte more. */
static void test_injected_oversized(void **state)
{
    (void)state;
    size_t max = 64 << 10;
    fp *m = commands_start(max);
    unsigned char *buf = calloc(1, max + 64);
    assert_non_null(buf);
    /* A header that claims max_message + 1 bytes, and has them. */
    uint32_t magic = FRAME_MAGIC, len = (uint32_t)max + 1;
    memcpy(buf, &magic, 4);
    memcpy(buf + 4, &len, 4);
    inject_to_parent(m, buf, 8 + max + 1);
    int32_t v;
    assert_rc(sk_listen(&m->base, 30, "i", &v), SK_ECORRUPT);
    assert_rc(sk_listen(&m->base, 0, "i", &v), SK_ETIMEDOUT);
    /* Exactly max_message bytes of zeros: a well-framed garbage image. */
    len = (uint32_t)max;
    memcpy(buf + 4, &len, 4);
    inject_to_parent(m, buf, 8 + max);
    assert_rc(sk_listen(&m->base, 30, "i", &v), SK_ECORRUPT);
    assert_channel_works(m, 2);
    free(buf);
    finish_commands(m);
}

/* A wrap marker with too few bytes behind it to reach the ring's end. */
static void test_injected_short_wrap(void **state)
{
    (void)state;
    fp *m = commands_start(1 << 20);
    unsigned char buf[16];
    size_t n = frame(buf, WRAP_MAGIC, 0, NULL, 0);
    inject_to_parent(m, buf, n);
    int32_t v;
    assert_rc(sk_listen(&m->base, 30, "i", &v), SK_ECORRUPT);
    assert_channel_works(m, 2);
    finish_commands(m);
}

/* The other ring: garbage the child meets, then valid messages. */
static int victim_run(sk_process *self)
{
    fp *m = FP(self);
    int32_t v = 0;
    /* 1: a valid header around garbage, with a valid "i" 5 behind it. */
    m->r[0] = sk_listen(self, 30, "i", &v);
    m->r[1] = sk_listen(self, 30, "i", &v);
    m->r[2] = v;
    /* 2: a bad header alone; then the parent sends "i" 6 once told. */
    m->r[3] = sk_listen(self, 30, "i", &v);
    int32_t ack = 1;
    int rc = sk_tell(self, "i", &ack);
    if (rc != SK_OK)
        return FAIL_RC(self, rc, "victim tell");
    m->r[4] = sk_listen(self, 30, "i", &v);
    m->r[5] = v;
    return 0;
}

static const sk_class victim_class = {.name = "victim", .run = victim_run, .result = fp_result};

static void test_injected_to_worker(void **state)
{
    (void)state;
    fp *m = fp_new(&victim_class);
    m->base.config.runs = 1;
    assert_rc(sk_start(&m->base), SK_OK);
    /* The parent is the ring's producer: injecting and telling from the
     * same thread keeps one producer. */
    unsigned char buf[64];
    unsigned char junk[16];
    memset(junk, 0xee, sizeof junk);
    size_t n = frame(buf, FRAME_MAGIC, sizeof junk, junk, sizeof junk);
    assert_rc(sk_channel_inject(m->base.rt, false, buf, n), SK_OK);
    int32_t v = 5;
    assert_rc(sk_tell(&m->base, "i", &v), SK_OK);
    n = frame(buf, 0x12345678u, 8, junk, 8);
    assert_rc(sk_channel_inject(m->base.rt, false, buf, n), SK_OK);
    int32_t ack = 0;
    assert_rc(sk_listen(&m->base, 30, "i", &ack), SK_OK);
    v = 6;
    assert_rc(sk_tell(&m->base, "i", &v), SK_OK);
    assert_rc(sk_wait(&m->base, 30), SK_OK);
    assert_no_error(&m->base);
    int64_t r[NR];
    assert_rc(sk_result(&m->base, "I#", r, NR), SK_OK);
    assert_rc((int)r[0], SK_ECORRUPT);
    assert_rc((int)r[1], SK_OK);
    assert_int_equal(r[2], 5);
    assert_rc((int)r[3], SK_ECORRUPT);
    assert_rc((int)r[4], SK_OK);
    assert_int_equal(r[5], 6);
}

/* The hook refuses what does not fit and says so. */
static void test_inject_hook_limits(void **state)
{
    (void)state;
    fp *m = commands_start(4096);
    size_t huge = (size_t)64 << 20;
    unsigned char *buf = calloc(1, huge);
    assert_non_null(buf);
    assert_rc(sk_channel_inject(m->base.rt, true, buf, huge), SK_EFULL);
    free(buf);
    assert_channel_works(m, 2);
    finish_commands(m);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_child_dies_after_telling),
        SKT_TEST(test_child_dies_then_parent_reads),
        SKT_TEST(test_kill_worker_copying_64mib),
        SKT_TEST(test_kill_worker_copying_64mib_then_restart),
        SKT_TEST(test_supervisor_killed_while_listening),
        SKT_TEST(test_messages_readable_after_kill),
        SKT_TEST(test_injected_bad_headers),
        SKT_TEST(test_injected_garbage_images),
        SKT_TEST(test_injected_mismatch_then_corrupt),
        SKT_TEST(test_injected_oversized),
        SKT_TEST(test_injected_short_wrap),
        SKT_TEST(test_injected_to_worker),
        SKT_TEST(test_inject_hook_limits),
    };
    return skt_run(argc, argv, tests);
}
