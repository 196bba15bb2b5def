/* SPDX-License-Identifier: MIT */
/*
 * typed: messages and a result whose tpl formats the compiler derives from
 * the argument types (skproc/typed.h), so that a pointer of the wrong type
 * is a compile error instead of memory corruption.
 *
 * The parent tells a worker batches of four samples with a label; the
 * worker answers each with the label and the batch's mean, and returns how
 * many batches it saw and the largest sample. Build with `scons` and run
 * build/default/examples/typed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "skproc.h"

typedef struct {
    sk_process base;
    int64_t batches; /* seen so far */
    double largest;
} averager;

#define AVERAGER(p) SK_CONTAINER_OF(p, averager, base)

static int averager_run(sk_process *self)
{
    averager *a = AVERAGER(self);
    char *label = NULL;
    double samples[4];
    /* the format "sf#" with length 4, from the types */
    int rc = sk_listenv(self, -1, &label, &samples);
    if (rc == SK_ECLOSED) { /* the parent asked to stop and nothing is left */
        sk_stop(self);
        return 0;
    }
    if (rc != SK_OK)
        return sk_fail(self, rc, "listen: %s", sk_strerror(rc));
    double sum = 0;
    for (int k = 0; k < 4; k++) {
        sum += samples[k];
        if (a->batches == 0 && k == 0)
            a->largest = samples[k];
        if (samples[k] > a->largest)
            a->largest = samples[k];
    }
    double mean = sum / 4;
    a->batches++;
    rc = sk_tellv(self, label, &mean); /* "sf": a string by value, a double */
    free(label);
    return rc == SK_OK ? 0 : sk_fail(self, rc, "tell: %s", sk_strerror(rc));
}

static int averager_result(sk_process *self)
{
    averager *a = AVERAGER(self);
    return sk_returnv(self, &a->batches, &a->largest); /* "If" */
}

static const sk_class averager_class = {
    .name = "averager", .run = averager_run, .result = averager_result};

int main(void)
{
    averager a = {0};
    if (sk_init(&a.base, &averager_class) != SK_OK || sk_start(&a.base) != SK_OK) {
        fprintf(stderr, "typed: cannot start the worker\n");
        return 1;
    }
    const char *labels[] = {"morning", "noon", "evening"};
    for (int b = 0; b < 3; b++) {
        double samples[4] = {b + 1.0, b + 2.0, b * 3.0, 0.5};
        sk_tellv(&a.base, labels[b], &samples);
    }
    for (int b = 0; b < 3; b++) {
        char *label = NULL;
        double mean = 0;
        if (sk_listenv(&a.base, 10.0, &label, &mean) != SK_OK)
            break;
        printf("%-8s mean %.3f\n", label, mean);
        free(label);
    }
    sk_stop(&a.base);
    int64_t batches = 0;
    double largest = 0;
    int rc = sk_resultv(&a.base, &batches, &largest);
    if (rc == SK_OK)
        printf("%" PRId64 " batches, largest sample %.1f\n", batches, largest);
    else
        fprintf(stderr, "typed: %s\n", sk_strerror(rc));
    sk_release(&a.base);
    return rc == SK_OK ? 0 : 1;
}
