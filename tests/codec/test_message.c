/* SPDX-License-Identifier: MIT */
/*
 * skproc/message.c: tpl formats to images and back.
 *
 * Round trips of every type, string and buffer ownership, format mismatches,
 * malformed formats, tpl's fatal errors (out of memory injected into every
 * allocation), and corrupt images: every truncation, every single-byte
 * change, 100,000 seeded random mutations and forged lengths. For images of
 * the base formats, every verdict is compared with tpl_load's and every
 * decoded value with tpl_unpack's. Nothing may reach stderr.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "support.h"

#include "codec/message.h"
#include "codec_support.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <tpl.h>
#include <unistd.h>

#define N_RANDOM_MUTATIONS 100000
#define FUZZ_SEED UINT64_C(0x5eed5eed2024)

/* ------------------------------------------------------------ helpers */

/* splitmix64: a fixed seed gives the same mutations on every run. */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static size_t rng_below(size_t n)
{
    return n == 0 ? 0 : (size_t)(rng_next() % n);
}

/* stderr goes to an anonymous file while tpl might print; the test checks
 * that it stayed empty. A failed assertion inside longjmps out: the teardown
 * then restores stderr and replays what was captured. */
static int saved_stderr = -1;
static int capture_fd = -1;

/* In sanitizer builds: where ASan/UBSan write their reports, so that one
 * raised while stderr is captured is not lost with it. */
extern void __sanitizer_set_report_fd(void *fd) __attribute__((weak));

static void restore_stderr(void *arg);

static void capture_stderr(void)
{
    skt_defer(restore_stderr, NULL);
    fflush(stderr);
    capture_fd = memfd_create("captured-stderr", MFD_CLOEXEC);
    assert_cmp(capture_fd, >=, 0);
    saved_stderr = dup(2);
    assert_cmp(saved_stderr, >=, 0);
    if (__sanitizer_set_report_fd != NULL)
        __sanitizer_set_report_fd((void *)(intptr_t)saved_stderr);
    assert_cmp(dup2(capture_fd, 2), ==, 2);
}

/* Restores stderr; returns how many bytes were written to it meanwhile. */
static off_t release_stderr(void)
{
    if (capture_fd < 0)
        return 0;
    fflush(stderr);
    dup2(saved_stderr, 2);
    if (__sanitizer_set_report_fd != NULL)
        __sanitizer_set_report_fd((void *)(intptr_t)2);
    close(saved_stderr);
    off_t size = lseek(capture_fd, 0, SEEK_END);
    if (size > 0) {
        char buf[4096];
        ssize_t n = pread(capture_fd, buf, sizeof buf, 0);
        if (n > 0)
            fprintf(stderr, "captured stderr: %.*s\n", (int)n, buf);
    }
    close(capture_fd);
    capture_fd = saved_stderr = -1;
    return size;
}

/* Deferred to the teardown by capture_stderr and the out-of-memory tests:
 * stderr back, allocations no longer failing. */
static void restore_stderr(void *arg)
{
    (void)arg;
    release_stderr();
    sk_msg_fail_alloc_after(-1);
}

static void free_image(void **img)
{
    free(*img);
    *img = NULL;
}

/* ------------------------------------------------------------ round trips */

static void test_round_trip_integers_and_floats(void **state)
{
    (void)state;
    int32_t i = INT32_MIN, i2 = 0;
    uint32_t u = UINT32_MAX, u2 = 0;
    int64_t big = INT64_MIN + 7, big2 = 0;
    uint64_t ubig = UINT64_MAX - 3, ubig2 = 0;
    int16_t j = -32768, j2 = 0;
    uint16_t v = 65535, v2 = 0;
    char c = 'z', c2 = 0;
    double f = -1.25e300, f2 = 0;
    void *img;
    size_t len;

    /* one type at a time */
    assert_int_equal(sk_image_pack(&img, &len, "i", &i), SK_OK);
    assert_int_equal(sk_image_unpack(img, len, "i", &i2), SK_OK);
    assert_int_equal(i2, i);
    free_image(&img);
    assert_int_equal(sk_image_pack(&img, &len, "u", &u), SK_OK);
    assert_int_equal(sk_image_unpack(img, len, "u", &u2), SK_OK);
    assert_cmp(u2, ==, u);
    free_image(&img);
    assert_int_equal(sk_image_pack(&img, &len, "I", &big), SK_OK);
    assert_int_equal(sk_image_unpack(img, len, "I", &big2), SK_OK);
    assert_cmp(big2, ==, big);
    free_image(&img);
    assert_int_equal(sk_image_pack(&img, &len, "U", &ubig), SK_OK);
    assert_int_equal(sk_image_unpack(img, len, "U", &ubig2), SK_OK);
    assert_cmp(ubig2, ==, ubig);
    free_image(&img);
    assert_int_equal(sk_image_pack(&img, &len, "j", &j), SK_OK);
    assert_int_equal(sk_image_unpack(img, len, "j", &j2), SK_OK);
    assert_int_equal(j2, j);
    free_image(&img);
    assert_int_equal(sk_image_pack(&img, &len, "v", &v), SK_OK);
    assert_int_equal(sk_image_unpack(img, len, "v", &v2), SK_OK);
    assert_int_equal(v2, v);
    free_image(&img);
    assert_int_equal(sk_image_pack(&img, &len, "c", &c), SK_OK);
    assert_int_equal(sk_image_unpack(img, len, "c", &c2), SK_OK);
    assert_int_equal(c2, c);
    free_image(&img);
    assert_int_equal(sk_image_pack(&img, &len, "f", &f), SK_OK);
    assert_int_equal(sk_image_unpack(img, len, "f", &f2), SK_OK);
    assert_cmp(f2, ==, f);
    free_image(&img);

    /* all of them in one image, plus the special doubles */
    double inf = INFINITY, nan_in = NAN, inf2 = 0, nan_out = 0;
    i = 123456789, u = 3000000000u, big = -(INT64_C(1) << 40), ubig = UINT64_C(1) << 63;
    j = -2, v = 40000, c = '\0';
    assert_int_equal(
        sk_image_pack(&img, &len, "iuIUjvcfff", &i, &u, &big, &ubig, &j, &v, &c, &f, &inf, &nan_in),
        SK_OK);
    c2 = 'x';
    assert_int_equal(sk_image_unpack(img, len, "iuIUjvcfff", &i2, &u2, &big2, &ubig2, &j2, &v2, &c2,
                                     &f2, &inf2, &nan_out),
                     SK_OK);
    assert_int_equal(i2, i);
    assert_cmp(u2, ==, u);
    assert_cmp(big2, ==, big);
    assert_cmp(ubig2, ==, ubig);
    assert_int_equal(j2, j);
    assert_int_equal(v2, v);
    assert_int_equal(c2, '\0');
    assert_cmp(f2, ==, f);
    assert_true(isinf(inf2));
    assert_cmp(inf2, >, 0);
    assert_true(isnan(nan_out));
    free_image(&img);
}

