/* SPDX-License-Identifier: MIT */
/*
 * skproc scheduling, part one: start conditions. A condition says when a
 * task may start: "daily between 08:00 and 08:15", "every 10 seconds",
 * "after task 'get_data' succeeded", "cron 0 9 * * mon-fri", or a
 * combination of them with &, | and ~. This header holds the conditions
 * alone (the scheduler that runs tasks comes later): parse them from text
 * or build them from C, write them back as text, evaluate them against a
 * context (the time, the task's last run, a run log, predicates of your
 * own), and ask when a condition's value can next change, so that a
 * scheduler sleeps instead of polling.
 *
 *     sk_cond *c;
 *     sk_cond_parse_error err;
 *     if (sk_cond_parse("daily between 08:00 and 08:15 | daily after 22:00", &c, &err) != SK_OK)
 *         fprintf(stderr, "%s\n", err.message);   // "expected ... at 24"
 *
 *     sk_cond_ctx ctx = {.now = sk_cond_now(), .last_start = SK_COND_NEVER,
 *                        .last_end = SK_COND_NEVER};
 *     if (sk_cond_eval(c, &ctx) == 1)
 *         ...                                  // the task may start now
 *     int64_t when;
 *     sk_cond_next_change(c, &ctx, &when);     // sleep until then (or an event)
 *     sk_cond_free(c);
 *
 * The same condition from C, without a string:
 *
 *     sk_cond_window morning = {.span = SK_SPAN_BETWEEN, .from = {.seconds = 8 * 3600},
 *                               .to = {.seconds = 8 * 3600 + 15 * 60}};
 *     sk_cond_window night = {.span = SK_SPAN_AFTER, .from = {.seconds = 22 * 3600}};
 *     sk_cond *c = sk_cond_or(sk_cond_periodic(SK_COND_DAY, &morning),
 *                             sk_cond_periodic(SK_COND_DAY, &night));
 *
 * Time is local time: the rules of the process's TZ (as of the last
 * tzset(), read with localtime_r), with these rules across changes of the
 * UTC offset (docs/sched.md says more):
 *   - days, weeks (Monday to Sunday) and months are calendar ones: a day of
 *     23 or 25 hours is one day, and a period begins the first time the
 *     clock shows its start; a clock set back never begins it again;
 *   - minutes and hours are those of the clock with its offset: the hour
 *     the clock shows a second time after it is set back is a new hour;
 *   - a time the clock skips does not happen: a window that lies wholly in
 *     the skipped hour is empty that day ("daily between 02:30 and 03:00" does
 *     not run on a spring-forward day in New York);
 *   - a time the clock shows twice is inside a window both times, but a
 *     periodic condition runs once per window, whichever pass it is in.
 *
 * Times are int64_t nanoseconds since the Unix epoch (UTC), as
 * CLOCK_REALTIME gives them; a scheduler's tests give a fake clock instead.
 *
 * Conditions are immutable once built: any number of threads may evaluate
 * one at once. Building and freeing are for one thread at a time per
 * condition.
 */
#ifndef SKPROC_SCHED_H
#define SKPROC_SCHED_H

#ifndef SKPROC_H
#error "include <skproc.h>, which includes this file"
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A condition: a tree of the conditions below, combined with and, or, not. */
typedef struct sk_cond sk_cond;

/* A time that never was: a task that never ran, an outcome that never
 * happened. */
#define SK_COND_NEVER INT64_MIN

/* sk_cond_next_change: no time can change the condition; only events can
 * (a run of the task, a run of another task, a user predicate). */
#define SK_COND_NO_CHANGE INT64_MAX

/* The periods and the units of windows. */
typedef enum sk_cond_unit {
    SK_COND_MINUTE, /* "minutely", "time of minute" */
    SK_COND_HOUR,   /* "hourly", "time of hour" */
    SK_COND_DAY,    /* "daily", "time of day" */
    SK_COND_WEEK,   /* "weekly", "time of week": Monday 00:00 to Sunday 24:00 */
    SK_COND_MONTH   /* "monthly", "time of month" */
} sk_cond_unit;

/* Days of the week, as windows of SK_COND_WEEK number them. */
typedef enum sk_weekday {
    SK_MONDAY = 1,
    SK_TUESDAY,
    SK_WEDNESDAY,
    SK_THURSDAY,
    SK_FRIDAY,
    SK_SATURDAY,
    SK_SUNDAY
} sk_weekday;

/* The shape of a window inside a period. */
typedef enum sk_cond_span {
    SK_SPAN_ALL = 0, /* the whole period ("daily"); periodic conditions only */
    SK_SPAN_BETWEEN, /* from `from` up to `to` ("between 08:00 and 08:15"); when `to` comes
                      * before `from` the window runs over into the next period
                      * ("between 22:00 and 02:00") */
    SK_SPAN_AFTER,   /* from `from` to the end of the period ("after 08:00") */
    SK_SPAN_BEFORE,  /* from the start of the period up to `to` ("before 10:00") */
    SK_SPAN_ON       /* the whole day `from.day` (weeks and months: "on Monday", "on 1st") */
} sk_cond_span;

