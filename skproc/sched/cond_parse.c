/* SPDX-License-Identifier: MIT */
/*
 * The condition language, read by recursive descent (docs/scheduling.md has the
 * grammar):
 *
 *     or      := and ('|' and)*
 *     and     := not ('&' not)*
 *     not     := '~' not | '(' or ')' | atom
 *
 * Words are runs of bytes that are not whitespace and not one of & | ~ ( )
 * ' "; an atom reads the words it knows and hands back at the first thing
 * that is not its own. Every refusal names the byte where it happened, what
 * would have been right there and the word before it.
 */
#include "sched/cond.h"

#include "core/error.h"
#include "sched/cron.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct parser {
    const char *s;
    size_t len, pos;
    size_t prev_at, prev_len; /* the last token taken, for messages */
    bool has_prev;
    int nesting; /* parentheses and ~ open around here */
    int parens;  /* parentheses open: is ')' expected? */
    bool failed, nomem;
    const char *follow; /* what else the last atom could have taken, for messages */
    sk_cond_parse_error *err;
};

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static bool is_word(char c)
{
    return c != '\0' && !is_space(c) && strchr("&|~()'\"", c) == NULL;
}

static void skip_space(struct parser *p)
{
    while (p->pos < p->len && is_space(p->s[p->pos]))
        p->pos++;
}

/* Refuses at byte `at`: expected is what would have been right there,
 * reason (or NULL) why what is there is not. Returns NULL for the callers. */
static sk_cond *fail(struct parser *p, size_t at, const char *expected, const char *reason)
{
    if (p->failed)
        return NULL;
    p->failed = true;
    sk_cond_parse_error *e = p->err;
    e->position = at;
    snprintf(e->expected, sizeof e->expected, "%s", expected);
    char prev[48] = "";
    if (p->has_prev) {
        size_t n = p->prev_len < 40 ? p->prev_len : 40;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)p->s[p->prev_at + i];
            prev[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
        }
        strcpy(prev + n, p->prev_len > 40 ? "..." : "");
    }
    char where[96];
    if (p->has_prev)
        snprintf(where, sizeof where, " after '%s'", prev);
    else
        where[0] = '\0';
    snprintf(e->message, sizeof e->message, "%s%sexpected %s%s at %zu", reason ? reason : "",
             reason ? ": " : "", expected, where, at);
    return NULL;
}

static sk_cond *out_of_memory(struct parser *p)
{
    p->nomem = true;
    return fail(p, p->pos, "memory", "out of memory");
}

/* The word at the current position (after spaces), not taken: its start
 * and length (0 when the next thing is not a word or the text ends). */
static size_t peek_word(struct parser *p, size_t *at)
{
    skip_space(p);
    *at = p->pos;
    size_t n = 0;
    while (p->pos + n < p->len && is_word(p->s[p->pos + n]))
        n++;
    return n;
}

static void take(struct parser *p, size_t at, size_t n)
{
    p->prev_at = at;
    p->prev_len = n;
    p->has_prev = true;
    p->pos = at + n;
}

static bool word_eq(const struct parser *p, size_t at, size_t n, const char *kw)
{
    return strlen(kw) == n && strncasecmp(p->s + at, kw, n) == 0;
}

/* Takes the next word when it is kw (any case). */
static bool accept(struct parser *p, const char *kw)
{
    size_t at, n = peek_word(p, &at);
    if (n == 0 || !word_eq(p, at, n, kw))
        return false;
    take(p, at, n);
    return true;
}

/* ---------------------------------------------------------------- words */

/* "H:MM", "HH:MM" or "HH:MM:SS" as seconds, with the first number at most
 * max_first; -1 when it is not one. */
static int clock_time(const char *s, size_t n, int max_first, bool seconds_required)
{
    int parts[3], count = 0;
    size_t i = 0;
    while (count < 3) {
        size_t start = i;
        int v = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9' && i - start < 2)
            v = v * 10 + (s[i++] - '0');
        size_t digits = i - start;
        if (digits == 0 || (count > 0 && digits != 2))
            return -1;
        parts[count++] = v;
        if (i == n)
            break;
        if (s[i] != ':')
            return -1;
        i++;
        if (i == n)
            return -1;
    }
    if (i != n || count < 2 || (seconds_required && count != 2))
        return -1;
    if (parts[0] > max_first || parts[1] > 59 || (count == 3 && parts[2] > 59))
        return -1;
    if (count == 2 && seconds_required) /* MM:SS */
        return parts[0] * 60 + parts[1];
    return parts[0] * 3600 + parts[1] * 60 + (count == 3 ? parts[2] : 0);
}