static void test_round_trip_strings_owned_by_caller(void **state)
{
    (void)state;
    char *hello = "hello, world", *empty = "", *none = NULL;
    char *out1 = NULL, *out2 = NULL, *out3 = (char *)"sentinel";
    void *img;
    size_t len;
    assert_int_equal(sk_image_pack(&img, &len, "sss", &hello, &empty, &none), SK_OK);
    assert_int_equal(sk_image_unpack(img, len, "sss", &out1, &out2, &out3), SK_OK);
    assert_non_null(out1);
    assert_cmp(out1, !=, hello); /* a copy, the caller's to free */
    assert_string_equal(out1, hello);
    assert_non_null(out2);
    assert_string_equal(out2, "");
    assert_null(out3); /* a NULL string stays NULL */
    free(out1);
    free(out2);
    /* unpacking twice gives two independent copies */
    assert_int_equal(sk_image_unpack(img, len, "sss", &out1, &out2, &out3), SK_OK);
    char *again = NULL, *again2 = NULL;
    assert_int_equal(sk_image_unpack(img, len, "sss", &again, &again2, &out3), SK_OK);
    assert_cmp(again, !=, out1);
    assert_cmp(again2, !=, out2);
    free(out1);
    free(out2);
    free(again);
    free(again2);
    free_image(&img);

    /* a long string */
    size_t n = 200000;
    char *long_in = malloc(n + 1), *long_out = NULL;
    assert_non_null(long_in);
    for (size_t k = 0; k < n; k++)
        long_in[k] = (char)('a' + k % 26);
    long_in[n] = '\0';
    assert_int_equal(sk_image_pack(&img, &len, "s", &long_in), SK_OK);
    assert_int_equal(sk_image_unpack(img, len, "s", &long_out), SK_OK);
    assert_string_equal(long_out, long_in);
    free(long_out);
    free(long_in);
    free_image(&img);
}

static void test_round_trip_binary_buffers(void **state)
{
    (void)state;
    unsigned char bytes[300];
    for (size_t k = 0; k < sizeof bytes; k++)
        bytes[k] = (unsigned char)(k * 7); /* includes zero bytes */
    tpl_bin in = {.addr = bytes, .sz = sizeof bytes}, empty = {.addr = NULL, .sz = 0};
    tpl_bin out = {0}, out_empty = {.addr = (void *)bytes, .sz = 99};
    void *img;
    size_t len;
    assert_int_equal(sk_image_pack(&img, &len, "BB", &in, &empty), SK_OK);
    assert_int_equal(sk_image_unpack(img, len, "BB", &out, &out_empty), SK_OK);
    assert_int_equal(out.sz, sizeof bytes);
    assert_cmp(out.addr, !=, bytes);
    assert_memory_equal(out.addr, bytes, sizeof bytes);
    assert_null(out_empty.addr);
    assert_int_equal(out_empty.sz, 0);
    free(out.addr);
    free_image(&img);
}

static void test_round_trip_fixed_arrays(void **state)
{
    (void)state;
    int32_t ints[10], ints2[10] = {0};
    char chars[16], chars2[16] = {0}; /* not NUL-terminated */
    char *names[3] = {"alpha", NULL, ""}, *names2[3] = {0};
    double grid[2][3] = {{1.5, -2, 3e10}, {0, -0.0, 1e-300}}, grid2[2][3] = {{0}};
    uint64_t wide[4] = {0, 1, UINT64_MAX, UINT64_C(1) << 33}, wide2[4] = {0};
    for (int k = 0; k < 10; k++)
        ints[k] = k * k - 50;
    for (int k = 0; k < 16; k++)
        chars[k] = (char)('A' + k);
    void *img;
    size_t len;
    assert_int_equal(sk_image_pack(&img, &len, "i#c#s#f##U#", ints, 10, chars, 16, names, 3, grid,
                                   2, 3, wide, 4),
                     SK_OK);
    assert_int_equal(sk_image_unpack(img, len, "i#c#s#f##U#", ints2, 10, chars2, 16, names2, 3,
                                     grid2, 2, 3, wide2, 4),
                     SK_OK);
    assert_memory_equal(ints2, ints, sizeof ints);
    assert_memory_equal(chars2, chars, sizeof chars);
    assert_string_equal(names2[0], "alpha");
    assert_null(names2[1]);
    assert_string_equal(names2[2], "");
    assert_memory_equal(grid2, grid, sizeof grid);
    assert_memory_equal(wide2, wide, sizeof wide);
    free(names2[0]);
    free(names2[2]);
    /* a different '#' length is a different message */
    int32_t ints3[11];
    memset(ints3, 0x5a, sizeof ints3);
    assert_int_equal(sk_image_unpack(img, len, "i#c#s#f##U#", ints3, 11, chars2, 16, names2, 3,
                                     grid2, 2, 3, wide2, 4),
                     SK_EFORMAT);
    assert_int_equal(sk_image_unpack(img, len, "i#c#s#f##U#", ints3, 10, chars2, 16, names2, 3,
                                     grid2, 3, 2, wide2, 4),
                     SK_EFORMAT);
    free_image(&img);
}

/* C structs whose layout tpl's S(...) describes: members in order, each
 * aligned to its size, nested structs flattened ($(...)) where the nesting
 * adds no padding of its own. */
struct pair {
    char c;
    int32_t i;
};
struct sample {
    char tag;
    double value;
};
struct point_rec {
    int32_t a;
    struct {
        int32_t x, y;
    } pt;
    double d;
    char tag;
};
struct deep_rec {
    char a;
    struct {
        char b;
        struct {
            char c, d;
        } in2;
    } in1;
    int32_t i;
};
struct named {
    char *names[3];
    int32_t n;
};

static void test_round_trip_structs(void **state)
{
    (void)state;
    struct pair p = {'q', -7}, p2 = {0};
    struct sample samples[4] = {{'a', 1.5}, {'b', -2.5}, {'c', 1e100}, {'d', 0}}, samples2[4];
    struct point_rec pr[2] = {{1, {2, 3}, 4.5, 'x'}, {-1, {-2, -3}, -4.5, 'y'}}, pr2[2];
    struct deep_rec dr = {'1', {'2', {'3', '4'}}, 5}, dr2;
    struct named nm = {{"one", NULL, "three"}, 42}, nm2;
    memset(samples2, 0, sizeof samples2);
    memset(pr2, 0, sizeof pr2);
    memset(&dr2, 0, sizeof dr2);
    memset(&nm2, 0, sizeof nm2);
    void *img;
    size_t len;

    assert_int_equal(sk_image_pack(&img, &len, "S(ci)", &p), SK_OK);
    assert_int_equal(sk_image_unpack(img, len, "S(ci)", &p2), SK_OK);
    assert_int_equal(p2.c, 'q');
    assert_int_equal(p2.i, -7);
    free_image(&img);

    assert_int_equal(sk_image_pack(&img, &len, "S(cf)#", samples, 4), SK_OK);
    assert_int_equal(sk_image_unpack(img, len, "S(cf)#", samples2, 4), SK_OK);
    for (int k = 0; k < 4; k++) {
        assert_int_equal(samples2[k].tag, samples[k].tag);
        assert_cmp(samples2[k].value, ==, samples[k].value);
    }
    free_image(&img);

    assert_int_equal(sk_image_pack(&img, &len, "S(i$(ii)fc)#", pr, 2), SK_OK);
    assert_int_equal(sk_image_unpack(img, len, "S(i$(ii)fc)#", pr2, 2), SK_OK);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(pr2[k].a, pr[k].a);
        assert_int_equal(pr2[k].pt.x, pr[k].pt.x);
        assert_int_equal(pr2[k].pt.y, pr[k].pt.y);
        assert_cmp(pr2[k].d, ==, pr[k].d);
        assert_int_equal(pr2[k].tag, pr[k].tag);
    }
    free_image(&img);

    assert_int_equal(sk_image_pack(&img, &len, "S(c$(c$(cc))i)", &dr), SK_OK);
    assert_int_equal(sk_image_unpack(img, len, "S(c$(c$(cc))i)", &dr2), SK_OK);
    assert_memory_equal(&dr2, &dr, sizeof dr);
    free_image(&img);

    assert_int_equal(sk_image_pack(&img, &len, "S(s#i)", &nm, 3), SK_OK);
    assert_int_equal(sk_image_unpack(img, len, "S(s#i)", &nm2, 3), SK_OK);
    assert_string_equal(nm2.names[0], "one");
    assert_null(nm2.names[1]);
    assert_string_equal(nm2.names[2], "three");
    assert_int_equal(nm2.n, 42);
    free(nm2.names[0]);
    free(nm2.names[2]);
    free_image(&img);

    /* tpl has no S inside S: nesting is $(...) */
    assert_int_equal(sk_image_pack(&img, &len, "S(S(i))", &dr), SK_EINVAL);
}

