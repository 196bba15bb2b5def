/*
 * libFuzzer target for skproc's message decoder and the channel's frame
 * parser.
 *
 * Each input goes three ways:
 *   1. straight to the decoder: sk_msg_validate, sk_msg_format and
 *      sk_msg_unpack with a handful of fixed formats (with real pointers);
 *   2. as raw bytes into the ring to the parent of a process-less runtime
 *      (sk_channel_inject), drained with sk_listen and sk_listen_message:
 *      the frame parser sees garbage headers, wrap markers, lengths past
 *      what was published, ...;
 *   3. wrapped in one well-formed frame header, so the bytes reach the
 *      decoder through the channel; there listen must agree with
 *      sk_msg_validate (a valid image arrives as it is, anything else is
 *      SK_ECORRUPT).
 * A broken invariant calls abort(), which libFuzzer reports as a crash with
 * the input saved; ASan/UBSan report the memory errors.
 *
 * The runtime needs no process: a parent-role sk_runtime whose rings live in
 * a heap buffer, marked finished so that an empty ring answers SK_ECLOSED at
 * once (no waitid, no futex wait). max_message is 64 KiB, below the 1 MiB
 * grain under which consumed frames are never given back with fallocate, so
 * the memfd the runtime lacks is never used.
 *
 * Build (from the top of the repository; clang 14 with compiler-rt's
 * libFuzzer, Debian package clang-14 / libclang-rt-14-dev):
 *
 *   clang -std=c11 -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
 *       -Iinclude -Iskproc fuzz/fuzz_decoder.c skproc/[a-z]*.c -ltpl -lpthread -lm \
 *       -o build/fuzz_decoder
 *
 * Run for a bounded time (CI: a minute; locally as long as you like):
 *
 *   mkdir -p build/fuzz-corpus
 *   build/fuzz_decoder -max_total_time=60 -max_len=4096 build/fuzz-corpus
 *
 * Reproduce a crash: build/fuzz_decoder crash-<sha1>.
 *
 *   4. when bit 1 of the first byte is set, the payload also picks a format
 *      and values, tpl packs them (and so does sk_msg_pack, whose image must
 *      be byte-identical), and the rest of the payload names bytes
 *      to damage in the image (position, xor), which then goes through
 *      steps 1 and 3: valid-looking images without a seed corpus.
 *
 * Input layout: the first byte is free-form (bit 0 chooses whether step 3
 * sees the bytes after it or the whole input; bit 1 enables step 4); the
 * rest is the payload.
 */
#include "core/channel.h"
#include "codec/message.h"
#include "core/runtime.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tpl.h>

#define FUZZ_CAPACITY 4096
#define FUZZ_MAX_MESSAGE (64 << 10)

static struct sk_runtime rt;
static struct sk_shared shared;
static sk_process proc;

static int never_run(sk_process *self)
{
    (void)self;
    return 0;
}

static const sk_class fuzz_class = {.name = "fuzz", .run = never_run};

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_decoder: invariant broken: %s\n", what);
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    size_t span = sk_channel_span(FUZZ_CAPACITY, FUZZ_MAX_MESSAGE);
    char *rings = aligned_alloc(4096, span);
    check(rings != NULL, "ring memory");
    memset(rings, 0, span);
    rt.role = SK_ROLE_PARENT;
    rt.started = true;
    rt.finished = true; /* nothing more will be published: empty means closed */
    rt.sh = &shared;
    rt.memfd = rt.doorbell = rt.msg_doorbell = rt.epoll_fd = rt.epoll_pidfd = -1;
    rt.child_pidfd = -1;
    rt.hook_section = -1;
    sk_channel_init(&rt, rings, 0, FUZZ_CAPACITY, FUZZ_MAX_MESSAGE);
    proc.cls = &fuzz_class;
    proc.rt = &rt;
    sk_tpl_hooks_install();
    return 0;
}

static void ring_reset(void)
{
    atomic_store(&rt.to_parent->ctl->head, 0);
    atomic_store(&rt.to_parent->ctl->tail, 0);
    rt.ep.peeked = 0;
}

