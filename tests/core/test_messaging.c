/* SPDX-License-Identifier: MIT */
/*
 * Messaging behaviour (issue 3): round trips started from either side,
 * 100,000 messages each way with sequence numbers and checksums, 64 MiB
 * messages both ways, SK_EFULL and what happens after it, format mismatch
 * and recovery, listen timeouts, listening after the child exited, calls in
 * the wrong state, bad arguments, sk_fd in a poll loop, a command loop ended
 * by sk_stop, messages surviving a worker restart, and no fd leak.
 *
 * Types are covered by test_messaging_types.c, crashes and corrupt frames by
 * test_messaging_faults.c, random corruption by test_messaging_fuzz.c.
 *
 * Senders retry SK_EFULL with sched_yield (tell never blocks); the waiting
 * side waits on a message, a pipe byte or the process's end, never on a
 * sleep. The harness watchdog (support.h) turns a hang into a failure naming the test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "messaging_support.h"

#include <fcntl.h>
#include <sched.h>
#include <stdatomic.h>
#include <tpl.h>

/* ------------------------------------------------------------- helpers */

/* An order-sensitive running checksum. */
static uint64_t checksum_step(uint64_t sum, uint64_t value)
{
    return mix64(sum ^ value) + 1;
}

/* A string of 0..63 letters determined by seq. */
static void seq_text(uint64_t seq, char *buf)
{
    size_t n = (size_t)(mix64(seq) % 64);
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)('a' + (seq + i) % 26);
    buf[n] = '\0';
}

/* -------------------------------------------------- the test process */

/* One struct serves every test: inputs set by the parent before sk_start
 * (the worker is a fork and sees them), and findings the worker publishes
 * through the result hook as "I#" of 8. */
#define NR 8

typedef struct {
    sk_process base;
    long n;        /* how many messages */
    size_t size;   /* bytes per message */
    int in_fd;     /* the worker reads go-signals here */
    int out_fd;    /* the worker writes signals here */
    void *shared;  /* memory shared across forks (skt_shared) */
    int64_t r[NR]; /* the worker's findings */
} mp;

#define MP(p) SK_CONTAINER_OF(p, mp, base)

static int mp_result(sk_process *self)
{
    return sk_return(self, "I#", MP(self)->r, NR);
}

static mp *mp_new(const sk_class *cls)
{
    mp *m = skt_new(mp);
    assert_rc(sk_init(&m->base, cls), SK_OK);
    m->in_fd = m->out_fd = -1;
    return m;
}

/* Waits for the process, checks it succeeded and reads its findings. */
static void mp_finish(mp *m, int64_t r[NR])
{
    assert_rc(sk_wait(&m->base, 60), SK_OK);
    assert_no_error(&m->base);
    assert_rc(sk_result(&m->base, "I#", r, NR), SK_OK);
}

static void make_pipe(int fds[2])
{
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
}

/* ------------------------------------------------------ round trips */

/* Each run: listen for (n, s), answer (n + 1, s in upper case). */
static int pong_run(sk_process *self)
{
    int32_t n;
    char *s = NULL;
    int rc = sk_listen(self, 30, "is", &n, &s);
    if (rc != SK_OK)
        return FAIL_RC(self, rc, "pong listen");
    for (char *c = s; c != NULL && *c; c++)
        if (*c >= 'a' && *c <= 'z')
            *c = (char)(*c - 'a' + 'A');
    int32_t reply = n + 1;
    rc = sk_tell(self, "is", &reply, &s);
    free(s);
    if (rc != SK_OK)
        return FAIL_RC(self, rc, "pong tell");
    MP(self)->r[0]++;
    return 0;
}

static const sk_class pong_class = {.name = "pong", .run = pong_run, .result = mp_result};

static void test_round_trip_parent_first(void **state)
{
    (void)state;
    mp *m = mp_new(&pong_class);
    m->base.config.runs = 5;
    assert_rc(sk_start(&m->base), SK_OK);
    for (int32_t i = 0; i < 5; i++) {
        char text[32];
        snprintf(text, sizeof text, "hello %d", (int)i);
        char *s = text;
        int32_t n = i * 10;
        assert_rc(sk_tell(&m->base, "is", &n, &s), SK_OK);
        int32_t back = -1;
        char *reply = NULL;
        assert_rc(sk_listen(&m->base, 30, "is", &back, &reply), SK_OK);
        assert_int_equal(back, i * 10 + 1);
        char want[32];
        snprintf(want, sizeof want, "HELLO %d", (int)i);
        assert_string_equal(reply, want);
        free(reply);
    }
    int64_t r[NR];
    mp_finish(m, r);
    assert_int_equal(r[0], 5);
}

/* The child speaks first: its pid, then it waits for the parent's answer and
 * reports it back. */
static int hello_run(sk_process *self)
{
    int64_t pid = getpid();
    char *greeting = "hello from the child";
    int rc = sk_tell(self, "Is", &pid, &greeting);
    if (rc != SK_OK)
        return FAIL_RC(self, rc, "hello tell");
    double answer = 0;
    rc = sk_listen(self, 30, "f", &answer);
    if (rc != SK_OK)
        return FAIL_RC(self, rc, "hello listen");
    answer *= 2;
    rc = sk_tell(self, "f", &answer);
    if (rc != SK_OK)
        return FAIL_RC(self, rc, "hello tell 2");
    return 0;
}

static const sk_class hello_class = {.name = "hello", .run = hello_run, .result = mp_result};

static void test_round_trip_child_first(void **state)
{
    (void)state;
    mp *m = mp_new(&hello_class);
    m->base.config.runs = 1;
    assert_rc(sk_start(&m->base), SK_OK);
    int64_t pid = 0;
    char *greeting = NULL;
    assert_rc(sk_listen(&m->base, -1, "Is", &pid, &greeting), SK_OK);
    assert_string_equal(greeting, "hello from the child");
    free(greeting);
    assert_cmp(pid, >, 0);
    assert_cmp(pid, !=, getpid());
    double answer = 21.25;
    assert_rc(sk_tell(&m->base, "f", &answer), SK_OK);
    double doubled = 0;
    assert_rc(sk_listen(&m->base, -1, "f", &doubled), SK_OK);
    assert_cmp(doubled, ==, 42.5);
    int64_t r[NR];
    mp_finish(m, r);
    /* Nothing else was sent. */
    assert_rc(sk_listen(&m->base, 0, "f", &doubled), SK_ECLOSED);
}

/* Once the worker has said something, sk_pid names it. The supervisor
 * stores the worker's pid only after fork() returns in the supervisor, so a
 * worker that speaks first can be heard while sk_pid still says -1. */
static int pid_run(sk_process *self)
{
    int64_t pid = getpid();
    int rc = sk_tell(self, "I", &pid);
    if (rc != SK_OK)
        return FAIL_RC(self, rc, "pid tell");
    int32_t done;
    rc = sk_listen(self, 30, "i", &done);
    return rc == SK_OK ? 0 : FAIL_RC(self, rc, "pid listen");
}

static const sk_class pid_class = {.name = "pid", .run = pid_run, .result = mp_result};

static void test_sk_pid_known_when_child_speaks(void **state)
{
    (void)state;
    int wrong = 0, tries = 50;
    for (int k = 0; k < tries; k++) {
        mp *m = mp_new(&pid_class);
        m->base.config.runs = 1;
        assert_rc(sk_start(&m->base), SK_OK);
        int64_t pid = 0;
        assert_rc(sk_listen(&m->base, 30, "I", &pid), SK_OK);
        pid_t seen = sk_pid(&m->base);
        if (seen != (pid_t)pid)
            wrong++;
        int32_t done = 1;
        assert_rc(sk_tell(&m->base, "i", &done), SK_OK);
        int64_t r[NR];
        mp_finish(m, r);
    }
    if (wrong)
        print_error("sk_pid was not the speaking worker's pid in %d of %d processes\n", wrong,
                    tries);
    assert_int_equal(wrong, 0);
}

/* ------------------------------------------------ 100,000 messages */

#define STREAM_N 100000