/* A point in a period. For minutes, hours and days, seconds into the
 * period: 0 to 59, 3599 or 86399, and the period's length (60, 3600,
 * 86400: "24:00") as the end of a window. For weeks, day is the weekday
 * (SK_MONDAY to SK_SUNDAY); for months, the day of the month (1 to 31;
 * a day past the month's end means its last day); seconds are the time of
 * that day (86400 only as an end), or -1 for the day alone: its start, or
 * as the `to` of SK_SPAN_BETWEEN its end ("between Monday and Friday"
 * includes Friday; "before Friday" does not). */
typedef struct sk_cond_point {
    int day;     /* weeks and months; 0 otherwise */
    int seconds; /* see above */
} sk_cond_point;

/* A window inside a period. */
typedef struct sk_cond_window {
    sk_cond_span span;
    sk_cond_point from; /* SK_SPAN_BETWEEN, SK_SPAN_AFTER, SK_SPAN_ON (its day) */
    sk_cond_point to;   /* SK_SPAN_BETWEEN, SK_SPAN_BEFORE */
} sk_cond_window;

/* What "after task" waits for. */
typedef enum sk_cond_outcome {
    SK_COND_SUCCEEDED, /* a run that succeeded */
    SK_COND_FAILED,    /* a run that failed (an error, a crash, a timeout, a kill) */
    SK_COND_FINISHED   /* either */
} sk_cond_outcome;

/* ------------------------------------------------------------ building */

/* The deepest tree a condition may be, the longest task or user condition
 * name, and the longest text sk_cond_parse reads. */
#define SK_COND_MAX_DEPTH 256
#define SK_COND_NAME_MAX 255
#define SK_COND_TEXT_MAX 16384

/* Always true, always false.
 *
 * Every builder returns a new condition, or NULL when an argument is bad
 * (sk_last_error_message says which) or memory ran out. The combinators
 * (sk_cond_and, sk_cond_or, sk_cond_not) take ownership of their
 * operands, also when they fail: an operand that is NULL makes them free
 * the others and return NULL, so that a nested expression needs one check
 * at the end:
 *
 *     sk_cond *c = sk_cond_and(sk_cond_every(600), sk_cond_not(sk_cond_user("busy")));
 *     if (c == NULL) ...
 */
sk_cond *sk_cond_true(void);
sk_cond *sk_cond_false(void);

/* "every N seconds": true when the task never ran, or when at least
 * `seconds` (1 up to 100 years) have passed since its last run started. */
sk_cond *sk_cond_every(int64_t seconds);

/* "minutely", "hourly", "daily", "weekly", "monthly", with an optional
 * window ("daily between 08:00 and 08:15"; NULL or SK_SPAN_ALL: the whole
 * period): true while the clock is inside the window and the task has not
 * started since that window began. So the task runs at most once per
 * window; when it has not run yet, it may run whenever inside it. */
sk_cond *sk_cond_periodic(sk_cond_unit unit, const sk_cond_window *window);

/* "time of day between 16:00 and 20:00": true while the clock is inside the
 * window, whatever the task did. window is required (not SK_SPAN_ALL). */
sk_cond *sk_cond_time_of(sk_cond_unit unit, const sk_cond_window *window);

/* sk_cond_time_of for days: from and to in seconds since midnight
 * (to may be 86400; to before from runs past midnight). */
sk_cond *sk_cond_time_of_day(int from, int to);

/* sk_cond_time_of for weeks, whole days: from the start of from_day to the
 * end of to_day ("time of week between Monday and Friday"). */
sk_cond *sk_cond_time_of_week(sk_weekday from_day, sk_weekday to_day);

/* "after task 'name' succeeded": true when the task named `name` had that
 * outcome since this task last started (ever, when this task never ran).
 * The run log (sk_cond_ctx.last_outcome) answers. name: 1 to
 * SK_COND_NAME_MAX bytes, copied. */
sk_cond *sk_cond_after_task(const char *name, sk_cond_outcome outcome);

/* "after tasks 'a', 'b' succeeded": each of the n tasks (n >= 1) had that
 * outcome since this task last started. sk_cond_after_any: at least one
 * did ("after any tasks 'a', 'b' failed"). The names are copied. */
sk_cond *sk_cond_after_all(const char *const *names, size_t n, sk_cond_outcome outcome);
sk_cond *sk_cond_after_any(const char *const *names, size_t n, sk_cond_outcome outcome);

/* "cron M H DOM MON DOW": five cron fields ("0-59/15 9-17 * * mon-fri"):
 * lists, ranges, steps, names of months and days (Sunday is 0 or 7), and,
 * as in Vixie cron, a day that matches when either DOM or DOW matches if
 * neither is a '*' field. True while the clock is inside a matching
 * minute and the task has not started since that minute began. When the
 * hour field starts with '*' (alone or with a step), a minute the clock shows again
 * after it is set back counts again; otherwise it does not (a "30 1 * * *"
 * task runs once on the night the clock goes back). */
sk_cond *sk_cond_cron(const char *expr);