static int weekday(const char *s, size_t n)
{
    for (int d = 1; d <= 7; d++) {
        const char *name = sk_cond_day_names[d];
        if ((n == strlen(name) || n == 3) && strncasecmp(s, name, n) == 0)
            return d;
    }
    return 0;
}

static const char *ordinal_suffix(int d)
{
    if (d % 100 >= 11 && d % 100 <= 13)
        return "th";
    switch (d % 10) {
    case 1:
        return "st";
    case 2:
        return "nd";
    case 3:
        return "rd";
    default:
        return "th";
    }
}

/* "3", "3rd", "21st": a day of the month, or 0. */
static int month_day(const char *s, size_t n)
{
    size_t i = 0;
    int v = 0;
    while (i < n && i < 2 && s[i] >= '0' && s[i] <= '9')
        v = v * 10 + (s[i++] - '0');
    if (i == 0 || v < 1 || v > 31)
        return 0;
    if (i == n)
        return v;
    if (n - i == 2 && strncasecmp(s + i, ordinal_suffix(v), 2) == 0)
        return v;
    return 0;
}

static const char *point_expected(sk_cond_unit unit)
{
    switch (unit) {
    case SK_COND_MINUTE:
        return "a second of the minute (0 to 59)";
    case SK_COND_HOUR:
        return "a time of the hour (MM:SS)";
    case SK_COND_DAY:
        return "a time of day (HH:MM or HH:MM:SS)";
    case SK_COND_WEEK:
        return "a day of the week (Monday or Mon)";
    default:
        return "a day of the month (1st to 31st)";
    }
}

/* One point of a window of unit; end: it may be the period's end (60,
 * 60:00, 24:00, a day's 24:00). */
static bool point(struct parser *p, sk_cond_unit unit, bool end, sk_cond_point *out)
{
    size_t at, n = peek_word(p, &at);
    const char *w = p->s + at;
    int v = -1;
    switch (unit) {
    case SK_COND_MINUTE:
        if (n >= 1 && n <= 2 && w[0] >= '0' && w[0] <= '9' &&
            (n == 1 || (w[1] >= '0' && w[1] <= '9'))) {
            v = n == 1 ? w[0] - '0' : (w[0] - '0') * 10 + (w[1] - '0');
            if (v > (end ? 60 : 59))
                v = -1;
        }
        break;
    case SK_COND_HOUR:
        v = clock_time(w, n, end ? 60 : 59, true);
        if (v > (end ? 3600 : 3599))
            v = -1;
        break;
    case SK_COND_DAY:
        v = clock_time(w, n, end ? 24 : 23, false);
        if (v > (end ? 86400 : 86399))
            v = -1;
        break;
    default:
        v = unit == SK_COND_WEEK ? weekday(w, n) : month_day(w, n);
        if (v == 0)
            v = -1;
        break;
    }
    if (n == 0 || v < 0) {
        fail(p, at, point_expected(unit), n == 0 ? NULL : "not one, or out of range");
        return false;
    }
    take(p, at, n);
    if (unit != SK_COND_WEEK && unit != SK_COND_MONTH) {
        *out = (sk_cond_point){0, v};
        return true;
    }
    *out = (sk_cond_point){v, -1};
    /* An optional time of that day. */
    size_t tat, tn = peek_word(p, &tat);
    if (tn > 0 && p->s[tat] >= '0' && p->s[tat] <= '9') {
        int t = clock_time(p->s + tat, tn, end ? 24 : 23, false);
        if (t < 0 || t > (end ? 86400 : 86399)) {
            fail(p, tat, "a time of day (HH:MM or HH:MM:SS)", "not one, or out of range");
            return false;
        }
        take(p, tat, tn);
        out->seconds = t;
    }
    return true;
}