/* Echo: every (seq, value) comes back as (seq, ~value), in order. */
static int echo_run(sk_process *self)
{
    mp *m = MP(self);
    uint64_t sum = 0;
    for (long i = 0; i < m->n; i++) {
        uint64_t seq = 0, value = 0;
        int rc = sk_listen(self, 30, "UU", &seq, &value);
        if (rc != SK_OK)
            return FAIL_RC(self, rc, "echo listen");
        if (seq != (uint64_t)i || value != mix64(seq))
            return sk_fail(self, -1, "echo got seq %llu (value ok: %d), want %ld",
                           (unsigned long long)seq, value == mix64(seq), i);
        sum = checksum_step(sum, value);
        uint64_t back = ~value;
        TELL_RETRY(rc, self, "UU", &seq, &back);
        if (rc != SK_OK)
            return FAIL_RC(self, rc, "echo tell");
    }
    m->r[0] = m->n;
    m->r[1] = (int64_t)sum;
    return 0;
}

static const sk_class echo_class = {.name = "echo", .run = echo_run, .result = mp_result};

/* One thread drives both directions: it sends while the channel takes
 * messages, and when tell says SK_EFULL it waits for an echo (one is due,
 * since the child has unread messages) and drains what else arrived. */
static void test_echo_100k_each_way(void **state)
{
    (void)state;
    mp *m = mp_new(&echo_class);
    m->base.config.runs = 1;
    m->base.config.capacity = 16 << 10; /* small: both sides meet SK_EFULL */
    m->n = STREAM_N;
    assert_rc(sk_start(&m->base), SK_OK);
    uint64_t sent = 0, got = 0, sent_sum = 0, got_sum = 0;
    long fulls = 0;
    double start = skt_now();
    while (got < STREAM_N) {
        if (sent < STREAM_N) {
            uint64_t value = mix64(sent);
            int rc = sk_tell(&m->base, "UU", &sent, &value);
            if (rc == SK_OK) {
                sent_sum = checksum_step(sent_sum, value);
                sent++;
                continue;
            }
            assert_rc(rc, SK_EFULL);
            fulls++;
        }
        double timeout = 30;
        while (got < STREAM_N) {
            uint64_t seq = 0, value = 0;
            int rc = sk_listen(&m->base, timeout, "UU", &seq, &value);
            if (rc == SK_ETIMEDOUT && timeout == 0)
                break;
            assert_rc(rc, SK_OK);
            assert_int_equal(seq, got);
            assert_cmp(value, ==, ~mix64(seq));
            got_sum = checksum_step(got_sum, ~value);
            got++;
            timeout = 0; /* drain what is there, then send again */
        }
    }
    int64_t r[NR];
    mp_finish(m, r);
    assert_int_equal(r[0], STREAM_N);
    assert_cmp((uint64_t)r[1], ==, sent_sum);
    assert_cmp(got_sum, ==, sent_sum);
    print_message("echo: %d messages each way in %.2f s, %ld SK_EFULL\n", STREAM_N,
                  skt_now() - start, fulls);
}

/* The child floods (seq, text) while the parent reads at the same time. */
static int flood_run(sk_process *self)
{
    mp *m = MP(self);
    uint64_t sum = 0;
    long fulls = 0;
    for (uint64_t seq = 0; seq < (uint64_t)m->n; seq++) {
        char text[64];
        seq_text(seq, text);
        char *s = text;
        int rc;
        while ((rc = sk_tell(self, "Us", &seq, &s)) == SK_EFULL) {
            fulls++;
            sched_yield();
        }
        if (rc != SK_OK)
            return FAIL_RC(self, rc, "flood tell");
        sum = checksum_step(sum, mix64(seq) ^ strlen(text));
    }
    m->r[0] = m->n;
    m->r[1] = (int64_t)sum;
    m->r[2] = fulls;
    return 0;
}

static const sk_class flood_class = {.name = "flood", .run = flood_run, .result = mp_result};

static void test_flood_child_to_parent_100k(void **state)
{
    (void)state;
    mp *m = mp_new(&flood_class);
    m->base.config.runs = 1;
    m->base.config.capacity = 16 << 10; /* small: the sender meets SK_EFULL */
    m->n = STREAM_N;
    assert_rc(sk_start(&m->base), SK_OK);
    uint64_t sum = 0;
    for (uint64_t want = 0; want < STREAM_N; want++) {
        uint64_t seq = 0;
        char *s = NULL;
        assert_rc(sk_listen(&m->base, 30, "Us", &seq, &s), SK_OK);
        assert_int_equal(seq, want);
        char text[64];
        seq_text(seq, text);
        assert_string_equal(s, text);
        sum = checksum_step(sum, mix64(seq) ^ strlen(s));
        free(s);
    }
    /* The child ends after its last message: the channel says so. */
    uint64_t seq;
    char *s = NULL;
    assert_rc(sk_listen(&m->base, 30, "Us", &seq, &s), SK_ECLOSED);
    int64_t r[NR];
    mp_finish(m, r);
    assert_int_equal(r[0], STREAM_N);
    assert_cmp((uint64_t)r[1], ==, sum);
    print_message("flood to parent: %ld SK_EFULL in the child\n", (long)r[2]);
}

/* The parent floods; the child checks order and content as it reads. */
static int drain_run(sk_process *self)
{
    mp *m = MP(self);
    uint64_t sum = 0;
    for (uint64_t want = 0; want < (uint64_t)m->n; want++) {
        uint64_t seq = 0;
        char *s = NULL;
        int rc = sk_listen(self, 30, "Us", &seq, &s);
        if (rc != SK_OK)
            return FAIL_RC(self, rc, "drain listen");
        char text[64];
        seq_text(seq, text);
        bool ok = seq == want && s != NULL && strcmp(s, text) == 0;
        sum = checksum_step(sum, mix64(seq) ^ (s ? strlen(s) : 0));
        free(s);
        if (!ok)
            return sk_fail(self, -1, "drain: got seq %llu, want %llu", (unsigned long long)seq,
                           (unsigned long long)want);
    }
    m->r[0] = m->n;
    m->r[1] = (int64_t)sum;
    return 0;
}

static const sk_class drain_class = {.name = "drain", .run = drain_run, .result = mp_result};

static void test_flood_parent_to_child_100k(void **state)
{
    (void)state;
    mp *m = mp_new(&drain_class);
    m->base.config.runs = 1;
    m->base.config.capacity = 16 << 10; /* small: the sender meets SK_EFULL */
    m->n = STREAM_N;
    assert_rc(sk_start(&m->base), SK_OK);
    uint64_t sum = 0;
    long fulls = 0;
    for (uint64_t seq = 0; seq < STREAM_N; seq++) {
        char text[64];
        seq_text(seq, text);
        char *s = text;
        int rc;
        while ((rc = sk_tell(&m->base, "Us", &seq, &s)) == SK_EFULL) {
            fulls++;
            sched_yield();
        }
        assert_rc(rc, SK_OK);
        sum = checksum_step(sum, mix64(seq) ^ strlen(text));
    }
    int64_t r[NR];
    mp_finish(m, r);
    assert_int_equal(r[0], STREAM_N);
    assert_cmp((uint64_t)r[1], ==, sum);
    print_message("flood to child: %ld SK_EFULL in the parent\n", fulls);
}

/* A stream through a full ring whose max_message is small next to its
 * capacity: the consumer gives consumed pages back to the kernel in 1 MiB
 * grains while the producer keeps up to `capacity` bytes in flight. Every
 * message must arrive intact. */
static int chunks_run(sk_process *self)
{
    mp *m = MP(self);
    unsigned char *buf = malloc(m->size);
    if (buf == NULL)
        return sk_fail(self, SK_ENOMEM, "chunks: malloc");
    for (uint64_t seq = 0; seq < (uint64_t)m->n; seq++) {
        pattern_fill(buf, m->size, seq << 32);
        tpl_bin bin = {.addr = buf, .sz = (uint32_t)m->size};
        int rc;
        TELL_RETRY(rc, self, "UB", &seq, &bin);
        if (rc != SK_OK) {
            free(buf);
            return FAIL_RC(self, rc, "chunks tell");
        }
    }
    free(buf);
    m->r[0] = m->n;
    return 0;
}

static const sk_class chunks_class = {.name = "chunks", .run = chunks_run, .result = mp_result};

