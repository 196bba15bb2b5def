/* SPDX-License-Identifier: MIT */
/* Conditions from C: the builders, freeing, comparing, and what the parser
 * and the writer share (windows, names, text buffers). */
#include "sched/cond.h"

#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

const char *const sk_cond_day_names[8] = {"",         "Monday", "Tuesday",  "Wednesday",
                                          "Thursday", "Friday", "Saturday", "Sunday"};

/* Every word of the language: none of them can name a user condition. */
static const char *const keywords[] = {
    "true",    "false", "every",     "minutely", "hourly",   "daily", "weekly", "monthly", "time",
    "of",      "after", "before",    "between",  "and",      "or",    "not",    "on",      "task",
    "tasks",   "any",   "succeeded", "failed",   "finished", "cron",  "second", "seconds", "minute",
    "minutes", "hour",  "hours",     "day",      "days",     "week",  "weeks",  "month",   "months",
};

bool sk_cond_is_keyword(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++)
        if (strlen(keywords[i]) == len && strncasecmp(keywords[i], name, len) == 0)
            return true;
    return false;
}

static bool name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

bool sk_cond_valid_user_name(const char *name, size_t len)
{
    if (len == 0 || len > SK_COND_NAME_MAX || !name_start(name[0]))
        return false;
    for (size_t i = 1; i < len; i++) {
        char c = name[i];
        if (!name_start(c) && !(c >= '0' && c <= '9') && c != '-' && c != '.')
            return false;
    }
    return !sk_cond_is_keyword(name, len);
}

sk_cond *sk_cond_node(cond_kind kind)
{
    sk_cond *c = calloc(1, sizeof *c);
    if (c == NULL) {
        sk_refuse(SK_ENOMEM, "out of memory");
        return NULL;
    }
    c->kind = kind;
    c->depth = 1;
    return c;
}

int64_t sk_cond_unit_seconds(sk_cond_unit unit)
{
    switch (unit) {
    case SK_COND_MINUTE:
        return 60;
    case SK_COND_HOUR:
        return 3600;
    case SK_COND_DAY:
        return 86400;
    default:
        return 0;
    }
}

static bool has_days(sk_cond_unit unit)
{
    return unit == SK_COND_WEEK || unit == SK_COND_MONTH;
}

/* A start point (end: false) or an end point of unit, as given: valid? */
static bool point_ok(sk_cond_unit unit, sk_cond_point p, bool end)
{
    if (!has_days(unit)) {
        int64_t len = sk_cond_unit_seconds(unit);
        return p.day == 0 && p.seconds >= 0 && (end ? p.seconds <= len : p.seconds < len);
    }
    int max_day = unit == SK_COND_WEEK ? 7 : 31;
    if (p.day < 1 || p.day > max_day)
        return false;
    return p.seconds == -1 || (p.seconds >= 0 && (end ? p.seconds <= 86400 : p.seconds < 86400));
}

/* The position of p in a period, days not clamped: what decides whether a
 * window runs over into the next period. */
static int64_t linear(sk_cond_unit unit, sk_cond_point p)
{
    return has_days(unit) ? (int64_t)(p.day - 1) * 86400 + p.seconds : p.seconds;
}

bool sk_cond_set_window(sk_cond *node, sk_cond_unit unit, const sk_cond_window *w, bool periodic,
                        const char **why)
{
    if ((int)unit < SK_COND_MINUTE || unit > SK_COND_MONTH) {
        *why = "unknown unit";
        return false;
    }
    sk_cond_window n = {.span = w == NULL ? SK_SPAN_ALL : w->span};
    switch (n.span) {
    case SK_SPAN_ALL:
        if (!periodic) {
            *why = "a time-of condition needs a window (between, after, before or on)";
            return false;
        }
        break;
    case SK_SPAN_BETWEEN:
        if (!point_ok(unit, w->from, false) || !point_ok(unit, w->to, true)) {
            *why = "a point of the window is out of range for its unit";
            return false;
        }
        n.from = w->from;
        n.to = w->to;
        if (n.from.seconds < 0)
            n.from.seconds = 0;
        if (n.to.seconds < 0)
            n.to.seconds = 86400; /* a day alone as the end: all of it */
        if (linear(unit, n.from) == linear(unit, n.to)) {
            *why = "the window is empty: it ends where it starts";
            return false;
        }
        break;
    case SK_SPAN_AFTER:
        if (!point_ok(unit, w->from, false)) {
            *why = "the start of the window is out of range for its unit";
            return false;
        }
        n.from = w->from;
        if (n.from.seconds < 0)
            n.from.seconds = 0;
        break;
    case SK_SPAN_BEFORE:
        if (!point_ok(unit, w->to, true)) {
            *why = "the end of the window is out of range for its unit";
            return false;
        }
        n.to = w->to;
        if (n.to.seconds < 0)
            n.to.seconds = 0; /* before a day: before it starts */
        if (linear(unit, n.to) == 0) {
            *why = "the window is empty: it ends where the period starts";
            return false;
        }
        break;
    case SK_SPAN_ON:
        if (!has_days(unit) || !point_ok(unit, (sk_cond_point){w->from.day, -1}, false)) {
            *why = has_days(unit) ? "the day is out of range"
                                  : "'on' is for weeks and months (a weekday, a day of the month)";
            return false;
        }
        n.from = (sk_cond_point){w->from.day, 0};
        n.to = (sk_cond_point){w->from.day, 86400};
        break;
    default:
        *why = "unknown span";
        return false;
    }
    node->u.window.unit = unit;
    node->u.window.w = n;
    node->u.window.wraps = n.span == SK_SPAN_BETWEEN && linear(unit, n.from) > linear(unit, n.to);
    return true;
}

