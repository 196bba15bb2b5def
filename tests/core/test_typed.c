/* SPDX-License-Identifier: MIT */
/*
 * The typed forms of skproc/typed.h: sk_tellv, sk_listenv, sk_returnv and
 * sk_resultv derive the tpl format from the argument types.
 *
 *   - what sk_tellv sends is byte for byte the image of the hand-written
 *     format with the same values (sk_msg_pack), for every type of the
 *     table, 1 to 6 values, fixed arrays anywhere among them;
 *   - sk_listenv reads what the format-string form sent (a derived format
 *     that differed would be SK_EFORMAT), and a wrong type there is
 *     SK_EFORMAT with the message kept;
 *   - sk_returnv / sk_resultv agree with sk_return / sk_result both ways;
 *   - each argument is evaluated once;
 *   - a wrong type does not compile: snippets are handed to the C compiler,
 *     which must refuse them with skproc's message, next to a control
 *     snippet that must compile.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "support.h"
#include "codec/message.h"
#include "codec_support.h"

#include <spawn.h>
#include <tpl.h>

#define T 30.0 /* seconds a listen or a result waits */

/* sk_bytes is read and written as tpl's tpl_bin. */
_Static_assert(sizeof(sk_bytes) == sizeof(tpl_bin), "sk_bytes is not a tpl_bin");
_Static_assert(offsetof(sk_bytes, addr) == offsetof(tpl_bin, addr), "sk_bytes.addr");
_Static_assert(offsetof(sk_bytes, size) == offsetof(tpl_bin, sz), "sk_bytes.size");

/* ------------------------------------------------------------- values */

/* The values every case sends; both processes have them (set before fork). */
static struct values {
    uint8_t c;
    int16_t j;
    uint16_t v;
    int32_t i;
    uint32_t u;
    int64_t I;
    uint64_t U;
    double f;
    char *s;
    sk_bytes b;
    long l;
    unsigned long ul;
    long long ll;
    int32_t ai[8];
    double af[3];
    char *as[2];
    uint8_t ac[5];
} V;

static const int32_t CA[3] = {-1, 0, 1}; /* sent from const */

static char bytes[3] = {1, 0, 3};

static void values_init(void)
{
    V = (struct values){
        .c = 0xfe,
        .j = INT16_MIN + 1,
        .v = 54321,
        .i = -7,
        .u = 4000000000u,
        .I = INT64_MIN + 5,
        .U = UINT64_MAX - 3,
        .f = -2.5,
        .s = "hello",
        .b = {bytes, 3},
        .l = -40000000000L,
        .ul = 40000000000UL,
        .ll = 1LL << 62,
        .as = {"one", "two"},
    };
    for (int k = 0; k < 8; k++)
        V.ai[k] = k * 1000 - 3;
    for (int k = 0; k < 3; k++)
        V.af[k] = k + 0.25;
    for (int k = 0; k < 5; k++)
        V.ac[k] = (uint8_t)(250 + k);
}

#define NCASES 8

/* Case k with the typed form: what the child tells. */
static int tell_typed(sk_process *p, int k)
{
    const long cl = V.l;
    const char *literal_owner = "by value";
    switch (k) {
    case 0:
        return sk_tellv(p, &V.i);
    case 1:
        return sk_tellv(p, &V.c, &V.j, &V.v, &V.u, &V.I, &V.U);
    case 2:
        return sk_tellv(p, &V.f, &V.s, &V.b);
    case 3:
        return sk_tellv(p, &V.ai, &V.i, &V.af);
    case 4:
        return sk_tellv(p, "literal", V.s, literal_owner, &V.as);
    case 5:
        return sk_tellv(p, &cl, &V.ul, &V.ll);
    case 6:
        return sk_tellv(p, &V.ac, &V.ai, &V.as, &V.c, &V.af, &V.U);
    case 7:
        return sk_tellv(p, &CA, &V.s);
    }
    return SK_EINVAL;
}

/* Case k with the hand-written format, through fn (sk_tell or a packer). */
#define HAND_CASES(fn, ...)                                                                        \
    do {                                                                                           \
        char *lit = "literal", *by = "by value";                                                   \
        switch (k) {                                                                               \
        case 0:                                                                                    \
            return fn(__VA_ARGS__ "i", &V.i);                                                      \
        case 1:                                                                                    \
            return fn(__VA_ARGS__ "cjvuIU", &V.c, &V.j, &V.v, &V.u, &V.I, &V.U);                   \
        case 2:                                                                                    \
            return fn(__VA_ARGS__ "fsB", &V.f, &V.s, &V.b);                                        \
        case 3:                                                                                    \
            return fn(__VA_ARGS__ "i#if#", V.ai, 8, &V.i, V.af, 3);                                \
        case 4:                                                                                    \
            return fn(__VA_ARGS__ "ssss#", &lit, &V.s, &by, V.as, 2);                              \
        case 5:                                                                                    \
            return fn(__VA_ARGS__ "IUI", &V.l, &V.ul, &V.ll);                                      \
        case 6:                                                                                    \
            return fn(__VA_ARGS__ "c#i#s#cf#U", V.ac, 5, V.ai, 8, V.as, 2, &V.c, V.af, 3, &V.U);   \
        case 7:                                                                                    \
            return fn(__VA_ARGS__ "i#s", CA, 3, &V.s);                                             \
        }                                                                                          \
        return SK_EINVAL;                                                                          \
    } while (0)

