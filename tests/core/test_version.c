/* SPDX-License-Identifier: MIT */
/*
 * The runtime version query: sk_version() and sk_version_number() report
 * the same version as the SKPROC_VERSION_* macros of the header the program
 * was built with (the library and the header here are from one tree), and
 * the reserved room of the public structs is zero after sk_init and after a
 * designated initializer, so that a later version may give it a meaning.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "support.h"

#include <stdio.h>
#include <string.h>

static void test_version_string_matches_macros(void **state)
{
    (void)state;
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", SKPROC_VERSION_MAJOR, SKPROC_VERSION_MINOR,
             SKPROC_VERSION_PATCH);
    assert_non_null(sk_version());
    assert_string_equal(sk_version(), want);
    assert_ptr_equal(sk_version(), sk_version()); /* static storage, the same every call */
}

static void test_version_number_matches_macros(void **state)
{
    (void)state;
    int want = SKPROC_VERSION_MAJOR * 10000 + SKPROC_VERSION_MINOR * 100 + SKPROC_VERSION_PATCH;
    assert_int_equal(sk_version_number(), want);
    assert_int_equal(SKPROC_VERSION_NUMBER, want);
    int major = -1, minor = -1, patch = -1;
    assert_int_equal(sscanf(sk_version(), "%d.%d.%d", &major, &minor, &patch), 3);
    assert_int_equal(sk_version_number(), major * 10000 + minor * 100 + patch);
}

static int noop_run(sk_process *self)
{
    (void)self;
    return 0;
}

typedef struct {
    sk_process base;
} holder;

static bool all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            return false;
    return true;
}

static void test_reserved_room_is_zero(void **state)
{
    (void)state;
    static const sk_class cls = {.name = "noop", .run = noop_run};
    assert_true(all_zero(cls.reserved, sizeof cls.reserved));

    holder *obj = skt_new(holder);
    memset(obj->base.config.reserved, 0xA5, sizeof obj->base.config.reserved);
    assert_rc(sk_init(&obj->base, &cls), SK_OK);
    assert_true(all_zero(obj->base.config.reserved, sizeof obj->base.config.reserved));

    sk_pool_config pcfg = {.workers = 1};
    sk_pool_job job = {.item_size = 4};
    assert_true(all_zero(pcfg.reserved, sizeof pcfg.reserved));
    assert_true(all_zero(job.reserved, sizeof job.reserved));
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_version_string_matches_macros),
        SKT_TEST(test_version_number_matches_macros),
        SKT_TEST(test_reserved_room_is_zero),
    };
    return skt_run(argc, argv, tests);
}
