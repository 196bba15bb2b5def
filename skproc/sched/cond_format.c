/* SPDX-License-Identifier: MIT */
/* Conditions back to text, in the one canonical form the parser reads
 * into an equal tree. */
#include "sched/cond.h"

#include "core/error.h"

#include <string.h>

/* Binding strength: | 1, & 2, ~ 3, atoms 4. */
static int strength(const sk_cond *c)
{
    switch (c->kind) {
    case COND_OR:
        return 1;
    case COND_AND:
        return 2;
    case COND_NOT:
        return 3;
    default:
        return 4;
    }
}

static void clock(cond_text *t, int seconds)
{
    if (seconds % 60 == 0)
        cond_printf(t, "%02d:%02d", seconds / 3600, seconds / 60 % 60);
    else
        cond_printf(t, "%02d:%02d:%02d", seconds / 3600, seconds / 60 % 60, seconds % 60);
}

static const char *ordinal(int d)
{
    if (d % 100 >= 11 && d % 100 <= 13)
        return "th";
    return d % 10 == 1 ? "st" : d % 10 == 2 ? "nd" : d % 10 == 3 ? "rd" : "th";
}

/* A point. role: 's' a start, 'b' the end of a between, 'e' the end of a
 * before. A week or month point's time is left out when it is the day's
 * start (its end, for a between). */
static void point(cond_text *t, sk_cond_unit unit, sk_cond_point p, char role)
{
    switch (unit) {
    case SK_COND_MINUTE:
        cond_printf(t, "%d", p.seconds);
        return;
    case SK_COND_HOUR:
        cond_printf(t, "%02d:%02d", p.seconds / 60, p.seconds % 60);
        return;
    case SK_COND_DAY:
        clock(t, p.seconds);
        return;
    default:
        break;
    }
    if (unit == SK_COND_WEEK)
        cond_puts(t, sk_cond_day_names[p.day]);
    else
        cond_printf(t, "%d%s", p.day, ordinal(p.day));
    int day_alone = role == 'b' ? 86400 : 0;
    if (p.seconds != day_alone) {
        cond_puts(t, " ");
        clock(t, p.seconds);
    }
}

static void window(cond_text *t, const sk_cond *c)
{
    sk_cond_unit unit = c->u.window.unit;
    const sk_cond_window *w = &c->u.window.w;
    switch (w->span) {
    case SK_SPAN_ALL:
        return;
    case SK_SPAN_BETWEEN:
        cond_puts(t, " between ");
        point(t, unit, w->from, 's');
        cond_puts(t, " and ");
        point(t, unit, w->to, 'b');
        return;
    case SK_SPAN_AFTER:
        cond_puts(t, " after ");
        point(t, unit, w->from, 's');
        return;
    case SK_SPAN_BEFORE:
        cond_puts(t, " before ");
        point(t, unit, w->to, 'e');
        return;
    case SK_SPAN_ON:
        cond_puts(t, " on ");
        point(t, unit, w->from, 's');
        return;
    }
}

static void quoted(cond_text *t, const char *name)
{
    cond_puts(t, "'");
    for (const char *s = name; *s; s++) {
        if (*s == '\'' || *s == '\\')
            cond_puts(t, "\\");
        cond_put(t, s, 1);
    }
    cond_puts(t, "'");
}

static void every(cond_text *t, int64_t s)
{
    static const struct {
        int64_t size;
        const char *name;
    } units[] = {{86400, "day"}, {3600, "hour"}, {60, "minute"}, {1, "second"}};
    cond_puts(t, "every");
    for (int i = 0; i < 4; i++) {
        int64_t n = s / units[i].size;
        s -= n * units[i].size;
        if (n > 0)
            cond_printf(t, " %lld %s%s", (long long)n, units[i].name, n == 1 ? "" : "s");
    }
}

static const char *const periodic_words[] = {"minutely", "hourly", "daily", "weekly", "monthly"};
static const char *const unit_words[] = {"minute", "hour", "day", "week", "month"};
static const char *const outcome_words[] = {"succeeded", "failed", "finished"};

static void node(cond_text *t, const sk_cond *c);

static void operand(cond_text *t, const sk_cond *c, bool parens)
{
    if (parens)
        cond_puts(t, "(");
    node(t, c);
    if (parens)
        cond_puts(t, ")");
}

static void node(cond_text *t, const sk_cond *c)
{
    switch (c->kind) {
    case COND_TRUE:
        cond_puts(t, "true");
        return;
    case COND_FALSE:
        cond_puts(t, "false");
        return;
    case COND_EVERY:
        every(t, c->u.every);
        return;
    case COND_PERIODIC:
        cond_puts(t, periodic_words[c->u.window.unit]);
        window(t, c);
        return;
    case COND_TIME_OF:
        cond_puts(t, "time of ");
        cond_puts(t, unit_words[c->u.window.unit]);
        window(t, c);
        return;
    case COND_AFTER:
        cond_puts(t, c->u.after.n == 1 ? "after task "
                     : c->u.after.any  ? "after any tasks "
                                       : "after tasks ");
        for (size_t i = 0; i < c->u.after.n; i++) {
            if (i > 0)
                cond_puts(t, ", ");
            quoted(t, c->u.after.names[i]);
        }
        cond_puts(t, " ");
        cond_puts(t, outcome_words[c->u.after.outcome]);
        return;
    case COND_CRON:
        cond_puts(t, "cron ");
        sk_cron_format(&c->u.cron, cond_put, t);
        return;
    case COND_USER:
        cond_puts(t, c->u.user);
        return;
    case COND_AND:
    case COND_OR: {
        int s = strength(c);
        /* Left-associative: a right operand of the same strength keeps its
         * parentheses, so that the tree comes back the same. */
        operand(t, c->u.op.a, strength(c->u.op.a) < s);
        cond_puts(t, c->kind == COND_AND ? " & " : " | ");
        operand(t, c->u.op.b, strength(c->u.op.b) <= s);
        return;
    }
    case COND_NOT:
        cond_puts(t, "~");
        operand(t, c->u.op.a, strength(c->u.op.a) < 3);
        return;
    }
}

int sk_cond_format(const sk_cond *c, char *buf, size_t len)
{
    if (c == NULL || (buf == NULL && len > 0))
        return sk_refuse(SK_EINVAL, "sk_cond_format: no condition, or no buffer");
    cond_text t = {.buf = buf, .cap = len > 0 ? len - 1 : 0};
    node(&t, c);
    if (len > 0)
        buf[t.len < t.cap ? t.len : t.cap] = '\0';
    if (t.len > INT32_MAX)
        return sk_refuse(SK_EINVAL, "sk_cond_format: the text would be too long");
    return (int)t.len;
}