/* A predicate of your own, by name, looked up at evaluation in
 * sk_cond_ctx.users. The name is a word: a letter or '_', then letters,
 * digits, '_', '-' and '.', and not one of the language's keywords
 * (docs/sched.md lists them). */
sk_cond *sk_cond_user(const char *name);

/* a & b, a | b, ~a. They own a and b from the call on: see sk_cond_true.
 * A result deeper than SK_COND_MAX_DEPTH is refused (NULL). */
sk_cond *sk_cond_and(sk_cond *a, sk_cond *b);
sk_cond *sk_cond_or(sk_cond *a, sk_cond *b);
sk_cond *sk_cond_not(sk_cond *a);

/* Frees c and everything under it. NULL is fine. */
void sk_cond_free(sk_cond *c);

/* True when a and b are the same tree (what sk_cond_parse of
 * sk_cond_format gives back). */
bool sk_cond_equal(const sk_cond *a, const sk_cond *b);

/* ------------------------------------------------------------- as text */

/* Why sk_cond_parse refused a text. */
typedef struct sk_cond_parse_error {
    size_t position;   /* the byte offset where it went wrong */
    char expected[96]; /* what would have been right there: "'and'", "a time of day (HH:MM)" */
    char message[256]; /* "expected 'and' after '08:00' at 24" */
} sk_cond_parse_error;

/* Parses text (docs/sched.md has the grammar) into *out.
 *   SK_OK      *out is the condition; free it with sk_cond_free
 *   SK_EINVAL  the text is not a condition: *err (when not NULL) says where
 *              and why; *out is NULL
 *   SK_ENOMEM  out of memory
 * Keywords, day and month names are case-insensitive; task names (in
 * quotes) and user condition names are not. Whitespace (any amount of
 * spaces, tabs, newlines) separates words; &, |, ~ and parentheses need
 * none. Texts longer than SK_COND_TEXT_MAX bytes are refused. */
int sk_cond_parse(const char *text, sk_cond **out, sk_cond_parse_error *err);

/* Writes c as text into buf (always NUL-terminated when len > 0), in the
 * canonical form: lower-case keywords, single spaces, parentheses only
 * where needed; sk_cond_parse reads it back into an equal tree. Returns the
 * length the whole text needs, like snprintf, or SK_EINVAL. */
int sk_cond_format(const sk_cond *c, char *buf, size_t len);

/* ---------------------------------------------------------- evaluating */

/* The run log, as conditions ask it: the time (ns) of the latest run of
 * `task` with that outcome (SK_COND_FINISHED: the latest of both), or
 * SK_COND_NEVER. */
typedef int64_t (*sk_cond_log_fn)(void *log, const char *task, sk_cond_outcome outcome);

/* A user predicate: true or false, from arg (which it may use as it
 * likes). It should be quick and must not call into the same condition. */
typedef bool (*sk_cond_user_fn)(void *arg);

/* One registered user condition. */
typedef struct sk_cond_user_def {
    const char *name;
    sk_cond_user_fn fn;
    void *arg;
} sk_cond_user_def;

/* What a condition is evaluated against. Zero-initialise, then set what
 * you have: a zeroed last_start is a run at the epoch, so say
 * SK_COND_NEVER for a task that never ran. */
typedef struct sk_cond_ctx {
    int64_t now;                   /* ns since the epoch, UTC (sk_cond_now(), or a fake clock) */
    int64_t last_start;            /* this task's last run began, ns; SK_COND_NEVER */
    int64_t last_end;              /* ... and ended, ns; SK_COND_NEVER. For the scheduler; no
                                    * condition reads it yet */
    sk_cond_log_fn last_outcome;   /* NULL: no task ever had an outcome */
    void *log;                     /* last_outcome's first argument */
    const sk_cond_user_def *users; /* the user conditions, looked up by name */
    size_t user_count;
} sk_cond_ctx;

/* The real time, ns since the epoch (CLOCK_REALTIME). */
int64_t sk_cond_now(void);

/* Evaluates c at ctx->now: 1 (true), 0 (false), or SK_EINVAL (c or ctx is
 * NULL, or a user condition is not in ctx->users or has no fn:
 * sk_last_error_message names it). And and or stop at the first operand
 * that decides them, left to right, so a user predicate right of a false
 * "&" is not called. */
int sk_cond_eval(const sk_cond *c, const sk_cond_ctx *ctx);

/* The earliest time after ctx->now at which c's value can change while
 * nothing else happens (no run starts or ends, user predicates keep their
 * value): *when is that time in ns, or SK_COND_NO_CHANGE when only an
 * event can change it. The value is the same at every instant from
 * ctx->now up to *when; at *when it differs, except when the search gave up
 * (a combination whose operands change 1,000 times without changing it, as
 * "daily & ~daily" does, or 200,000 steps in all): then *when is a time to
 * ask again. Each user predicate and each "after" condition is evaluated
 * once, at ctx->now.
 *   SK_OK      *when is set
 *   SK_EINVAL  as sk_cond_eval */
int sk_cond_next_change(const sk_cond *c, const sk_cond_ctx *ctx, int64_t *when);

#endif