/* A window after a periodic word (optional) or after "time of <unit>". */
static bool window(struct parser *p, sk_cond *node, sk_cond_unit unit, bool periodic)
{
    sk_cond_window w = {.span = SK_SPAN_ALL};
    size_t at, n = peek_word(p, &at);
    size_t check_at = at;
    if (n > 0 && word_eq(p, at, n, "between")) {
        take(p, at, n);
        w.span = SK_SPAN_BETWEEN;
        if (!point(p, unit, false, &w.from))
            return false;
        if (!accept(p, "and")) {
            size_t a2;
            peek_word(p, &a2);
            fail(p, a2, "'and'", NULL);
            return false;
        }
        peek_word(p, &check_at);
        if (!point(p, unit, true, &w.to))
            return false;
    } else if (n > 0 && word_eq(p, at, n, "after")) {
        take(p, at, n);
        w.span = SK_SPAN_AFTER;
        peek_word(p, &check_at);
        if (!point(p, unit, false, &w.from))
            return false;
    } else if (n > 0 && word_eq(p, at, n, "before")) {
        take(p, at, n);
        w.span = SK_SPAN_BEFORE;
        peek_word(p, &check_at);
        if (!point(p, unit, true, &w.to))
            return false;
    } else if (n > 0 && word_eq(p, at, n, "on") &&
               (unit == SK_COND_WEEK || unit == SK_COND_MONTH)) {
        take(p, at, n);
        w.span = SK_SPAN_ON;
        size_t dat, dn = peek_word(p, &dat);
        int d = unit == SK_COND_WEEK ? weekday(p->s + dat, dn) : month_day(p->s + dat, dn);
        if (dn == 0 || d == 0) {
            fail(p, dat, point_expected(unit), dn == 0 ? NULL : "not one");
            return false;
        }
        take(p, dat, dn);
        w.from = (sk_cond_point){d, -1};
    } else if (!periodic) {
        fail(p, at,
             unit == SK_COND_WEEK || unit == SK_COND_MONTH ? "'between', 'after', 'before' or 'on'"
                                                           : "'between', 'after' or 'before'",
             NULL);
        return false;
    }
    const char *why;
    if (!sk_cond_set_window(node, unit, &w, periodic, &why)) {
        fail(p, check_at, point_expected(unit), why);
        return false;
    }
    return true;
}

static const struct {
    const char *word;
    int64_t seconds;
} duration_units[] = {
    {"second", 1},   {"seconds", 1}, {"minute", 60},  {"minutes", 60},  {"hour", 3600},
    {"hours", 3600}, {"day", 86400}, {"days", 86400}, {"week", 604800}, {"weeks", 604800},
};

static int64_t duration_unit(const struct parser *p, size_t at, size_t n)
{
    for (size_t i = 0; i < sizeof duration_units / sizeof duration_units[0]; i++)
        if (word_eq(p, at, n, duration_units[i].word))
            return duration_units[i].seconds;
    return 0;
}

static sk_cond *every(struct parser *p)
{
    int64_t total = 0;
    int parts = 0;
    for (;;) {
        size_t at, n = peek_word(p, &at);
        int64_t count = 1;
        if (n > 0 && p->s[at] >= '0' && p->s[at] <= '9') {
            count = 0;
            for (size_t i = 0; i < n; i++) {
                char c = p->s[at + i];
                if (c < '0' || c > '9' || count > COND_EVERY_MAX)
                    return fail(p, at, "a number",
                                i > 0 && c >= '0' && c <= '9' ? "too large" : NULL);
                count = count * 10 + (c - '0');
            }
            take(p, at, n);
            n = peek_word(p, &at);
        } else if (parts > 0) {
            break; /* the duration ended */
        }
        int64_t unit = n == 0 ? 0 : duration_unit(p, at, n);
        if (unit == 0)
            return fail(p, at,
                        parts == 0 && count == 1
                            ? "a number or a unit (seconds, minutes, hours, days, weeks)"
                            : "a unit (seconds, minutes, hours, days, weeks)",
                        NULL);
        if (count > COND_EVERY_MAX / unit || total + count * unit > COND_EVERY_MAX)
            return fail(p, at, "a duration up to 100 years", "too long");
        take(p, at, n);
        total += count * unit;
        parts++;
    }
    if (total == 0)
        return fail(p, p->prev_at, "a duration longer than 0 seconds", "empty duration");
    sk_cond *c = sk_cond_node(COND_EVERY);
    if (c == NULL)
        return out_of_memory(p);
    c->u.every = total;
    return c;
}

/* A task name in single or double quotes; a backslash takes the next byte
 * as it is. Returns a malloc'ed copy, or NULL (failed). */