/* Unpacking writes exactly what tpl_unpack writes: struct padding and the
 * bytes around the values stay as they were. */
static void test_unpack_leaves_padding_alone(void **state)
{
    (void)state;
    struct sample in[2] = {{'a', 1}, {'b', 2}};
    _Alignas(8) unsigned char out[sizeof in + 8];
    memset(out, 0xEE, sizeof out);
    void *img;
    size_t len;
    assert_int_equal(sk_image_pack(&img, &len, "S(cf)#", in, 2), SK_OK);
    assert_int_equal(sk_image_unpack(img, len, "S(cf)#", out, 2), SK_OK);
    for (size_t k = 0; k < 2; k++) {
        size_t base = k * sizeof(struct sample);
        assert_int_equal(out[base + offsetof(struct sample, tag)], in[k].tag);
        for (size_t pad = 1; pad < offsetof(struct sample, value); pad++)
            assert_int_equal(out[base + pad], 0xEE);
    }
    for (size_t k = sizeof in; k < sizeof out; k++)
        assert_int_equal(out[k], 0xEE);
    free_image(&img);
}

static void test_empty_format(void **state)
{
    (void)state;
    void *img = (void *)&img;
    size_t len = 99;
    assert_int_equal(sk_image_pack(&img, &len, NULL), SK_OK);
    assert_null(img);
    assert_int_equal(len, 0);
    img = (void *)&img;
    assert_int_equal(sk_image_pack(&img, &len, ""), SK_OK);
    assert_null(img);
    assert_int_equal(len, 0);

    int32_t x = 5;
    assert_int_equal(sk_image_unpack(NULL, 0, NULL), SK_OK);
    assert_int_equal(sk_image_unpack(NULL, 0, ""), SK_OK);
    assert_int_equal(sk_image_unpack(NULL, 0, "i", &x), SK_EFORMAT);
    assert_int_equal(x, 5);
    assert_int_equal(sk_msg_validate(NULL, 0), SK_OK);
    char fmt[8] = "junk";
    assert_int_equal(sk_msg_format(NULL, 0, fmt, sizeof fmt), SK_OK);
    assert_string_equal(fmt, "");

    /* a non-empty image does not unpack with an empty format */
    assert_int_equal(sk_image_pack(&img, &len, "i", &x), SK_OK);
    assert_int_equal(sk_image_unpack(img, len, ""), SK_EFORMAT);
    assert_int_equal(sk_image_unpack(img, len, NULL), SK_EFORMAT);
    free_image(&img);

    /* tpl's own image of the empty format (9 bytes) is a valid image of "" */
    tpl_node *tn = tpl_map("");
    assert_non_null(tn);
    assert_int_equal(tpl_pack(tn, 0), 0);
    assert_int_equal(tpl_dump(tn, TPL_MEM, &img, &len), 0);
    tpl_free(tn);
    assert_int_equal(len, 9);
    assert_int_equal(sk_msg_validate(img, len), SK_OK);
    assert_int_equal(sk_image_unpack(img, len, ""), SK_OK);
    assert_int_equal(sk_image_unpack(img, len, "i", &x), SK_EFORMAT);
    free_image(&img);
}

/* ------------------------------------------------------------ errors */

static void test_format_mismatch_leaves_outputs_untouched(void **state)
{
    (void)state;
    int32_t i = 7;
    char *s = "text";
    void *img;
    size_t len;
    assert_int_equal(sk_image_pack(&img, &len, "is", &i, &s), SK_OK);

    int64_t big = 0x1111;
    int32_t i2 = 0x2222, i3 = 0x3333;
    char *s2 = (char *)"untouched";
    struct pair pr = {'p', 0x4444};
    double f = 0.5;
    assert_int_equal(sk_image_unpack(img, len, "Is", &big, &s2), SK_EFORMAT);
    assert_int_equal(sk_image_unpack(img, len, "i", &i2), SK_EFORMAT);
    assert_int_equal(sk_image_unpack(img, len, "isi", &i2, &s2, &i3), SK_EFORMAT);
    assert_int_equal(sk_image_unpack(img, len, "si", &s2, &i2), SK_EFORMAT);
    assert_int_equal(sk_image_unpack(img, len, "S(is)", &pr), SK_EFORMAT);
    assert_int_equal(sk_image_unpack(img, len, "if", &i2, &f), SK_EFORMAT);
    assert_int_equal(sk_image_unpack(img, len, "i#s", &i2, 1, &s2), SK_EFORMAT);
    assert_cmp(big, ==, 0x1111);
    assert_int_equal(i2, 0x2222);
    assert_int_equal(i3, 0x3333);
    assert_string_equal(s2, "untouched");
    assert_int_equal(pr.c, 'p');
    assert_int_equal(pr.i, 0x4444);
    assert_cmp(f, ==, 0.5);
    free_image(&img);
}

static void test_malformed_formats(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "q",    "S(i",   "S()",      "S",       "A",         "i)",      "(i)",
        "#",    "B#",    "S(B)",     "S(S(i))", "S(i$(c)#)", "iS(#i)",  "i###########",
        "$(i)", "S(i)(", "S(i)$(c)", " i",      "i ",        "S(A(i))", "S($())",
        "s$",   "A()",   "A(i)#",    "I(",      "S(i))",     "\x01",    "ii\xff"};
    int32_t dummy[16] = {0};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        void *img = (void *)dummy;
        size_t len = 3;
        /* the format is rejected before any argument is read */
        assert_int_equal(sk_image_pack(&img, &len, bad[k], dummy, dummy, dummy), SK_EINVAL);
        assert_cmp(img, ==, (void *)dummy);
        assert_cmp(len, ==, 3);
        assert_int_equal(sk_image_unpack("tpl", 3, bad[k], dummy, dummy, dummy), SK_EINVAL);
    }
    /* A(...) is well formed but cannot be filled by one variadic call */
    void *img = NULL;
    size_t len = 0;
    assert_int_equal(sk_image_pack(&img, &len, "A(i)", dummy), SK_EINVAL);
    assert_int_equal(sk_image_pack(&img, &len, "iA(s)", dummy, dummy), SK_EINVAL);
    assert_int_equal(sk_image_unpack("tpl", 3, "A(i)", dummy), SK_EINVAL);
    assert_null(img);

    /* nesting beyond SK_MSG_MAX_NESTING */
    char deep[4 * SK_MSG_MAX_NESTING + 16];
    size_t at = 0;
    deep[at++] = 'S';
    deep[at++] = '(';
    deep[at++] = 'c';
    for (int d = 0; d < SK_MSG_MAX_NESTING; d++) {
        deep[at++] = '$';
        deep[at++] = '(';
    }
    deep[at++] = 'c';
    for (int d = 0; d <= SK_MSG_MAX_NESTING; d++)
        deep[at++] = ')';
    deep[at] = '\0';
    assert_int_equal(sk_image_pack(&img, &len, deep, dummy), SK_EINVAL);

    /* a format longer than SK_MSG_MAX_FORMAT */
    char *long_fmt = malloc(SK_MSG_MAX_FORMAT + 2);
    assert_non_null(long_fmt);
    memset(long_fmt, 'c', SK_MSG_MAX_FORMAT + 1);
    long_fmt[SK_MSG_MAX_FORMAT + 1] = '\0';
    assert_int_equal(sk_image_pack(&img, &len, long_fmt, dummy), SK_EINVAL);
    free(long_fmt);

    /* bad arguments to a good format */
    assert_int_equal(sk_image_pack(&img, &len, "i#", dummy, 0), SK_EINVAL);
    assert_int_equal(sk_image_pack(&img, &len, "i#", dummy, -3), SK_EINVAL);
    assert_int_equal(sk_image_pack(&img, &len, "c##", dummy, 65536, 65536),
                     SK_EINVAL);                                                     /* > INT_MAX */
    assert_int_equal(sk_image_pack(&img, &len, "i#", dummy, 0x20000000), SK_EINVAL); /* 2 GiB */
    assert_int_equal(sk_image_pack(&img, &len, "S(ci)#", dummy, 0x7fffffff), SK_EINVAL);
    assert_int_equal(sk_image_pack(&img, &len, "ii", dummy, NULL), SK_EINVAL);
    tpl_bin no_bytes = {.addr = NULL, .sz = 4};
    assert_int_equal(sk_image_pack(&img, &len, "B", &no_bytes), SK_EINVAL);
    assert_int_equal(sk_image_unpack("tpl", 3, "i#", dummy, 0), SK_EINVAL);
    assert_int_equal(sk_image_unpack("tpl", 3, "is", dummy, NULL), SK_EINVAL);
    assert_null(img);
}

