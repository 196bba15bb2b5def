/* SPDX-License-Identifier: MIT */
/*
 * The condition tree, shared by the builders (cond.c), the parser
 * (cond_parse.c), the writer (cond_format.c) and the evaluator
 * (cond_eval.c).
 *
 * Windows are kept normalised, so that two texts that mean the same window
 * in the same words give equal trees: every point has seconds >= 0 (a day
 * alone is its start, or 86400 as the end of a between or of an on), and
 * points a span does not use are zero.
 */
#ifndef SKPROC_SCHED_COND_H
#define SKPROC_SCHED_COND_H

#include "skproc.h"

#include "sched/cron.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum cond_kind {
    COND_TRUE,
    COND_FALSE,
    COND_EVERY,    /* every: seconds */
    COND_PERIODIC, /* minutely ... monthly [window] */
    COND_TIME_OF,  /* time of <unit> <window> */
    COND_AFTER,    /* after task(s) */
    COND_CRON,
    COND_USER,
    COND_AND,
    COND_OR,
    COND_NOT
} cond_kind;

/* The longest every: 100 years of 365 days. */
#define COND_EVERY_MAX (INT64_C(100) * 365 * 86400)

struct sk_cond {
    cond_kind kind;
    int depth; /* 1 for a leaf */
    union {
        int64_t every; /* seconds */
        struct {
            sk_cond_unit unit;
            sk_cond_window w;
            bool wraps; /* a between whose end comes before its start */
        } window;
        struct {
            char **names;
            size_t n;
            bool any;
            sk_cond_outcome outcome;
        } after;
        sk_cron cron;
        char *user;
        struct {
            sk_cond *a, *b;
        } op; /* COND_AND, COND_OR; COND_NOT uses a */
    } u;
};

/* A new node of kind with nothing under it, or NULL. */
sk_cond *sk_cond_node(cond_kind kind);

/* Checks w for unit (periodic: SK_SPAN_ALL is allowed) and writes its
 * normalised form into node; false with *why set when it is not a window. */
bool sk_cond_set_window(sk_cond *node, sk_cond_unit unit, const sk_cond_window *w, bool periodic,
                        const char **why);

/* The length of a minute, hour or day in seconds (the end of its
 * windows); 0 for weeks and months. */
int64_t sk_cond_unit_seconds(sk_cond_unit unit);

/* True when name is one of the language's keywords (any case). */
bool sk_cond_is_keyword(const char *name, size_t len);

/* True when name (len bytes) is a valid user condition name. */
bool sk_cond_valid_user_name(const char *name, size_t len);

/* Day names, full ("Monday"); index 1 (SK_MONDAY) to 7. */
extern const char *const sk_cond_day_names[8];

/* Text being written: what fits goes into buf, len counts it all. */
typedef struct cond_text {
    char *buf;
    size_t cap, len;
} cond_text;

void cond_put(void *text, const char *s, size_t n);
void cond_puts(cond_text *t, const char *s);
void cond_printf(cond_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