static char *quoted(struct parser *p)
{
    skip_space(p);
    size_t at = p->pos;
    if (at >= p->len || (p->s[at] != '\'' && p->s[at] != '"')) {
        fail(p, at, "a task name in quotes", NULL);
        return NULL;
    }
    char q = p->s[at];
    char *name = malloc(SK_COND_NAME_MAX + 1);
    if (name == NULL) {
        out_of_memory(p);
        return NULL;
    }
    size_t i = at + 1, n = 0;
    for (;;) {
        if (i >= p->len) {
            free(name);
            fail(p, i, q == '\'' ? "\"'\" to end the task name" : "'\"' to end the task name",
                 NULL);
            return NULL;
        }
        char c = p->s[i];
        if (c == q)
            break;
        if (c == '\\') {
            if (++i >= p->len)
                continue; /* reported as unterminated above */
            c = p->s[i];
        }
        if (n == SK_COND_NAME_MAX) {
            free(name);
            fail(p, at, "a task name of at most 255 bytes", "too long");
            return NULL;
        }
        name[n++] = c;
        i++;
    }
    if (n == 0) {
        free(name);
        fail(p, at, "a task name", "empty");
        return NULL;
    }
    name[n] = '\0';
    take(p, at, i + 1 - at);
    return name;
}

static sk_cond *after(struct parser *p)
{
    size_t at, n = peek_word(p, &at);
    bool any = false, many;
    if (n > 0 && word_eq(p, at, n, "task")) {
        many = false;
    } else if (n > 0 && word_eq(p, at, n, "tasks")) {
        many = true;
    } else if (n > 0 && word_eq(p, at, n, "any")) {
        take(p, at, n);
        any = many = true;
        n = peek_word(p, &at);
        if (n == 0 || !word_eq(p, at, n, "tasks"))
            return fail(p, at, "'tasks'", NULL);
    } else {
        return fail(p, at, "'task', 'tasks' or 'any tasks'", NULL);
    }
    take(p, at, n);
    sk_cond *c = sk_cond_node(COND_AFTER);
    if (c == NULL)
        return out_of_memory(p);
    size_t cap = 0;
    for (;;) {
        char *name = quoted(p);
        if (name == NULL) {
            sk_cond_free(c);
            return NULL;
        }
        if (c->u.after.n == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            char **grown = realloc(c->u.after.names, ncap * sizeof(char *));
            if (grown == NULL) {
                free(name);
                sk_cond_free(c);
                return out_of_memory(p);
            }
            c->u.after.names = grown;
            cap = ncap;
        }
        c->u.after.names[c->u.after.n++] = name;
        skip_space(p);
        if (!many || p->pos >= p->len || p->s[p->pos] != ',')
            break;
        take(p, p->pos, 1);
    }
    c->u.after.any = any && c->u.after.n > 1;
    c->u.after.outcome = SK_COND_SUCCEEDED;
    n = peek_word(p, &at);
    if (n == 0 || (!word_eq(p, at, n, "succeeded") && !word_eq(p, at, n, "failed") &&
                   !word_eq(p, at, n, "finished")))
        p->follow = "'succeeded', 'failed', 'finished', ";
    if (n > 0 && word_eq(p, at, n, "succeeded")) {
        take(p, at, n);
    } else if (n > 0 && word_eq(p, at, n, "failed")) {
        take(p, at, n);
        c->u.after.outcome = SK_COND_FAILED;
    } else if (n > 0 && word_eq(p, at, n, "finished")) {
        take(p, at, n);
        c->u.after.outcome = SK_COND_FINISHED;
    }
    return c;
}

static sk_cond *cron(struct parser *p)
{
    static const char *const what[SK_CRON_FIELDS] = {
        "a cron minute field", "a cron hour field", "a cron day-of-month field",
        "a cron month field", "a cron day-of-week field"};
    sk_cond *c = sk_cond_node(COND_CRON);
    if (c == NULL)
        return out_of_memory(p);
    for (int f = 0; f < SK_CRON_FIELDS; f++) {
        size_t at, n = peek_word(p, &at);
        if (n == 0) {
            sk_cond_free(c);
            return fail(p, at, what[f], NULL);
        }
        size_t bad;
        const char *expected, *message;
        if (!sk_cron_parse_field(&c->u.cron, f, p->s + at, n, &bad, &expected, &message)) {
            sk_cond_free(c);
            return fail(p, at + bad, expected, message);
        }
        take(p, at, n);
    }
    return c;
}