static void test_stream_small_max_message(void **state)
{
    (void)state;
    mp *m = mp_new(&chunks_class);
    m->base.config.runs = 1;
    m->base.config.capacity = 1 << 20;
    m->base.config.max_message = 64 << 10;
    m->size = 4000;
    m->n = 16384; /* 64 MiB through a ring of about 1.1 MiB */
    assert_rc(sk_start(&m->base), SK_OK);
    for (uint64_t want = 0; want < (uint64_t)m->n; want++) {
        uint64_t seq = 0;
        tpl_bin bin = {0};
        int rc = sk_listen(&m->base, 30, "UB", &seq, &bin);
        if (rc != SK_OK)
            print_error("message %llu of %ld: %s\n", (unsigned long long)want, m->n,
                        sk_strerror(rc));
        assert_rc(rc, SK_OK);
        assert_int_equal(seq, want);
        assert_int_equal(bin.sz, m->size);
        size_t bad = pattern_check(bin.addr, bin.sz, seq << 32);
        if (bad != bin.sz) {
            size_t zeros = 0;
            while (bad + zeros < bin.sz && ((unsigned char *)bin.addr)[bad + zeros] == 0)
                zeros++;
            print_error("message %llu differs from byte %zu on: %zu zero bytes there\n",
                        (unsigned long long)seq, bad, zeros);
        }
        assert_int_equal(bad, bin.sz);
        free(bin.addr);
    }
    int64_t r[NR];
    mp_finish(m, r);
    assert_int_equal(r[0], m->n);
}

/* ------------------------------------------------------ 64 MiB */

#define BIG ((size_t)64 << 20)

/* Receives a 64 MiB 'B', checks it, answers with a 64 MiB 'c#'. */
static int big_run(sk_process *self)
{
    tpl_bin bin = {0};
    int rc = sk_listen(self, 60, "B", &bin);
    if (rc != SK_OK)
        return FAIL_RC(self, rc, "big listen");
    size_t bad = pattern_check(bin.addr, bin.sz, 1);
    size_t sz = bin.sz;
    free(bin.addr);
    if (sz != BIG || bad != BIG)
        return sk_fail(self, -1, "big: got %zu bytes, first difference at %zu", sz, bad);
    unsigned char *buf = malloc(BIG);
    if (buf == NULL)
        return sk_fail(self, SK_ENOMEM, "big: malloc");
    pattern_fill(buf, BIG, 2);
    rc = sk_tell(self, "c#", buf, (int)BIG);
    free(buf);
    if (rc != SK_OK)
        return FAIL_RC(self, rc, "big tell");
    return 0;
}

static const sk_class big_class = {.name = "big", .run = big_run, .result = mp_result};

static void test_64mib_both_ways(void **state)
{
    (void)state;
    mp *m = mp_new(&big_class);
    m->base.config.runs = 1;
    /* The image is the 64 MiB payload plus tpl's header. */
    m->base.config.max_message = BIG + 4096;
    assert_rc(sk_start(&m->base), SK_OK);
    unsigned char *buf = malloc(BIG);
    assert_non_null(buf);
    pattern_fill(buf, BIG, 1);
    tpl_bin bin = {.addr = buf, .sz = (uint32_t)BIG};
    double t0 = skt_now();
    /* The channel is empty, so it takes one message of any size up to
     * max_message, whatever the capacity (1 MiB here). */
    assert_rc(sk_tell(&m->base, "B", &bin), SK_OK);
    memset(buf, 0, BIG);
    assert_rc(sk_listen(&m->base, 60, "c#", buf, (int)BIG), SK_OK);
    assert_int_equal(pattern_check(buf, BIG, 2), BIG);
    free(buf);
    int64_t r[NR];
    mp_finish(m, r);
    print_message("64 MiB there and back in %.2f s\n", skt_now() - t0);
}

/* Back-to-back 64 MiB messages: the sender retries SK_EFULL and starts
 * the next copy the moment the reader has consumed the previous one; the
 * reader gives the pages of a consumed huge frame back to the kernel at
 * the same time. Every message must arrive intact. The sender makes the
 * image once and stamps each copy with its sequence number. */
#define BACK_TO_BACK 12

static void *big_image(size_t *len, unsigned char **payload)
{
    unsigned char *buf = malloc(BIG);
    if (buf == NULL)
        return NULL;
    pattern_fill(buf, BIG, 3);
    tpl_bin bin = {.addr = buf, .sz = (uint32_t)BIG};
    tpl_node *tn = tpl_map("B", &bin);
    void *img = NULL;
    if (tn == NULL || tpl_pack(tn, 0) != 0 || tpl_dump(tn, TPL_MEM, &img, len) != 0)
        img = NULL;
    tpl_free(tn);
    free(buf);
    if (img != NULL)
        *payload = (unsigned char *)img + *len - BIG; /* B's bytes end the image */
    return img;
}

/* The first and last 8 bytes carry the sequence number. */
static void big_stamp(unsigned char *payload, uint64_t seq)
{
    memcpy(payload, &seq, 8);
    memcpy(payload + BIG - 8, &seq, 8);
}

/* The byte offset of the first damage in message seq, or BIG. */
static size_t big_verify(const unsigned char *payload, uint64_t seq)
{
    uint64_t head, tail;
    memcpy(&head, payload, 8);
    memcpy(&tail, payload + BIG - 8, 8);
    if (head != seq)
        return 0;
    size_t bad = pattern_check(payload + 8, BIG - 16, 3 + 8);
    if (bad != BIG - 16)
        return 8 + bad;
    return tail == seq ? BIG : BIG - 8;
}

static int big_burst_run(sk_process *self)
{
    size_t len;
    unsigned char *payload;
    void *img = big_image(&len, &payload);
    if (img == NULL)
        return sk_fail(self, SK_ENOMEM, "big burst: image");
    for (uint64_t seq = 0; seq < BACK_TO_BACK; seq++) {
        big_stamp(payload, seq);
        int rc;
        while ((rc = sk_tell_image(self, img, len)) == SK_EFULL)
            sched_yield();
        if (rc != SK_OK) {
            free(img);
            return FAIL_RC(self, rc, "big burst tell");
        }
    }
    free(img);
    return 0;
}

static const sk_class big_burst_class = {
    .name = "big_burst", .run = big_burst_run, .result = mp_result};

static void test_64mib_back_to_back_to_parent(void **state)
{
    (void)state;
    skt_bound(200); /* about ten times what it takes on an idle machine */
    mp *m = mp_new(&big_burst_class);
    m->base.config.runs = 1;
    m->base.config.max_message = BIG + 4096;
    assert_rc(sk_start(&m->base), SK_OK);
    int damaged = 0;
    for (uint64_t seq = 0; seq < BACK_TO_BACK; seq++) {
        tpl_bin bin = {0};
        assert_rc(sk_listen(&m->base, 60, "B", &bin), SK_OK);
        assert_int_equal(bin.sz, BIG);
        size_t bad = big_verify(bin.addr, seq);
        if (bad != BIG) {
            size_t zeros = 0;
            while (bad + zeros < BIG && ((unsigned char *)bin.addr)[bad + zeros] == 0)
                zeros++;
            print_error("message %llu damaged from byte %zu: %zu zero bytes there\n",
                        (unsigned long long)seq, bad, zeros);
            damaged++;
        }
        free(bin.addr);
    }
    int64_t r[NR];
    mp_finish(m, r);
    assert_int_equal(damaged, 0);
}

static int big_burst_reader_run(sk_process *self)
{
    mp *m = MP(self);
    for (uint64_t seq = 0; seq < BACK_TO_BACK; seq++) {
        tpl_bin bin = {0};
        int rc = sk_listen(self, 60, "B", &bin);
        if (rc != SK_OK)
            return FAIL_RC(self, rc, "big burst listen");
        size_t bad = bin.sz == BIG ? big_verify(bin.addr, seq) : 0;
        free(bin.addr);
        if (bad != BIG && m->r[0]++ == 0)
            m->r[1] = (int64_t)(seq << 32 | bad);
    }
    return 0;
}

static const sk_class big_burst_reader_class = {
    .name = "big_burst_reader", .run = big_burst_reader_run, .result = mp_result};

