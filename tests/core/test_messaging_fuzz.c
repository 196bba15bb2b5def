/* SPDX-License-Identifier: MIT */
/*
 * Seeded random corruption of the image decoder and of the channel's frame
 * parser, bounded in time (5 s by default) so that it runs in CI. The
 * libFuzzer target fuzz/fuzz_decoder.c explores the same code with coverage
 * feedback; this test is its always-on, reproducible cousin.
 *
 *   decoder   valid tpl images of many formats (made by tpl itself) are
 *             mutated (bit flips, interesting bytes and 32-bit values,
 *             truncation, extension, chunk deletion and duplication,
 *             splicing) and fed to sk_msg_validate, sk_msg_format and
 *             sk_msg_unpack. Invariants: no crash and no read outside the
 *             buffer (each input sits in a malloc of its exact size, so
 *             ASan sees an overread); validate and format agree; an unpack
 *             that succeeds implies a valid image of exactly that format;
 *             formats with A(...) are SK_EINVAL for unpack.
 *   to parent random pieces (valid frames, garbage headers, valid headers
 *             around garbage images, wrap markers, raw bytes) injected with
 *             sk_channel_inject while the child is idle. Invariants: listen
 *             says SK_OK, SK_EFORMAT or SK_ECORRUPT, never hangs (timeout
 *             0 draining); every message it returns is a valid image; when
 *             all pieces are valid frames every one arrives, in order; a
 *             valid frame injected after the garbage arrives intact; the
 *             child's own messages still arrive.
 *   to worker each round injects one garbage piece, then tells a valid
 *             (magic, seq, hash) message and waits until the child has
 *             consumed everything. Invariants: the child sees valid
 *             messages in strictly increasing order, never twice, never a
 *             forged one; every message behind a garbage piece that is
 *             itself a well-framed frame arrives (only a garbage *header*
 *             may take later bytes with it).
 *
 * SKPROC_FUZZ_SEED=n and SKPROC_FUZZ_SECONDS=s override the seed and the
 * budget; a failure prints the seed and the iteration to replay it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "messaging_support.h"
#include "codec_support.h"

#include "core/channel.h"
#include "codec/message.h"
#include "core/runtime.h"

#include <sched.h>
#include <stdatomic.h>
#include <tpl.h>

#define FUZZ_MAX_INPUT (16 << 10)

static uint64_t g_seed = 20240917;
static double g_seconds = 5.0;

/* ---------------------------------------------------------------- rng */

typedef struct {
    uint64_t s;
} rng;

static uint64_t next(rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545f4914f6cdd1dULL;
}

static uint32_t below(rng *r, uint32_t n)
{
    return n ? (uint32_t)(next(r) % n) : 0;
}

static void hexdump(const unsigned char *b, size_t n)
{
    for (size_t i = 0; i < n && i < 256; i++)
        print_error("%02x%s", b[i], i % 32 == 31 ? "\n" : " ");
    print_error("%s(%zu bytes)\n", n > 256 ? "... " : "", n);
}

/* -------------------------------------------------------------- seeds */

/* Seeds are images of the kinds codec_support.h makes (the same generator
 * the libFuzzer target uses), with values from the rng. */
#define N_SEEDS 64

static uint64_t rng_take(void *ctx, unsigned k)
{
    (void)k;
    return next(ctx);
}

/* An image of kind k with random values; fails when sk_msg_pack does not
 * write what tpl_dump writes. */
static void seed_make(rng *r, struct skt_image *sd, enum skt_kind k)
{
    struct skt_source src = {rng_take, r};
    const char *why = skt_image_make(&src, k, sd);
    if (why != NULL) {
        print_error("%s for %s\n", why, skt_kind_format[k]);
        if (sd->mine != NULL)
            hexdump(sd->mine, sd->mine_len);
        if (sd->img != NULL)
            hexdump(sd->img, sd->len);
        skt_image_free(sd);
        fail();
    }
    free(sd->mine); /* compared: only tpl's is kept */
    sd->mine = NULL;
}

static void seeds_make(rng *r, struct skt_image seeds[N_SEEDS])
{
    for (int k = 0; k < N_SEEDS; k++)
        seed_make(r, &seeds[k], (enum skt_kind)(k % SKT_K_COUNT));
}

static void seeds_free(struct skt_image seeds[N_SEEDS])
{
    for (int k = 0; k < N_SEEDS; k++)
        skt_image_free(&seeds[k]);
}

