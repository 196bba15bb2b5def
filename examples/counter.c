/* SPDX-License-Identifier: MIT */
/*
 * counter: the smallest complete skproc program.
 *
 * A process is a struct of yours that embeds an sk_process. The run hook is
 * called over and over in a child process; here it counts, and when the count
 * reaches the target it stops the loop itself. The result hook publishes the
 * count, and the parent reads it with sk_result.
 *
 * Build: gcc -std=c11 counter.c $(pkg-config --cflags --libs skproc)
 */
#include <inttypes.h>
#include <stdio.h>

#include <skproc.h>

typedef struct {
    sk_process base; /* the embedded base: sk_* functions take &c.base */
    int64_t count;
    int64_t target;
} counter;

#define COUNTER(p) SK_CONTAINER_OF(p, counter, base)

/* Called once per iteration, in the child. */
static int counter_run(sk_process *self)
{
    counter *c = COUNTER(self);
    if (++c->count == c->target)
        sk_stop(self); /* this iteration is the last one */
    return 0;          /* 0: success */
}

/* Called once after the loop, in the child: publish what the parent reads. */
static int counter_result(sk_process *self)
{
    return sk_return(self, "I", &COUNTER(self)->count); /* "I": int64_t */
}

static const sk_class counter_class = {
    .name = "counter",
    .run = counter_run,
    .result = counter_result,
};

int main(void)
{
    counter c = {.target = 10};
    if (sk_init(&c.base, &counter_class) != SK_OK)
        return 1;

    int rc = sk_start(&c.base);
    if (rc != SK_OK) {
        fprintf(stderr, "sk_start: %s\n", sk_strerror(rc));
        sk_release(&c.base);
        return 1;
    }

    int64_t n = 0;
    rc = sk_result(&c.base, "I", &n); /* waits for the child, then unpacks */
    if (rc == SK_OK)
        printf("counted to %" PRId64 "\n", n);
    else
        fprintf(stderr, "sk_result: %s\n", sk_strerror(rc));

    sk_release(&c.base);
    return rc == SK_OK ? 0 : 1;
}
