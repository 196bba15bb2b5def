/* SPDX-License-Identifier: MIT */
/*
 * Every tpl type through the channel, both ways: i u I U j v c f s B, fixed
 * arrays (c#, i#, I##, s#, f#), S(...) alone and repeated, fixed arrays
 * inside structs, nested $(...), mixed top-level items, and variable-length
 * arrays A(i), A(S(is)), A(iA(s)), sA(U) through sk_tell_image and
 * sk_listen_message with tpl_nodes of the caller's own.
 *
 * One table of cases: each has a tell (the canonical values) and a check
 * (listen and compare). The parent tells case k, the child checks it and
 * tells the same values back, the parent checks those: every case is
 * packed and unpacked on both sides. A check failing in the child fails the
 * child (sk_fail) and the parent reports it.
 *
 * Struct layouts: tpl lays S(...) out as the C compiler would for a flat
 * struct ($(...) flattened); the nested structs here were chosen so that
 * the C nesting gives the same offsets (checked with static asserts; the
 * structs shared with test_messaging_fuzz.c are in codec_support.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "messaging_support.h"

#include <float.h>
#include <math.h>
#include <tpl.h>

#define T 30 /* seconds a check waits for its message */
#define WHY 512

/* -------------------------------------------------------- check helpers */

static int failed_at(char *why, int line, const char *what)
{
    snprintf(why, WHY, "line %d: %s", line, what);
    return -1;
}

#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return failed_at(why, __LINE__, #cond);                                                \
    } while (0)