static void test_null_arguments(void **state)
{
    (void)state;
    int32_t x = 1;
    void *img = NULL;
    size_t len = 0;
    char buf[16];
    assert_int_equal(sk_image_pack(NULL, &len, "i", &x), SK_EINVAL);
    assert_int_equal(sk_image_pack(&img, NULL, "i", &x), SK_EINVAL);
    assert_int_equal(sk_image_unpack(NULL, 10, "i", &x), SK_EINVAL);
    assert_int_equal(sk_msg_validate(NULL, 10), SK_EINVAL);
    assert_int_equal(sk_msg_format(NULL, 10, buf, sizeof buf), SK_EINVAL);
    assert_int_equal(sk_image_pack(&img, &len, "i", &x), SK_OK);
    assert_int_equal(sk_msg_format(img, len, NULL, 16), SK_EINVAL);
    assert_int_equal(sk_msg_format(img, len, buf, 0), SK_EINVAL);
    free_image(&img);
}

static void test_format_query(void **state)
{
    (void)state;
    int32_t x = 1;
    struct pair pr[2] = {{0}};
    char *s = "s";
    void *img;
    size_t len;
    assert_int_equal(sk_image_pack(&img, &len, "iS(ci)#s", &x, pr, 2, &s), SK_OK);
    char buf[SK_MSG_MAX_FORMAT + 1];
    assert_int_equal(sk_msg_format(img, len, buf, sizeof buf), SK_OK);
    assert_string_equal(buf, "iS(ci)#s");
    assert_int_equal(sk_msg_format(img, len, buf, 9), SK_OK); /* exactly fits */
    assert_string_equal(buf, "iS(ci)#s");
    assert_int_equal(sk_msg_format(img, len, buf, 8), SK_EINVAL);
    assert_int_equal(sk_msg_format(img, len - 1, buf, sizeof buf), SK_EFORMAT);
    free_image(&img);
}

/* Images with A(...) (made by tpl directly) validate; they do not unpack
 * through the variadic call. */
static void test_array_images_validate(void **state)
{
    (void)state;
    int32_t i;
    char *s;
    tpl_node *tn = tpl_map("iA(s)A(A(i))", &i, &s, &i);
    assert_non_null(tn);
    i = 5;
    assert_int_equal(tpl_pack(tn, 0), 0);
    for (int k = 0; k < 3; k++) {
        s = k == 1 ? NULL : "elem";
        assert_int_equal(tpl_pack(tn, 1), 0);
    }
    for (int outer = 0; outer < 2; outer++) {
        for (i = 0; i < outer + 2; i++)
            assert_int_equal(tpl_pack(tn, 3), 0);
        assert_int_equal(tpl_pack(tn, 2), 0);
    }
    void *img;
    size_t len;
    assert_int_equal(tpl_dump(tn, TPL_MEM, &img, &len), 0);
    tpl_free(tn);
    assert_int_equal(sk_msg_validate(img, len), SK_OK);
    char buf[64];
    assert_int_equal(sk_msg_format(img, len, buf, sizeof buf), SK_OK);
    assert_string_equal(buf, "iA(s)A(A(i))");
    assert_int_equal(sk_image_unpack(img, len, "iA(s)A(A(i))", &i, &s, &i), SK_EINVAL);
    for (size_t cut = 1; cut < len; cut++)
        assert_int_equal(sk_msg_validate(img, cut), SK_EFORMAT);
    free(img);
}

/* ------------------------------------------------------------ differential */

/* The base formats of the corruption tests. For each: its values, how to map
 * them for tpl, how to unpack them with skproc, compare and free them. */
struct rec {
    int16_t j;
    int64_t big;
    char *name;
};
struct case_mixed { /* "isc#S(jIs)#Bf" */
    int32_t i;
    char *s;
    char tag[5];
    struct rec recs[2];
    tpl_bin bin;
    double f;
};
struct case_strings { /* "s#u" */
    char *names[3];
    uint32_t u;
};
struct nested16 {
    int16_t a;
    struct {
        int16_t b;
        uint16_t c;
    } in;
    int32_t d;
};
struct case_nested { /* "S(j$(jv)i)#v" */
    struct nested16 rows[3];
    uint16_t v;
};
union case_values {
    struct case_mixed mixed;
    struct case_strings strings;
    struct case_nested nested;
};

typedef struct fuzz_case {
    const char *fmt;
    tpl_node *(*map)(union case_values *v);
    int (*unpack)(const void *img, size_t len, union case_values *v);
    void (*release)(union case_values *v);
    void (*check_equal)(const union case_values *a, const union case_values *b);
} fuzz_case;

static tpl_node *mixed_map(union case_values *v)
{
    struct case_mixed *m = &v->mixed;
    return tpl_map("isc#S(jIs)#Bf", &m->i, &m->s, m->tag, 5, m->recs, 2, &m->bin, &m->f);
}
static int mixed_unpack(const void *img, size_t len, union case_values *v)
{
    struct case_mixed *m = &v->mixed;
    return sk_image_unpack(img, len, "isc#S(jIs)#Bf", &m->i, &m->s, m->tag, 5, m->recs, 2, &m->bin,
                           &m->f);
}
static void mixed_release(union case_values *v)
{
    free(v->mixed.s);
    for (int k = 0; k < 2; k++)
        free(v->mixed.recs[k].name);
    free(v->mixed.bin.addr);
}
static void check_same_string(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        assert_cmp(a, ==, b);
    else
        assert_string_equal(a, b);
}
static void mixed_equal(const union case_values *va, const union case_values *vb)
{
    const struct case_mixed *a = &va->mixed, *b = &vb->mixed;
    assert_int_equal(a->i, b->i);
    check_same_string(a->s, b->s);
    assert_memory_equal(a->tag, b->tag, 5);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(a->recs[k].j, b->recs[k].j);
        assert_cmp(a->recs[k].big, ==, b->recs[k].big);
        check_same_string(a->recs[k].name, b->recs[k].name);
    }
    assert_int_equal(a->bin.sz, b->bin.sz);
    if (a->bin.sz > 0)
        assert_memory_equal(a->bin.addr, b->bin.addr, a->bin.sz);
    assert_memory_equal(&a->f, &b->f, sizeof a->f); /* NaN-safe */
}

static tpl_node *strings_map(union case_values *v)
{
    return tpl_map("s#u", v->strings.names, 3, &v->strings.u);
}
static int strings_unpack(const void *img, size_t len, union case_values *v)
{
    return sk_image_unpack(img, len, "s#u", v->strings.names, 3, &v->strings.u);
}
static void strings_release(union case_values *v)
{
    for (int k = 0; k < 3; k++)
        free(v->strings.names[k]);
}
static void strings_equal(const union case_values *a, const union case_values *b)
{
    for (int k = 0; k < 3; k++)
        check_same_string(a->strings.names[k], b->strings.names[k]);
    assert_cmp(a->strings.u, ==, b->strings.u);
}