static int tell_hand(sk_process *p, int k)
{
    HAND_CASES(sk_tell, p, );
}

static int pack_hand(int k, void **img, size_t *len)
{
    HAND_CASES(sk_image_pack, img, len, );
}

/* ------------------------------------------------------------ tellers */

typedef struct {
    sk_process base;
    bool typed; /* tell with the typed forms, else with the format strings */
} teller;

static int teller_run(sk_process *self)
{
    teller *t = SK_CONTAINER_OF(self, teller, base);
    for (int k = 0; k < NCASES; k++) {
        int rc = t->typed ? tell_typed(self, k) : tell_hand(self, k);
        if (rc != SK_OK)
            return sk_fail(self, rc, "case %d: %s", k, sk_strerror(rc));
    }
    sk_stop(self);
    return 0;
}

static const sk_class teller_class = {.name = "teller", .run = teller_run};

static teller *start_teller(bool typed)
{
    values_init();
    teller *t = skt_new(teller);
    assert_rc(sk_init(&t->base, &teller_class), SK_OK);
    t->typed = typed;
    assert_rc(sk_start(&t->base), SK_OK);
    return t;
}

/* The image the typed form sent equals the hand-written format's. */
static void test_tell_images_match_the_format_strings(void **state)
{
    (void)state;
    teller *t = start_teller(true);
    for (int k = 0; k < NCASES; k++) {
        sk_message *msg = NULL;
        assert_rc(sk_listen_message(&t->base, T, &msg), SK_OK);
        size_t got_len = 0, want_len = 0;
        const void *got = sk_message_image(msg, &got_len);
        void *want = NULL;
        assert_rc(pack_hand(k, &want, &want_len), SK_OK);
        if (got_len != want_len || memcmp(got, want, want_len) != 0)
            fail_msg("case %d: the typed image (format \"%s\", %zu bytes) differs from the "
                     "hand-written one (%zu bytes)",
                     k, sk_message_format(msg), got_len, want_len);
        free(want);
        sk_message_free(msg);
    }
    assert_rc(sk_wait(&t->base, T), SK_OK);
    assert_no_error(&t->base);
}

/* sk_listenv reads what the format-string form sent, value for value. */
static void test_listen_reads_the_format_strings(void **state)
{
    (void)state;
    teller *t = start_teller(false);
    sk_process *p = &t->base;

    int32_t i = 0;
    assert_rc(sk_listenv(p, T, &i), SK_OK);
    assert_int_equal(i, V.i);

    uint8_t c = 0;
    int16_t j = 0;
    uint16_t v = 0;
    uint32_t u = 0;
    int64_t I = 0;
    uint64_t U = 0;
    assert_rc(sk_listenv(p, T, &c, &j, &v, &u, &I, &U), SK_OK);
    assert_true(c == V.c && j == V.j && v == V.v && u == V.u && I == V.I && U == V.U);

    double f = 0;
    char *s = NULL;
    sk_bytes b = {0};
    /* A wrong type is SK_EFORMAT and the message stays at the head. */
    assert_rc(sk_listenv(p, T, &i, &s, &b), SK_EFORMAT);
    assert_rc(sk_listenv(p, T, &f, &s, &b), SK_OK);
    assert_true(f == V.f);
    assert_string_equal(s, V.s);
    assert_int_equal(b.size, 3);
    assert_memory_equal(b.addr, bytes, 3);
    free(s);
    free(b.addr);

    int32_t ai[8] = {0};
    double af[3] = {0};
    int32_t ai_short[7];
    assert_rc(sk_listenv(p, T, &ai_short, &i, &af), SK_EFORMAT); /* the length is checked */
    assert_rc(sk_listenv(p, T, &ai, &i, &af), SK_OK);
    assert_memory_equal(ai, V.ai, sizeof ai);
    assert_memory_equal(af, V.af, sizeof af);
    assert_int_equal(i, V.i);

    char *s1 = NULL, *s2 = NULL, *s3 = NULL, *as[2] = {NULL, NULL};
    assert_rc(sk_listenv(p, T, &s1, &s2, &s3, &as), SK_OK);
    assert_string_equal(s1, "literal");
    assert_string_equal(s2, V.s);
    assert_string_equal(s3, "by value");
    assert_string_equal(as[0], "one");
    assert_string_equal(as[1], "two");
    free(s1);
    free(s2);
    free(s3);
    free(as[0]);
    free(as[1]);

    long l = 0;
    unsigned long ul = 0;
    long long ll = 0;
    assert_rc(sk_listenv(p, T, &l, &ul, &ll), SK_OK);
    assert_true(l == V.l && ul == V.ul && ll == V.ll);

    uint8_t ac[5] = {0};
    uint8_t c2 = 0;
    uint64_t U2 = 0;
    assert_rc(sk_listenv(p, T, &ac, &ai, &as, &c2, &af, &U2), SK_OK);
    assert_memory_equal(ac, V.ac, sizeof ac);
    assert_string_equal(as[1], "two");
    assert_true(c2 == V.c && U2 == V.U);
    free(as[0]);
    free(as[1]);

    int32_t ca[3] = {0};
    assert_rc(sk_listenv(p, T, &ca, &s), SK_OK);
    assert_memory_equal(ca, CA, sizeof ca);
    assert_string_equal(s, V.s);
    free(s);

    assert_rc(sk_wait(p, T), SK_OK);
    assert_no_error(p);
    assert_rc(sk_listenv(p, 0, &i), SK_ECLOSED);
}