/* ------------------------------------------------------------ decoder */

struct is {
    int32_t i;
    char *s;
};
struct cif {
    char c;
    int32_t i;
    double f;
};

static int unpack(const void *img, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = sk_msg_unpack(img, len, fmt, ap);
    va_end(ap);
    return rc;
}

/* An unpack that worked needs a valid image of exactly that format. */
static void after_unpack(int rc, int valid, const char *format, const char *fmt)
{
    check(rc == SK_OK || rc == SK_EFORMAT, "unpack returns SK_OK or SK_EFORMAT");
    if (rc == SK_OK)
        check(valid == SK_OK && strcmp(format, fmt) == 0, "unpack only what validates as fmt");
}

static void decode(const uint8_t *img, size_t len)
{
    static char format[SK_MSG_MAX_FORMAT + 1];
    int valid = sk_msg_validate(img, len);
    check(valid == SK_OK || valid == SK_EFORMAT, "validate returns SK_OK or SK_EFORMAT");
    int f = sk_msg_format(img, len, format, sizeof format);
    check((valid == SK_OK) == (f == SK_OK), "validate and format agree");
    if (f != SK_OK)
        format[0] = '\0';

    int32_t i;
    after_unpack(unpack(img, len, "i", &i), valid, format, "i");

    char *s = NULL;
    int rc = unpack(img, len, "s", &s);
    after_unpack(rc, valid, format, "s");
    if (rc == SK_OK)
        free(s);

    tpl_bin b = {0};
    rc = unpack(img, len, "B", &b);
    after_unpack(rc, valid, format, "B");
    if (rc == SK_OK)
        free(b.addr);

    struct is st = {0, NULL};
    rc = unpack(img, len, "S(is)", &st);
    after_unpack(rc, valid, format, "S(is)");
    if (rc == SK_OK)
        free(st.s);

    int32_t arr[4];
    after_unpack(unpack(img, len, "i#", arr, 4), valid, format, "i#");

    struct cif cifs[3];
    after_unpack(unpack(img, len, "S(cif)#", cifs, 3), valid, format, "S(cif)#");

    char *strs[2] = {NULL, NULL};
    rc = unpack(img, len, "s#", strs, 2);
    after_unpack(rc, valid, format, "s#");
    if (rc == SK_OK) {
        free(strs[0]);
        free(strs[1]);
    }

    uint32_t u;
    int64_t I;
    uint64_t U;
    int16_t j;
    uint16_t v;
    char c;
    double d;
    after_unpack(unpack(img, len, "iuIUjvcf", &i, &u, &I, &U, &j, &v, &c, &d), valid, format,
                 "iuIUjvcf");

    /* Arrays cannot be unpacked through a variadic call. */
    check(unpack(img, len, "A(i)", &i) == SK_EINVAL, "A(...) unpack is SK_EINVAL");
}

/* ------------------------------------------------------------ channel */

/* Drains the ring: listen answers SK_OK, SK_EFORMAT or SK_ECORRUPT until
 * SK_ECLOSED, within a bound (every frame is at least 8 bytes). Returns
 * the number of messages received; *first gets the first one's image. */
static int drain(size_t published, sk_message **first)
{
    int received = 0;
    size_t bound = 2 * (published / 8) + 4;
    for (size_t turn = 0; turn < bound; turn++) {
        int rc;
        if (turn % 2 == 1 && first == NULL) {
            int32_t v;
            rc = sk_listen(&proc, 0, "i", &v);
        } else {
            sk_message *msg = NULL;
            rc = sk_listen_message(&proc, 0, &msg);
            if (rc == SK_OK) {
                size_t len;
                const void *img = sk_message_image(msg, &len);
                check(sk_msg_validate(img, len) == SK_OK, "a received message validates");
                check(sk_message_format(msg) != NULL, "a received message has a format");
                if (first != NULL && *first == NULL)
                    *first = msg;
                else
                    sk_message_free(msg);
            }
        }
        if (rc == SK_ECLOSED)
            return received;
        check(rc == SK_OK || rc == SK_EFORMAT || rc == SK_ECORRUPT,
              "listen returns SK_OK, SK_EFORMAT, SK_ECORRUPT or SK_ECLOSED");
        if (rc == SK_OK)
            received++;
    }
    check(0, "the ring drains within its bound");
    return received;
}

