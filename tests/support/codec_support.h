/* SPDX-License-Identifier: MIT */
/*
 * Fixtures for the image codec and the frame layout, shared by the tests
 * (test_message.c, test_messaging*.c) and the libFuzzer target
 * (fuzz/fuzz_decoder.c): nothing here needs cmocka.
 *
 *   structs   the C twins of the S(...) formats the tests use
 *   frames    the frame layout channel.c writes, and put_frame
 *   images    tpl images of fourteen kinds of format whose values come
 *             from a source (a pseudo-random generator in the tests, the
 *             fuzzer's input in fuzz_decoder), each also packed by
 *             sk_msg_pack, which must write the same bytes
 *   probes    unpacking an image with a kind's format, and the decoder's
 *             invariants on any input (skt_check_decode)
 *
 * Header only: every helper is static inline. Needs codec/message.h (with
 * -Iskproc) and tpl.
 */
#ifndef SKPROC_TEST_CODEC_SUPPORT_H
#define SKPROC_TEST_CODEC_SUPPORT_H

#include "skproc.h"
#include "codec/message.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tpl.h>

/* ------------------------------------------------------------- structs */

/* The C twins of S(is), S(cif), S(i$(Ii$(Ijc))) and S(ii). tpl lays S(...)
 * out as the C compiler would for a flat struct ($(...) flattened); the
 * nesting of lvl0 gives the same offsets (checked below). */
struct is {
    int32_t i;
    char *s;
};

/* Padding after c (to i) and after i (to f). */
struct cif {
    char c;
    int32_t i;
    double f;
};

struct lvl2 {
    int64_t I;
    int16_t j;
    char c;
};
struct lvl1 {
    int64_t I;
    int32_t i;
    struct lvl2 in;
};
struct lvl0 {
    int32_t i;
    struct lvl1 in;
};
/* tpl's flat layout: i@0 I@8 i@16 I@24 j@32 c@34, stride 40. */
_Static_assert(offsetof(struct lvl0, in.I) == 8, "layout");
_Static_assert(offsetof(struct lvl0, in.i) == 16, "layout");
_Static_assert(offsetof(struct lvl0, in.in.I) == 24, "layout");
_Static_assert(offsetof(struct lvl0, in.in.j) == 32, "layout");
_Static_assert(offsetof(struct lvl0, in.in.c) == 34, "layout");
_Static_assert(sizeof(struct lvl0) == 40, "layout");

struct ii {
    int32_t a, b;
};

/* -------------------------------------------------------------- frames */

/* The frame layout is the one channel.h documents: u32 magic, u32 length,
 * the image, padding to 8. The magic values are copied here on purpose
 * (as channel.c writes them): a change to the wire format should make the
 * tests fail loudly. */
#define FRAME_MAGIC 0x534b4d47u /* "SKMG" */
#define WRAP_MAGIC 0x534b5750u  /* "SKWP" */

static inline size_t align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

/* Appends a frame as channel.c writes it (header, body, zero padding to
 * 8) to out at *n. */
static inline void put_frame(unsigned char *out, size_t *n, uint32_t magic, uint32_t len,
                             const void *body, size_t body_len)
{
    memcpy(out + *n, &magic, 4);
    memcpy(out + *n + 4, &len, 4);
    if (body_len)
        memcpy(out + *n + 8, body, body_len);
    size_t end = *n + 8 + body_len;
    size_t padded = *n + align8(8 + body_len);
    memset(out + end, 0, padded - end);
    *n = padded;
}

/* -------------------------------------------------------------- images */

/* Where a generated image's values come from: take(ctx, k) gives the next
 * value, made of k bytes (a generator may give 64 bits whatever k is). */
struct skt_source {
    uint64_t (*take)(void *ctx, unsigned k);
    void *ctx;
};

static inline uint64_t skt_take(struct skt_source *s, unsigned k)
{
    return s->take(s->ctx, k);
}

/* A value below n (0 when n is 0). */
static inline uint32_t skt_below(struct skt_source *s, uint32_t n)
{
    unsigned k = n <= 0x100 ? 1 : n <= 0x10000 ? 2 : 4;
    return n ? (uint32_t)(skt_take(s, k) % n) : 0;
}

enum skt_kind {
    SKT_K_INT,
    SKT_K_ATOMS,
    SKT_K_STR,
    SKT_K_BIN,
    SKT_K_IARR,
    SKT_K_SARR,
    SKT_K_STRUCT,
    SKT_K_STRUCTS,
    SKT_K_NESTED,
    SKT_K_MIXED,
    SKT_K_A_INT,
    SKT_K_A_STRUCT,
    SKT_K_A_NESTED,
    SKT_K_A_MIXED,
    SKT_K_COUNT
};