/* Each argument (and the handle) is evaluated exactly once. */
/* Waits for one message, then finishes: a peer that is surely there when
 * the test tells it (a teller may have finished already). */
static int inbox_run(sk_process *self)
{
    sk_message *msg = NULL;
    if (sk_listen_message(self, -1, &msg) == SK_OK)
        sk_message_free(msg);
    sk_stop(self);
    return 0;
}

static const sk_class inbox_class = {.name = "inbox", .run = inbox_run};

static void test_arguments_are_evaluated_once(void **state)
{
    (void)state;
    teller *t = skt_new(teller);
    assert_rc(sk_init(&t->base, &inbox_class), SK_OK);
    assert_rc(sk_start(&t->base), SK_OK);
    sk_process *handles[1] = {&t->base};
    int h = 0, n = 0, m = 0, q = 2;
    int32_t xs[3] = {11, 12, 13};
    int32_t arrays[2][4] = {{1, 2, 3, 4}, {5, 6, 7, 8}};
    assert_rc(sk_tellv(handles[h++], &xs[n++], &arrays[m++], &xs[q++]), SK_OK);
    assert_int_equal(h, 1);
    assert_int_equal(n, 1);
    assert_int_equal(q, 3);
    assert_int_equal(m, 1);
    assert_rc(sk_wait(&t->base, T), SK_OK);
}

/* -------------------------------------------------------------- results */

typedef struct {
    sk_process base;
    bool typed;
} returner;

static int returner_run(sk_process *self)
{
    sk_stop(self);
    return 0;
}

static int returner_result(sk_process *self)
{
    returner *r = SK_CONTAINER_OF(self, returner, base);
    if (r->typed)
        return sk_returnv(self, &V.I, &V.s, &V.ai, &V.b);
    return sk_return(self, "Isi#B", &V.I, &V.s, V.ai, 8, &V.b);
}

static const sk_class returner_class = {
    .name = "returner", .run = returner_run, .result = returner_result};

static sk_process *start_returner(bool typed)
{
    values_init();
    returner *r = skt_new(returner);
    assert_rc(sk_init(&r->base, &returner_class), SK_OK);
    r->typed = typed;
    assert_rc(sk_start(&r->base), SK_OK);
    return &r->base;
}

static void check_result(int64_t I, char *s, const int32_t *ai, sk_bytes b)
{
    assert_true(I == V.I);
    assert_string_equal(s, V.s);
    assert_memory_equal(ai, V.ai, sizeof V.ai);
    assert_int_equal(b.size, 3);
    assert_memory_equal(b.addr, bytes, 3);
    free(s);
    free(b.addr);
}

/* sk_returnv's result reads with the hand-written format, sk_return's with
 * sk_resultv. */
static void test_return_and_result(void **state)
{
    (void)state;
    for (int typed = 0; typed <= 1; typed++) {
        sk_process *p = start_returner(typed);
        int64_t I = 0;
        char *s = NULL;
        int32_t ai[8] = {0};
        sk_bytes b = {0};
        if (typed)
            assert_rc(sk_result(p, "Isi#B", &I, &s, ai, 8, &b), SK_OK);
        else
            assert_rc(sk_resultv(p, &I, &s, &ai, &b), SK_OK);
        check_result(I, s, ai, b);
        /* A different type is refused as the format string would be. */
        int32_t I32 = 0;
        assert_rc(sk_resultv(p, &I32, &s, &ai, &b), SK_EFORMAT);
    }
}