static const char *const periodic_words[] = {"minutely", "hourly", "daily", "weekly", "monthly"};
static const char *const unit_words[] = {"minute", "hour", "day", "week", "month"};

static sk_cond *atom(struct parser *p)
{
    p->follow = "";
    size_t at, n = peek_word(p, &at);
    if (n == 0) {
        const char *why = NULL;
        if (at < p->len && (p->s[at] == '\'' || p->s[at] == '"'))
            why = "a task name alone is not a condition";
        return fail(p, at, "a condition", why);
    }
    if (word_eq(p, at, n, "true") || word_eq(p, at, n, "false")) {
        take(p, at, n);
        sk_cond *c = sk_cond_node(word_eq(p, at, n, "true") ? COND_TRUE : COND_FALSE);
        return c != NULL ? c : out_of_memory(p);
    }
    if (word_eq(p, at, n, "every")) {
        take(p, at, n);
        return every(p);
    }
    for (int u = 0; u < 5; u++) {
        if (word_eq(p, at, n, periodic_words[u])) {
            take(p, at, n);
            sk_cond *c = sk_cond_node(COND_PERIODIC);
            if (c == NULL)
                return out_of_memory(p);
            if (!window(p, c, (sk_cond_unit)u, true)) {
                sk_cond_free(c);
                return NULL;
            }
            if (c->u.window.w.span == SK_SPAN_ALL)
                p->follow = u == SK_COND_WEEK || u == SK_COND_MONTH
                                ? "'between', 'after', 'before', 'on', "
                                : "'between', 'after', 'before', ";
            return c;
        }
    }
    if (word_eq(p, at, n, "time")) {
        take(p, at, n);
        if (!accept(p, "of")) {
            size_t a2;
            peek_word(p, &a2);
            return fail(p, a2, "'of'", NULL);
        }
        size_t uat, un = peek_word(p, &uat);
        for (int u = 0; u < 5; u++) {
            if (un > 0 && word_eq(p, uat, un, unit_words[u])) {
                take(p, uat, un);
                sk_cond *c = sk_cond_node(COND_TIME_OF);
                if (c == NULL)
                    return out_of_memory(p);
                if (!window(p, c, (sk_cond_unit)u, false)) {
                    sk_cond_free(c);
                    return NULL;
                }
                return c;
            }
        }
        return fail(p, uat, "'minute', 'hour', 'day', 'week' or 'month'", NULL);
    }
    if (word_eq(p, at, n, "after")) {
        take(p, at, n);
        return after(p);
    }
    if (word_eq(p, at, n, "cron")) {
        take(p, at, n);
        return cron(p);
    }
    if (sk_cond_valid_user_name(p->s + at, n)) {
        sk_cond *c = sk_cond_node(COND_USER);
        if (c == NULL || (c->u.user = strndup(p->s + at, n)) == NULL) {
            free(c);
            return out_of_memory(p);
        }
        take(p, at, n);
        return c;
    }
    return fail(p, at, "a condition",
                sk_cond_is_keyword(p->s + at, n) ? "a keyword out of place"
                : n > SK_COND_NAME_MAX           ? "a word too long for a condition name"
                                                 : "not a known condition or a name");
}

static sk_cond *parse_or(struct parser *p);

/* An operand (an atom, a group, a negation) ends here: what follows must be
 * an operator, a ')' that closes a group, or the end. follow: what else the
 * operand could have taken, for the message. */
static sk_cond *operand_end(struct parser *p, sk_cond *c, const char *follow)
{
    skip_space(p);
    char next = p->pos < p->len ? p->s[p->pos] : '\0';
    if (next == '\0' || next == '&' || next == '|' || (next == ')' && p->parens > 0))
        return c;
    char expected[96];
    snprintf(expected, sizeof expected, "%s'&', '|' or %s", follow,
             p->parens > 0 ? "')'" : "the end");
    sk_cond_free(c);
    return fail(p, p->pos, expected, next == ')' ? "no '(' to close" : NULL);
}