static void test_64mib_back_to_back_to_child(void **state)
{
    (void)state;
    skt_bound(200); /* about ten times what it takes on an idle machine */
    mp *m = mp_new(&big_burst_reader_class);
    m->base.config.runs = 1;
    m->base.config.max_message = BIG + 4096;
    assert_rc(sk_start(&m->base), SK_OK);
    size_t len;
    unsigned char *payload;
    void *img = big_image(&len, &payload);
    assert_non_null(img);
    for (uint64_t seq = 0; seq < BACK_TO_BACK; seq++) {
        big_stamp(payload, seq);
        int rc;
        while ((rc = sk_tell_image(&m->base, img, len)) == SK_EFULL)
            sched_yield();
        assert_rc(rc, SK_OK);
    }
    free(img);
    int64_t r[NR];
    mp_finish(m, r);
    if (r[0] != 0)
        print_error("%lld damaged messages; the first: message %lld from byte %lld\n",
                    (long long)r[0], (long long)(r[1] >> 32), (long long)(r[1] & 0xffffffff));
    assert_int_equal(r[0], 0);
}

/* With the default max_message (64 MiB), a 64 MiB payload is too large:
 * the image has tpl's header on top. Nothing is queued. */
static void test_64mib_over_default_max(void **state)
{
    (void)state;
    mp *m = mp_new(&pong_class);
    m->base.config.runs = 1;
    assert_rc(sk_start(&m->base), SK_OK);
    unsigned char *buf = calloc(1, BIG);
    assert_non_null(buf);
    tpl_bin bin = {.addr = buf, .sz = (uint32_t)BIG};
    assert_rc(sk_tell(&m->base, "B", &bin), SK_EINVAL);
    free(buf);
    /* The channel is still empty and works. */
    int32_t n = 1;
    char *s = "x";
    assert_rc(sk_tell(&m->base, "is", &n, &s), SK_OK);
    char *reply = NULL;
    assert_rc(sk_listen(&m->base, 30, "is", &n, &reply), SK_OK);
    assert_int_equal(n, 2);
    assert_string_equal(reply, "X");
    free(reply);
    int64_t r[NR];
    mp_finish(m, r);
}

/* ------------------------------------------------------- SK_EFULL */

#define SENTINEL UINT64_MAX

/* Reads nothing until the parent writes a byte to in_fd, then reads every
 * (seq, text) up to the sentinel and reports how many, checking order. */
static int late_reader_run(sk_process *self)
{
    mp *m = MP(self);
    if (skt_read_byte(m->in_fd, 60) != 'g')
        return sk_fail(self, -1, "late reader: no go signal");
    int64_t count = 0;
    for (;;) {
        uint64_t seq = 0;
        char *s = NULL;
        int rc = sk_listen(self, 30, "Us", &seq, &s);
        if (rc != SK_OK)
            return FAIL_RC(self, rc, "late reader listen");
        free(s);
        if (seq == SENTINEL)
            break;
        if (seq != (uint64_t)count)
            return sk_fail(self, -1, "late reader: got seq %llu, want %lld",
                           (unsigned long long)seq, (long long)count);
        count++;
    }
    m->r[0] = count;
    return 0;
}

static const sk_class late_reader_class = {
    .name = "late_reader", .run = late_reader_run, .result = mp_result};

static void test_efull_when_child_never_reads(void **state)
{
    (void)state;
    int go[2];
    make_pipe(go);
    mp *m = mp_new(&late_reader_class);
    m->base.config.runs = 1;
    m->base.config.capacity = 4096;
    m->in_fd = go[0];
    assert_rc(sk_start(&m->base), SK_OK);
    char text[] = "forty bytes of text to make frames fatter";
    char *s = text;
    uint64_t seq = 0;
    int rc;
    while ((rc = sk_tell(&m->base, "Us", &seq, &s)) == SK_OK)
        seq++;
    assert_rc(rc, SK_EFULL);
    uint64_t queued = seq;
    /* Each frame is more than 50 bytes: a 4096-byte capacity holds fewer
     * than 82 of them, and surely more than one. */
    assert_cmp(queued, >, 1);
    assert_cmp(queued, <, 82);
    /* SK_EFULL queues nothing, however often it is said. */
    for (int i = 0; i < 100; i++) {
        uint64_t bogus = 1000000 + (uint64_t)i;
        assert_rc(sk_tell(&m->base, "Us", &bogus, &s), SK_EFULL);
    }
    skt_write_byte(go[1], 'g');
    /* tell works again once the child reads. */
    uint64_t sentinel = SENTINEL;
    TELL_RETRY(rc, &m->base, "Us", &sentinel, &s);
    assert_rc(rc, SK_OK);
    int64_t r[NR];
    mp_finish(m, r);
    assert_int_equal(r[0], (int64_t)queued);
    close(go[0]);
    close(go[1]);
}

/* An empty channel takes one message larger than the capacity; after it,
 * nothing more until it was read. */
static void test_efull_empty_channel_takes_one_big(void **state)
{
    (void)state;
    int go[2];
    make_pipe(go);
    mp *m = mp_new(&late_reader_class);
    m->base.config.runs = 1;
    m->base.config.capacity = 4096;
    m->in_fd = go[0];
    assert_rc(sk_start(&m->base), SK_OK);
    char *big = malloc(100000);
    assert_non_null(big);
    memset(big, 'x', 99999);
    big[99999] = '\0';
    uint64_t seq = 0;
    assert_rc(sk_tell(&m->base, "Us", &seq, &big), SK_OK);
    seq = 1;
    char *small = "s";
    assert_rc(sk_tell(&m->base, "Us", &seq, &small), SK_EFULL);
    skt_write_byte(go[1], 'g');
    int rc;
    TELL_RETRY(rc, &m->base, "Us", &seq, &small);
    assert_rc(rc, SK_OK);
    seq = SENTINEL;
    TELL_RETRY(rc, &m->base, "Us", &seq, &small);
    assert_rc(rc, SK_OK);
    free(big);
    int64_t r[NR];
    mp_finish(m, r);
    assert_int_equal(r[0], 2);
    close(go[0]);
    close(go[1]);
}

/* The other way: the child fills the channel while the parent does not
 * read, signals the parent, and after the parent read everything tells once
 * more (an empty channel: it must take it at once). */
static int filler_run(sk_process *self)
{
    mp *m = MP(self);
    char text[] = "forty bytes of text to make frames fatter";
    char *s = text;
    uint64_t seq = 0;
    int rc;
    while ((rc = sk_tell(self, "Us", &seq, &s)) == SK_OK)
        seq++;
    m->r[0] = (int64_t)seq;
    m->r[1] = rc;
    for (int i = 0; i < 100; i++) {
        uint64_t bogus = 1000000 + (uint64_t)i;
        if (sk_tell(self, "Us", &bogus, &s) != SK_EFULL)
            m->r[2]++;
    }
    skt_write_byte(m->out_fd, 'f');
    if (skt_read_byte(m->in_fd, 60) != 'd')
        return sk_fail(self, -1, "filler: no drained signal");
    seq = SENTINEL;
    m->r[3] = sk_tell(self, "Us", &seq, &s);
    return 0;
}

static const sk_class filler_class = {.name = "filler", .run = filler_run, .result = mp_result};

static void test_efull_when_parent_never_reads(void **state)
{
    (void)state;
    int go[2], back[2];
    make_pipe(go);
    make_pipe(back);
    mp *m = mp_new(&filler_class);
    m->base.config.runs = 1;
    m->base.config.capacity = 4096;
    m->in_fd = go[0];
    m->out_fd = back[1];
    assert_rc(sk_start(&m->base), SK_OK);
    assert_int_equal(skt_read_byte(back[0], 60), 'f');
    uint64_t count = 0;
    for (;;) {
        uint64_t seq = 0;
        char *s = NULL;
        int rc = sk_listen(&m->base, 0, "Us", &seq, &s);
        if (rc == SK_ETIMEDOUT)
            break;
        assert_rc(rc, SK_OK);
        assert_int_equal(seq, count);
        free(s);
        count++;
    }
    skt_write_byte(go[1], 'd');
    uint64_t seq = 0;
    char *s = NULL;
    assert_rc(sk_listen(&m->base, 30, "Us", &seq, &s), SK_OK);
    assert_cmp(seq, ==, SENTINEL);
    free(s);
    int64_t r[NR];
    mp_finish(m, r);
    assert_int_equal(r[0], (int64_t)count);
    assert_cmp(count, >, 1);
    assert_cmp(count, <, 82);
    assert_rc((int)r[1], SK_EFULL);
    assert_int_equal(r[2], 0);   /* every further tell said SK_EFULL */
    assert_rc((int)r[3], SK_OK); /* the emptied channel took the next one */
    assert_rc(sk_listen(&m->base, 0, "Us", &seq, &s), SK_ECLOSED);
    close(go[0]);
    close(go[1]);
    close(back[0]);
    close(back[1]);
}