static tpl_node *nested_map(union case_values *v)
{
    return tpl_map("S(j$(jv)i)#v", v->nested.rows, 3, &v->nested.v);
}
static int nested_unpack(const void *img, size_t len, union case_values *v)
{
    return sk_image_unpack(img, len, "S(j$(jv)i)#v", v->nested.rows, 3, &v->nested.v);
}
static void nested_release(union case_values *v)
{
    (void)v;
}
static void nested_equal(const union case_values *a, const union case_values *b)
{
    for (int k = 0; k < 3; k++) {
        const struct nested16 *x = &a->nested.rows[k], *y = &b->nested.rows[k];
        assert_cmp(x->a, ==, y->a);
        assert_cmp(x->in.b, ==, y->in.b);
        assert_cmp(x->in.c, ==, y->in.c);
        assert_cmp(x->d, ==, y->d);
    }
    assert_int_equal(a->nested.v, b->nested.v);
}

static const fuzz_case fuzz_cases[] = {
    {"isc#S(jIs)#Bf", mixed_map, mixed_unpack, mixed_release, mixed_equal},
    {"s#u", strings_map, strings_unpack, strings_release, strings_equal},
    {"S(j$(jv)i)#v", nested_map, nested_unpack, nested_release, nested_equal},
};
#define N_FUZZ_CASES (sizeof fuzz_cases / sizeof fuzz_cases[0])

static unsigned char mixed_bytes[] = {0, 1, 2, 0xff, 'x', 0};

static void fill_case(size_t which, union case_values *v)
{
    memset(v, 0, sizeof *v);
    if (which == 0) {
        struct case_mixed *m = &v->mixed;
        m->i = -123456;
        m->s = "a string";
        memcpy(m->tag, "TAG!!", 5);
        m->recs[0] = (struct rec){.j = -5, .big = INT64_C(1) << 50, .name = "first"};
        m->recs[1] = (struct rec){.j = 300, .big = -1, .name = NULL};
        m->bin = (tpl_bin){.addr = mixed_bytes, .sz = sizeof mixed_bytes};
        m->f = 3.25;
    } else if (which == 1) {
        v->strings.names[0] = "zero";
        v->strings.names[1] = NULL;
        v->strings.names[2] = "";
        v->strings.u = 0xdeadbeef;
    } else {
        for (int k = 0; k < 3; k++)
            v->nested.rows[k] = (struct nested16){
                .a = (int16_t)(k - 1), .in = {.b = (int16_t)(k * 100), .c = 60000}, .d = -k};
        v->nested.v = 4242;
    }
}

/* The image of fuzz case `which`, made by skproc; checks that it is
 * byte for byte what tpl makes of the same values. */
static void make_case_image(size_t which, void **img, size_t *len)
{
    union case_values v;
    fill_case(which, &v);
    int rc;
    if (which == 0) {
        struct case_mixed *m = &v.mixed;
        rc = sk_image_pack(img, len, "isc#S(jIs)#Bf", &m->i, &m->s, m->tag, 5, m->recs, 2, &m->bin,
                           &m->f);
    } else if (which == 1) {
        rc = sk_image_pack(img, len, "s#u", v.strings.names, 3, &v.strings.u);
    } else {
        rc = sk_image_pack(img, len, "S(j$(jv)i)#v", v.nested.rows, 3, &v.nested.v);
    }
    assert_int_equal(rc, SK_OK);
    tpl_node *tn = fuzz_cases[which].map(&v);
    assert_non_null(tn);
    void *tpl_img;
    size_t tpl_len;
    assert_int_equal(tpl_pack(tn, 0), 0);
    assert_int_equal(tpl_dump(tn, TPL_MEM, &tpl_img, &tpl_len), 0);
    tpl_free(tn);
    assert_int_equal(tpl_len, *len);
    assert_memory_equal(tpl_img, *img, tpl_len);
    free(tpl_img);
}

/* An image with strings in tpl 1.2's form: no NULL-string flag. */
static bool tpl_old_strings(const char *fmt, const void *img, size_t len)
{
    const unsigned char *b = img;
    return len > 3 && !(b[3] & 2) && strchr(fmt, 's') != NULL;
}

/* Both decoders on one image of case `which` (possibly corrupt): skproc's
 * unpack must succeed exactly when tpl_load accepts the image, and then give
 * the values tpl_unpack gives; on failure it must write nothing. Returns the
 * verdict. */
static int check_against_tpl(size_t which, const void *img, size_t len)
{
    const fuzz_case *fc = &fuzz_cases[which];
    union case_values ours, theirs, untouched;
    memset(&ours, 0xA5, sizeof ours);
    memcpy(&untouched, &ours, sizeof ours);
    int rc = fc->unpack(img, len, &ours);
    if (rc != SK_OK && rc != SK_EFORMAT)
        fail_msg("unpack of case %zu returned %d", which, rc);
    if (rc != SK_OK)
        assert_memory_equal(&ours, &untouched, sizeof ours);

    memset(&theirs, 0, sizeof theirs);
    tpl_node *tn = fc->map(&theirs);
    assert_non_null(tn);
    int loaded = tpl_load(tn, TPL_MEM, (void *)img, len);
    if (loaded == 0 && rc == SK_EFORMAT && tpl_old_strings(fc->fmt, img, len)) {
        /* tpl_load accepts tpl 1.2 strings that tpl_unpack then misreads
         * (past the image): skproc rejects them, tpl_unpack must not run */
        tpl_free(tn);
        return rc;
    }
    if ((loaded == 0) != (rc == SK_OK))
        fail_msg("case %zu, %zu bytes: skproc says %d, tpl_load says %d", which, len, rc, loaded);
    if (loaded == 0) {
        assert_cmp(tpl_unpack(tn, 0), >=, 0);
        fc->check_equal(&ours, &theirs);
        fc->release(&theirs);
        fc->release(&ours);
    }
    tpl_free(tn);
    return rc;
}

/* The other entry points on the same bytes: they agree with each other and
 * never return anything but SK_OK or SK_EFORMAT. */
static void check_entry_points(const void *img, size_t len, int unpack_rc)
{
    int valid = sk_msg_validate(img, len);
    if (valid != SK_OK && valid != SK_EFORMAT)
        fail_msg("validate returned %d", valid);
    if (unpack_rc == SK_OK)
        assert_int_equal(valid, SK_OK);
    char fmt[SK_MSG_MAX_FORMAT + 1];
    int rc = sk_msg_format(img, len, fmt, sizeof fmt);
    assert_int_equal(rc, valid);
}

static void test_matches_tpl_on_valid_images(void **state)
{
    (void)state;
    for (size_t which = 0; which < N_FUZZ_CASES; which++) {
        void *img;
        size_t len;
        make_case_image(which, &img, &len);
        assert_int_equal(check_against_tpl(which, img, len), SK_OK);
        union case_values expect, got;
        fill_case(which, &expect);
        assert_int_equal(fuzz_cases[which].unpack(img, len, &got), SK_OK);
        fuzz_cases[which].check_equal(&got, &expect);
        fuzz_cases[which].release(&got);
        free(img);
    }
}

/* ------------------------------------------------------------ corruption */

static void test_every_truncation(void **state)
{
    (void)state;
    capture_stderr();
    for (size_t which = 0; which < N_FUZZ_CASES; which++) {
        void *img;
        size_t len;
        make_case_image(which, &img, &len);
        for (size_t cut = 0; cut < len; cut++) {
            /* a copy of exactly cut bytes, so ASan sees any read past it */
            unsigned char *part = malloc(cut ? cut : 1);
            assert_non_null(part);
            memcpy(part, img, cut);
            assert_int_equal(check_against_tpl(which, part, cut), SK_EFORMAT);
            assert_int_equal(sk_msg_validate(part, cut), cut == 0 ? SK_OK : SK_EFORMAT);
            free(part);
        }
        /* one byte too many */
        unsigned char *longer = malloc(len + 1);
        assert_non_null(longer);
        memcpy(longer, img, len);
        longer[len] = 0;
        assert_int_equal(check_against_tpl(which, longer, len + 1), SK_EFORMAT);
        assert_int_equal(sk_msg_validate(longer, len + 1), SK_EFORMAT);
        free(longer);
        free(img);
    }
    assert_int_equal(release_stderr(), 0);
}

