/* SPDX-License-Identifier: MIT */
/*
 * Evaluating conditions, and finding when their value next changes.
 *
 * Every time condition is a function of the wall clock (sched/wall.h) and
 * of the task's last start:
 *
 *   period     the minute, hour, day, week (from Monday) or month that the
 *              wall clock shows: its label (a number) and its start and
 *              length in wall seconds;
 *   window     where in the period a condition holds: [from, to) in
 *              seconds from the period's start, days of the month clamped
 *              to the month's length; a window that wraps starts in one
 *              period and ends in the next;
 *   instance   one occurrence of a window. It begins, for days, weeks and
 *              months, at the first instant the wall clock shows its start
 *              (sk_wall_first_at: a clock set back does not begin it
 *              again); for minutes and hours, at the instant the clock
 *              showed its start with the offset it has now, or at the
 *              change of offset if that came later (so the hour the clock
 *              shows again after it is set back is a new hour).
 *
 * time of: the wall clock is inside a window. periodic: ... and the task
 * has not started since that instance began. cron: the wall-clock minute
 * matches, and the task has not started since the minute began (a new
 * instance after a change of offset only when the hour field is a '*').
 *
 * The next change is searched for, not guessed: each time condition lists
 * the instants where its value could change (the wall clock reaching an
 * edge of a window, a change of offset), never missing one, and the value
 * is computed there until it differs; and and or do the same with the
 * changes of their operands. Only the instants where something could
 * change are visited, so "monthly" costs a handful of steps, not a month of
 * seconds.
 */
#include "sched/cond.h"

#include "core/error.h"
#include "sched/cron.h"
#include "sched/wall.h"

#include <stdlib.h>
#include <string.h>

#define NS INT64_C(1000000000)
#define LEAF_STEPS 4000
#define COMBINATION_STEPS 1000
/* Steps of one sk_cond_next_change in all: past them a time condition's
 * search takes one step and returns, and a combination's none (it answers
 * the next nanosecond), so that a deep tree of combinations that never
 * change costs about this many steps, not the product of its levels'. */
#define TOTAL_STEPS 200000

struct frozen {
    const sk_cond *node;
    bool value;
};

struct env {
    const sk_cond_ctx *ctx;
    sk_wall_scan scan;
    struct frozen *frozen; /* next_change: the values of event conditions, fixed */
    size_t nfrozen;
    long steps; /* next_change: steps left (TOTAL_STEPS) */
};

static int64_t sec_of(int64_t ns)
{
    return sk_floor_div(ns, NS);
}

/* Seconds to ns, or INT64_MAX past the end of the representable times. */
static int64_t ns_of(int64_t s)
{
    if (s >= INT64_MAX / NS)
        return INT64_MAX;
    if (s <= INT64_MIN / NS)
        return INT64_MIN + 1;
    return s * NS;
}

/* -------------------------------------------------------------- periods */

static int64_t label_of(sk_cond_unit unit, int64_t wall)
{
    int64_t days;
    switch (unit) {
    case SK_COND_MINUTE:
        return sk_floor_div(wall, 60);
    case SK_COND_HOUR:
        return sk_floor_div(wall, 3600);
    case SK_COND_DAY:
        return sk_floor_div(wall, SK_WALL_DAY);
    case SK_COND_WEEK:
        /* Day 0 (1970-01-01) was a Thursday: weeks start 3 days earlier. */
        return sk_floor_div(sk_floor_div(wall, SK_WALL_DAY) + 3, 7);
    default: {
        int64_t y;
        int m, d;
        days = sk_floor_div(wall, SK_WALL_DAY);
        sk_civil_from_days(days, &y, &m, &d);
        return y * 12 + (m - 1);
    }
    }
}

static int64_t label_start(sk_cond_unit unit, int64_t label)
{
    switch (unit) {
    case SK_COND_MINUTE:
        return label * 60;
    case SK_COND_HOUR:
        return label * 3600;
    case SK_COND_DAY:
        return label * SK_WALL_DAY;
    case SK_COND_WEEK:
        return (label * 7 - 3) * SK_WALL_DAY;
    default:
        return sk_days_from_civil(sk_floor_div(label, 12), (int)sk_floor_mod(label, 12) + 1, 1) *
               SK_WALL_DAY;
    }
}