/* ------------------------------------------------- format mismatch */

/* The child tells three messages, then listens to one "I" the parent sends,
 * trying wrong formats first. */
static int mismatch_run(sk_process *self)
{
    mp *m = MP(self);
    int32_t i = 42;
    char *s = "hello";
    int32_t arr[4] = {1, 2, 3, 4};
    int rc = sk_tell(self, "i", &i);
    if (rc == SK_OK)
        rc = sk_tell(self, "s", &s);
    if (rc == SK_OK)
        rc = sk_tell(self, "i#", arr, 4);
    if (rc != SK_OK)
        return FAIL_RC(self, rc, "mismatch tell");
    int32_t small = -7;
    char *str = NULL;
    m->r[0] = sk_listen(self, 30, "i", &small);
    m->r[1] = sk_listen(self, 30, "s", &str);
    m->r[2] = small == -7 && str == NULL; /* nothing written on SK_EFORMAT */
    int64_t big = 0;
    m->r[3] = sk_listen(self, 30, "I", &big);
    m->r[4] = big;
    return 0;
}

static const sk_class mismatch_class = {
    .name = "mismatch", .run = mismatch_run, .result = mp_result};

static void test_format_mismatch_and_recovery(void **state)
{
    (void)state;
    mp *m = mp_new(&mismatch_class);
    m->base.config.runs = 1;
    assert_rc(sk_start(&m->base), SK_OK);

    /* "i" 42 is at the head: other formats leave it there. */
    char *s = (char *)"untouched";
    int64_t big = -1;
    uint32_t u = 7;
    assert_rc(sk_listen(&m->base, 30, "s", &s), SK_EFORMAT);
    assert_rc(sk_listen(&m->base, 30, "I", &big), SK_EFORMAT);
    assert_rc(sk_listen(&m->base, 30, "u", &u), SK_EFORMAT);
    assert_rc(sk_listen(&m->base, 30, "ii", &u, &u), SK_EFORMAT);
    assert_string_equal(s, "untouched");
    assert_int_equal(big, -1);
    assert_int_equal(u, 7);
    sk_message *msg = NULL;
    assert_rc(sk_listen_message(&m->base, 30, &msg), SK_OK);
    assert_string_equal(sk_message_format(msg), "i");
    assert_rc(sk_message_unpack(msg, "s", &s), SK_EFORMAT);
    int32_t i = 0;
    assert_rc(sk_message_unpack(msg, "i", &i), SK_OK);
    assert_int_equal(i, 42);
    sk_message_free(msg);

    /* "s" next; a wrong format, then the right one. */
    i = 0;
    assert_rc(sk_listen(&m->base, 30, "i", &i), SK_EFORMAT);
    assert_int_equal(i, 0);
    assert_rc(sk_listen(&m->base, 30, "s", &s), SK_OK);
    assert_string_equal(s, "hello");
    free(s);

    /* "i#" of 4: another '#' length is a mismatch. */
    int32_t arr[5] = {0};
    assert_rc(sk_listen(&m->base, 30, "i#", arr, 3), SK_EFORMAT);
    assert_rc(sk_listen(&m->base, 30, "i#", arr, 5), SK_EFORMAT);
    assert_rc(sk_listen(&m->base, 30, "j#", arr, 4), SK_EFORMAT);
    assert_int_equal(arr[0], 0);
    assert_rc(sk_listen(&m->base, 30, "i#", arr, 4), SK_OK);
    assert_int_equal(arr[0], 1);
    assert_int_equal(arr[3], 4);

    /* The child's side of the same rule. */
    int64_t value = 1234567890123LL;
    assert_rc(sk_tell(&m->base, "I", &value), SK_OK);
    int64_t r[NR];
    mp_finish(m, r);
    assert_rc((int)r[0], SK_EFORMAT);
    assert_rc((int)r[1], SK_EFORMAT);
    assert_int_equal(r[2], 1);
    assert_rc((int)r[3], SK_OK);
    assert_int_equal(r[4], 1234567890123LL);
}

/* ------------------------------------------------------ timeouts */

/* Measures its own listens with nothing sent, then serves a command loop
 * until the parent stops it. */
static int quiet_run(sk_process *self)
{
    mp *m = MP(self);
    int32_t v;
    double t0 = skt_now();
    m->r[0] = sk_listen(self, 0, "i", &v);
    double t1 = skt_now();
    m->r[1] = sk_listen(self, 0.05, "i", &v);
    double t2 = skt_now();
    m->r[2] = (int64_t)((t1 - t0) * 1e6);
    m->r[3] = (int64_t)((t2 - t1) * 1e6);
    skt_write_byte(m->out_fd, 'm'); /* measured: the parent may go on */
    for (;;) {
        int rc = sk_listen(self, -1, "i", &v);
        if (rc == SK_ECLOSED)
            break;
        if (rc != SK_OK)
            return FAIL_RC(self, rc, "quiet listen");
        m->r[4]++;
    }
    m->r[5] = SK_ECLOSED;
    return 0;
}

static const sk_class quiet_class = {.name = "quiet", .run = quiet_run, .result = mp_result};

static void test_listen_timeouts(void **state)
{
    (void)state;
    int back[2];
    make_pipe(back);
    mp *m = mp_new(&quiet_class);
    m->out_fd = back[1];
    assert_rc(sk_start(&m->base), SK_OK);
    int32_t v;
    /* The parent's side, while the child is alive and silent. */
    double t0 = skt_now();
    assert_rc(sk_listen(&m->base, 0, "i", &v), SK_ETIMEDOUT);
    double polled = skt_now() - t0;
    assert_cmp(polled, <, 0.1);
    t0 = skt_now();
    assert_rc(sk_listen(&m->base, 0.05, "i", &v), SK_ETIMEDOUT);
    double waited = skt_now() - t0;
    assert_cmp(waited, >=, 0.05);
    assert_cmp(waited, <, 1.0);
    t0 = skt_now();
    assert_rc(sk_listen(&m->base, 0.25, "i", &v), SK_ETIMEDOUT);
    waited = skt_now() - t0;
    assert_cmp(waited, >=, 0.25);
    assert_cmp(waited, <, 1.5);
    sk_message *msg = (sk_message *)&v;
    assert_rc(sk_listen_message(&m->base, 0.05, &msg), SK_ETIMEDOUT);
    assert_null(msg);

    assert_int_equal(skt_read_byte(back[0], 60), 'm');
    for (int32_t i = 0; i < 3; i++)
        assert_rc(sk_tell(&m->base, "i", &i), SK_OK);
    assert_rc(sk_stop(&m->base), SK_OK);
    int64_t r[NR];
    mp_finish(m, r);
    assert_rc((int)r[0], SK_ETIMEDOUT);
    assert_rc((int)r[1], SK_ETIMEDOUT);
    assert_cmp(r[2], <, 100000); /* polled in under 0.1 s */
    assert_cmp(r[3], >=, 50000);
    assert_cmp(r[3], <, 1000000); /* waited 0.05 s, not 1 s */
    assert_int_equal(r[4], 3);
    assert_rc((int)r[5], SK_ECLOSED);
    close(back[0]);
    close(back[1]);
}

/* --------------------------------------------- after the child exits */

static int teller_run(sk_process *self)
{
    mp *m = MP(self);
    for (int32_t i = 0; i < (int32_t)m->n; i++) {
        int rc;
        TELL_RETRY(rc, self, "i", &i);
        if (rc != SK_OK)
            return FAIL_RC(self, rc, "teller tell");
    }
    return 0;
}

static const sk_class teller_class = {.name = "teller", .run = teller_run, .result = mp_result};