static void test_every_single_byte_change(void **state)
{
    (void)state;
    capture_stderr();
    for (size_t which = 0; which < N_FUZZ_CASES; which++) {
        void *img;
        size_t len;
        make_case_image(which, &img, &len);
        unsigned char *copy = malloc(len);
        assert_non_null(copy);
        size_t accepted = 0;
        for (size_t at = 0; at < len; at++) {
            for (unsigned flip = 1; flip < 256; flip++) {
                memcpy(copy, img, len);
                copy[at] ^= (unsigned char)flip;
                int rc = check_against_tpl(which, copy, len);
                check_entry_points(copy, len, rc);
                accepted += rc == SK_OK;
            }
        }
        /* changed values in the data are still valid images: the walk is
         * not just rejecting everything */
        assert_cmp(accepted, >, 0);
        free(copy);
        free(img);
    }
    assert_int_equal(release_stderr(), 0);
}

static uint32_t interesting_u32(size_t len)
{
    static const uint32_t values[] = {0,          1,          2,          3,          4,
                                      0x7f,       0x80,       0xff,       0x100,      0xffff,
                                      0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0x10000};
    size_t pick = rng_below(sizeof values / sizeof values[0] + 4);
    if (pick < sizeof values / sizeof values[0])
        return values[pick];
    return (uint32_t)(len + pick - sizeof values / sizeof values[0] - 2);
}

/* Applies one random change to buf (len bytes, room for cap); returns the new
 * length. */
static size_t mutate(unsigned char *buf, size_t len, size_t cap)
{
    switch (rng_below(9)) {
    case 0: /* flip a bit */
        if (len > 0)
            buf[rng_below(len)] ^= (unsigned char)(1u << rng_below(8));
        return len;
    case 1: /* a random byte */
        if (len > 0)
            buf[rng_below(len)] = (unsigned char)rng_next();
        return len;
    case 2: { /* a forged 32-bit length or count */
        if (len < 4)
            return len;
        uint32_t value = interesting_u32(len);
        if (rng_below(2))
            value = __builtin_bswap32(value);
        memcpy(buf + rng_below(len - 3), &value, 4);
        return len;
    }
    case 3: /* truncate */
        return rng_below(len + 1);
    case 4: /* insert a byte */
        if (len < cap) {
            size_t at = rng_below(len + 1);
            memmove(buf + at + 1, buf + at, len - at);
            buf[at] = (unsigned char)rng_next();
            return len + 1;
        }
        return len;
    case 5: /* delete a byte */
        if (len > 0) {
            size_t at = rng_below(len);
            memmove(buf + at, buf + at + 1, len - at - 1);
            return len - 1;
        }
        return len;
    case 6: { /* append random bytes */
        size_t n = 1 + rng_below(8);
        for (size_t k = 0; k < n && len < cap; k++)
            buf[len++] = (unsigned char)rng_next();
        return len;
    }
    case 7: { /* copy a chunk over another place */
        if (len < 2)
            return len;
        size_t from = rng_below(len), to = rng_below(len);
        size_t n = 1 + rng_below(16);
        if (n > len - from)
            n = len - from;
        if (n > len - to)
            n = len - to;
        memmove(buf + to, buf + from, n);
        return len;
    }
    default: /* a format character */
        if (len > 8) {
            static const char chars[] = "AS($)BiucsfIUjv#";
            buf[8 + rng_below(len - 8)] = (unsigned char)chars[rng_below(sizeof chars - 1)];
        }
        return len;
    }
}

static void test_random_mutations(void **state)
{
    (void)state;
    rng_state = FUZZ_SEED;
    void *images[N_FUZZ_CASES];
    size_t lens[N_FUZZ_CASES], cap = 0;
    for (size_t which = 0; which < N_FUZZ_CASES; which++) {
        make_case_image(which, &images[which], &lens[which]);
        if (lens[which] > cap)
            cap = lens[which];
    }
    cap += 64;
    unsigned char *work = malloc(cap);
    assert_non_null(work);
    size_t verdicts[2] = {0, 0};
    capture_stderr();
    for (long n = 0; n < N_RANDOM_MUTATIONS; n++) {
        size_t which = rng_below(N_FUZZ_CASES);
        size_t len = lens[which];
        memcpy(work, images[which], len);
        size_t edits = 1 + rng_below(4);
        for (size_t e = 0; e < edits; e++)
            len = mutate(work, len, cap);
        /* often repair the stored length, so the walk of the data is reached */
        if (len >= 8 && rng_below(3) != 0) {
            uint32_t total = (uint32_t)len;
            memcpy(work + 4, &total, 4);
        }
        /* an exact-size copy: ASan catches a read one byte past the end */
        unsigned char *exact = malloc(len ? len : 1);
        assert_non_null(exact);
        memcpy(exact, work, len);
        int rc = check_against_tpl(which, exact, len);
        check_entry_points(exact, len, rc);
        verdicts[rc == SK_OK]++;
        free(exact);
    }
    /* pure garbage behind a plausible preamble */
    for (int n = 0; n < 2000; n++) {
        size_t len = 9 + rng_below(120);
        unsigned char *junk = malloc(len);
        assert_non_null(junk);
        for (size_t k = 0; k < len; k++)
            junk[k] = (unsigned char)rng_next();
        memcpy(junk, "tpl", 3);
        junk[3] = (unsigned char)rng_below(4);
        uint32_t total = (uint32_t)len;
        memcpy(junk + 4, &total, 4);
        int valid = sk_msg_validate(junk, len);
        assert_true(valid == SK_OK || valid == SK_EFORMAT);
        check_against_tpl(rng_below(N_FUZZ_CASES), junk, len);
        free(junk);
    }
    assert_int_equal(release_stderr(), 0);
    print_message("random mutations: %zu accepted, %zu rejected\n", verdicts[1], verdicts[0]);
    assert_cmp(verdicts[0], >, 0);
    assert_cmp(verdicts[1], >, 0);
    free(work);
    for (size_t which = 0; which < N_FUZZ_CASES; which++)
        free(images[which]);
}

/* Builds an image by hand: the preamble, fmt, '#' lengths, then data. */
static size_t forge(unsigned char *buf, const char *fmt, const uint32_t *lengths, size_t n_lengths,
                    const void *data, size_t data_len)
{
    size_t at = 0;
    memcpy(buf, "tpl", 3);
    buf[3] = 2; /* little endian (the test host), new strings */
    at = 8;
    memcpy(buf + at, fmt, strlen(fmt) + 1);
    at += strlen(fmt) + 1;
    if (n_lengths > 0)
        memcpy(buf + at, lengths, 4 * n_lengths);
    at += 4 * n_lengths;
    if (data_len > 0)
        memcpy(buf + at, data, data_len);
    at += data_len;
    uint32_t total = (uint32_t)at;
    memcpy(buf + 4, &total, 4);
    return at;
}

/* A valid header in front of lengths that point far past the end: rejected
 * at once, without allocating or walking gigabytes. */