/* Unpacks img with the format (and '#' lengths) of seed sd. */
static int probe(const struct skt_image *sd, const void *img, size_t len)
{
    return skt_probe(sd->kind, sd->n, img, len);
}

/* ----------------------------------------------------------- mutation */

static const uint8_t interesting8[] = {0,   1,   0x7f, 0x80, 0xff, '#', '(', ')', 'A',
                                       'S', '$', 's',  'B',  'i',  'c', 'f', 2,   3};

/* Mutates buf[0, len) in place within cap bytes; returns the new length. */
static size_t mutate(rng *r, unsigned char *buf, size_t len, size_t cap,
                     const struct skt_image *seeds)
{
    int ops = 1 + (int)below(r, 5);
    for (int op = 0; op < ops; op++) {
        uint32_t pos = below(r, (uint32_t)(len ? len : 1));
        switch (below(r, 10)) {
        case 0:
            if (len)
                buf[pos] ^= (unsigned char)(1u << below(r, 8));
            break;
        case 1:
            if (len)
                buf[pos] = (unsigned char)next(r);
            break;
        case 2:
            if (len)
                buf[pos] = interesting8[below(r, sizeof interesting8)];
            break;
        case 3:
            if (len >= 4) {
                uint32_t values[] = {0,
                                     1,
                                     2,
                                     0x7fffffffu,
                                     0x80000000u,
                                     0xffffffffu,
                                     (uint32_t)len,
                                     (uint32_t)len + 1,
                                     (uint32_t)len - 1,
                                     0x10000u,
                                     (uint32_t)next(r)};
                uint32_t v = values[below(r, sizeof values / sizeof values[0])];
                pos = below(r, (uint32_t)len - 3);
                memcpy(buf + pos, &v, 4);
            }
            break;
        case 4:
            len = below(r, (uint32_t)len + 1);
            break;
        case 5: {
            size_t add = 1 + below(r, 16);
            for (size_t q = 0; q < add && len < cap; q++)
                buf[len++] = (unsigned char)next(r);
            break;
        }
        case 6:
            if (len) {
                size_t n = 1 + below(r, (uint32_t)(len - pos));
                memmove(buf + pos, buf + pos + n, len - pos - n);
                len -= n;
            }
            break;
        case 7:
            if (len) {
                size_t n = 1 + below(r, (uint32_t)(len - pos));
                if (n > 64)
                    n = 64;
                if (len + n <= cap) {
                    memmove(buf + pos + n, buf + pos, len - pos);
                    len += n;
                }
            }
            break;
        case 8: {
            const struct skt_image *o = &seeds[below(r, N_SEEDS)];
            size_t from = below(r, (uint32_t)o->len);
            size_t n = o->len - from;
            if (pos + n > cap)
                n = cap - pos;
            memcpy(buf + pos, o->img + from, n);
            len = pos + n;
            break;
        }
        case 9:
            /* Keep the stored total length right, so that the walk of the
             * format and data is reached rather than the cheap check. */
            break;
        }
    }
    if (len >= 8 && below(r, 2) == 0) {
        uint32_t total = (uint32_t)len;
        memcpy(buf + 4, &total, 4);
    }
    return len;
}

/* --------------------------------------------------------- the decoder */

static char g_format[SK_MSG_MAX_FORMAT + 1];

/* One input through every entry point; fails the test when an invariant
 * breaks (skt_check_decode). in sits in a malloc of exactly len bytes. */
static void decode_one(const unsigned char *in, size_t len, const struct skt_image *own,
                       const struct skt_image *other, long *valid)
{
    struct skt_probe_spec probes[2] = {{own->kind, own->n}, {other->kind, other->n}};
    int is_valid = 0;
    const char *why = skt_check_decode(in, len, probes, 2, &is_valid);
    if (why != NULL) {
        print_error("seed %llu: %s\n", (unsigned long long)g_seed, why);
        hexdump(in, len);
        fail();
    }
    if (is_valid)
        ++*valid;
}