static const char *const skt_kind_format[SKT_K_COUNT] = {
    "i",       "iuIUjvcf",         "s",           "B",    "i#",       "s#",       "S(is)",
    "S(cif)#", "S(i$(Ii$(Ijc)))#", "cS(ii)sBU#f", "A(i)", "A(S(is))", "A(iA(s))", "sA(U)",
};

/* Formats with A(...): sk_msg_unpack cannot fill them (SK_EINVAL). */
static inline int skt_kind_has_array(enum skt_kind k)
{
    return k >= SKT_K_A_INT;
}

/* An image of one kind: tpl's (img) and skproc's (mine, NULL for the A(...)
 * kinds, which sk_msg_pack does not write). */
struct skt_image {
    enum skt_kind kind;
    int n; /* the '#' length of i#; fixed for the others */
    unsigned char *img;
    size_t len;
    unsigned char *mine;
    size_t mine_len;
};

static inline void skt_image_free(struct skt_image *im)
{
    free(im->img);
    free(im->mine);
    im->img = im->mine = NULL;
}

/* Text of printable characters up to cap - 1 long, or NULL (one in 8). */
static inline char *skt_take_text(struct skt_source *s, char *buf, size_t cap)
{
    if (skt_below(s, 8) == 0)
        return NULL;
    size_t n = skt_below(s, (uint32_t)cap);
    for (size_t k = 0; k < n; k++)
        buf[k] = (char)(' ' + skt_below(s, 95));
    buf[n] = '\0';
    return buf;
}

static inline void skt_take_bytes(struct skt_source *s, unsigned char *out, size_t n)
{
    for (size_t q = 0; q < n; q++)
        out[q] = (unsigned char)skt_take(s, 1);
}

/* tpl packs, and so does skproc's own encoder. */
#define SKT_BOTH(fmt, ...)                                                                         \
    do {                                                                                           \
        tn = tpl_map(fmt, __VA_ARGS__);                                                            \
        if (tn != NULL)                                                                            \
            tpl_pack(tn, 0);                                                                       \
        mine_rc = sk_image_pack(&mine, &im->mine_len, fmt, __VA_ARGS__);                           \
    } while (0)

/* Makes an image of kind k whose values come from s. Returns NULL, or what
 * went wrong: then im holds what was made (both images when they differ),
 * for the caller to print before skt_image_free. */
