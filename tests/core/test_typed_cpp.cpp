/* SPDX-License-Identifier: MIT */
/*
 * The typed forms from C++ (C++17, g++ -Wall -Wextra -Werror): skproc.h
 * compiles as C++, and sk_tellv / sk_listenv / sk_returnv / sk_resultv,
 * function templates there, derive the same formats as the C macros.
 *
 *   - what sk_tellv sends is byte for byte the image of the hand-written
 *     format (sk_msg_pack), for scalars, strings (by pointer and by value),
 *     bytes and fixed arrays among up to 6 values;
 *   - sk_listenv reads what the format-string form sent; a wrong type is
 *     SK_EFORMAT;
 *   - sk_returnv / sk_resultv agree with sk_result's hand-written format;
 *   - the type rules hold at compile time (static_asserts on the traits).
 *
 * A plain program (cmocka's harness is C): it prints each failed check and
 * exits 1, and an alarm ends it if it hangs.
 */
#include "skproc.h"

extern "C" {
#include "codec/message.h"
}

#include <cinttypes>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <unistd.h>

static int failures = 0;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);          \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static const double T = 30.0;

/* The type rules, at compile time. */
static_assert(sk_typed::sends<int32_t *>() && sk_typed::receives<int32_t *>());
static_assert(sk_typed::sends<const int64_t *>() && !sk_typed::receives<const int64_t *>());
static_assert(sk_typed::sends<char *>() && !sk_typed::receives<char *>(),
              "a char * is a string sent by value, never a place to receive one");
static_assert(sk_typed::receives<char **>());
static_assert(!sk_typed::sends<int8_t *>() && !sk_typed::sends<float *>());
static_assert(!sk_typed::sends<bool *>() && !sk_typed::sends<int32_t **>());
static_assert(!sk_typed::sends<int32_t>(), "values go by pointer");
static_assert(
    sk_typed::format<uint8_t *, int16_t *, uint16_t *, int32_t *, uint32_t *, int64_t *>()[5] ==
    'I');
static_assert(std::string_view(sk_typed::format<int32_t (*)[8], double *, char **>().data()) ==
              "i#fs");

static int pack(std::string &out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    void *img = nullptr;
    size_t len = 0;
    int rc = sk_msg_pack(fmt, ap, &img, &len);
    va_end(ap);
    if (rc == SK_OK)
        out.assign(static_cast<const char *>(img), len);
    std::free(img);
    return rc;
}

/* The values, set before the fork. */
struct values {
    uint8_t c = 0xfe;
    int16_t j = -12345;
    uint16_t v = 54321;
    int32_t i = -7;
    uint32_t u = 4000000000u;
    int64_t I = INT64_MIN + 5;
    uint64_t U = UINT64_MAX - 3;
    double f = -2.5;
    char *s = const_cast<char *>("hello");
    char raw[3] = {1, 0, 3};
    sk_bytes b = {raw, 3};
    int32_t ai[8] = {-3, 997, 1997, 2997, 3997, 4997, 5997, 6997};
    const char *as[2] = {"one", "two"};
};
static values V;

struct teller {
    sk_process base;
    bool typed;
};

static int tell_typed(sk_process *p, int k)
{
    switch (k) {
    case 0:
        return sk_tellv(p, &V.c, &V.j, &V.v, &V.i, &V.u, &V.U);
    case 1:
        return sk_tellv(p, &V.f, &V.s, "by value", &V.b, &V.ai, &V.as);
    case 2:
        return sk_tellv(p, &V.I);
    }
    return SK_EINVAL;
}

static int hand(int k, std::string *img, sk_process *p)
{
    const char *by = "by value";
    switch (k) {
    case 0:
        return img ? pack(*img, "cjviuU", &V.c, &V.j, &V.v, &V.i, &V.u, &V.U)
                   : sk_tell(p, "cjviuU", &V.c, &V.j, &V.v, &V.i, &V.u, &V.U);
    case 1:
        return img ? pack(*img, "fssBi#s#", &V.f, &V.s, &by, &V.b, V.ai, 8, V.as, 2)
                   : sk_tell(p, "fssBi#s#", &V.f, &V.s, &by, &V.b, V.ai, 8, V.as, 2);
    case 2:
        return img ? pack(*img, "I", &V.I) : sk_tell(p, "I", &V.I);
    }
    return SK_EINVAL;
}