static void test_forged_lengths(void **state)
{
    (void)state;
    unsigned char img[256];
    char *s = (char *)"untouched";
    tpl_bin bin = {0};
    int32_t x = 0;
    char chars[4];
    static const uint32_t huge[] = {0xffffffff, 0xfffffffe, 0x80000000, 0x7fffffff, 1000, 6};
    capture_stderr();
    for (size_t k = 0; k < sizeof huge / sizeof huge[0]; k++) {
        unsigned char data[8];
        memcpy(data, &huge[k], 4);
        memcpy(data + 4, "abcd", 4);
        size_t len = forge(img, "s", NULL, 0, data, 8);
        assert_int_equal(sk_msg_validate(img, len), SK_EFORMAT);
        assert_int_equal(sk_image_unpack(img, len, "s", &s), SK_EFORMAT);
        len = forge(img, "B", NULL, 0, data, 8);
        assert_int_equal(sk_msg_validate(img, len), SK_EFORMAT);
        assert_int_equal(sk_image_unpack(img, len, "B", &bin), SK_EFORMAT);
        /* a fixed-array length in the header */
        len = forge(img, "c#", &huge[k], 1, "abcd", 4);
        assert_int_equal(sk_msg_validate(img, len), SK_EFORMAT);
        assert_int_equal(sk_image_unpack(img, len, "c#", chars, 4), SK_EFORMAT);
        /* an array count */
        len = forge(img, "A(i)", NULL, 0, data, 8);
        assert_int_equal(sk_msg_validate(img, len), SK_EFORMAT);
        len = forge(img, "A(A(c))", NULL, 0, data, 8);
        assert_int_equal(sk_msg_validate(img, len), SK_EFORMAT);
        /* a struct repeated 2^31 - 1 times */
        uint32_t repeat = 0x7fffffff;
        len = forge(img, "S(ci)#", &repeat, 1, data, 8);
        assert_int_equal(sk_msg_validate(img, len), SK_EFORMAT);
    }
    /* zero is not a '#' length */
    uint32_t zero = 0;
    size_t len = forge(img, "c#", &zero, 1, "", 0);
    assert_int_equal(sk_msg_validate(img, len), SK_EFORMAT);
    /* the stored total disagrees with the buffer */
    len = forge(img, "i", NULL, 0, "\1\0\0\0", 4);
    assert_int_equal(sk_msg_validate(img, len), SK_OK);
    assert_int_equal(sk_image_unpack(img, len, "i", &x), SK_OK);
    assert_int_equal(x, 1);
    img[4]++;
    assert_int_equal(sk_msg_validate(img, len), SK_EFORMAT);
    /* an unknown flag bit, a missing format terminator */
    img[4]--;
    img[3] |= 4;
    assert_int_equal(sk_msg_validate(img, len), SK_EFORMAT);
    memset(img, 'i', sizeof img);
    memcpy(img, "tpl\2", 4);
    uint32_t total = 40;
    memcpy(img + 4, &total, 4);
    assert_int_equal(sk_msg_validate(img, 40), SK_EFORMAT);
    assert_int_equal(release_stderr(), 0);
    assert_string_equal(s, "untouched");
}

static void test_nesting_limit_in_images(void **state)
{
    (void)state;
    for (int depth = SK_MSG_MAX_NESTING; depth <= SK_MSG_MAX_NESTING + 1; depth++) {
        char fmt[4 * SK_MSG_MAX_NESTING + 8];
        size_t at = 0;
        for (int d = 0; d < depth; d++) {
            fmt[at++] = 'A';
            fmt[at++] = '(';
        }
        fmt[at++] = 'c';
        for (int d = 0; d < depth; d++)
            fmt[at++] = ')';
        fmt[at] = '\0';
        unsigned char img[512];
        uint32_t zero = 0; /* the outermost array is empty */
        size_t len = forge(img, fmt, NULL, 0, &zero, 4);
        assert_int_equal(sk_msg_validate(img, len),
                         depth <= SK_MSG_MAX_NESTING ? SK_OK : SK_EFORMAT);
    }
}

/* An image written on a big-endian machine (byte order flag set, numbers
 * reversed) decodes like tpl decodes it. One with tpl 1.2's strings (no
 * NULL-string flag, lengths without the +1) is rejected: tpl_load accepts it
 * but tpl_unpack decodes it as new strings and reads past the image. */
static void test_other_byte_order_and_old_strings(void **state)
{
    (void)state;
    unsigned char img[128];
    /* "ijs": i = 0x01020304, j = -2, s = "hey" */
    unsigned char data[] = {1, 2, 3, 4, 0xff, 0xfe, 0, 0, 0, 4, 'h', 'e', 'y'};
    size_t len = forge(img, "ijs", NULL, 0, data, sizeof data);
    img[3] = 2 | 1;
    uint32_t total = (uint32_t)len;
    total = __builtin_bswap32(total);
    memcpy(img + 4, &total, 4);
    int32_t i = 0;
    int16_t j = 0;
    char *s = NULL;
    assert_int_equal(sk_image_unpack(img, len, "ijs", &i, &j, &s), SK_OK);
    assert_int_equal(i, 0x01020304);
    assert_int_equal(j, -2);
    assert_string_equal(s, "hey");
    free(s);
    /* tpl agrees */
    tpl_node *tn = tpl_map("ijs", &i, &j, &s);
    assert_int_equal(tpl_load(tn, TPL_MEM, img, len), 0);
    i = 0;
    assert_cmp(tpl_unpack(tn, 0), >=, 0);
    assert_int_equal(i, 0x01020304);
    assert_string_equal(s, "hey");
    free(s);
    tpl_free(tn);

    /* old strings: length 3 meant three bytes, length 0 meant "" */
    unsigned char old_data[] = {3, 0, 0, 0, 'o', 'l', 'd', 0, 0, 0, 0};
    len = forge(img, "ss", NULL, 0, old_data, sizeof old_data);
    img[3] = 0;
    char *a = (char *)"a", *b = (char *)"b";
    assert_int_equal(sk_msg_validate(img, len), SK_EFORMAT);
    assert_int_equal(sk_image_unpack(img, len, "ss", &a, &b), SK_EFORMAT);
    assert_string_equal(a, "a");
    tn = tpl_map("ss", &a, &b);
    assert_int_equal(tpl_load(tn, TPL_MEM, img, len), 0); /* tpl would go on */
    tpl_free(tn);
    /* without an 's' in the format the flag does not matter (tpl_dump
     * leaves it clear then) */
    len = forge(img, "i", NULL, 0, "\7\0\0\0", 4);
    img[3] = 0;
    assert_int_equal(sk_image_unpack(img, len, "i", &i), SK_OK);
    assert_int_equal(i, 7);
}

/* ------------------------------------------------------------ tpl's hooks */

/* Packing allocates once, for the image: when that fails the call returns
 * SK_ENOMEM with the outputs untouched and nothing leaked (ASan's leak check
 * is the witness). */
static void test_out_of_memory_while_packing(void **state)
{
    (void)state;
    skt_defer(restore_stderr, NULL);
    union case_values v;
    fill_case(0, &v);
    struct case_mixed *m = &v.mixed;
    char *many[40];
    for (int k = 0; k < 40; k++)
        many[k] = k % 3 ? "some text" : NULL;
    long failures = 0;
    for (long after = 0;; after++) {
        void *img = (void *)&img;
        size_t len = 77;
        sk_msg_fail_alloc_after(after);
        int rc = sk_image_pack(&img, &len, "isc#S(jIs)#Bfs#", &m->i, &m->s, m->tag, 5, m->recs, 2,
                               &m->bin, &m->f, many, 40);
        long left = sk_msg_fail_alloc_after(-1);
        if (rc == SK_OK) {
            assert_cmp(left, >=, 0); /* no allocation failed */
            free(img);
            break;
        }
        assert_int_equal(rc, SK_ENOMEM);
        assert_int_equal(left, -1);
        assert_cmp(img, ==, (void *)&img);
        assert_cmp(len, ==, 77);
        failures++;
        assert_cmp(after, <, 100);
    }
    assert_cmp(failures, >=, 1);
}

/* skproc writes images itself; they must be what tpl_dump writes for every
 * atom, so that a peer using tpl directly reads them. */