static inline const char *skt_image_make(struct skt_source *s, enum skt_kind k,
                                         struct skt_image *im)
{
    char t1[48], t2[48], t3[48], t4[48];
    unsigned char bytes[64];
    memset(im, 0, sizeof *im);
    im->kind = k;
    im->n = 1 + (int)skt_below(s, 16);
    tpl_node *tn = NULL;
    void *mine = NULL;
    int mine_rc = SK_OK;
    switch (k) {
    case SKT_K_INT: {
        int32_t v = (int32_t)skt_take(s, 4);
        SKT_BOTH("i", &v);
        break;
    }
    case SKT_K_ATOMS: {
        int32_t i = (int32_t)skt_take(s, 4);
        uint32_t u = (uint32_t)skt_take(s, 4);
        int64_t I = (int64_t)skt_take(s, 8);
        uint64_t U = skt_take(s, 8);
        int16_t j = (int16_t)skt_take(s, 2);
        uint16_t v = (uint16_t)skt_take(s, 2);
        char c = (char)skt_take(s, 1);
        double f = (double)(int64_t)skt_take(s, 8) / 7.0;
        SKT_BOTH("iuIUjvcf", &i, &u, &I, &U, &j, &v, &c, &f);
        break;
    }
    case SKT_K_STR: {
        char *str = skt_take_text(s, t1, sizeof t1);
        SKT_BOTH("s", &str);
        break;
    }
    case SKT_K_BIN: {
        tpl_bin b = {.addr = bytes, .sz = skt_below(s, sizeof bytes)};
        skt_take_bytes(s, bytes, b.sz);
        if (b.sz == 0)
            b.addr = NULL;
        SKT_BOTH("B", &b);
        break;
    }
    case SKT_K_IARR: {
        int32_t a[16];
        for (int q = 0; q < im->n; q++)
            a[q] = (int32_t)skt_take(s, 4);
        SKT_BOTH("i#", a, im->n);
        break;
    }
    case SKT_K_SARR: {
        char *strs[4] = {skt_take_text(s, t1, 48), skt_take_text(s, t2, 48),
                         skt_take_text(s, t3, 48), skt_take_text(s, t4, 48)};
        im->n = 4;
        SKT_BOTH("s#", strs, 4);
        break;
    }
    case SKT_K_STRUCT: {
        struct is v;
        v.i = (int32_t)skt_take(s, 4);
        v.s = skt_take_text(s, t1, sizeof t1);
        SKT_BOTH("S(is)", &v);
        break;
    }
    case SKT_K_STRUCTS: {
        struct cif v[3];
        memset(v, 0, sizeof v);
        for (int q = 0; q < 3; q++) {
            v[q].c = (char)skt_take(s, 1);
            v[q].i = (int32_t)skt_take(s, 4);
            v[q].f = (double)q;
        }
        im->n = 3;
        SKT_BOTH("S(cif)#", v, 3);
        break;
    }
    case SKT_K_NESTED: {
        struct lvl0 v[2];
        memset(v, 0, sizeof v);
        for (int q = 0; q < 2; q++) {
            v[q].i = (int32_t)skt_take(s, 4);
            v[q].in.I = (int64_t)skt_take(s, 8);
            v[q].in.in.c = (char)skt_take(s, 1);
        }
        im->n = 2;
        SKT_BOTH("S(i$(Ii$(Ijc)))#", v, 2);
        break;
    }
    case SKT_K_MIXED: {
        char c = (char)skt_take(s, 1);
        struct ii pair;
        pair.a = (int32_t)skt_take(s, 4);
        pair.b = (int32_t)skt_take(s, 4);
        char *str = skt_take_text(s, t1, sizeof t1);
        tpl_bin b = {.addr = bytes, .sz = 1 + skt_below(s, 63)};
        skt_take_bytes(s, bytes, b.sz);
        uint64_t U[2];
        U[0] = skt_take(s, 8);
        U[1] = skt_take(s, 8);
        double f = 1.5;
        im->n = 2;
        SKT_BOTH("cS(ii)sBU#f", &c, &pair, &str, &b, U, 2, &f);
        break;
    }
    case SKT_K_A_INT: {
        int32_t v;
        tn = tpl_map("A(i)", &v);
        for (uint32_t q = skt_below(s, 20); tn != NULL && q > 0; q--) {
            v = (int32_t)skt_take(s, 4);
            tpl_pack(tn, 1);
        }
        break;
    }
    case SKT_K_A_STRUCT: {
        struct is v;
        tn = tpl_map("A(S(is))", &v);
        for (uint32_t q = skt_below(s, 5); tn != NULL && q > 0; q--) {
            v.i = (int32_t)skt_take(s, 4);
            v.s = skt_take_text(s, t1, sizeof t1);
            tpl_pack(tn, 1);
        }
        break;
    }
    case SKT_K_A_NESTED: {
        int32_t i;
        char *str;
        tn = tpl_map("A(iA(s))", &i, &str);
        for (uint32_t q = skt_below(s, 4); tn != NULL && q > 0; q--) {
            i = (int32_t)q;
            for (uint32_t w = skt_below(s, 4); w > 0; w--) {
                str = skt_take_text(s, t1, 16);
                tpl_pack(tn, 2);
            }
            tpl_pack(tn, 1);
        }
        break;
    }
    case SKT_K_A_MIXED: {
        char *str = skt_take_text(s, t1, sizeof t1);
        uint64_t u;
        tn = tpl_map("sA(U)", &str, &u);
        if (tn != NULL)
            tpl_pack(tn, 0);
        for (uint32_t q = skt_below(s, 6); tn != NULL && q > 0; q--) {
            u = skt_take(s, 8);
            tpl_pack(tn, 1);
        }
        break;
    }
    case SKT_K_COUNT:
        break;
    }
    im->mine = mine;
    if (tn == NULL)
        return "tpl_map of a fixed format failed";
    void *img = NULL;
    int dumped = tpl_dump(tn, TPL_MEM, &img, &im->len);
    tpl_free(tn);
    if (dumped != 0)
        return "tpl_dump failed";
    im->img = img;
    if (mine_rc != SK_OK)
        return "sk_msg_pack of a fixed format failed";
    if (mine != NULL && (im->mine_len != im->len || memcmp(mine, img, im->len) != 0))
        return "sk_msg_pack and tpl_dump differ";
    return NULL;
}

#undef SKT_BOTH

/* -------------------------------------------------------------- probes */

/* Unpacks img with the format of kind k (n: the '#' length of i#), freeing
 * what it allocates. */