static int teller_run(sk_process *self)
{
    teller *t = SK_CONTAINER_OF(self, teller, base);
    for (int k = 0; k < 3; k++) {
        int rc = t->typed ? tell_typed(self, k) : hand(k, nullptr, self);
        if (rc != SK_OK)
            return sk_fail(self, rc, "case %d: %s", k, sk_strerror(rc));
    }
    sk_stop(self);
    return 0;
}

static int teller_result(sk_process *self)
{
    teller *t = SK_CONTAINER_OF(self, teller, base);
    if (t->typed)
        return sk_returnv(self, &V.I, V.s, &V.ai);
    return sk_return(self, "Isi#", &V.I, &V.s, V.ai, 8);
}

static sk_class make_class()
{
    sk_class cls{};
    cls.name = "teller";
    cls.run = teller_run;
    cls.result = teller_result;
    return cls;
}
static const sk_class teller_class = make_class();

static void images_match()
{
    teller t{};
    CHECK(sk_init(&t.base, &teller_class) == SK_OK);
    t.typed = true;
    CHECK(sk_start(&t.base) == SK_OK);
    for (int k = 0; k < 3; k++) {
        sk_message *msg = nullptr;
        CHECK(sk_listen_message(&t.base, T, &msg) == SK_OK);
        if (msg == nullptr)
            break;
        size_t len = 0;
        const void *img = sk_message_image(msg, &len);
        std::string want;
        CHECK(hand(k, &want, nullptr) == SK_OK);
        CHECK(std::string(static_cast<const char *>(img), len) == want);
        sk_message_free(msg);
    }
    int64_t I = 0;
    char *s = nullptr;
    int32_t ai[8] = {};
    CHECK(sk_result(&t.base, "Isi#", &I, &s, ai, 8) == SK_OK);
    CHECK(I == V.I && s != nullptr && std::strcmp(s, V.s) == 0);
    CHECK(std::memcmp(ai, V.ai, sizeof ai) == 0);
    std::free(s);
    sk_release(&t.base);
}

static void listen_reads_hand_formats()
{
    teller t{};
    CHECK(sk_init(&t.base, &teller_class) == SK_OK);
    t.typed = false;
    CHECK(sk_start(&t.base) == SK_OK);
    uint8_t c = 0;
    int16_t j = 0;
    uint16_t v = 0;
    int32_t i = 0;
    uint32_t u = 0;
    uint64_t U = 0;
    int64_t I = 0;
    CHECK(sk_listenv(&t.base, T, &c, &j, &v, &I, &u, &U) == SK_EFORMAT); /* I is not i */
    CHECK(sk_listenv(&t.base, T, &c, &j, &v, &i, &u, &U) == SK_OK);
    CHECK(c == V.c && j == V.j && v == V.v && i == V.i && u == V.u && U == V.U);

    double f = 0;
    char *s = nullptr, *by = nullptr, *as[2] = {};
    sk_bytes b{};
    int32_t ai[8] = {};
    CHECK(sk_listenv(&t.base, T, &f, &s, &by, &b, &ai, &as) == SK_OK);
    CHECK(f == V.f && s && std::strcmp(s, V.s) == 0 && by && std::strcmp(by, "by value") == 0);
    CHECK(b.size == 3 && b.addr && std::memcmp(b.addr, V.raw, 3) == 0);
    CHECK(std::memcmp(ai, V.ai, sizeof ai) == 0);
    CHECK(as[0] && as[1] && std::strcmp(as[0], "one") == 0 && std::strcmp(as[1], "two") == 0);
    std::free(s);
    std::free(by);
    std::free(b.addr);
    std::free(as[0]);
    std::free(as[1]);

    CHECK(sk_listenv(&t.base, T, &I) == SK_OK);
    CHECK(I == V.I);

    int32_t ai2[8] = {};
    CHECK(sk_resultv(&t.base, &I, &s, &ai2) == SK_OK);
    CHECK(I == V.I && s && std::strcmp(s, V.s) == 0);
    CHECK(std::memcmp(ai2, V.ai, sizeof ai2) == 0);
    std::free(s);
    sk_release(&t.base);
}

int main()
{
    alarm(240);
    images_match();
    listen_reads_hand_formats();
    if (failures)
        std::fprintf(stderr, "test_typed_cpp: %d check(s) failed\n", failures);
    else
        std::printf("test_typed_cpp: all checks passed\n");
    return failures ? 1 : 0;
}
