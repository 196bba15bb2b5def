/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for skproc's message decoder and the channel's frame
 * parser.
 *
 * Each input goes three ways:
 *   1. straight to the decoder: sk_msg_validate, sk_msg_format and
 *      sk_msg_unpack with the format of every kind of image the tests make
 *      (tests/support/codec_support.h), with real pointers;
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
 *       -Iinclude -Iskproc fuzz/fuzz_decoder.c $(find skproc -name '*.c') \
 *       -ltpl -lpthread -lm \
 *       -o build/fuzz_decoder
 *
 * The images of step 4, the probes of step 1 and the frame layout are the
 * tests' own fixtures (tests/support/codec_support.h, included by its path
 * from here, so no -I is needed for it).
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
#include "core/handle.h"
#include "core/runtime.h"

#include "../tests/support/codec_support.h"

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
    sk_handle_seal(&proc); /* as sk_init does: calls check the seal */
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

/* Step 1: the decoder's invariants (skt_check_decode) with the format of
 * every kind the tests make, i# with 4 elements. */
static void decode(const uint8_t *img, size_t len)
{
    static struct skt_probe_spec probes[SKT_K_COUNT];
    for (int k = 0; k < SKT_K_COUNT; k++)
        probes[k] = (struct skt_probe_spec){(enum skt_kind)k, 4};
    const char *why = skt_check_decode(img, len, probes, SKT_K_COUNT, NULL);
    check(why == NULL, why);
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
    size_t framed = 0;
    put_frame(frame, &framed, FRAME_MAGIC, (uint32_t)len, img, len);
    ring_reset();
    /* Without the padding: the parser must accept a frame that ends at
     * what was published. */
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

/* The input as a source of values: k bytes, little-endian, zeros past its
 * end. */
struct input {
    const uint8_t *p;
    size_t n;
};

static uint64_t input_take(void *ctx, unsigned k)
{
    struct input *in = ctx;
    uint64_t v = 0;
    for (unsigned q = 0; q < k && q < 8; q++)
        if (in->n > 0) {
            v |= (uint64_t)*in->p++ << (8 * q);
            in->n--;
        }
    return v;
}

/* A real tpl image (made by tpl) whose kind and values the input picks,
 * then damaged at the places the rest of the input names: the fuzzer gets
 * deep into the decoder without a seed corpus. skproc's own encoder must
 * write the same bytes as tpl_dump. */
static void structured(const uint8_t *p, size_t n)
{
    struct input in = {p, n};
    struct skt_source src = {input_take, &in};
    struct skt_image im;
    const char *why = skt_image_make(&src, (enum skt_kind)(input_take(&in, 1) % SKT_K_COUNT), &im);
    check(why == NULL, why == NULL ? "" : why);
    unsigned char *img = im.img;
    size_t len = im.len;
    check(sk_msg_validate(img, len) == SK_OK, "what tpl made validates");
    /* The damage: (position, xor) pairs; a last odd byte truncates. */
    while (in.n >= 3) {
        uint16_t at = (uint16_t)input_take(&in, 2);
        img[at % len] ^= (uint8_t)input_take(&in, 1);
    }
    if (in.n == 1 && len > 1)
        len -= 1 + input_take(&in, 1) % (len - 1);
    /* An exact-size copy: a read past the end is a heap overflow. */
    uint8_t *exact = malloc(len);
    check(exact != NULL, "malloc");
    memcpy(exact, img, len);
    skt_image_free(&im);
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