/* ------------------------------------------------------------- builders */

sk_cond *sk_cond_true(void)
{
    return sk_cond_node(COND_TRUE);
}

sk_cond *sk_cond_false(void)
{
    return sk_cond_node(COND_FALSE);
}

sk_cond *sk_cond_every(int64_t seconds)
{
    if (seconds < 1 || seconds > COND_EVERY_MAX) {
        sk_refuse(SK_EINVAL, "every: %lld seconds is not within 1 second and 100 years",
                  (long long)seconds);
        return NULL;
    }
    sk_cond *c = sk_cond_node(COND_EVERY);
    if (c != NULL)
        c->u.every = seconds;
    return c;
}

static sk_cond *window_node(cond_kind kind, sk_cond_unit unit, const sk_cond_window *w)
{
    sk_cond *c = sk_cond_node(kind);
    const char *why;
    if (c != NULL && !sk_cond_set_window(c, unit, w, kind == COND_PERIODIC, &why)) {
        sk_refuse(SK_EINVAL, "%s", why);
        free(c);
        return NULL;
    }
    return c;
}

sk_cond *sk_cond_periodic(sk_cond_unit unit, const sk_cond_window *window)
{
    return window_node(COND_PERIODIC, unit, window);
}

sk_cond *sk_cond_time_of(sk_cond_unit unit, const sk_cond_window *window)
{
    if (window == NULL) {
        sk_refuse(SK_EINVAL, "a time-of condition needs a window");
        return NULL;
    }
    return window_node(COND_TIME_OF, unit, window);
}

sk_cond *sk_cond_time_of_day(int from, int to)
{
    sk_cond_window w = {.span = SK_SPAN_BETWEEN, .from = {0, from}, .to = {0, to}};
    return window_node(COND_TIME_OF, SK_COND_DAY, &w);
}

sk_cond *sk_cond_time_of_week(sk_weekday from_day, sk_weekday to_day)
{
    sk_cond_window w = {
        .span = SK_SPAN_BETWEEN, .from = {(int)from_day, -1}, .to = {(int)to_day, -1}};
    return window_node(COND_TIME_OF, SK_COND_WEEK, &w);
}

static sk_cond *after_node(const char *const *names, size_t n, sk_cond_outcome outcome, bool any)
{
    if (names == NULL || n == 0 || n > 4096) {
        sk_refuse(SK_EINVAL, "after: give 1 to 4096 task names");
        return NULL;
    }
    if ((int)outcome < SK_COND_SUCCEEDED || outcome > SK_COND_FINISHED) {
        sk_refuse(SK_EINVAL, "after: unknown outcome %d", (int)outcome);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = names[i] == NULL ? 0 : strlen(names[i]);
        if (len == 0 || len > SK_COND_NAME_MAX) {
            sk_refuse(SK_EINVAL, "after: task name %zu is empty or longer than %d bytes", i,
                      SK_COND_NAME_MAX);
            return NULL;
        }
    }
    sk_cond *c = sk_cond_node(COND_AFTER);
    if (c == NULL)
        return NULL;
    c->u.after.names = calloc(n, sizeof(char *));
    if (c->u.after.names == NULL) {
        free(c);
        sk_refuse(SK_ENOMEM, "out of memory");
        return NULL;
    }
    c->u.after.n = n;
    c->u.after.any = any && n > 1;
    c->u.after.outcome = outcome;
    for (size_t i = 0; i < n; i++) {
        c->u.after.names[i] = strdup(names[i]);
        if (c->u.after.names[i] == NULL) {
            sk_cond_free(c);
            sk_refuse(SK_ENOMEM, "out of memory");
            return NULL;
        }
    }
    return c;
}

sk_cond *sk_cond_after_task(const char *name, sk_cond_outcome outcome)
{
    return after_node(&name, 1, outcome, false);
}

sk_cond *sk_cond_after_all(const char *const *names, size_t n, sk_cond_outcome outcome)
{
    return after_node(names, n, outcome, false);
}