static void test_listen_after_child_exit(void **state)
{
    (void)state;
    /* Read after sk_wait: everything is still there, then SK_ECLOSED. */
    mp *m = mp_new(&teller_class);
    m->base.config.runs = 1;
    m->n = 5;
    assert_rc(sk_start(&m->base), SK_OK);
    int64_t r[NR];
    mp_finish(m, r);
    assert_false(sk_alive(&m->base));
    for (int32_t i = 0; i < 5; i++) {
        int32_t v = -1;
        assert_rc(sk_listen(&m->base, -1, "i", &v), SK_OK);
        assert_int_equal(v, i);
    }
    int32_t v;
    assert_rc(sk_listen(&m->base, -1, "i", &v), SK_ECLOSED);
    assert_rc(sk_listen(&m->base, 0, "i", &v), SK_ECLOSED);
    assert_rc(sk_listen(&m->base, 0.5, "i", &v), SK_ECLOSED);
    sk_message *msg = NULL;
    assert_rc(sk_listen_message(&m->base, -1, &msg), SK_ECLOSED);
    assert_null(msg);

    /* Read while it exits, without sk_wait: the messages, then SK_ECLOSED
     * rather than a hang. */
    mp *m2 = mp_new(&teller_class);
    m2->base.config.runs = 1;
    m2->n = 5;
    assert_rc(sk_start(&m2->base), SK_OK);
    for (int32_t i = 0; i < 5; i++) {
        v = -1;
        assert_rc(sk_listen(&m2->base, -1, "i", &v), SK_OK);
        assert_int_equal(v, i);
    }
    double t0 = skt_now();
    assert_rc(sk_listen(&m2->base, -1, "i", &v), SK_ECLOSED);
    assert_cmp(skt_now() - t0, <, 10);
    mp_finish(m2, r);
}

/* ----------------------------------------------------- wrong state */

static void test_wrong_state(void **state)
{
    (void)state;
    size_t len;
    void *img = image_of_int(5, &len);
    int32_t v = 1;
    sk_message *msg = (sk_message *)&v;

    /* NULL handle. */
    assert_rc(sk_tell(NULL, "i", &v), SK_EINVAL);
    assert_rc(sk_listen(NULL, 0, "i", &v), SK_EINVAL);
    assert_rc(sk_tell_image(NULL, img, len), SK_EINVAL);
    assert_rc(sk_listen_message(NULL, 0, &msg), SK_EINVAL);
    assert_rc(sk_fd(NULL), SK_EINVAL);

    /* Before sk_start. */
    mp *m = mp_new(&teller_class);
    m->base.config.runs = 1;
    assert_rc(sk_tell(&m->base, "i", &v), SK_ESTATE);
    assert_rc(sk_listen(&m->base, 0, "i", &v), SK_ESTATE);
    assert_rc(sk_listen(&m->base, -1, "i", &v), SK_ESTATE); /* at once, not forever */
    assert_rc(sk_tell_image(&m->base, img, len), SK_ESTATE);
    msg = (sk_message *)&v;
    assert_rc(sk_listen_message(&m->base, 0, &msg), SK_ESTATE);
    assert_null(msg);
    assert_rc(sk_listen_message(&m->base, 0, NULL), SK_EINVAL);
    assert_rc(sk_fd(&m->base), SK_ESTATE);

    /* Started, finished, released: the handle has no runtime. */
    m->n = 1;
    assert_rc(sk_start(&m->base), SK_OK);
    assert_rc(sk_wait(&m->base, 30), SK_OK);
    sk_release(&m->base);
    assert_rc(sk_tell(&m->base, "i", &v), SK_EINVAL);
    assert_rc(sk_listen(&m->base, 0, "i", &v), SK_EINVAL);
    assert_rc(sk_listen(&m->base, -1, "i", &v), SK_EINVAL);
    assert_rc(sk_tell_image(&m->base, img, len), SK_EINVAL);
    msg = (sk_message *)&v;
    assert_rc(sk_listen_message(&m->base, 0, &msg), SK_EINVAL);
    assert_null(msg);
    assert_rc(sk_fd(&m->base), SK_EINVAL);

    /* Released and started again: a fresh channel, nothing left over. */
    assert_rc(sk_init(&m->base, &teller_class), SK_OK);
    m->base.config.runs = 1;
    m->n = 2;
    assert_rc(sk_start(&m->base), SK_OK);
    for (int32_t i = 0; i < 2; i++) {
        assert_rc(sk_listen(&m->base, 30, "i", &v), SK_OK);
        assert_int_equal(v, i);
    }
    assert_rc(sk_listen(&m->base, 30, "i", &v), SK_ECLOSED);
    free(img);
}

/* A parent's tell after the process ended. */
static void test_tell_after_end(void **state)
{
    (void)state;
    mp *m = mp_new(&teller_class);
    m->base.config.runs = 1;
    m->n = 0;
    assert_rc(sk_start(&m->base), SK_OK);
    assert_rc(sk_wait(&m->base, 30), SK_OK);
    int32_t v = 3;
    assert_rc(sk_tell(&m->base, "i", &v), SK_ECLOSED);
    size_t len;
    void *img = image_of_int(5, &len);
    assert_rc(sk_tell_image(&m->base, img, len), SK_ECLOSED);
    free(img);
}

/* The same once the parent has seen the end through the channel, before
 * any sk_wait: the header promises SK_ECLOSED when "the process has ended". */
static void test_tell_after_exit_seen_by_listen(void **state)
{
    (void)state;
    mp *m = mp_new(&teller_class);
    m->base.config.runs = 1;
    m->n = 0;
    assert_rc(sk_start(&m->base), SK_OK);
    int32_t v = 3;
    assert_rc(sk_listen(&m->base, -1, "i", &v), SK_ECLOSED);
    assert_rc(sk_tell(&m->base, "i", &v), SK_ECLOSED);
}

/* ---------------------------------------------------- bad arguments */

/* Reports the first message it gets back to the parent, then waits for the
 * stop. */
static int first_run(sk_process *self)
{
    char *s = NULL;
    int rc = sk_listen(self, 30, "s", &s);
    if (rc != SK_OK)
        return FAIL_RC(self, rc, "first listen");
    rc = sk_tell(self, "s", &s);
    free(s);
    if (rc != SK_OK)
        return FAIL_RC(self, rc, "first tell");
    int32_t v;
    while ((rc = sk_listen(self, -1, "i", &v)) == SK_OK)
        MP(self)->r[0]++;
    return rc == SK_ECLOSED ? 0 : FAIL_RC(self, rc, "first listen 2");
}

static const sk_class first_class = {.name = "first", .run = first_run, .result = mp_result};

static void test_bad_arguments(void **state)
{
    (void)state;
    mp *m = mp_new(&first_class);
    m->base.config.runs = 1;
    m->base.config.max_message = 4096;
    assert_rc(sk_start(&m->base), SK_OK);
    int32_t v = 1;

    /* Formats. */
    assert_rc(sk_tell(&m->base, NULL), SK_EINVAL);
    assert_rc(sk_tell(&m->base, ""), SK_EINVAL);
    assert_rc(sk_tell(&m->base, "q", &v), SK_EINVAL);
    assert_rc(sk_tell(&m->base, "S(", &v), SK_EINVAL);
    assert_rc(sk_tell(&m->base, "A(i)", &v), SK_EINVAL); /* arrays: sk_tell_image */
    assert_rc(sk_listen(&m->base, 0, NULL), SK_EINVAL);
    assert_rc(sk_listen(&m->base, 0, ""), SK_EINVAL);

    /* Larger than max_message: refused, nothing queued. */
    unsigned char *buf = calloc(1, 8192);
    assert_non_null(buf);
    tpl_bin bin = {.addr = buf, .sz = 8192};
    assert_rc(sk_tell(&m->base, "B", &bin), SK_EINVAL);
    char *long_text = malloc(5000);
    assert_non_null(long_text);
    memset(long_text, 'y', 4999);
    long_text[4999] = '\0';
    assert_rc(sk_tell(&m->base, "s", &long_text), SK_EINVAL);
    free(long_text);
    tpl_node *tn = tpl_map("B", &bin);
    assert_non_null(tn);
    assert_int_equal(tpl_pack(tn, 0), 0);
    void *big_img = NULL;
    size_t big_len = 0;
    assert_int_equal(tpl_dump(tn, TPL_MEM, &big_img, &big_len), 0);
    tpl_free(tn);
    assert_cmp(big_len, >, 4096);
    assert_rc(sk_tell_image(&m->base, big_img, big_len), SK_EINVAL);
    free(big_img);
    free(buf);

    /* Images. */
    static const char garbage[] = "this is not a tpl image at all";
    assert_rc(sk_tell_image(&m->base, garbage, sizeof garbage), SK_EFORMAT);
    size_t len;
    unsigned char *img = image_of_int(9, &len);
    assert_rc(sk_tell_image(&m->base, img, len - 1), SK_EFORMAT); /* truncated */
    unsigned char *longer = calloc(1, len + 8);
    assert_non_null(longer);
    memcpy(longer, img, len);
    assert_rc(sk_tell_image(&m->base, longer, len + 8), SK_EFORMAT); /* trailing bytes */
    free(longer);
    assert_rc(sk_tell_image(&m->base, NULL, len), SK_EINVAL);
    assert_rc(sk_tell_image(&m->base, img, 0), SK_EINVAL);
    free(img);

    /* The first message the child sees is the first valid one. */
    char *first = "first";
    assert_rc(sk_tell(&m->base, "s", &first), SK_OK);
    char *echoed = NULL;
    assert_rc(sk_listen(&m->base, 30, "s", &echoed), SK_OK);
    assert_string_equal(echoed, "first");
    free(echoed);
    assert_rc(sk_stop(&m->base), SK_OK);
    int64_t r[NR];
    mp_finish(m, r);
    assert_int_equal(r[0], 0);
}