static void test_pack_is_byte_identical_to_tpl(void **state)
{
    (void)state;
    int8_t c = -5;
    int16_t j = -300;
    uint16_t vv = 60000;
    int32_t i = -70000;
    uint32_t u = 4000000000u;
    int64_t I = -(INT64_C(1) << 40);
    uint64_t U = UINT64_C(1) << 63;
    double f = 3.25;
    char *str = "text", *null_str = NULL;
    int32_t arr[3] = {1, 2, 3};
    struct {
        char a;
        double b;
        int32_t c;
    } rec[2] = {{'x', 1.5, 7}, {'y', -2.5, 8}};
#define CHECK_SAME(fmt, ...)                                                                       \
    do {                                                                                           \
        void *ours, *theirs;                                                                       \
        size_t ours_len, theirs_len;                                                               \
        assert_int_equal(sk_image_pack(&ours, &ours_len, fmt, __VA_ARGS__), SK_OK);                \
        tpl_node *tn = tpl_map(fmt, __VA_ARGS__);                                                  \
        assert_non_null(tn);                                                                       \
        assert_int_equal(tpl_pack(tn, 0), 0);                                                      \
        assert_int_equal(tpl_dump(tn, TPL_MEM, &theirs, &theirs_len), 0);                          \
        tpl_free(tn);                                                                              \
        assert_int_equal(ours_len, theirs_len);                                                    \
        assert_memory_equal(ours, theirs, ours_len);                                               \
        free(ours);                                                                                \
        free(theirs);                                                                              \
    } while (0)
    CHECK_SAME("c", &c);
    CHECK_SAME("j", &j);
    CHECK_SAME("v", &vv);
    CHECK_SAME("i", &i);
    CHECK_SAME("u", &u);
    CHECK_SAME("I", &I);
    CHECK_SAME("U", &U);
    CHECK_SAME("f", &f);
    CHECK_SAME("s", &str);
    CHECK_SAME("s", &null_str);
    CHECK_SAME("Isf", &I, &str, &f);
    CHECK_SAME("i#", arr, 3);
    CHECK_SAME("S(cfi)#", rec, 2);
#undef CHECK_SAME
}

static void test_out_of_memory_while_unpacking(void **state)
{
    (void)state;
    skt_defer(restore_stderr, NULL);
    char *many[40];
    for (int k = 0; k < 40; k++)
        many[k] = k % 3 ? "some text" : NULL;
    void *img;
    size_t len;
    assert_int_equal(sk_image_pack(&img, &len, "s#", many, 40), SK_OK);
    for (long after = 0;; after++) {
        char *out[40];
        memset(out, 0x5a, sizeof out);
        sk_msg_fail_alloc_after(after);
        int rc = sk_image_unpack(img, len, "s#", out, 40);
        long left = sk_msg_fail_alloc_after(-1);
        if (rc == SK_OK) {
            assert_cmp(left, >=, 0);
            for (int k = 0; k < 40; k++) {
                check_same_string(out[k], many[k]);
                free(out[k]);
            }
            break;
        }
        assert_int_equal(rc, SK_ENOMEM);
        for (int k = 0; k < 40; k++)
            assert_cmp((uintptr_t)out[k], ==, (uintptr_t)0x5a5a5a5a5a5a5a5aull);
        assert_cmp(after, <, 1000);
    }
    free(img);
}

/* tpl called directly (not through skproc) prints nothing either. */
static void test_tpl_is_quiet(void **state)
{
    (void)state;
    sk_tpl_hooks_install();
    int32_t x;
    capture_stderr();
    assert_null(tpl_map("q", &x));
    assert_cmp(strstr(sk_tpl_last_message(), "q"), !=, NULL);
    tpl_node *tn = tpl_map("i", &x);
    assert_int_equal(tpl_load(tn, TPL_MEM, "not a tpl image", (size_t)15), -1);
    tpl_free(tn);
    assert_int_equal(release_stderr(), 0);
}

static int exit_pipe = -1;

static void note_exit(void)
{
    if (write(exit_pipe, "x", 1) < 0)
        _exit(3);
}

/* A fatal error in a tpl call made outside skproc (nothing to land in)
 * aborts: no exit(), so no atexit handler runs, and nothing is printed. */
static void test_fatal_outside_skproc_aborts(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_cmp(pid, >=, 0);
    if (pid == 0) {
        close(fds[0]);
        exit_pipe = fds[1];
        dup2(fds[1], 2);
        atexit(note_exit);
        signal(SIGABRT, SIG_DFL);
        sk_tpl_hooks_install();
        int32_t x[2];
        /* eleven '#': tpl's "contiguous # exceeds hardcoded limit" */
        tpl_map("i###########", x, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1);
        _exit(4); /* not reached */
    }
    close(fds[1]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    char buf[64];
    assert_int_equal(read(fds[0], buf, sizeof buf), 0); /* no output, no atexit */
    close(fds[0]);
}

/* Calls in several threads at once, one of them failing allocations on
 * purpose: the others never notice. */
struct thread_job {
    int id;
    bool inject;
    int errors;
};

static void *thread_main(void *arg)
{
    struct thread_job *job = arg;
    for (int n = 0; n < 2000; n++) {
        int32_t i = job->id * 100000 + n, i2 = -1;
        char name[32], *s = name, *s2 = NULL;
        snprintf(name, sizeof name, "thread %d run %d", job->id, n);
        struct pair pr[3] = {{'a', n}, {'b', -n}, {'c', job->id}}, pr2[3];
        void *img = NULL;
        size_t len = 0;
        if (job->inject)
            sk_msg_fail_alloc_after(n % 13);
        int rc = sk_image_pack(&img, &len, "isS(ci)#", &i, &s, pr, 3);
        if (rc == SK_OK)
            rc = sk_image_unpack(img, len, "isS(ci)#", &i2, &s2, pr2, 3);
        if (job->inject)
            sk_msg_fail_alloc_after(-1);
        free(img);
        if (rc == SK_ENOMEM && job->inject)
            continue;
        bool same = rc == SK_OK && i2 == i && s2 != NULL && strcmp(s2, name) == 0;
        for (int k = 0; same && k < 3; k++)
            same = pr2[k].c == pr[k].c && pr2[k].i == pr[k].i;
        if (!same)
            job->errors++;
        free(s2);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    enum { N = 4 };
    pthread_t threads[N];
    struct thread_job jobs[N];
    for (int k = 0; k < N; k++) {
        jobs[k] = (struct thread_job){.id = k, .inject = k == 0, .errors = 0};
        assert_int_equal(pthread_create(&threads[k], NULL, thread_main, &jobs[k]), 0);
    }
    for (int k = 0; k < N; k++) {
        assert_int_equal(pthread_join(threads[k], NULL), 0);
        assert_int_equal(jobs[k].errors, 0);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_round_trip_integers_and_floats),
        SKT_TEST(test_round_trip_strings_owned_by_caller),
        SKT_TEST(test_round_trip_binary_buffers),
        SKT_TEST(test_round_trip_fixed_arrays),
        SKT_TEST(test_round_trip_structs),
        SKT_TEST(test_unpack_leaves_padding_alone),
        SKT_TEST(test_empty_format),
        SKT_TEST(test_format_mismatch_leaves_outputs_untouched),
        SKT_TEST(test_malformed_formats),
        SKT_TEST(test_null_arguments),
        SKT_TEST(test_format_query),
        SKT_TEST(test_array_images_validate),
        SKT_TEST(test_matches_tpl_on_valid_images),
        SKT_TEST(test_every_truncation),
        SKT_TEST(test_every_single_byte_change),
        SKT_TEST(test_random_mutations),
        SKT_TEST(test_forged_lengths),
        SKT_TEST(test_nesting_limit_in_images),
        SKT_TEST(test_other_byte_order_and_old_strings),
        SKT_TEST(test_out_of_memory_while_packing),
        SKT_TEST(test_pack_is_byte_identical_to_tpl),
        SKT_TEST(test_out_of_memory_while_unpacking),
        SKT_TEST(test_tpl_is_quiet),
        SKT_TEST(test_fatal_outside_skproc_aborts),
        SKT_TEST(test_threads),
    };
    sk_tpl_hooks_install();
    return skt_run(argc, argv, tests);
}