static void test_decoder_random_corruption(void **state)
{
    (void)state;
    rng r = {g_seed};
    struct skt_image seeds[N_SEEDS];
    seeds_make(&r, seeds);
    /* The seeds themselves: valid, their format, unpackable. */
    for (int k = 0; k < N_SEEDS; k++) {
        assert_rc(sk_msg_validate(seeds[k].img, seeds[k].len), SK_OK);
        assert_rc(sk_msg_format(seeds[k].img, seeds[k].len, g_format, sizeof g_format), SK_OK);
        assert_string_equal(g_format, skt_kind_format[seeds[k].kind]);
        assert_rc(probe(&seeds[k], seeds[k].img, seeds[k].len),
                  skt_kind_has_array(seeds[k].kind) ? SK_EINVAL : SK_OK);
    }
    /* skproc's encoder against tpl's on many random values (seed_make
     * compares them). */
    for (int k = 0; k < 20000; k++) {
        struct skt_image extra;
        seed_make(&r, &extra, (enum skt_kind)(k % SKT_K_COUNT));
        skt_image_free(&extra);
    }
    unsigned char *work = malloc(FUZZ_MAX_INPUT);
    assert_non_null(work);
    double deadline = skt_now() + g_seconds * 0.4;
    long iterations = 0, valid = 0;
    while (skt_now() < deadline) {
        for (int batch = 0; batch < 64; batch++, iterations++) {
            const struct skt_image *sd = &seeds[below(&r, N_SEEDS)];
            memcpy(work, sd->img, sd->len);
            size_t len = mutate(&r, work, sd->len, FUZZ_MAX_INPUT, seeds);
            /* An exact-size copy: any read past the end is a heap overflow. */
            unsigned char *in = malloc(len ? len : 1);
            assert_non_null(in);
            memcpy(in, work, len);
            const struct skt_image *other = &seeds[below(&r, N_SEEDS)];
            decode_one(in, len, sd, other, &valid);
            free(in);
        }
    }
    /* Pure noise, too. */
    for (int k = 0; k < 2000; k++, iterations++) {
        size_t len = below(&r, 64);
        unsigned char *in = malloc(len ? len : 1);
        assert_non_null(in);
        for (size_t q = 0; q < len; q++)
            in[q] = (unsigned char)next(&r);
        if (len >= 3 && below(&r, 2))
            memcpy(in, "tpl", 3);
        decode_one(in, len, &seeds[below(&r, N_SEEDS)], &seeds[below(&r, N_SEEDS)], &valid);
        free(in);
    }
    print_message("decoder: seed %llu, %ld inputs, %ld of them valid images\n",
                  (unsigned long long)g_seed, iterations, valid);
    free(work);
    seeds_free(seeds);
}

/* ----------------------------------------------- pieces for the rings */

enum piece_kind { P_VALID, P_BAD_HEADER, P_GARBAGE_IMAGE, P_WRAP, P_RAW, P_KINDS };

/* Appends one random piece; returns its kind. *self_framed says whether
 * the piece is one frame whose header covers exactly its own bytes (the
 * parser then resumes right after it). */
static enum piece_kind put_piece(rng *r, unsigned char *out, size_t *n,
                                 const struct skt_image *seeds, size_t max_message,
                                 bool *self_framed, const struct skt_image **used)
{
    unsigned char body[FUZZ_MAX_INPUT / 4];
    enum piece_kind kind = (enum piece_kind)below(r, P_KINDS);
    const struct skt_image *sd = &seeds[below(r, N_SEEDS)];
    size_t start = *n;
    *used = sd;
    switch (kind) {
    case P_VALID:
        put_frame(out, n, FRAME_MAGIC, (uint32_t)sd->len, sd->img, sd->len);
        break;
    case P_BAD_HEADER: {
        uint32_t magics[] = {FRAME_MAGIC, 0, 0xffffffffu, FRAME_MAGIC ^ 1, (uint32_t)next(r)};
        uint32_t lens[] = {0, (uint32_t)max_message + 1, 0xffffffffu,
                           (uint32_t)sd->len + 8 + below(r, 4096), (uint32_t)next(r)};
        uint32_t magic = magics[below(r, 5)];
        uint32_t len = magic == FRAME_MAGIC ? lens[below(r, 5)] : (uint32_t)sd->len;
        put_frame(out, n, magic, len, sd->img, sd->len);
        break;
    }
    case P_GARBAGE_IMAGE: {
        memcpy(body, sd->img, sd->len);
        size_t len = mutate(r, body, sd->len, sizeof body, seeds);
        if (len == 0)
            body[len++] = 0;
        put_frame(out, n, FRAME_MAGIC, (uint32_t)len, body, len);
        break;
    }
    case P_WRAP:
        put_frame(out, n, WRAP_MAGIC, 0, NULL, 0);
        break;
    case P_RAW: {
        size_t len = 1 + below(r, 64);
        for (size_t q = 0; q < len; q++)
            body[q] = (unsigned char)next(r);
        memcpy(out + *n, body, len);
        memset(out + *n + len, 0, align8(len) - len);
        *n += align8(len);
        break;
    }
    case P_KINDS:
        break;
    }
    uint32_t magic, len;
    memcpy(&magic, out + start, 4);
    memcpy(&len, out + start + 4, 4);
    *self_framed = magic == FRAME_MAGIC && len >= 1 && len <= max_message &&
                   align8(8 + (size_t)len) == *n - start;
    return kind;
}