static void channel_raw(const uint8_t *data, size_t size)
{
    ring_reset();
    if (size == 0)
        return;
    if (sk_channel_inject(&rt, true, data, size) != SK_OK)
        return; /* larger than the ring */
    drain(size, NULL);
}

static void channel_framed(const uint8_t *img, size_t len)
{
    if (len == 0 || len > FUZZ_MAX_MESSAGE)
        return;
    static uint8_t frame[8 + FUZZ_MAX_MESSAGE + 8];
    uint32_t magic = 0x534b4d47u, n = (uint32_t)len; /* "SKMG", as channel.c writes */
    memcpy(frame, &magic, 4);
    memcpy(frame + 4, &n, 4);
    memcpy(frame + 8, img, len);
    ring_reset();
    if (sk_channel_inject(&rt, true, frame, 8 + len) != SK_OK)
        return;
    sk_message *msg = NULL;
    int received = drain(8 + len, &msg);
    int valid = sk_msg_validate(img, len);
    if (valid == SK_OK) {
        check(received == 1 && msg != NULL, "a valid framed image arrives");
        size_t got;
        const void *bytes = sk_message_image(msg, &got);
        check(got == len && memcmp(bytes, img, len) == 0, "it arrives unchanged");
    } else {
        check(received == 0, "an invalid framed image is dropped");
    }
    sk_message_free(msg);
}

/* ---------------------------------------------------- structured input */

/* Reads up to k bytes of the input into out (zero-filled past its end). */
static void take(const uint8_t **p, size_t *n, void *out, size_t k)
{
    size_t m = *n < k ? *n : k;
    memset(out, 0, k);
    memcpy(out, *p, m);
    *p += m;
    *n -= m;
}

static uint8_t take8(const uint8_t **p, size_t *n)
{
    uint8_t v;
    take(p, n, &v, 1);
    return v;
}

/* A string of up to 15 bytes from the input, or NULL. */
static char *take_string(const uint8_t **p, size_t *n, char buf[16])
{
    uint8_t len = take8(p, n);
    if (len == 0xff)
        return NULL;
    len %= 16;
    take(p, n, buf, len);
    buf[len] = '\0';
    return buf;
}

/* skproc's own encoder, for comparison with tpl's. */
static void *sk_pack(size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    void *img = NULL;
    int rc = sk_msg_pack(fmt, ap, &img, len);
    va_end(ap);
    check(rc == SK_OK, "sk_msg_pack of a fixed format");
    return img;
}

/* Packs with tpl and with skproc at once. */
#define BOTH(fmt, ...)                                                                             \
    do {                                                                                           \
        tn = tpl_map(fmt, __VA_ARGS__);                                                            \
        tpl_pack(tn, 0);                                                                           \
        mine = sk_pack(&mine_len, fmt, __VA_ARGS__);                                               \
    } while (0)

/* A real tpl image (made by tpl) whose format and values the input picks,
 * then damaged at the places the rest of the input names: the fuzzer gets
 * deep into the decoder without a seed corpus. */