sk_cond *sk_cond_after_any(const char *const *names, size_t n, sk_cond_outcome outcome)
{
    return after_node(names, n, outcome, true);
}

sk_cond *sk_cond_user(const char *name)
{
    if (name == NULL || !sk_cond_valid_user_name(name, strlen(name))) {
        sk_refuse(SK_EINVAL, "user condition name '%s' is not a word, or is a keyword",
                  name == NULL ? "(null)" : name);
        return NULL;
    }
    sk_cond *c = sk_cond_node(COND_USER);
    if (c == NULL)
        return NULL;
    c->u.user = strdup(name);
    if (c->u.user == NULL) {
        free(c);
        sk_refuse(SK_ENOMEM, "out of memory");
        return NULL;
    }
    return c;
}

static sk_cond *op_node(cond_kind kind, sk_cond *a, sk_cond *b)
{
    if (a == NULL || (kind != COND_NOT && b == NULL)) {
        sk_cond_free(a);
        sk_cond_free(b);
        /* The operand that failed said why; keep its message. */
        return NULL;
    }
    int depth = 1 + (b != NULL && b->depth > a->depth ? b->depth : a->depth);
    if (depth > SK_COND_MAX_DEPTH) {
        sk_cond_free(a);
        sk_cond_free(b);
        sk_refuse(SK_EINVAL, "the condition would be more than %d levels deep", SK_COND_MAX_DEPTH);
        return NULL;
    }
    sk_cond *c = sk_cond_node(kind);
    if (c == NULL) {
        sk_cond_free(a);
        sk_cond_free(b);
        return NULL;
    }
    c->depth = depth;
    c->u.op.a = a;
    c->u.op.b = b;
    return c;
}

sk_cond *sk_cond_and(sk_cond *a, sk_cond *b)
{
    return op_node(COND_AND, a, b);
}

sk_cond *sk_cond_or(sk_cond *a, sk_cond *b)
{
    return op_node(COND_OR, a, b);
}

sk_cond *sk_cond_not(sk_cond *a)
{
    return op_node(COND_NOT, a, NULL);
}

void sk_cond_free(sk_cond *c)
{
    if (c == NULL)
        return;
    switch (c->kind) {
    case COND_AFTER:
        for (size_t i = 0; i < c->u.after.n && c->u.after.names != NULL; i++)
            free(c->u.after.names[i]);
        free(c->u.after.names);
        break;
    case COND_USER:
        free(c->u.user);
        break;
    case COND_AND:
    case COND_OR:
    case COND_NOT:
        sk_cond_free(c->u.op.a);
        sk_cond_free(c->u.op.b);
        break;
    default:
        break;
    }
    free(c);
}

static bool point_equal(sk_cond_point a, sk_cond_point b)
{
    return a.day == b.day && a.seconds == b.seconds;
}

bool sk_cond_equal(const sk_cond *a, const sk_cond *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    if (a->kind != b->kind)
        return false;
    switch (a->kind) {
    case COND_TRUE:
    case COND_FALSE:
        return true;
    case COND_EVERY:
        return a->u.every == b->u.every;
    case COND_PERIODIC:
    case COND_TIME_OF:
        return a->u.window.unit == b->u.window.unit && a->u.window.w.span == b->u.window.w.span &&
               point_equal(a->u.window.w.from, b->u.window.w.from) &&
               point_equal(a->u.window.w.to, b->u.window.w.to);
    case COND_AFTER:
        if (a->u.after.n != b->u.after.n || a->u.after.any != b->u.after.any ||
            a->u.after.outcome != b->u.after.outcome)
            return false;
        for (size_t i = 0; i < a->u.after.n; i++)
            if (strcmp(a->u.after.names[i], b->u.after.names[i]) != 0)
                return false;
        return true;
    case COND_CRON:
        return sk_cron_equal(&a->u.cron, &b->u.cron);
    case COND_USER:
        return strcmp(a->u.user, b->u.user) == 0;
    case COND_AND:
    case COND_OR:
        return sk_cond_equal(a->u.op.a, b->u.op.a) && sk_cond_equal(a->u.op.b, b->u.op.b);
    case COND_NOT:
        return sk_cond_equal(a->u.op.a, b->u.op.a);
    }
    return false;
}

int64_t sk_cond_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * INT64_C(1000000000) + ts.tv_nsec;
}

/* ----------------------------------------------------------------- text */

void cond_put(void *text, const char *s, size_t n)
{
    cond_text *t = text;
    if (t->len < t->cap) {
        size_t room = t->cap - t->len;
        memcpy(t->buf + t->len, s, n < room ? n : room);
    }
    t->len += n;
}

void cond_puts(cond_text *t, const char *s)
{
    cond_put(t, s, strlen(s));
}

void cond_printf(cond_text *t, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        cond_put(t, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}
