/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the messaging tests (test_messaging*.c): message
 * contents the receiver can recompute, retrying a tell on SK_EFULL, a tpl
 * image made by hand, and failing a worker with a code's name. The frame
 * layout and the C structs of the S(...) formats are in codec_support.h.
 * Header only: every helper is static inline, so each test
 * program takes what it uses.
 *
 * Include after <cmocka.h>.
 */
#ifndef SKPROC_TEST_MESSAGING_SUPPORT_H
#define SKPROC_TEST_MESSAGING_SUPPORT_H

#include "support.h"
#include "codec_support.h"

#include <sched.h>
#include <tpl.h>

/* ------------------------------------------------------------ contents */

/* A well-mixed 64-bit value per index: message contents the receiver can
 * recompute, so nothing needs to be kept to check them. */
static inline uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static inline void pattern_fill(unsigned char *buf, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i += 8) {
        uint64_t v = mix64(seed + i);
        memcpy(buf + i, &v, n - i < 8 ? n - i : 8);
    }
}

/* The index of the first byte that differs from the pattern, or n. */
static inline size_t pattern_check(const unsigned char *buf, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i += 8) {
        uint64_t v = mix64(seed + i);
        size_t k = n - i < 8 ? n - i : 8;
        if (memcmp(buf + i, &v, k) != 0) {
            const unsigned char *want = (const unsigned char *)&v;
            size_t j = 0;
            while (buf[i + j] == want[j])
                j++;
            return i + j;
        }
    }
    return n;
}

/* ---------------------------------------------------------------- tell */

/* tell never blocks: a sender with nothing else to do retries SK_EFULL,
 * yielding the CPU to the reader. */
#define TELL_RETRY(rc, p, ...)                                                                     \
    do {                                                                                           \
        while (((rc) = sk_tell((p), __VA_ARGS__)) == SK_EFULL)                                     \
            sched_yield();                                                                         \
    } while (0)

/* Fails the worker self with rc (-1 for SK_OK) and the code's name. */
#define FAIL_RC(self, rc, what) sk_fail((self), (rc) ? (rc) : -1, "%s: %s", (what), sk_strerror(rc))

/* -------------------------------------------------------------- images */

/* A tpl image of one int32, made by tpl itself. */
static inline void *image_of_int(int32_t v, size_t *len)
{
    tpl_node *tn = tpl_map("i", &v);
    assert_non_null(tn);
    assert_int_equal(tpl_pack(tn, 0), 0);
    void *img = NULL;
    assert_int_equal(tpl_dump(tn, TPL_MEM, &img, len), 0);
    tpl_free(tn);
    return img;
}

#endif