static void structured(const uint8_t *p, size_t n)
{
    char t1[16], t2[16];
    tpl_node *tn = NULL;
    void *mine = NULL; /* the same values through sk_msg_pack, when it can */
    size_t mine_len = 0;
    switch (take8(&p, &n) % 11) {
    case 0: {
        int32_t v;
        take(&p, &n, &v, 4);
        BOTH("i", &v);
        break;
    }
    case 1: {
        char *s = take_string(&p, &n, t1);
        BOTH("s", &s);
        break;
    }
    case 2: {
        uint8_t bytes[15];
        tpl_bin b = {.addr = bytes, .sz = take8(&p, &n) % 16};
        take(&p, &n, bytes, b.sz);
        if (b.sz == 0)
            b.addr = NULL;
        BOTH("B", &b);
        break;
    }
    case 3: {
        struct is v;
        take(&p, &n, &v.i, 4);
        v.s = take_string(&p, &n, t1);
        BOTH("S(is)", &v);
        break;
    }
    case 4: {
        int32_t a[4];
        take(&p, &n, a, sizeof a);
        BOTH("i#", a, 4);
        break;
    }
    case 5: {
        struct cif v[3];
        memset(v, 0, sizeof v);
        for (int k = 0; k < 3; k++) {
            v[k].c = (char)take8(&p, &n);
            take(&p, &n, &v[k].i, 4);
        }
        BOTH("S(cif)#", v, 3);
        break;
    }
    case 6: {
        char *a[2] = {take_string(&p, &n, t1), take_string(&p, &n, t2)};
        BOTH("s#", a, 2);
        break;
    }
    case 7: {
        int32_t v;
        tn = tpl_map("A(i)", &v);
        for (int k = take8(&p, &n) % 8; k > 0; k--) {
            take(&p, &n, &v, 4);
            tpl_pack(tn, 1);
        }
        break;
    }
    case 8: {
        struct is v;
        tn = tpl_map("A(S(is))", &v);
        for (int k = take8(&p, &n) % 4; k > 0; k--) {
            take(&p, &n, &v.i, 4);
            v.s = take_string(&p, &n, t1);
            tpl_pack(tn, 1);
        }
        break;
    }
    case 9: {
        int32_t v;
        char *s;
        tn = tpl_map("A(iA(s))", &v, &s);
        for (int k = take8(&p, &n) % 4; k > 0; k--) {
            take(&p, &n, &v, 4);
            for (int q = take8(&p, &n) % 4; q > 0; q--) {
                s = take_string(&p, &n, t1);
                tpl_pack(tn, 2);
            }
            tpl_pack(tn, 1);
        }
        break;
    }
    default: {
        char *s = take_string(&p, &n, t1);
        uint64_t u;
        tn = tpl_map("sA(U)", &s, &u);
        tpl_pack(tn, 0);
        for (int k = take8(&p, &n) % 4; k > 0; k--) {
            take(&p, &n, &u, 8);
            tpl_pack(tn, 1);
        }
        break;
    }
    }
    check(tn != NULL, "tpl_map of a fixed format");
    void *img = NULL;
    size_t len = 0;
    check(tpl_dump(tn, TPL_MEM, &img, &len) == 0, "tpl_dump");
    tpl_free(tn);
    check(sk_msg_validate(img, len) == SK_OK, "what tpl made validates");
    if (mine != NULL) {
        check(mine_len == len && memcmp(mine, img, len) == 0,
              "sk_msg_pack is byte-identical to tpl_dump");
        free(mine);
    }
    /* The damage: (position, xor) pairs; a last odd byte truncates. */
    while (n >= 3) {
        uint16_t at;
        take(&p, &n, &at, 2);
        ((uint8_t *)img)[at % len] ^= take8(&p, &n);
    }
    if (n == 1 && len > 1)
        len -= 1 + take8(&p, &n) % (len - 1);
    /* An exact-size copy: a read past the end is a heap overflow. */
    uint8_t *exact = malloc(len);
    check(exact != NULL, "malloc");
    memcpy(exact, img, len);
    free(img);
    decode(exact, len);
    channel_framed(exact, len);
    free(exact);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *payload = size ? data + 1 : data;
    size_t payload_len = size ? size - 1 : 0;
    decode(payload, payload_len);
    channel_raw(payload, payload_len);
    if (size && (data[0] & 1))
        channel_framed(data, size);
    else
        channel_framed(payload, payload_len);
    if (size && (data[0] & 2))
        structured(payload, payload_len);
    return 0;
}