/* ------------------------------------------------------------ sk_fd */

/* Tells (id, seq) m->n times, then ends. */
static int poller_run(sk_process *self)
{
    mp *m = MP(self);
    int32_t id = (int32_t)m->size;
    for (int32_t seq = 0; seq < (int32_t)m->n; seq++) {
        int rc;
        TELL_RETRY(rc, self, "ii", &id, &seq);
        if (rc != SK_OK)
            return FAIL_RC(self, rc, "poller tell");
    }
    return 0;
}

static const sk_class poller_class = {.name = "poller", .run = poller_run, .result = mp_result};

#define POLLED 4
#define POLL_N 2000

static void test_sk_fd_poll_four_processes(void **state)
{
    (void)state;
    mp *m[POLLED];
    struct pollfd pfd[POLLED];
    int32_t next[POLLED] = {0};
    bool closed[POLLED] = {false};
    for (int k = 0; k < POLLED; k++) {
        m[k] = mp_new(&poller_class);
        m[k]->base.config.runs = 1;
        m[k]->base.config.capacity = 8192; /* a small ring: the senders do wait */
        m[k]->n = POLL_N;
        m[k]->size = (size_t)k;
        assert_rc(sk_start(&m[k]->base), SK_OK);
        int fd = sk_fd(&m[k]->base);
        assert_cmp(fd, >=, 0);
        assert_int_equal(sk_fd(&m[k]->base), fd); /* the same fd every time */
        pfd[k] = (struct pollfd){.fd = fd, .events = POLLIN};
    }
    int open = POLLED;
    double deadline = skt_now() + 60;
    long wakeups = 0;
    while (open > 0) {
        assert_cmp(skt_now(), <, deadline);
        int n = poll(pfd, POLLED, 10000);
        assert_cmp(n, >, 0);
        wakeups++;
        for (int k = 0; k < POLLED; k++) {
            if (!(pfd[k].revents & POLLIN) || closed[k])
                continue;
            for (;;) {
                int32_t id = -1, seq = -1;
                int rc = sk_listen(&m[k]->base, 0, "ii", &id, &seq);
                if (rc == SK_ETIMEDOUT)
                    break;
                if (rc == SK_ECLOSED) {
                    closed[k] = true;
                    open--;
                    break;
                }
                assert_rc(rc, SK_OK);
                assert_int_equal(id, k);
                assert_int_equal(seq, next[k]);
                next[k]++;
            }
        }
    }
    for (int k = 0; k < POLLED; k++) {
        assert_int_equal(next[k], POLL_N);
        /* An ended process stays readable, before and after sk_wait. (The
         * channel says SK_ECLOSED just before the supervisor exits, so the
         * fd may take a moment.) */
        struct pollfd one = {.fd = pfd[k].fd, .events = POLLIN};
        assert_int_equal(poll(&one, 1, 30000), 1);
        int64_t r[NR];
        mp_finish(m[k], r);
        one.revents = 0;
        assert_int_equal(poll(&one, 1, 0), 1);
        assert_int_equal(sk_fd(&m[k]->base), pfd[k].fd);
    }
    print_message("sk_fd: %d x %d messages in %ld poll wakeups\n", POLLED, POLL_N, wakeups);
}

/* A command loop: for each "i" k it tells k messages; ends on SK_ECLOSED. */
static int commands_run(sk_process *self)
{
    mp *m = MP(self);
    int32_t k;
    int rc;
    while ((rc = sk_listen(self, -1, "i", &k)) == SK_OK) {
        m->r[0]++;
        for (int32_t i = 0; i < k; i++) {
            TELL_RETRY(rc, self, "i", &i);
            if (rc != SK_OK)
                return FAIL_RC(self, rc, "commands tell");
        }
        if (m->out_fd >= 0)
            skt_write_byte(m->out_fd, 'c'); /* the command's messages are published */
    }
    m->r[1] = rc;
    return rc == SK_ECLOSED ? 0 : FAIL_RC(self, rc, "commands listen");
}

static const sk_class commands_class = {
    .name = "commands", .run = commands_run, .result = mp_result};