static int64_t label_length(sk_cond_unit unit, int64_t label)
{
    switch (unit) {
    case SK_COND_WEEK:
        return 7 * SK_WALL_DAY;
    case SK_COND_MONTH:
        return sk_days_in_month(sk_floor_div(label, 12), (int)sk_floor_mod(label, 12) + 1) *
               SK_WALL_DAY;
    default:
        return sk_cond_unit_seconds(unit);
    }
}

/* Where p lies in the period `label`, in seconds from its start. */
static int64_t position(sk_cond_unit unit, int64_t label, sk_cond_point p)
{
    switch (unit) {
    case SK_COND_WEEK:
        return (int64_t)(p.day - 1) * SK_WALL_DAY + p.seconds;
    case SK_COND_MONTH: {
        int last = (int)(label_length(unit, label) / SK_WALL_DAY);
        int day = p.day < last ? p.day : last;
        return (int64_t)(day - 1) * SK_WALL_DAY + p.seconds;
    }
    default:
        return p.seconds;
    }
}

/* The window of a period that does not wrap: [*from, *to) from its start. */
static void bounds(const sk_cond *c, int64_t label, int64_t *from, int64_t *to)
{
    sk_cond_unit unit = c->u.window.unit;
    const sk_cond_window *w = &c->u.window.w;
    int64_t len = label_length(unit, label);
    *from =
        w->span == SK_SPAN_ALL || w->span == SK_SPAN_BEFORE ? 0 : position(unit, label, w->from);
    *to = w->span == SK_SPAN_ALL || w->span == SK_SPAN_AFTER ? len : position(unit, label, w->to);
}

/* Is the wall value inside an instance of c's window? Its start then. */
static bool in_window(const sk_cond *c, int64_t wall, int64_t *start)
{
    sk_cond_unit unit = c->u.window.unit;
    int64_t label = label_of(unit, wall), s = label_start(unit, label);
    if (!c->u.window.wraps) {
        int64_t from, to;
        bounds(c, label, &from, &to);
        *start = s + from;
        return wall >= s + from && wall < s + to;
    }
    const sk_cond_window *w = &c->u.window.w;
    if (wall >= s + position(unit, label, w->from)) {
        *start = s + position(unit, label, w->from);
        return true;
    }
    if (wall < s + position(unit, label, w->to)) {
        *start = label_start(unit, label - 1) + position(unit, label - 1, w->from);
        return true;
    }
    return false;
}

/* The first edge of an instance of c's window after the wall value. */
static int64_t next_edge(const sk_cond *c, int64_t wall)
{
    sk_cond_unit unit = c->u.window.unit;
    int64_t label = label_of(unit, wall), best = INT64_MAX;
    for (int64_t l = label; l <= label + 1; l++) {
        int64_t s = label_start(unit, l), from, to;
        if (c->u.window.wraps) {
            from = position(unit, l, c->u.window.w.from);
            to = position(unit, l, c->u.window.w.to);
        } else {
            bounds(c, l, &from, &to);
        }
        if (s + from > wall && s + from < best)
            best = s + from;
        if (s + to > wall && s + to < best)
            best = s + to;
    }
    return best;
}

/* When the instance of a minute or an hour whose start the clock showed
 * as `wall` began, seen at s (offset off): when the clock showed it with
 * this offset, or the last change of offset if that came later. */
static int64_t subday_begin(struct env *env, int64_t wall, int64_t s, int32_t off)
{
    int64_t b = wall - off;
    if (b >= s)
        return b;
    int64_t change = sk_wall_last_transition(&env->scan, b, s);
    return change != INT64_MIN && change > b ? change : b;
}

static int64_t instance_begin(struct env *env, sk_cond_unit unit, int64_t wall, int64_t s,
                              int32_t off)
{
    if (unit == SK_COND_MINUTE || unit == SK_COND_HOUR)
        return subday_begin(env, wall, s, off);
    return sk_wall_first_at(&env->scan, wall);
}