/* ---------------------------------------------------- compile-time errors */

struct snippet {
    const char *name;
    const char *body; /* statements, with sk_process *p in scope */
    bool compiles;
};

static const struct snippet snippets[] = {
    {"control: every supported type", /* proves the setup compiles good code */
     "uint8_t c; int16_t j; uint16_t v; int32_t i; uint32_t u; int64_t I; uint64_t U;"
     "double f; char *s; sk_bytes b; int32_t a[4]; const double cf = 1;"
     "(void)sk_tellv(p, &c, &j, &v, &u, &I, &U); (void)sk_tellv(p, &f, &s, &b, &a, &cf, \"x\");"
     "(void)sk_listenv(p, 0, &c, &j, &v, &u, &I, &U); (void)sk_listenv(p, 0, &f, &s, &b, &a);"
     "(void)sk_resultv(p, &i); (void)sk_returnv(p, &i, s);",
     true},
    {"int8_t", "int8_t x = 0; (void)sk_tellv(p, &x);", false},
    {"plain char", "char x = 0; (void)sk_listenv(p, 0, &x);", false},
    {"signed char array", "signed char a[4]; (void)sk_tellv(p, &a);", false},
    {"plain char array received", "char a[4]; (void)sk_listenv(p, 0, &a);", false},
    {"float", "float x = 0; (void)sk_listenv(p, 0, &x);", false},
    {"bool", "_Bool x = 0; (void)sk_resultv(p, &x);", false},
    {"char * where a string is received", "char *s = 0; (void)sk_listenv(p, 0, s);", false},
    {"char * as a result", "char buf[8]; (void)sk_resultv(p, buf);", false},
    {"const where a value is received", "const int32_t x = 0; (void)sk_resultv(p, &x);", false},
    {"a value instead of a pointer", "int32_t x = 0; (void)sk_tellv(p, x);", false},
    {"an array of float", "float a[4]; (void)sk_tellv(p, &a);", false},
    {"a two-dimensional array", "int32_t a[2][3]; (void)sk_tellv(p, &a);", false},
    {"seven values", "int32_t x = 0; (void)sk_tellv(p, &x, &x, &x, &x, &x, &x, &x);", false},
    {"a pointer to a pointer", "int32_t *q = 0; (void)sk_listenv(p, 0, &q);", false},
    {"a struct", "struct { int a; } s; (void)sk_returnv(p, &s);", false},
};

/* Compiles body as a function of a C file; returns the compiler's exit
 * status and its messages in out. */
static int compile(const char *body, char *out, size_t outlen)
{
    char src[] = "/tmp/skproc-typed-XXXXXX.c";
    int fd = mkstemps(src, 2);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fprintf(f,
            "#include \"skproc.h\"\nint f(sk_process *p);\nint f(sk_process *p)\n{\n%s\n"
            "return 0;\n}\n",
            body);
    fclose(f);
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "${CC:-cc} -std=c11 -Wall -Wextra -Werror -fsyntax-only -Iinclude %s 2>&1", src);
    FILE *pipe = popen(cmd, "r");
    assert_non_null(pipe);
    size_t n = fread(out, 1, outlen - 1, pipe);
    out[n] = '\0';
    int status = pclose(pipe);
    unlink(src);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_wrong_types_do_not_compile(void **state)
{
    (void)state;
    if (system("command -v ${CC:-cc} >/dev/null 2>&1") != 0)
        skip();
    skt_bound(240);
    static char out[1 << 16];
    for (size_t k = 0; k < sizeof snippets / sizeof snippets[0]; k++) {
        int rc = compile(snippets[k].body, out, sizeof out);
        if (snippets[k].compiles && rc != 0)
            fail_msg("\"%s\" should compile:\n%s", snippets[k].name, out);
        if (!snippets[k].compiles && rc == 0)
            fail_msg("\"%s\" compiled, but its type is wrong", snippets[k].name);
    }
    /* The message names the rule. */
    assert_int_not_equal(compile("int8_t x = 0; (void)sk_tellv(p, &x);", out, sizeof out), 0);
    assert_non_null(strstr(out, "skproc: a typed value has a type with no tpl format"));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_tell_images_match_the_format_strings),
        SKT_TEST(test_listen_reads_the_format_strings),
        SKT_TEST(test_arguments_are_evaluated_once),
        SKT_TEST(test_return_and_result),
        SKT_TEST(test_wrong_types_do_not_compile),
    };
    return skt_run(argc, argv, tests);
}