static inline int skt_probe(enum skt_kind k, int n, const void *img, size_t len)
{
    int rc = SK_EINVAL;
    switch (k) {
    case SKT_K_INT: {
        int32_t v;
        rc = sk_image_unpack(img, len, "i", &v);
        break;
    }
    case SKT_K_ATOMS: {
        int32_t i;
        uint32_t u;
        int64_t I;
        uint64_t U;
        int16_t j;
        uint16_t v;
        char c;
        double f;
        rc = sk_image_unpack(img, len, "iuIUjvcf", &i, &u, &I, &U, &j, &v, &c, &f);
        break;
    }
    case SKT_K_STR: {
        char *s = NULL;
        rc = sk_image_unpack(img, len, "s", &s);
        if (rc == SK_OK)
            free(s);
        break;
    }
    case SKT_K_BIN: {
        tpl_bin b = {0};
        rc = sk_image_unpack(img, len, "B", &b);
        if (rc == SK_OK)
            free(b.addr);
        break;
    }
    case SKT_K_IARR: {
        int32_t a[16];
        rc = sk_image_unpack(img, len, "i#", a, n < 1 ? 1 : n > 16 ? 16 : n);
        break;
    }
    case SKT_K_SARR: {
        char *s[4] = {NULL};
        rc = sk_image_unpack(img, len, "s#", s, 4);
        if (rc == SK_OK)
            for (int q = 0; q < 4; q++)
                free(s[q]);
        break;
    }
    case SKT_K_STRUCT: {
        struct is v = {0, NULL};
        rc = sk_image_unpack(img, len, "S(is)", &v);
        if (rc == SK_OK)
            free(v.s);
        break;
    }
    case SKT_K_STRUCTS: {
        struct cif v[3];
        rc = sk_image_unpack(img, len, "S(cif)#", v, 3);
        break;
    }
    case SKT_K_NESTED: {
        struct lvl0 v[2];
        rc = sk_image_unpack(img, len, "S(i$(Ii$(Ijc)))#", v, 2);
        break;
    }
    case SKT_K_MIXED: {
        char c;
        struct ii pair;
        char *s = NULL;
        tpl_bin b = {0};
        uint64_t U[2];
        double f;
        rc = sk_image_unpack(img, len, "cS(ii)sBU#f", &c, &pair, &s, &b, U, 2, &f);
        if (rc == SK_OK) {
            free(s);
            free(b.addr);
        }
        break;
    }
    case SKT_K_A_INT:
    case SKT_K_A_STRUCT:
    case SKT_K_A_NESTED:
    case SKT_K_A_MIXED: {
        uint64_t sink[8];
        rc = sk_image_unpack(img, len, skt_kind_format[k], sink, sink, sink);
        break;
    }
    case SKT_K_COUNT:
        break;
    }
    return rc;
}

/* The '#' length of a kind's format (i# has its own). */
struct skt_probe_spec {
    enum skt_kind kind;
    int n;
};

/* One input (in a buffer of exactly len bytes) against the decoder's
 * invariants: sk_msg_validate says SK_OK or SK_EFORMAT, and sk_msg_format
 * agrees with it; each probe's unpack is SK_EINVAL for the A(...) kinds,
 * SK_OK or SK_EFORMAT for the others, and SK_OK only on a valid image of
 * exactly that format. Returns NULL, or what broke (in a static buffer).
 * *valid (when not NULL) is set to whether the image validates. */
static inline const char *skt_check_decode(const void *in, size_t len,
                                           const struct skt_probe_spec *probes, int n_probes,
                                           int *valid)
{
    static char format[SK_MSG_MAX_FORMAT + 1];
    static char why[SK_MSG_MAX_FORMAT + 256];
    int v = sk_msg_validate(in, len);
    if (valid != NULL)
        *valid = v == SK_OK;
    if (v != SK_OK && v != SK_EFORMAT) {
        snprintf(why, sizeof why, "validate returned %d (%s), want SK_OK or SK_EFORMAT", v,
                 sk_strerror(v));
        return why;
    }
    int f = sk_msg_format(in, len, format, sizeof format);
    if ((v == SK_OK) != (f == SK_OK)) {
        snprintf(why, sizeof why, "validate says %s, format says %s", sk_strerror(v),
                 sk_strerror(f));
        return why;
    }
    for (int k = 0; k < n_probes; k++) {
        enum skt_kind kind = probes[k].kind;
        int rc = skt_probe(kind, probes[k].n, in, len);
        if (skt_kind_has_array(kind)) {
            if (rc != SK_EINVAL) {
                snprintf(why, sizeof why, "unpack with %s returned %s, want SK_EINVAL",
                         skt_kind_format[kind], sk_strerror(rc));
                return why;
            }
            continue;
        }
        if (rc != SK_OK && rc != SK_EFORMAT) {
            snprintf(why, sizeof why, "unpack with %s returned %d (%s)", skt_kind_format[kind], rc,
                     sk_strerror(rc));
            return why;
        }
        if (rc == SK_OK && (v != SK_OK || strcmp(format, skt_kind_format[kind]) != 0)) {
            snprintf(why, sizeof why, "unpack with %s worked on an image that validates as %s (%s)",
                     skt_kind_format[kind], sk_strerror(v), v == SK_OK ? format : "-");
            return why;
        }
    }
    return NULL;
}

#endif