/* True when the task has not started since the instant `begin` (s). */
static bool not_started_since(const struct env *env, int64_t begin)
{
    int64_t last = env->ctx->last_start;
    return last == SK_COND_NEVER || last < ns_of(begin);
}

/* ---------------------------------------------------------- time leaves */

static bool window_value(struct env *env, const sk_cond *c, int64_t t)
{
    int64_t s = sec_of(t);
    int32_t off = sk_wall_offset(&env->scan, s);
    int64_t start;
    if (!in_window(c, s + off, &start))
        return false;
    if (c->kind == COND_TIME_OF || env->ctx->last_start == SK_COND_NEVER)
        return true;
    return not_started_since(env, instance_begin(env, c->u.window.unit, start, s, off));
}

static bool cron_value(struct env *env, const sk_cond *c, int64_t t)
{
    int64_t s = sec_of(t);
    int32_t off = sk_wall_offset(&env->scan, s);
    int64_t minute = sk_floor_div(s + off, 60);
    if (!sk_cron_matches(&c->u.cron, minute))
        return false;
    if (env->ctx->last_start == SK_COND_NEVER)
        return true;
    int64_t begin = c->u.cron.star[SK_CRON_HOUR] ? subday_begin(env, minute * 60, s, off)
                                                 : sk_wall_first_at(&env->scan, minute * 60);
    return not_started_since(env, begin);
}

static bool every_value(const struct env *env, const sk_cond *c, int64_t t)
{
    int64_t last = env->ctx->last_start;
    if (last == SK_COND_NEVER)
        return true;
    int64_t due;
    if (__builtin_add_overflow(last, c->u.every * NS, &due))
        return false;
    return t >= due;
}

/* --------------------------------------------------------------- events */

static int user_value(const struct env *env, const sk_cond *c)
{
    const sk_cond_ctx *ctx = env->ctx;
    for (size_t i = 0; i < ctx->user_count && ctx->users != NULL; i++) {
        const sk_cond_user_def *u = &ctx->users[i];
        if (u->name != NULL && strcmp(u->name, c->u.user) == 0) {
            if (u->fn == NULL)
                return sk_refuse(SK_EINVAL, "user condition '%s' has no function", c->u.user);
            return u->fn(u->arg) ? 1 : 0;
        }
    }
    return sk_refuse(SK_EINVAL, "user condition '%s' is not registered", c->u.user);
}

static bool after_value(const struct env *env, const sk_cond *c)
{
    const sk_cond_ctx *ctx = env->ctx;
    for (size_t i = 0; i < c->u.after.n; i++) {
        int64_t at = ctx->last_outcome == NULL
                         ? SK_COND_NEVER
                         : ctx->last_outcome(ctx->log, c->u.after.names[i], c->u.after.outcome);
        bool done =
            at != SK_COND_NEVER && (ctx->last_start == SK_COND_NEVER || at > ctx->last_start);
        if (c->u.after.any && done)
            return true;
        if (!c->u.after.any && !done)
            return false;
    }
    return !c->u.after.any;
}

/* ---------------------------------------------------------------- value */

static int value(struct env *env, const sk_cond *c, int64_t t)
{
    int a;
    switch (c->kind) {
    case COND_TRUE:
        return 1;
    case COND_FALSE:
        return 0;
    case COND_EVERY:
        return every_value(env, c, t);
    case COND_PERIODIC:
    case COND_TIME_OF:
        return window_value(env, c, t);
    case COND_CRON:
        return cron_value(env, c, t);
    case COND_AFTER:
    case COND_USER:
        for (size_t i = 0; i < env->nfrozen; i++)
            if (env->frozen[i].node == c)
                return env->frozen[i].value;
        return c->kind == COND_AFTER ? after_value(env, c) : user_value(env, c);
    case COND_AND:
        a = value(env, c->u.op.a, t);
        return a != 1 ? a : value(env, c->u.op.b, t);
    case COND_OR:
        a = value(env, c->u.op.a, t);
        return a != 0 ? a : value(env, c->u.op.b, t);
    case COND_NOT:
        a = value(env, c->u.op.a, t);
        return a < 0 ? a : !a;
    }
    return sk_refuse(SK_EINVAL, "corrupt condition");
}