/* ------------------------------------------------ the to-parent ring */

typedef struct {
    sk_process base;
    void *shared;
} fz;

#define FZ(p) SK_CONTAINER_OF(p, fz, base)

/* For "U" k: tells one "B" of k bytes (a way to move the ring along). */
static int replier_run(sk_process *self)
{
    uint64_t k;
    int rc;
    unsigned char *buf = calloc(1, 1 << 16);
    if (buf == NULL)
        return sk_fail(self, SK_ENOMEM, "malloc");
    while ((rc = sk_listen(self, -1, "U", &k)) == SK_OK) {
        tpl_bin b = {.addr = buf, .sz = (uint32_t)(k < (1 << 16) ? k : (1 << 16))};
        while ((rc = sk_tell(self, "B", &b)) == SK_EFULL)
            sched_yield();
        if (rc != SK_OK)
            break;
    }
    free(buf);
    return rc == SK_ECLOSED ? 0 : sk_fail(self, rc, "replier: %s", sk_strerror(rc));
}

static const sk_class replier_class = {.name = "replier", .run = replier_run};

/* Asks the child for a reply of `size` bytes and reads it. */
static void ask_reply(fz *m, uint64_t size)
{
    assert_rc(sk_tell(&m->base, "U", &size), SK_OK);
    tpl_bin b = {0};
    assert_rc(sk_listen(&m->base, 30, "B", &b), SK_OK);
    assert_int_equal(b.sz, size);
    free(b.addr);
}

