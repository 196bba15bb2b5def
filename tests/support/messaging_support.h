/*
 * Helpers shared by the messaging tests (test_messaging*.c): the watchdog
 * that turns a hang into a failure naming the test, message contents the
 * receiver can recompute, retrying a tell on SK_EFULL, tpl images and
 * channel frames made by hand, failing a worker with a code's name, and
 * the C structs of the S(...) formats.
 * Header only, like support.h: every helper is static inline, so each
 * test program takes what it uses.
 *
 * Include after <cmocka.h>.
 */
#ifndef SKPROC_TEST_MESSAGING_SUPPORT_H
#define SKPROC_TEST_MESSAGING_SUPPORT_H

#include "support.h"

#include <sched.h>
#include <tpl.h>

/* ------------------------------------------------------------ watchdog */

/* TEST(f) runs f with an alarm: a test that makes no progress for
 * WATCHDOG_SECONDS ends the program (exit 124) with a message, and
 * skt_teardown runs after every test. */
#define WATCHDOG_SECONDS 120

static inline void watchdog_fired(int sig)
{
    (void)sig;
    static const char msg[] = "\nwatchdog: the test hung (no progress in 120 s)\n";
    ssize_t n = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)n;
    _exit(124);
}

static inline int watchdog_arm(void **state)
{
    (void)state;
    signal(SIGALRM, watchdog_fired);
    alarm(WATCHDOG_SECONDS);
    return 0;
}

static inline int watchdog_disarm(void **state)
{
    alarm(0);
    return skt_teardown(state);
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, watchdog_arm, watchdog_disarm)

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

#endif