int sk_cond_eval(const sk_cond *c, const sk_cond_ctx *ctx)
{
    if (c == NULL || ctx == NULL)
        return sk_refuse(SK_EINVAL, "sk_cond_eval: no condition or no context");
    struct env env = {.ctx = ctx};
    return value(&env, c, ctx->now);
}

/* ---------------------------------------------------------- next change */

/* The next instant after x (s) where a window condition's value could
 * change, given the offset: the next edge of an instance, or a change of
 * offset before it. */
static int64_t window_candidate(struct env *env, const sk_cond *c, int64_t x)
{
    int32_t off = sk_wall_offset(&env->scan, x);
    int64_t edge = next_edge(c, x + off) - off;
    int64_t change = sk_wall_next_transition(&env->scan, x, edge);
    return change != INT64_MAX ? change : edge;
}

/* The same for cron, knowing the value at x: while it holds, the first
 * minute that does not match (a new matching minute keeps it true); while
 * it does not, the next matching minute, or the next minute when this one
 * matches but the task ran in it. INT64_MAX: nothing ever changes it. */
static int64_t cron_candidate(struct env *env, const sk_cond *c, int64_t x, bool now)
{
    int32_t off = sk_wall_offset(&env->scan, x);
    int64_t minute = sk_floor_div(x + off, 60), target;
    if (sk_cron_matches(&c->u.cron, minute)) {
        if (now) {
            int64_t miss = sk_cron_next_miss(&c->u.cron, minute);
            /* Matching for ever: a '*' hour keeps it true across changes
             * of offset too; a fixed hour as well once the last start is
             * further back than any clock is ever set back (every minute
             * shown again was first shown after it). */
            int64_t last = env->ctx->last_start;
            if (miss == INT64_MAX && (c->u.cron.star[SK_CRON_HOUR] || last == SK_COND_NEVER ||
                                      last < ns_of(x - 2 * SK_WALL_MAX_OFFSET)))
                return INT64_MAX;
            target = miss == INT64_MAX ? INT64_MAX : miss * 60 - off;
        } else {
            target = (minute + 1) * 60 - off;
        }
    } else {
        int64_t match = sk_cron_next_match(&c->u.cron, minute);
        if (match == INT64_MAX)
            return INT64_MAX;
        target = match * 60 - off;
    }
    /* A change of offset before it can change the value (a minute shown
     * again, a new minute for a '*' hour). With no target (matching for
     * ever, fixed hour, a last start less than two days back), only such
     * a change can, until the last start is two days back. */
    int64_t limit = target;
    if (target == INT64_MAX) /* fixed hour, recent last start: see above */
        limit = sec_of(env->ctx->last_start) + 2 * SK_WALL_MAX_OFFSET + 1;
    if (limit <= x)
        limit = x + 1;
    int64_t change = sk_wall_next_transition(&env->scan, x, limit);
    return change != INT64_MAX ? change : limit;
}

/* The first instant after t at which a time condition's value differs. */
static int64_t leaf_next(struct env *env, const sk_cond *c, int64_t t)
{
    bool now = c->kind == COND_CRON ? cron_value(env, c, t) : window_value(env, c, t);
    if (c->kind == COND_PERIODIC && now && c->u.window.w.span == SK_SPAN_ALL)
        return SK_COND_NO_CHANGE; /* true until the task runs */
    int64_t y = t;
    for (int i = 0; i < LEAF_STEPS && (i == 0 || env->steps > 0); i++) {
        env->steps--;
        int64_t x = sec_of(y);
        int64_t cand =
            c->kind == COND_CRON ? cron_candidate(env, c, x, now) : window_candidate(env, c, x);
        if (cand == INT64_MAX || ns_of(cand) == INT64_MAX)
            return SK_COND_NO_CHANGE;
        y = ns_of(cand);
        bool v = c->kind == COND_CRON ? cron_value(env, c, y) : window_value(env, c, y);
        if (v != now)
            return y;
    }
    return y; /* gave up: a time to look again */
}