static void test_channel_to_parent_random_frames(void **state)
{
    (void)state;
    rng r = {g_seed ^ 0x70a7e57};
    struct skt_image seeds[N_SEEDS];
    seeds_make(&r, seeds);
    const size_t max_message = 16 << 10;
    fz *m = skt_new(fz);
    assert_rc(sk_init(&m->base, &replier_class), SK_OK);
    m->base.config.capacity = 4096;
    m->base.config.max_message = max_message;
    assert_rc(sk_start(&m->base), SK_OK);
    ask_reply(m, 10); /* the child is idle in its listen from here on */

    unsigned char *buf = malloc(FUZZ_MAX_INPUT);
    assert_non_null(buf);
    double deadline = skt_now() + g_seconds * 0.3;
    long rounds = 0, received = 0, corrupt = 0, mismatched = 0, wraps = 0;
    while (skt_now() < deadline) {
        rounds++;
        size_t n = 0;
        int pieces = 1 + (int)below(&r, 4);
        bool all_valid = true;
        const struct skt_image *valid_seq[4];
        int n_valid = 0;
        for (int k = 0; k < pieces; k++) {
            bool framed;
            const struct skt_image *used;
            if (put_piece(&r, buf, &n, seeds, max_message, &framed, &used) == P_VALID)
                valid_seq[n_valid++] = used;
            else
                all_valid = false;
        }
        int rc = sk_channel_inject(m->base.rt, true, buf, n);
        if (rc == SK_EFULL) {
            /* Too close to the ring's end: let the child's own frames (and
             * its wrap marker) carry the ring past it. */
            ask_reply(m, max_message - 64);
            wraps++;
            continue;
        }
        assert_rc(rc, SK_OK);
        int got = 0;
        for (int guard = 0; guard < 4 * pieces + 4; guard++) {
            sk_message *msg = NULL;
            int64_t sink[4];
            /* Alternate sk_listen (mismatch path) and sk_listen_message. */
            rc = guard % 2 ? sk_listen(&m->base, 0, "I#", sink, 4)
                           : sk_listen_message(&m->base, 0, &msg);
            if (rc == SK_ETIMEDOUT)
                break;
            if (rc == SK_EFORMAT) {
                mismatched++;
                continue; /* the message stays: the next turn takes it whole */
            }
            if (rc == SK_ECORRUPT) {
                corrupt++;
                continue;
            }
            if (rc != SK_OK) {
                print_error("seed %llu round %ld: listen said %s\n", (unsigned long long)g_seed,
                            rounds, sk_strerror(rc));
                hexdump(buf, n);
            }
            assert_rc(rc, SK_OK);
            received++;
            if (msg != NULL) {
                size_t len;
                const void *img = sk_message_image(msg, &len);
                assert_rc(sk_msg_validate(img, len), SK_OK);
                if (all_valid) {
                    /* Every piece valid: they come in order, as they were. */
                    assert_cmp(got, <, n_valid);
                    assert_int_equal(len, valid_seq[got]->len);
                    assert_memory_equal(img, valid_seq[got]->img, len);
                }
                sk_message_free(msg);
            }
            got++;
        }
        if (all_valid)
            assert_int_equal(got, n_valid);
        /* Drained: nothing is left behind. */
        sk_message *msg = NULL;
        assert_rc(sk_listen_message(&m->base, 0, &msg), SK_ETIMEDOUT);
        /* After any garbage, a valid frame arrives intact. */
        if (rounds % 8 == 0) {
            const struct skt_image *sd = &seeds[below(&r, N_SEEDS)];
            n = 0;
            put_frame(buf, &n, FRAME_MAGIC, (uint32_t)sd->len, sd->img, sd->len);
            if (sk_channel_inject(m->base.rt, true, buf, n) == SK_OK) {
                assert_rc(sk_listen_message(&m->base, 0, &msg), SK_OK);
                size_t len;
                const void *img = sk_message_image(msg, &len);
                assert_int_equal(len, sd->len);
                assert_memory_equal(img, sd->img, len);
                sk_message_free(msg);
            }
        }
        if (rounds % 64 == 0)
            ask_reply(m, below(&r, 2000)); /* the real producer still works */
    }
    print_message("to parent: seed %llu, %ld rounds, %ld received, %ld corrupt, %ld "
                  "mismatches, %ld ring-end skips\n",
                  (unsigned long long)g_seed, rounds, received, corrupt, mismatched, wraps);
    free(buf);
    assert_rc(sk_stop(&m->base), SK_OK);
    assert_rc(sk_wait(&m->base, 30), SK_OK);
    assert_no_error(&m->base);
    seeds_free(seeds);
}

/* ------------------------------------------------ the to-worker ring */

#define MAX_ROUNDS (1 << 20)
#define JUDGE_MAGIC 0x5eed5eed5eed5eedULL

struct judge_log {
    _Atomic long valid, corrupt, other, disorder, forged;
    _Atomic uint64_t last;
    unsigned char seen[MAX_ROUNDS / 8];
};

static uint64_t judge_hash(uint64_t seq)
{
    return mix64(seq ^ JUDGE_MAGIC);
}

/* Takes everything; records the valid (magic, seq, hash) messages. */
static int judge_run(sk_process *self)
{
    struct judge_log *log = FZ(self)->shared;
    uint64_t last = 0;
    bool any = false;
    int rc;
    for (;;) {
        sk_message *msg = NULL;
        rc = sk_listen_message(self, -1, &msg);
        if (rc == SK_ECLOSED)
            break;
        if (rc == SK_ECORRUPT) {
            atomic_fetch_add(&log->corrupt, 1);
            continue;
        }
        if (rc != SK_OK)
            return sk_fail(self, rc, "judge: %s", sk_strerror(rc));
        uint64_t magic = 0, seq = 0, hash = 0;
        if (strcmp(sk_message_format(msg), "UUU") == 0 &&
            sk_message_unpack(msg, "UUU", &magic, &seq, &hash) == SK_OK && magic == JUDGE_MAGIC) {
            if (hash != judge_hash(seq) || seq >= MAX_ROUNDS) {
                atomic_fetch_add(&log->forged, 1);
            } else {
                if (any && seq <= last)
                    atomic_fetch_add(&log->disorder, 1);
                if (log->seen[seq / 8] & (1u << (seq % 8)))
                    atomic_fetch_add(&log->disorder, 1);
                log->seen[seq / 8] |= (unsigned char)(1u << (seq % 8));
                last = seq;
                any = true;
                atomic_store(&log->last, seq);
                atomic_fetch_add(&log->valid, 1);
            }
        } else {
            atomic_fetch_add(&log->other, 1);
        }
        sk_message_free(msg);
    }
    return 0;
}