static sk_cond *parse_not(struct parser *p)
{
    skip_space(p);
    size_t at = p->pos;
    char c = at < p->len ? p->s[at] : '\0';
    if (c != '~' && c != '(') {
        sk_cond *a = atom(p);
        return a == NULL ? NULL : operand_end(p, a, p->follow);
    }
    if (p->nesting >= SK_COND_MAX_DEPTH - 1)
        return fail(p, at, "less nesting", "nested too deeply");
    take(p, at, 1);
    p->nesting++;
    sk_cond *inner;
    if (c == '~') {
        inner = parse_not(p);
        if (inner != NULL && (inner = sk_cond_not(inner)) == NULL)
            return out_of_memory(p);
    } else {
        p->parens++;
        inner = parse_or(p);
        p->parens--;
        skip_space(p);
        if (inner != NULL && (p->pos >= p->len || p->s[p->pos] != ')')) {
            sk_cond_free(inner);
            return fail(p, p->pos, "'&', '|' or ')'", NULL);
        }
        if (inner != NULL) {
            take(p, p->pos, 1);
            inner = operand_end(p, inner, "");
        }
    }
    p->nesting--;
    return inner;
}

static sk_cond *binary(struct parser *p, char op, sk_cond *(*operand)(struct parser *))
{
    sk_cond *left = operand(p);
    for (;;) {
        if (left == NULL)
            return NULL;
        skip_space(p);
        if (p->pos >= p->len || p->s[p->pos] != op)
            return left;
        size_t at = p->pos;
        take(p, at, 1);
        sk_cond *right = operand(p);
        if (right == NULL) {
            sk_cond_free(left);
            return NULL;
        }
        int depth = 1 + (left->depth > right->depth ? left->depth : right->depth);
        if (depth > SK_COND_MAX_DEPTH) {
            sk_cond_free(left);
            sk_cond_free(right);
            return fail(p, at, "a shallower condition", "more than 256 levels deep");
        }
        left = op == '&' ? sk_cond_and(left, right) : sk_cond_or(left, right);
        if (left == NULL)
            return out_of_memory(p);
    }
}

static sk_cond *parse_and(struct parser *p)
{
    return binary(p, '&', parse_not);
}

static sk_cond *parse_or(struct parser *p)
{
    return binary(p, '|', parse_and);
}

int sk_cond_parse(const char *text, sk_cond **out, sk_cond_parse_error *err)
{
    sk_cond_parse_error scratch;
    if (err == NULL)
        err = &scratch;
    memset(err, 0, sizeof *err);
    if (out != NULL)
        *out = NULL;
    if (text == NULL || out == NULL) {
        snprintf(err->message, sizeof err->message, "no text or no place for the result");
        return sk_refuse(SK_EINVAL, "sk_cond_parse: text or out is NULL");
    }
    struct parser p = {.s = text, .len = strnlen(text, SK_COND_TEXT_MAX + 1), .err = err};
    if (p.len > SK_COND_TEXT_MAX) {
        fail(&p, SK_COND_TEXT_MAX, "a shorter text", "longer than 16384 bytes");
        return sk_refuse(SK_EINVAL, "%s", err->message);
    }
    sk_cond *c = parse_or(&p);
    if (c != NULL) {
        skip_space(&p);
        if (p.pos < p.len) {
            /* Only a stray ')' gets here: everything else ends an atom. */
            sk_cond_free(c);
            c = fail(&p, p.pos, "'&', '|' or the end", "no '(' to close");
        }
    }
    if (c == NULL) {
        if (p.nomem)
            return sk_refuse(SK_ENOMEM, "out of memory");
        return sk_refuse(SK_EINVAL, "%s", err->message);
    }
    *out = c;
    return SK_OK;
}

sk_cond *sk_cond_cron(const char *expr)
{
    if (expr == NULL || strlen(expr) > 1024) {
        sk_refuse(SK_EINVAL, "cron: no expression, or one longer than 1024 bytes");
        return NULL;
    }
    char text[1100];
    snprintf(text, sizeof text, "cron %s", expr);
    sk_cond *c;
    sk_cond_parse_error err;
    int rc = sk_cond_parse(text, &c, &err);
    if (rc == SK_ENOMEM)
        return NULL;
    if (rc != SK_OK) {
        /* Positions in the expression itself, not in "cron <expr>". */
        sk_refuse(SK_EINVAL, "cron: expected %s at %zu", err.expected,
                  err.position >= 5 ? err.position - 5 : 0);
        return NULL;
    }
    if (c->kind != COND_CRON) {
        sk_cond_free(c);
        sk_refuse(SK_EINVAL, "cron: more than a cron expression: '%s'", expr);
        return NULL;
    }
    return c;
}