static int64_t next_node(struct env *env, const sk_cond *c, int64_t t)
{
    switch (c->kind) {
    case COND_EVERY: {
        int64_t due;
        if (every_value(env, c, t) ||
            __builtin_add_overflow(env->ctx->last_start, c->u.every * NS, &due))
            return SK_COND_NO_CHANGE; /* true until the task runs, or due never */
        return due;
    }
    case COND_PERIODIC:
    case COND_TIME_OF:
    case COND_CRON:
        return leaf_next(env, c, t);
    case COND_NOT:
        return next_node(env, c->u.op.a, t);
    case COND_AND:
    case COND_OR: {
        /* Out of steps: the value surely holds for the next nanosecond
         * (every change is on a whole second, or at an every's due time
         * which is after t), and that is all this search still says. */
        if (env->steps-- <= 0)
            return t + 1;
        /* Each operand's value holds until its own next change: only the
         * operand that changed at a step is asked again. */
        int now = value(env, c, t);
        int64_t a = next_node(env, c->u.op.a, t), b = next_node(env, c->u.op.b, t);
        int64_t y = t;
        for (int i = 0; i < COMBINATION_STEPS && (i == 0 || env->steps > 0); i++) {
            env->steps--;
            int64_t m = a < b ? a : b;
            if (m == SK_COND_NO_CHANGE)
                return SK_COND_NO_CHANGE;
            /* An operand that no time changes and that decides the value
             * (false for and, true for or) decides it for good. */
            int decides = c->kind == COND_AND ? 0 : 1;
            if ((a == SK_COND_NO_CHANGE && value(env, c->u.op.a, y) == decides) ||
                (b == SK_COND_NO_CHANGE && value(env, c->u.op.b, y) == decides))
                return SK_COND_NO_CHANGE;
            if (value(env, c, m) != now)
                return m;
            y = m;
            if (a == m)
                a = next_node(env, c->u.op.a, m);
            if (b == m)
                b = next_node(env, c->u.op.b, m);
        }
        return y;
    }
    default:
        return SK_COND_NO_CHANGE; /* true, false, and events */
    }
}

/* Computes the value of every event condition once, into env->frozen. */
static int freeze(struct env *env, const sk_cond *c, size_t *cap)
{
    switch (c->kind) {
    case COND_AFTER:
    case COND_USER: {
        int v = c->kind == COND_AFTER ? after_value(env, c) : user_value(env, c);
        if (v < 0)
            return v;
        if (env->nfrozen == *cap) {
            size_t ncap = *cap ? *cap * 2 : 8;
            struct frozen *grown = realloc(env->frozen, ncap * sizeof *grown);
            if (grown == NULL)
                return sk_refuse(SK_ENOMEM, "out of memory");
            env->frozen = grown;
            *cap = ncap;
        }
        env->frozen[env->nfrozen++] = (struct frozen){c, v == 1};
        return SK_OK;
    }
    case COND_AND:
    case COND_OR: {
        int rc = freeze(env, c->u.op.a, cap);
        return rc != SK_OK ? rc : freeze(env, c->u.op.b, cap);
    }
    case COND_NOT:
        return freeze(env, c->u.op.a, cap);
    default:
        return SK_OK;
    }
}

int sk_cond_next_change(const sk_cond *c, const sk_cond_ctx *ctx, int64_t *when)
{
    if (c == NULL || ctx == NULL || when == NULL)
        return sk_refuse(SK_EINVAL, "sk_cond_next_change: no condition, context or result");
    struct env env = {.ctx = ctx, .steps = TOTAL_STEPS};
    size_t cap = 0;
    int rc = freeze(&env, c, &cap);
    if (rc == SK_OK)
        *when = next_node(&env, c, ctx->now);
    free(env.frozen);
    return rc;
}