#define EXPECT_RC(rc)                                                                              \
    do {                                                                                           \
        int rc_ = (rc);                                                                            \
        if (rc_ != SK_OK) {                                                                        \
            snprintf(why, WHY, "line %d: %s", __LINE__, sk_strerror(rc_));                         \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

static bool same_bits(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

static bool str_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* ------------------------------------------------------------- integers */

static int ints_min_tell(sk_process *p)
{
    int32_t i = INT32_MIN;
    uint32_t u = UINT32_MAX;
    int64_t I = INT64_MIN;
    uint64_t U = UINT64_MAX;
    int16_t j = INT16_MIN;
    uint16_t v = UINT16_MAX;
    char c = (char)0xff;
    return sk_tell(p, "iuIUjvc", &i, &u, &I, &U, &j, &v, &c);
}

static int ints_min_check(sk_process *p, char *why)
{
    int32_t i = 0;
    uint32_t u = 0;
    int64_t I = 0;
    uint64_t U = 0;
    int16_t j = 0;
    uint16_t v = 0;
    char c = 0;
    EXPECT_RC(sk_listen(p, T, "iuIUjvc", &i, &u, &I, &U, &j, &v, &c));
    EXPECT(i == INT32_MIN);
    EXPECT(u == UINT32_MAX);
    EXPECT(I == INT64_MIN);
    EXPECT(U == UINT64_MAX);
    EXPECT(j == INT16_MIN);
    EXPECT(v == UINT16_MAX);
    EXPECT((unsigned char)c == 0xff);
    return 0;
}

static int ints_max_tell(sk_process *p)
{
    int32_t i = INT32_MAX;
    int64_t I = INT64_MAX;
    int16_t j = INT16_MAX;
    char c = 0;
    uint32_t u = 0;
    uint64_t U = 0;
    uint16_t v = 0;
    return sk_tell(p, "iIjcuUv", &i, &I, &j, &c, &u, &U, &v);
}

static int ints_max_check(sk_process *p, char *why)
{
    int32_t i = 0;
    int64_t I = 0;
    int16_t j = 0;
    char c = 1;
    uint32_t u = 1;
    uint64_t U = 1;
    uint16_t v = 1;
    EXPECT_RC(sk_listen(p, T, "iIjcuUv", &i, &I, &j, &c, &u, &U, &v));
    EXPECT(i == INT32_MAX);
    EXPECT(I == INT64_MAX);
    EXPECT(j == INT16_MAX);
    EXPECT(c == 0 && u == 0 && U == 0 && v == 0);
    return 0;
}

/* -------------------------------------------------------------- doubles */

#define N_DOUBLES 10

static void doubles_fill(double d[N_DOUBLES])
{
    d[0] = 0.0;
    d[1] = -0.0;
    d[2] = 3.141592653589793;
    d[3] = -1e308;
    d[4] = DBL_MAX;
    d[5] = DBL_MIN;
    d[6] = DBL_MIN / 1024; /* subnormal */
    d[7] = INFINITY;
    d[8] = -INFINITY;
    d[9] = NAN;
}

static int doubles_tell(sk_process *p)
{
    double d[N_DOUBLES], one = -2.5;
    doubles_fill(d);
    return sk_tell(p, "ff#", &one, d, N_DOUBLES);
}

static int doubles_check(sk_process *p, char *why)
{
    double want[N_DOUBLES], got[N_DOUBLES] = {0}, one = 0;
    doubles_fill(want);
    EXPECT_RC(sk_listen(p, T, "ff#", &one, got, N_DOUBLES));
    EXPECT(one == -2.5);
    for (int k = 0; k < N_DOUBLES; k++)
        EXPECT(same_bits(got[k], want[k])); /* -0.0 and NaN too */
    return 0;
}

/* -------------------------------------------------------------- strings */

static const char utf8[] = "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93";

static int strings_tell(sk_process *p)
{
    char *a = "hello", *empty = "", *null = NULL, *u = (char *)utf8;
    return sk_tell(p, "ssss", &a, &empty, &null, &u);
}

static int strings_check(sk_process *p, char *why)
{
    char *a = NULL, *empty = NULL, *null = (char *)"not null", *u = NULL;
    EXPECT_RC(sk_listen(p, T, "ssss", &a, &empty, &null, &u));
    EXPECT(str_eq(a, "hello"));
    EXPECT(empty != NULL && empty[0] == '\0'); /* "" stays "", not NULL */
    EXPECT(null == NULL);                      /* NULL stays NULL */
    EXPECT(str_eq(u, utf8));
    free(a);
    free(empty);
    free(u);
    return 0;
}

#define LONG_STRING ((size_t)1 << 20)

static char *long_string(void)
{
    char *s = malloc(LONG_STRING + 1);
    if (s == NULL)
        return NULL;
    for (size_t k = 0; k < LONG_STRING; k++)
        s[k] = (char)(' ' + (k * 7 + k / 95) % 95);
    s[LONG_STRING] = '\0';
    return s;
}

static int long_string_tell(sk_process *p)
{
    char *s = long_string();
    if (s == NULL)
        return SK_ENOMEM;
    int rc = sk_tell(p, "s", &s);
    free(s);
    return rc;
}

static int long_string_check(sk_process *p, char *why)
{
    char *got = NULL;
    EXPECT_RC(sk_listen(p, T, "s", &got));
    char *want = long_string();
    EXPECT(want != NULL);
    bool same = str_eq(got, want);
    free(want);
    free(got);
    EXPECT(same);
    return 0;
}

/* --------------------------------------------------------------- binary */

static int binary_tell(sk_process *p)
{
    unsigned char all[256];
    for (int k = 0; k < 256; k++)
        all[k] = (unsigned char)k; /* zeros included */
    unsigned char zero = 0;
    tpl_bin a = {.addr = all, .sz = sizeof all}, empty = {.addr = NULL, .sz = 0},
            one = {.addr = &zero, .sz = 1};
    return sk_tell(p, "BBB", &a, &empty, &one);
}

static int binary_check(sk_process *p, char *why)
{
    tpl_bin a = {0}, empty = {.addr = &a, .sz = 99}, one = {0};
    EXPECT_RC(sk_listen(p, T, "BBB", &a, &empty, &one));
    EXPECT(a.sz == 256 && a.addr != NULL);
    for (int k = 0; k < 256; k++)
        EXPECT(((unsigned char *)a.addr)[k] == k);
    EXPECT(empty.sz == 0 && empty.addr == NULL);
    EXPECT(one.sz == 1 && one.addr != NULL && *(unsigned char *)one.addr == 0);
    free(a.addr); /* the caller frees .addr */
    free(one.addr);
    return 0;
}

/* --------------------------------------------------------- fixed arrays */

static const int32_t fixed_i[8] = {INT32_MIN, -1, 0, 1, 2, 1000, 65536, INT32_MAX};
static const char fixed_c[16] = "ab\0cd\0\0ef\xff\x80z\0\0\0!";
static const int64_t fixed_I[2][3] = {{1, -2, 3}, {INT64_MIN, 0, INT64_MAX}};

static int fixed_tell(sk_process *p)
{
    int32_t i[8];
    char c[16];
    int64_t I[2][3];
    memcpy(i, fixed_i, sizeof i);
    memcpy(c, fixed_c, sizeof c);
    memcpy(I, fixed_I, sizeof I);
    /* '#' lengths follow their pointer, one int per '#'. */
    return sk_tell(p, "i#c#I##", i, 8, c, 16, I, 2, 3);
}

static int fixed_check(sk_process *p, char *why)
{
    int32_t i[8] = {0};
    char c[16] = {0};
    int64_t I[2][3] = {{0}};
    EXPECT_RC(sk_listen(p, T, "i#c#I##", i, 8, c, 16, I, 2, 3));
    EXPECT(memcmp(i, fixed_i, sizeof i) == 0);
    EXPECT(memcmp(c, fixed_c, sizeof c) == 0);
    EXPECT(memcmp(I, fixed_I, sizeof I) == 0);
    return 0;
}

static int fixed_strings_tell(sk_process *p)
{
    char *s[3] = {"one", NULL, ""};
    uint16_t v[1] = {65535};
    return sk_tell(p, "s#v#", s, 3, v, 1);
}

static int fixed_strings_check(sk_process *p, char *why)
{
    char *s[3] = {NULL, (char *)"x", NULL};
    uint16_t v[1] = {0};
    EXPECT_RC(sk_listen(p, T, "s#v#", s, 3, v, 1));
    EXPECT(str_eq(s[0], "one"));
    EXPECT(s[1] == NULL);
    EXPECT(str_eq(s[2], ""));
    EXPECT(v[0] == 65535);
    free(s[0]);
    free(s[2]);
    return 0;
}

#define BIG_C (64 << 10)

static int big_chars_tell(sk_process *p)
{
    char *c = malloc(BIG_C);
    if (c == NULL)
        return SK_ENOMEM;
    for (int k = 0; k < BIG_C; k++)
        c[k] = (char)(k * 31 + 7);
    int rc = sk_tell(p, "c#", c, BIG_C);
    free(c);
    return rc;
}

static int big_chars_check(sk_process *p, char *why)
{
    char *c = calloc(1, BIG_C);
    EXPECT(c != NULL);
    int rc = sk_listen(p, T, "c#", c, BIG_C);
    bool same = true;
    for (int k = 0; k < BIG_C && same; k++)
        same = c[k] == (char)(k * 31 + 7);
    free(c);
    EXPECT_RC(rc);
    EXPECT(same);
    return 0;
}

/* -------------------------------------------------------------- structs */

/* struct is, cif, lvl0 and ii, the C twins of S(is), S(cif), S(i$(Ii$(Ijc)))
 * and S(ii), are in codec_support.h. */

static int struct_tell(sk_process *p)
{
    struct is v = {7, "seven"};
    return sk_tell(p, "S(is)", &v);
}

static int struct_check(sk_process *p, char *why)
{
    struct is v = {0, NULL};
    EXPECT_RC(sk_listen(p, T, "S(is)", &v));
    EXPECT(v.i == 7);
    EXPECT(str_eq(v.s, "seven"));
    free(v.s);
    return 0;
}

/* S(cif)#3: padding after c (to i) and after i (to f). */
static void cif_fill(struct cif v[3])
{
    for (int k = 0; k < 3; k++)
        v[k] = (struct cif){.c = (char)('x' + k), .i = -k * 1000, .f = k / 3.0};
}

static int struct_array_tell(sk_process *p)
{
    struct cif v[3];
    memset(v, 0, sizeof v);
    cif_fill(v);
    return sk_tell(p, "S(cif)#", v, 3);
}

static int struct_array_check(sk_process *p, char *why)
{
    struct cif want[3], got[3];
    memset(got, 0, sizeof got);
    cif_fill(want);
    EXPECT_RC(sk_listen(p, T, "S(cif)#", got, 3));
    for (int k = 0; k < 3; k++) {
        EXPECT(got[k].c == want[k].c);
        EXPECT(got[k].i == want[k].i);
        EXPECT(same_bits(got[k].f, want[k].f));
    }
    return 0;
}

/* Fixed arrays inside a struct, the struct repeated. */
struct tagged {
    int32_t i;
    char tag[3];
    uint16_t w[2];
};

static int struct_fixed_tell(sk_process *p)
{
    struct tagged v[2];
    memset(v, 0, sizeof v);
    v[0] = (struct tagged){.i = 1, .tag = {'a', 'b', 'c'}, .w = {1, 65535}};
    v[1] = (struct tagged){.i = -1, .tag = {0, 'z', 0}, .w = {0, 2}};
    return sk_tell(p, "S(ic#v#)#", v, 3, 2, 2);
}

static int struct_fixed_check(sk_process *p, char *why)
{
    struct tagged v[2];
    memset(v, 0x55, sizeof v);
    EXPECT_RC(sk_listen(p, T, "S(ic#v#)#", v, 3, 2, 2));
    EXPECT(v[0].i == 1 && memcmp(v[0].tag, "abc", 3) == 0);
    EXPECT(v[0].w[0] == 1 && v[0].w[1] == 65535);
    EXPECT(v[1].i == -1 && v[1].tag[0] == 0 && v[1].tag[1] == 'z' && v[1].tag[2] == 0);
    EXPECT(v[1].w[0] == 0 && v[1].w[1] == 2);
    return 0;
}

/* S(i$(Ii$(Ijc))): three levels, repeated twice. */
static void nested_fill(struct lvl0 v[2])
{
    memset(v, 0, 2 * sizeof *v);
    for (int k = 0; k < 2; k++) {
        v[k].i = 10 + k;
        v[k].in.I = INT64_MIN + k;
        v[k].in.i = -20 - k;
        v[k].in.in.I = INT64_MAX - k;
        v[k].in.in.j = (int16_t)(-300 - k);
        v[k].in.in.c = (char)('A' + k);
    }
}

static int nested_tell(sk_process *p)
{
    struct lvl0 v[2];
    nested_fill(v);
    return sk_tell(p, "S(i$(Ii$(Ijc)))#", v, 2);
}

static int nested_check(sk_process *p, char *why)
{
    struct lvl0 want[2], got[2];
    nested_fill(want);
    memset(got, 0, sizeof got);
    EXPECT_RC(sk_listen(p, T, "S(i$(Ii$(Ijc)))#", got, 2));
    for (int k = 0; k < 2; k++) {
        EXPECT(got[k].i == want[k].i);
        EXPECT(got[k].in.I == want[k].in.I);
        EXPECT(got[k].in.i == want[k].in.i);
        EXPECT(got[k].in.in.I == want[k].in.in.I);
        EXPECT(got[k].in.in.j == want[k].in.in.j);
        EXPECT(got[k].in.in.c == want[k].in.in.c);
    }
    return 0;
}

/* Strings in nested structs. */
struct s_inner {
    char *s;
    int32_t i;
};
struct s_outer {
    char *s;
    struct s_inner in;
};
_Static_assert(offsetof(struct s_outer, in.s) == 8, "layout");
_Static_assert(offsetof(struct s_outer, in.i) == 16, "layout");

static int nested_strings_tell(sk_process *p)
{
    struct s_outer v = {.s = "outer", .in = {.s = NULL, .i = 5}};
    return sk_tell(p, "S(s$(si))", &v);
}

static int nested_strings_check(sk_process *p, char *why)
{
    struct s_outer v = {.s = NULL, .in = {.s = (char *)"x", .i = 0}};
    EXPECT_RC(sk_listen(p, T, "S(s$(si))", &v));
    EXPECT(str_eq(v.s, "outer"));
    EXPECT(v.in.s == NULL);
    EXPECT(v.in.i == 5);
    free(v.s);
    return 0;
}

/* Several kinds of top-level items in one message. */
static int mixed_tell(sk_process *p)
{
    char c = 'q';
    struct ii pair = {-5, 6};
    char *s = "mixed";
    unsigned char bytes[3] = {0, 1, 2};
    tpl_bin b = {.addr = bytes, .sz = 3};
    uint64_t U[2] = {UINT64_MAX, 1};
    double f = 0.5;
    return sk_tell(p, "cS(ii)sBU#f", &c, &pair, &s, &b, U, 2, &f);
}

static int mixed_check(sk_process *p, char *why)
{
    char c = 0;
    struct ii pair = {0, 0};
    char *s = NULL;
    tpl_bin b = {0};
    uint64_t U[2] = {0};
    double f = 0;
    EXPECT_RC(sk_listen(p, T, "cS(ii)sBU#f", &c, &pair, &s, &b, U, 2, &f));
    EXPECT(c == 'q' && pair.a == -5 && pair.b == 6);
    EXPECT(str_eq(s, "mixed"));
    EXPECT(b.sz == 3 && memcmp(b.addr, "\0\1\2", 3) == 0);
    EXPECT(U[0] == UINT64_MAX && U[1] == 1 && f == 0.5);
    free(s);
    free(b.addr);
    return 0;
}

/* ------------------------------------------- A(...) through tpl itself */

/* Dumps tn and tells the image as it is. */
static int tell_node(sk_process *p, tpl_node *tn)
{
    void *img = NULL;
    size_t len = 0;
    int rc = tpl_dump(tn, TPL_MEM, &img, &len) == 0 ? sk_tell_image(p, img, len) : SK_EINVAL;
    free(img);
    tpl_free(tn);
    return rc;
}

/* Receives the next message whole and checks its format; the caller loads
 * the image into a tpl_node of its own, then frees msg. */
static int listen_image(sk_process *p, const char *fmt, sk_message **msg, char *why)
{
    EXPECT_RC(sk_listen_message(p, T, msg));
    EXPECT(str_eq(sk_message_format(*msg), fmt));
    return 0;
}

static int load(tpl_node *tn, const sk_message *msg)
{
    size_t len = 0;
    const void *img = sk_message_image(msg, &len);
    return tpl_load(tn, TPL_MEM, (void *)img, len);
}

#define A_INTS 1000

static int array_ints_tell(sk_process *p)
{
    int32_t v;
    tpl_node *tn = tpl_map("A(i)", &v);
    for (int32_t k = 0; k < A_INTS; k++) {
        v = k * k - 500;
        tpl_pack(tn, 1);
    }
    return tell_node(p, tn);
}

static int array_ints_check(sk_process *p, char *why)
{
    int32_t v = 0;
    /* sk_listen cannot fill an array: SK_EINVAL, and the message stays. */
    EXPECT(sk_listen(p, T, "A(i)", &v) == SK_EINVAL);
    sk_message *msg = NULL;
    if (listen_image(p, "A(i)", &msg, why) != 0)
        return -1;
    EXPECT(sk_message_unpack(msg, "A(i)", &v) == SK_EINVAL);
    tpl_node *tn = tpl_map("A(i)", &v);
    EXPECT(load(tn, msg) == 0);
    int32_t k = 0;
    bool ok = true;
    while (tpl_unpack(tn, 1) > 0) {
        ok = ok && v == k * k - 500;
        k++;
    }
    tpl_free(tn);
    sk_message_free(msg);
    EXPECT(ok);
    EXPECT(k == A_INTS);
    return 0;
}

static int array_empty_tell(sk_process *p)
{
    int32_t v;
    return tell_node(p, tpl_map("A(i)", &v)); /* no element packed */
}

static int array_empty_check(sk_process *p, char *why)
{
    sk_message *msg = NULL;
    if (listen_image(p, "A(i)", &msg, why) != 0)
        return -1;
    int32_t v;
    tpl_node *tn = tpl_map("A(i)", &v);
    EXPECT(load(tn, msg) == 0);
    EXPECT(tpl_Alen(tn, 1) == 0);
    EXPECT(tpl_unpack(tn, 1) <= 0);
    tpl_free(tn);
    sk_message_free(msg);
    return 0;
}

static int array_structs_tell(sk_process *p)
{
    struct is v;
    tpl_node *tn = tpl_map("A(S(is))", &v);
    char name[32];
    for (int32_t k = 0; k < 3; k++) {
        snprintf(name, sizeof name, "element %d", (int)k);
        v = (struct is){.i = k, .s = name};
        tpl_pack(tn, 1);
    }
    return tell_node(p, tn);
}

static int array_structs_check(sk_process *p, char *why)
{
    sk_message *msg = NULL;
    if (listen_image(p, "A(S(is))", &msg, why) != 0)
        return -1;
    struct is v;
    tpl_node *tn = tpl_map("A(S(is))", &v);
    EXPECT(load(tn, msg) == 0);
    int32_t k = 0;
    bool ok = true;
    while (tpl_unpack(tn, 1) > 0) {
        char want[32];
        snprintf(want, sizeof want, "element %d", (int)k);
        ok = ok && v.i == k && str_eq(v.s, want);
        free(v.s);
        k++;
    }
    tpl_free(tn);
    sk_message_free(msg);
    EXPECT(ok);
    EXPECT(k == 3);
    return 0;
}

/* Arrays nested in arrays: element k has k strings. */
static int array_nested_tell(sk_process *p)
{
    int32_t i;
    char *s;
    tpl_node *tn = tpl_map("A(iA(s))", &i, &s);
    char text[32];
    for (int32_t k = 0; k < 4; k++) {
        i = k;
        for (int n = 0; n < k; n++) {
            snprintf(text, sizeof text, "%d.%d", (int)k, n);
            s = text;
            tpl_pack(tn, 2);
        }
        tpl_pack(tn, 1);
    }
    return tell_node(p, tn);
}

static int array_nested_check(sk_process *p, char *why)
{
    sk_message *msg = NULL;
    if (listen_image(p, "A(iA(s))", &msg, why) != 0)
        return -1;
    int32_t i;
    char *s;
    tpl_node *tn = tpl_map("A(iA(s))", &i, &s);
    EXPECT(load(tn, msg) == 0);
    int32_t k = 0;
    bool ok = true;
    while (tpl_unpack(tn, 1) > 0) {
        ok = ok && i == k;
        int n = 0;
        while (tpl_unpack(tn, 2) > 0) {
            char want[32];
            snprintf(want, sizeof want, "%d.%d", (int)k, n);
            ok = ok && str_eq(s, want);
            free(s);
            n++;
        }
        ok = ok && n == k;
        k++;
    }
    tpl_free(tn);
    sk_message_free(msg);
    EXPECT(ok);
    EXPECT(k == 4);
    return 0;
}

/* A top-level string next to an array. */
static int array_mixed_tell(sk_process *p)
{
    char *s = "header";
    uint64_t u;
    tpl_node *tn = tpl_map("sA(U)", &s, &u);
    tpl_pack(tn, 0);
    for (u = UINT64_MAX - 4; u != 0; u++)
        tpl_pack(tn, 1);
    return tell_node(p, tn);
}

static int array_mixed_check(sk_process *p, char *why)
{
    sk_message *msg = NULL;
    if (listen_image(p, "sA(U)", &msg, why) != 0)
        return -1;
    char *s = NULL;
    uint64_t u;
    tpl_node *tn = tpl_map("sA(U)", &s, &u);
    EXPECT(load(tn, msg) == 0);
    EXPECT(tpl_unpack(tn, 0) >= 0);
    bool ok = str_eq(s, "header");
    free(s);
    uint64_t want = UINT64_MAX - 4;
    int n = 0;
    while (tpl_unpack(tn, 1) > 0) {
        ok = ok && u == want++;
        n++;
    }
    tpl_free(tn);
    sk_message_free(msg);
    EXPECT(ok);
    EXPECT(n == 5);
    return 0;
}

/* A tpl image without arrays, made by tpl_dump, read with sk_listen: the
 * decoder agrees with tpl's encoder on a padded struct. */
static int dumped_struct_tell(sk_process *p)
{
    struct cif v[3];
    memset(v, 0, sizeof v);
    cif_fill(v);
    tpl_node *tn = tpl_map("S(cif)#", v, 3);
    tpl_pack(tn, 0);
    return tell_node(p, tn);
}

/* ------------------------------------------------------------ the table */

struct type_case {
    const char *name;
    int (*tell)(sk_process *p);
    int (*check)(sk_process *p, char *why);
};

static const struct type_case cases[] = {
    {"integers at their minimum", ints_min_tell, ints_min_check},
    {"integers at their maximum and zero", ints_max_tell, ints_max_check},
    {"doubles: signed zero, subnormal, infinities, NaN", doubles_tell, doubles_check},
    {"strings: plain, empty, NULL, UTF-8", strings_tell, strings_check},
    {"a 1 MiB string", long_string_tell, long_string_check},
    {"binary: 256 bytes with zeros, empty, one zero byte", binary_tell, binary_check},
    {"fixed arrays i# c# I##", fixed_tell, fixed_check},
    {"fixed arrays s# (with NULL) v#", fixed_strings_tell, fixed_strings_check},
    {"c# of 64 KiB", big_chars_tell, big_chars_check},
    {"S(is)", struct_tell, struct_check},
    {"S(cif)#", struct_array_tell, struct_array_check},
    {"S(ic#v#)#", struct_fixed_tell, struct_fixed_check},
    {"S(i$(Ii$(Ijc)))#", nested_tell, nested_check},
    {"S(s$(si))", nested_strings_tell, nested_strings_check},
    {"cS(ii)sBU#f", mixed_tell, mixed_check},
    {"A(i) of 1000", array_ints_tell, array_ints_check},
    {"A(i) empty", array_empty_tell, array_empty_check},
    {"A(S(is))", array_structs_tell, array_structs_check},
    {"A(iA(s))", array_nested_tell, array_nested_check},
    {"sA(U)", array_mixed_tell, array_mixed_check},
    {"S(cif)# dumped by tpl", dumped_struct_tell, struct_array_check},
};

#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

/* --------------------------------------------------------- the process */

typedef struct {
    sk_process base;
    int first, last; /* the cases to run, [first, last) */
} mirror;

#define MIRROR(p) SK_CONTAINER_OF(p, mirror, base)

/* Checks what the parent sent for each case, then tells the same back. */
static int mirror_run(sk_process *self)
{
    mirror *m = MIRROR(self);
    char why[WHY];
    for (int k = m->first; k < m->last; k++) {
        if (cases[k].check(self, why) != 0)
            return sk_fail(self, -1, "child, case %s: %s", cases[k].name, why);
        int rc = cases[k].tell(self);
        if (rc != SK_OK)
            return sk_fail(self, rc, "child, case %s: tell: %s", cases[k].name, sk_strerror(rc));
    }
    return 0;
}

static const sk_class mirror_class = {.name = "mirror", .run = mirror_run};

static mirror *mirror_start(int first, int last)
{
    mirror *m = skt_new(mirror);
    assert_rc(sk_init(&m->base, &mirror_class), SK_OK);
    m->base.config.runs = 1;
    m->first = first;
    m->last = last;
    assert_rc(sk_start(&m->base), SK_OK);
    return m;
}

static void run_case(mirror *m, int k)
{
    char why[WHY];
    int rc = cases[k].tell(&m->base);
    if (rc != SK_OK)
        print_error("parent, case %s: tell: %s\n", cases[k].name, sk_strerror(rc));
    assert_rc(rc, SK_OK);
    if (cases[k].check(&m->base, why) != 0) {
        print_error("parent, case %s: %s\n", cases[k].name, why);
        sk_wait(&m->base, 10);
        assert_no_error(&m->base); /* the child's own finding, if it failed */
        fail();
    }
}

static void test_every_case_both_ways(void **state)
{
    (void)state;
    mirror *m = mirror_start(0, N_CASES);
    for (int k = 0; k < N_CASES; k++)
        run_case(m, k);
    assert_rc(sk_wait(&m->base, 30), SK_OK);
    assert_no_error(&m->base);
}

/* The child speaks first: its case tells go out before it listens. */
static int speaker_run(sk_process *self)
{
    char why[WHY];
    for (int k = 0; k < N_CASES; k++) {
        int rc = cases[k].tell(self);
        if (rc != SK_OK)
            return sk_fail(self, rc, "child, case %s: tell: %s", cases[k].name, sk_strerror(rc));
    }
    for (int k = 0; k < N_CASES; k++)
        if (cases[k].check(self, why) != 0)
            return sk_fail(self, -1, "child, case %s: %s", cases[k].name, why);
    return 0;
}

static const sk_class speaker_class = {.name = "speaker", .run = speaker_run};

static void test_every_case_child_first(void **state)
{
    (void)state;
    mirror *m = skt_new(mirror);
    assert_rc(sk_init(&m->base, &speaker_class), SK_OK);
    m->base.config.runs = 1;
    m->base.config.capacity = 16 << 20; /* all of them at once */
    assert_rc(sk_start(&m->base), SK_OK);
    char why[WHY];
    for (int k = 0; k < N_CASES; k++) {
        if (cases[k].check(&m->base, why) != 0) {
            print_error("parent, case %s: %s\n", cases[k].name, why);
            sk_wait(&m->base, 10);
            assert_no_error(&m->base);
            fail();
        }
    }
    for (int k = 0; k < N_CASES; k++)
        assert_rc(cases[k].tell(&m->base), SK_OK);
    assert_rc(sk_wait(&m->base, 30), SK_OK);
    assert_no_error(&m->base);
}

/* What sk_tell made is a tpl image tpl itself reads. */
static void test_images_load_in_tpl(void **state)
{
    (void)state;
    int k = 10; /* S(cif)# */
    assert_string_equal(cases[k].name, "S(cif)#");
    mirror *m = mirror_start(k, k + 1);
    assert_rc(cases[k].tell(&m->base), SK_OK);
    sk_message *msg = NULL;
    assert_rc(sk_listen_message(&m->base, T, &msg), SK_OK);
    assert_string_equal(sk_message_format(msg), "S(cif)#");
    struct cif got[3], want[3];
    memset(got, 0, sizeof got);
    cif_fill(want);
    tpl_node *tn = tpl_map("S(cif)#", got, 3);
    assert_non_null(tn);
    assert_int_equal(load(tn, msg), 0);
    assert_cmp(tpl_unpack(tn, 0), >=, 0);
    tpl_free(tn);
    for (int e = 0; e < 3; e++) {
        assert_int_equal(got[e].c, want[e].c);
        assert_int_equal(got[e].i, want[e].i);
        assert_true(same_bits(got[e].f, want[e].f));
    }
    /* The message object unpacks as often as asked. */
    memset(got, 0, sizeof got);
    assert_rc(sk_message_unpack(msg, "S(cif)#", got, 3), SK_OK);
    assert_int_equal(got[2].i, want[2].i);
    assert_rc(sk_message_unpack(msg, "S(cif)#", got, 2), SK_EFORMAT);
    assert_rc(sk_message_unpack(msg, "S(cfi)#", got, 3), SK_EFORMAT);
    assert_rc(sk_message_unpack(NULL, "i", got), SK_EINVAL);
    assert_null(sk_message_format(NULL));
    assert_null(sk_message_image(NULL, NULL));
    sk_message_free(msg);
    sk_message_free(NULL);
    assert_rc(sk_wait(&m->base, 30), SK_OK);
    assert_no_error(&m->base);
}

/* Takes whatever comes until the parent stops it; counts it. */
static int sink_run(sk_process *self)
{
    int32_t ready = 1;
    int rc = sk_tell(self, "i", &ready); /* a stop before the loop would skip run */
    if (rc != SK_OK)
        return sk_fail(self, rc, "sink: %s", sk_strerror(rc));
    sk_message *msg = NULL;
    while ((rc = sk_listen_message(self, -1, &msg)) == SK_OK) {
        MIRROR(self)->first++;
        sk_message_free(msg);
    }
    return rc == SK_ECLOSED ? 0 : sk_fail(self, rc, "sink: %s", sk_strerror(rc));
}

static int sink_result(sk_process *self)
{
    int32_t n = MIRROR(self)->first;
    return sk_return(self, "i", &n);
}

static const sk_class sink_class = {.name = "sink", .run = sink_run, .result = sink_result};

/* Formats tpl has no meaning for, or beyond skproc's limits. */
static void test_format_limits(void **state)
{
    (void)state;
    mirror *m = skt_new(mirror);
    assert_rc(sk_init(&m->base, &sink_class), SK_OK);
    assert_rc(sk_start(&m->base), SK_OK);
    int32_t ints[64] = {0};
    assert_rc(sk_listen(&m->base, T, "i", ints), SK_OK);
    /* tpl nests structs with $(...), not S inside S; B cannot be a member. */
    assert_rc(sk_tell(&m->base, "S(S(i))", ints), SK_EINVAL);
    assert_rc(sk_tell(&m->base, "S(iS(i))", ints), SK_EINVAL);
    assert_rc(sk_tell(&m->base, "S(B)", ints), SK_EINVAL);
    assert_rc(sk_tell(&m->base, "S()", ints), SK_EINVAL);
    assert_rc(sk_tell(&m->base, "B#", ints, 2), SK_EINVAL);
    assert_rc(sk_tell(&m->base, "S(i$(i)#)", ints, 2), SK_EINVAL);
    assert_rc(sk_tell(&m->base, "i#", ints, 0), SK_EINVAL); /* '#' lengths start at 1 */
    assert_rc(sk_tell(&m->base, "i#", ints, -3), SK_EINVAL);
    assert_rc(sk_tell(&m->base, "i", NULL), SK_EINVAL);
    /* Ten '#' in a row is tpl's limit. */
    assert_rc(sk_tell(&m->base, "i##########", ints, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2), SK_OK);
    assert_rc(sk_tell(&m->base, "i###########", ints, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2), SK_EINVAL);
    /* Nesting: 20 levels of $(...) are fine, 40 are not. */
    char fmt[256];
    for (int depth = 20; depth <= 40; depth += 20) {
        size_t n = 0;
        n += (size_t)snprintf(fmt + n, sizeof fmt - n, "S(i");
        for (int d = 0; d < depth; d++)
            n += (size_t)snprintf(fmt + n, sizeof fmt - n, "$(i");
        for (int d = 0; d <= depth; d++)
            n += (size_t)snprintf(fmt + n, sizeof fmt - n, ")");
        assert_rc(sk_tell(&m->base, fmt, ints), depth == 20 ? SK_OK : SK_EINVAL);
    }
    assert_rc(sk_stop(&m->base), SK_OK);
    sk_message *msg = NULL;
    assert_rc(sk_listen_message(&m->base, T, &msg), SK_ECLOSED); /* the child sent nothing */
    int32_t received = -1;
    assert_rc(sk_result(&m->base, "i", &received), SK_OK);
    assert_no_error(&m->base);
    assert_int_equal(received, 2); /* only the two valid ones were queued */
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_every_case_both_ways),
        SKT_TEST(test_every_case_child_first),
        SKT_TEST(test_images_load_in_tpl),
        SKT_TEST(test_format_limits),
    };
    return skt_run(argc, argv, tests);
}