static const sk_class judge_class = {.name = "judge", .run = judge_run};

/* Until the child has consumed everything published to it. */
static void wait_drained(fz *m)
{
    struct sk_ring *ring = m->base.rt->to_worker;
    double deadline = skt_now() + 30;
    while (atomic_load(&ring->ctl->tail) != atomic_load(&ring->ctl->head)) {
        assert_cmp(skt_now(), <, deadline);
        sched_yield();
    }
}

static void test_channel_to_worker_random_frames(void **state)
{
    (void)state;
    rng r = {g_seed ^ 0x3011c0de};
    struct skt_image seeds[N_SEEDS];
    seeds_make(&r, seeds);
    const size_t max_message = 16 << 10;
    struct judge_log *log = skt_shared(sizeof *log);
    fz *m = skt_new(fz);
    assert_rc(sk_init(&m->base, &judge_class), SK_OK);
    m->base.config.capacity = 4096;
    m->base.config.max_message = max_message;
    m->shared = log;
    assert_rc(sk_start(&m->base), SK_OK);

    unsigned char *guaranteed = calloc(1, MAX_ROUNDS / 8);
    unsigned char *buf = malloc(FUZZ_MAX_INPUT);
    assert_non_null(guaranteed);
    assert_non_null(buf);
    double deadline = skt_now() + g_seconds * 0.3;
    uint64_t seq = 0;
    long injected = 0, skipped = 0;
    for (; seq < MAX_ROUNDS && skt_now() < deadline; seq++) {
        size_t n = 0;
        bool framed = false;
        const struct skt_image *used;
        put_piece(&r, buf, &n, seeds, max_message, &framed, &used);
        int rc = sk_channel_inject(m->base.rt, false, buf, n);
        if (rc == SK_OK)
            injected++;
        else
            skipped++; /* near the ring's end: this round has no garbage */
        if (rc != SK_OK || framed)
            guaranteed[seq / 8] |= (unsigned char)(1u << (seq % 8));
        uint64_t magic = JUDGE_MAGIC, hash = judge_hash(seq);
        while ((rc = sk_tell(&m->base, "UUU", &magic, &seq, &hash)) == SK_EFULL)
            sched_yield();
        assert_rc(rc, SK_OK);
        wait_drained(m);
    }
    assert_rc(sk_stop(&m->base), SK_OK);
    assert_rc(sk_wait(&m->base, 30), SK_OK);
    assert_no_error(&m->base);
    long lost_guaranteed = 0, lost = 0;
    for (uint64_t k = 0; k < seq; k++) {
        bool seen = log->seen[k / 8] & (1u << (k % 8));
        if (!seen) {
            lost++;
            if (guaranteed[k / 8] & (1u << (k % 8))) {
                if (lost_guaranteed++ < 5)
                    print_error("seed %llu: message %llu was lost behind a well-framed piece\n",
                                (unsigned long long)g_seed, (unsigned long long)k);
            }
        }
    }
    print_message("to worker: seed %llu, %llu rounds (%ld with garbage), %ld valid, %ld "
                  "corrupt, %ld other, %ld lost behind garbage headers\n",
                  (unsigned long long)g_seed, (unsigned long long)seq, injected,
                  atomic_load(&log->valid), atomic_load(&log->corrupt), atomic_load(&log->other),
                  lost);
    assert_int_equal(atomic_load(&log->disorder), 0);
    assert_int_equal(atomic_load(&log->forged), 0);
    assert_int_equal(lost_guaranteed, 0);
    assert_int_equal(atomic_load(&log->valid), (long)seq - lost);
    free(buf);
    free(guaranteed);
    seeds_free(seeds);
}

int main(int argc, char **argv)
{
    const char *s = getenv("SKPROC_FUZZ_SEED");
    if (s != NULL && *s)
        g_seed = strtoull(s, NULL, 0);
    s = getenv("SKPROC_FUZZ_SECONDS");
    if (s != NULL && *s)
        g_seconds = strtod(s, NULL);
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_decoder_random_corruption),
        SKT_TEST(test_channel_to_parent_random_frames),
        SKT_TEST(test_channel_to_worker_random_frames),
    };
    return skt_run(argc, argv, tests);
}
