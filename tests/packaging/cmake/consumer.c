/* SPDX-License-Identifier: MIT */
/*
 * A program outside the skproc tree, built against an installed skproc, once
 * through CMake (CMakeLists.txt beside it) and once through pkg-config
 * (../pkgconfig/Makefile): it checks that the header and the library it
 * runs with agree on the version, and runs one process to its result, so
 * that the include path, the link and the library's own dependencies are
 * all exercised. Exit 0 on success.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <skproc.h>

typedef struct {
    sk_process base;
    int64_t count;
} counter;

static int counter_run(sk_process *self)
{
    counter *c = SK_CONTAINER_OF(self, counter, base);
    if (++c->count == 5)
        sk_stop(self);
    return 0;
}

static int counter_result(sk_process *self)
{
    return sk_return(self, "I", &SK_CONTAINER_OF(self, counter, base)->count);
}

int main(void)
{
    static const sk_class cls = {.name = "counter", .run = counter_run, .result = counter_result};
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", SKPROC_VERSION_MAJOR, SKPROC_VERSION_MINOR,
             SKPROC_VERSION_PATCH);
    if (strcmp(sk_version(), want) != 0 || sk_version_number() != SKPROC_VERSION_NUMBER) {
        fprintf(stderr, "consumer: header %s, library %s\n", want, sk_version());
        return 1;
    }
    counter c = {.count = 0};
    int64_t n = 0;
    int rc = sk_init(&c.base, &cls);
    if (rc == SK_OK)
        rc = sk_start(&c.base);
    if (rc == SK_OK)
        rc = sk_result(&c.base, "I", &n);
    sk_release(&c.base);
    if (rc != SK_OK || n != 5) {
        fprintf(stderr, "consumer: %s, count %" PRId64 "\n", sk_strerror(rc), n);
        return 1;
    }
    printf("consumer: skproc %s, counted to %" PRId64 "\n", sk_version(), n);
    return 0;
}