static int poll_one(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int n;
    while ((n = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
        ;
    return n;
}

static void test_sk_fd_readiness(void **state)
{
    (void)state;
    mp *m = mp_new(&commands_class);
    assert_rc(sk_start(&m->base), SK_OK);
    int fd = sk_fd(&m->base);
    assert_cmp(fd, >=, 0);
    assert_int_equal(poll_one(fd, 0), 0); /* nothing waits */
    for (int32_t round = 1; round <= 3; round++) {
        assert_rc(sk_tell(&m->base, "i", &round), SK_OK);
        assert_int_equal(poll_one(fd, 30000), 1);
        for (int32_t i = 0; i < round; i++) {
            int32_t v = -1;
            assert_rc(sk_listen(&m->base, 30, "i", &v), SK_OK);
            assert_int_equal(v, i);
        }
        /* A listen that finds the channel empty quiets the fd. */
        int32_t v;
        assert_rc(sk_listen(&m->base, 0, "i", &v), SK_ETIMEDOUT);
        assert_int_equal(poll_one(fd, 0), 0);
    }
    /* Readable once the process has ended. */
    assert_rc(sk_stop(&m->base), SK_OK);
    assert_int_equal(poll_one(fd, 30000), 1);
    int32_t v;
    assert_rc(sk_listen(&m->base, 30, "i", &v), SK_ECLOSED);
    int64_t r[NR];
    mp_finish(m, r);
    assert_int_equal(r[0], 3);
    assert_rc((int)r[1], SK_ECLOSED);
    assert_int_equal(poll_one(fd, 0), 1);
}

/* sk_fd asked for late: messages already waiting make it readable at once. */
static void test_sk_fd_after_messages(void **state)
{
    (void)state;
    int back[2];
    make_pipe(back);
    mp *m = mp_new(&commands_class);
    m->out_fd = back[1];
    assert_rc(sk_start(&m->base), SK_OK);
    int32_t k = 2;
    assert_rc(sk_tell(&m->base, "i", &k), SK_OK);
    assert_int_equal(skt_read_byte(back[0], 30), 'c');
    int fd = sk_fd(&m->base);
    assert_cmp(fd, >=, 0);
    assert_int_equal(poll_one(fd, 0), 1);
    for (int32_t i = 0; i < 2; i++) {
        int32_t v = -1;
        assert_rc(sk_listen(&m->base, 0, "i", &v), SK_OK);
        assert_int_equal(v, i);
    }
    int32_t v;
    assert_rc(sk_listen(&m->base, 0, "i", &v), SK_ETIMEDOUT);
    assert_int_equal(poll_one(fd, 0), 0);
    assert_rc(sk_stop(&m->base), SK_OK);
    int64_t r[NR];
    mp_finish(m, r);
    close(back[0]);
    close(back[1]);
}

/* ------------------------------------------------ stop ends a loop */

/* Says "ready", then counts commands until listen says SK_ECLOSED. */
static int loop_run(sk_process *self)
{
    mp *m = MP(self);
    int32_t ready = -1;
    int rc = sk_tell(self, "i", &ready);
    if (rc != SK_OK)
        return FAIL_RC(self, rc, "loop tell");
    int32_t v;
    while ((rc = sk_listen(self, -1, "i", &v)) == SK_OK) {
        if (v != (int32_t)m->r[0])
            return sk_fail(self, -1, "loop: got %d, want %d", (int)v, (int)m->r[0]);
        m->r[0]++;
    }
    m->r[1] = rc;
    return 0;
}

static int loop_onfinish(sk_process *self)
{
    MP(self)->r[2] = 1;
    return 0;
}

static const sk_class loop_class = {
    .name = "loop", .run = loop_run, .onfinish = loop_onfinish, .result = mp_result};

static void test_stop_ends_command_loop(void **state)
{
    (void)state;
    mp *m = mp_new(&loop_class);
    assert_rc(sk_start(&m->base), SK_OK);
    int32_t v = 0;
    assert_rc(sk_listen(&m->base, 30, "i", &v), SK_OK);
    assert_int_equal(v, -1);
    /* Commands queued before the stop are still delivered, then SK_ECLOSED. */
    for (int32_t i = 0; i < 3; i++)
        assert_rc(sk_tell(&m->base, "i", &i), SK_OK);
    assert_rc(sk_stop(&m->base), SK_OK);
    int64_t r[NR];
    mp_finish(m, r);
    assert_int_equal(r[0], 3);
    assert_rc((int)r[1], SK_ECLOSED);
    assert_int_equal(r[2], 1); /* onfinish and result ran */
    assert_int_equal(sk_current_run(&m->base), 0);
}

/* The worker blocked in sk_listen(-1) with nothing queued. */
static void test_stop_wakes_blocked_listen(void **state)
{
    (void)state;
    mp *m = mp_new(&loop_class);
    assert_rc(sk_start(&m->base), SK_OK);
    int32_t v = 0;
    assert_rc(sk_listen(&m->base, 30, "i", &v), SK_OK);
    assert_int_equal(v, -1);
    double t0 = skt_now();
    assert_rc(sk_stop(&m->base), SK_OK);
    int64_t r[NR];
    mp_finish(m, r);
    assert_cmp(skt_now() - t0, <, 5);
    assert_int_equal(r[0], 0);
    assert_rc((int)r[1], SK_ECLOSED);
}

/* --------------------------------------------- a restarted worker */

struct restart_log {
    _Atomic int attempts;
    _Atomic int count;
    uint64_t got[64];
};

/* First attempt: reads 3, tells the parent, dies. Second: reads the rest. */
static int restart_run(sk_process *self)
{
    mp *m = MP(self);
    struct restart_log *log = m->shared;
    int attempt = atomic_fetch_add(&log->attempts, 1);
    int want = attempt == 0 ? 3 : (int)m->n;
    while (atomic_load(&log->count) < want) {
        uint64_t v = 0;
        int rc = sk_listen(self, 30, "U", &v);
        if (rc != SK_OK)
            return FAIL_RC(self, rc, "restart listen");
        int at = atomic_fetch_add(&log->count, 1);
        if (at < 64)
            log->got[at] = v;
    }
    if (attempt == 0) {
        skt_write_byte(m->out_fd, 'x');
        skt_die_by(SIGKILL);
    }
    return 0;
}

static const sk_class restart_class = {.name = "restart", .run = restart_run, .result = mp_result};

static void test_restart_keeps_queued_messages(void **state)
{
    (void)state;
    int back[2];
    make_pipe(back);
    mp *m = mp_new(&restart_class);
    m->base.config.runs = 1;
    m->base.config.lives = 2;
    m->n = 10;
    m->out_fd = back[1];
    struct restart_log *log = skt_shared(sizeof *log);
    m->shared = log;
    assert_rc(sk_start(&m->base), SK_OK);
    for (uint64_t v = 0; v < 5; v++)
        assert_rc(sk_tell(&m->base, "U", &v), SK_OK);
    /* The first worker is dying or dead: these wait for the next one. */
    assert_int_equal(skt_read_byte(back[0], 60), 'x');
    for (uint64_t v = 5; v < 10; v++)
        assert_rc(sk_tell(&m->base, "U", &v), SK_OK);
    int64_t r[NR];
    mp_finish(m, r);
    assert_int_equal(atomic_load(&log->attempts), 2);
    assert_int_equal(atomic_load(&log->count), 10);
    for (uint64_t v = 0; v < 10; v++)
        assert_int_equal(log->got[v], v);
    close(back[0]);
    close(back[1]);
}

/* ------------------------------------------------------ fd leaks */

static int ping_once_run(sk_process *self)
{
    int32_t v = 0;
    int rc = sk_listen(self, 30, "i", &v);
    if (rc != SK_OK)
        return FAIL_RC(self, rc, "ping listen");
    v += 1;
    rc = sk_tell(self, "i", &v);
    return rc == SK_OK ? 0 : FAIL_RC(self, rc, "ping tell");
}

static const sk_class ping_once_class = {.name = "ping_once", .run = ping_once_run};

static void test_no_fd_leak_after_200_processes(void **state)
{
    (void)state;
    /* A first process outside the count: lazy one-time allocations (tpl's
     * hooks, the libc's) happen before the baseline. */
    int before = -1;
    for (int32_t i = -1; i < 200; i++) {
        if (i == 0)
            before = skt_fd_count();
        sk_process p;
        assert_rc(sk_init(&p, &ping_once_class), SK_OK);
        p.config.runs = 1;
        assert_rc(sk_start(&p), SK_OK);
        if (i % 2 == 0)
            assert_cmp(sk_fd(&p), >=, 0); /* half of them with the epoll fd */
        assert_rc(sk_tell(&p, "i", &i), SK_OK);
        int32_t v = 0;
        assert_rc(sk_listen(&p, 30, "i", &v), SK_OK);
        assert_int_equal(v, i + 1);
        if (i % 3 == 0) {
            sk_release(&p); /* while it may still run: killed and reaped */
            continue;
        }
        assert_rc(sk_wait(&p, 30), SK_OK);
        assert_rc(sk_listen(&p, 0, "i", &v), SK_ECLOSED);
        sk_release(&p);
    }
    assert_int_equal(skt_fd_count(), before);
    assert_no_children();
}

/* -------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_round_trip_parent_first),
        SKT_TEST(test_round_trip_child_first),
        SKT_TEST(test_sk_pid_known_when_child_speaks),
        SKT_TEST(test_echo_100k_each_way),
        SKT_TEST(test_flood_child_to_parent_100k),
        SKT_TEST(test_flood_parent_to_child_100k),
        SKT_TEST(test_stream_small_max_message),
        SKT_TEST(test_64mib_both_ways),
        SKT_TEST(test_64mib_back_to_back_to_parent),
        SKT_TEST(test_64mib_back_to_back_to_child),
        SKT_TEST(test_64mib_over_default_max),
        SKT_TEST(test_efull_when_child_never_reads),
        SKT_TEST(test_efull_empty_channel_takes_one_big),
        SKT_TEST(test_efull_when_parent_never_reads),
        SKT_TEST(test_format_mismatch_and_recovery),
        SKT_TEST(test_listen_timeouts),
        SKT_TEST(test_listen_after_child_exit),
        SKT_TEST(test_wrong_state),
        SKT_TEST(test_tell_after_end),
        SKT_TEST(test_tell_after_exit_seen_by_listen),
        SKT_TEST(test_bad_arguments),
        SKT_TEST(test_sk_fd_poll_four_processes),
        SKT_TEST(test_sk_fd_readiness),
        SKT_TEST(test_sk_fd_after_messages),
        SKT_TEST(test_stop_ends_command_loop),
        SKT_TEST(test_stop_wakes_blocked_listen),
        SKT_TEST(test_restart_keeps_queued_messages),
        SKT_TEST(test_no_fd_leak_after_200_processes),
    };
    return skt_run(argc, argv, tests);
}
