/* SPDX-License-Identifier: MIT */
/*
 * skproc scheduling: a session of tasks, each started when its condition
 * holds, run in the session's thread, a thread or an skproc process, with
 * a log of every run that is also the session's memory (docs/scheduling.md).
 *
 * The first half of this header is the conditions. A condition says when a
 * task may start: "daily between 08:00 and 08:15", "every 10 seconds",
 * "after task 'get_data' succeeded", "cron 0 9 * * mon-fri", or a
 * combination of them with &, | and ~. Parse them from text
 * or build them from C, write them back as text, evaluate them against a
 * context (the time, the task's last run, a run log, predicates of your
 * own), and ask when a condition's value can next change, so that a
 * scheduler sleeps instead of polling. The second half is the session
 * (sk_sched), its tasks (sk_sched_task) and its run log (sk_run_log).
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
 * UTC offset (docs/scheduling.md says more):
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
 * (docs/scheduling.md lists them). */
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

/* Parses text (docs/scheduling.md has the grammar) into *out.
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

/* ===================================================== the session, tasks
 *
 *     static int get_data(sk_task_run *run, void *arg) {
 *         int64_t rows = fetch();
 *         return sk_task_return(run, "I", &rows);    // Return('get_data')
 *     }
 *
 *     sk_sched *s;
 *     sk_sched_config cfg = {.log_path = "runs.sqlite"};
 *     sk_sched_create(&s, &cfg);
 *     sk_sched_task t = {.name = "get_data", .start = "daily after 07:00", .fn = get_data};
 *     sk_sched_add(s, &t);                          // a process task (the default)
 *     sk_param p = {.name = "rows", .kind = SK_PARAM_RETURN, .task = "get_data"};
 *     sk_sched_task u = {.name = "store", .start = "after task 'get_data' succeeded",
 *                  .fn = store, .params = &p, .param_count = 1,
 *                  .mode = SK_TASK_THREAD, .timeout = 60};
 *     sk_sched_add(s, &u);
 *     sk_sched_run(s);                               // until SIGINT/SIGTERM or shutdown
 *     sk_sched_release(s);
 *
 * A session is used from one thread (the one that calls sk_sched_run or
 * sk_sched_step), except sk_sched_shutdown, which any thread or a signal
 * handler may call. Process tasks are forked by that thread.
 */

/* A session: its tasks, its parameters, its run log. */
typedef struct sk_sched sk_sched;

/* One run of a task, as the task's code sees it. */
typedef struct sk_task_run sk_task_run;

/* Where a task's code runs. */
typedef enum sk_task_mode {
    SK_TASK_PROCESS = 0, /* an skproc process (the default): timeouts and end conditions
                          * stop and then kill it with its whole tree; a crash is a failed run */
    SK_TASK_THREAD,      /* a thread of the session's process: cheap, shares memory; it can
                          * only be asked to stop (sk_task_stopping) */
    SK_TASK_MAIN         /* the session's own thread: the session waits for it */
} sk_task_mode;

/* What happens when a task is due while a run of it is still going. */
typedef enum sk_overlap {
    SK_OVERLAP_SKIP = 0, /* the start is dropped (the default) */
    SK_OVERLAP_QUEUE,    /* up to sk_sched_task.max_parallel starts are kept and made, one at a
                          * time, as runs end */
    SK_OVERLAP_PARALLEL  /* started alongside, up to sk_sched_task.max_parallel runs at once */
} sk_overlap;

/* What happens to a start that was due while no session ran (read from the
 * run log when a session opens it). */
typedef enum sk_missed {
    SK_MISSED_SKIP = 0, /* nothing: the condition decides from now on (the default) */
    SK_MISSED_RUN_ONCE  /* run once at the first cycle, however many starts were missed
                         * (a log that outlives the session: SQLite or CSV) */
} sk_missed;

/* A function task's code. Returns 0 for success, anything else for
 * failure (logged with that code). */
typedef int (*sk_task_fn)(sk_task_run *run, void *arg);

/* Where a parameter's value comes from. */
typedef enum sk_param_kind {
    SK_PARAM_VALUE = 1, /* a fixed value: image, len */
    SK_PARAM_SESSION,   /* the session's parameter of the same name (sk_sched_param,
                         * sk_sched_param_fn), read when the run starts; none when the
                         * session has no parameter of that name */
    SK_PARAM_RETURN     /* the last return value of task `task` (Return('x')); none when it
                         * never returned one */
} sk_param_kind;

/* One parameter a task declares. */
typedef struct sk_param {
    const char *name; /* 1 to SK_COND_NAME_MAX bytes, unique within the task */
    sk_param_kind kind;
    const void *image; /* SK_PARAM_VALUE: a tpl image (sk_image_pack), copied */
    size_t len;
    const char *task; /* SK_PARAM_RETURN: the task whose return value */
} sk_param;

/* A session parameter's function, run right before each run that needs it
 * (in the session's thread): sets *img to a malloc'ed tpl image (the
 * session frees it) and *len, and returns 0; anything else is a failure
 * outside the task's code (see sk_sched_config.crash_on_task_prerun). */
typedef int (*sk_param_fn)(void *arg, void **img, size_t *len);

/* The default bound between asking a run to stop and killing it, seconds. */
#define SK_TASK_KILL_AFTER 5.0

/* A task, as sk_sched_add takes it (copied: strings and arrays may go away
 * afterwards). Exactly one of fn and process is set. */
typedef struct sk_sched_task {
    const char *name;    /* 1 to SK_COND_NAME_MAX bytes; see sk_sched_config.on_exists */
    const char *start;   /* the start condition as text, or */
    sk_cond *start_cond; /* built: the session owns it from sk_sched_add on, also when that
                          * fails. Neither: "false" (the task runs when sk_sched_run_task
                          * asks) */
    const char *end;     /* an end condition, text or built (optional): when it becomes true */
    sk_cond *end_cond;   /* during a run, the run is stopped, then killed after kill_after */
    double timeout;      /* seconds from the start of a run (real time); past it the run is
                          * ended as by the end condition and fails; <= 0: none */
    double kill_after;   /* seconds between the stop request and the kill; 0: SK_TASK_KILL_AFTER */
    sk_task_mode mode;
    sk_task_fn fn; /* a function task: fn(run, arg) */
    void *arg;
    sk_process *process; /* a process-class task: sk_init'ed, config set, not started; its
                          * hooks run as they would under sk_start, each run from the state
                          * the struct has now (mode must be SK_TASK_PROCESS). The session
                          * sets config.supervise and rearms the handle before each run;
                          * one handle makes one run at a time, so SK_OVERLAP_PARALLEL with
                          * max_parallel > 1 is refused */
    const sk_param *params;
    size_t param_count;
    sk_overlap overlap;
    int max_parallel; /* SK_OVERLAP_QUEUE, SK_OVERLAP_PARALLEL: see there; 0: 1 */
    sk_missed missed;
    void *reserved[4]; /* zero */
} sk_sched_task;

/* What sk_sched_add does with a name already in the session (the seed's
 * task_pre_exist). */
typedef enum sk_on_exists {
    SK_EXISTS_RAISE = 0, /* refuse: SK_ESTATE (the default) */
    SK_EXISTS_REPLACE,   /* remove the old task (its running runs go on, logged) */
    SK_EXISTS_IGNORE,    /* keep the old task, drop the new one: SK_OK */
    SK_EXISTS_RENAME     /* add "-2", "-3", ... until the name is free */
} sk_on_exists;

/* Where the run log lives. */
typedef enum sk_log_kind {
    SK_LOG_AUTO = 0, /* log_path NULL: memory; ending in ".csv": CSV; otherwise SQLite */
    SK_LOG_MEMORY,   /* bounded by log_max_runs; gone with the session */
    SK_LOG_SQLITE,   /* a SQLite database in WAL mode: restart-safe, queryable (one session
                      * per file: a second one gets SK_ESYS) */
    SK_LOG_CSV       /* one line per start and per end, appended; read back on open */
} sk_log_kind;

/* A time source for tests: ns since the epoch. */
typedef int64_t (*sk_clock_fn)(void *arg);

/* How a run ended. */
typedef enum sk_run_outcome {
    SK_RUN_RUNNING = 0, /* not yet */
    SK_RUN_SUCCEEDED,
    SK_RUN_FAILED,    /* its code failed: an error, a crash, lives spent; also a run that
                       * was going when its session ended without stopping it */
    SK_RUN_TERMINATED /* the session ended it: end condition, timeout, shutdown. For
                       * conditions ("after task 'x' failed") it counts as failed */
} sk_run_outcome;

/* One run, as the log reports it. Pointers are valid during the callback
 * (or until the next call on the log). */
typedef struct sk_run_record {
    int64_t id; /* increasing within a log */
    const char *task;
    int64_t start; /* ns since the epoch, session clock */
    int64_t end;   /* SK_COND_NEVER while running */
    sk_run_outcome outcome;
    const sk_error *error; /* failed or terminated: the typed error; NULL otherwise */
    const void *value;     /* the return value, a tpl image; NULL when none */
    size_t value_len;
} sk_run_record;

/* Called with each run a query finds or a session logs; non-zero stops a
 * query early. */
typedef int (*sk_run_fn)(const sk_run_record *run, void *arg);

/* A session's options. Zero is the default for each, and the defaults are
 * the seed's. */
/* sk_sched_config.prefork's default, seconds. */
#define SK_SCHED_PREFORK 0.05

typedef struct sk_sched_config {
    sk_on_exists on_exists;      /* the seed's task_pre_exist */
    bool crash_on_task_prerun;   /* a failure outside a task's code (a parameter function,
                                  * a fork) ends sk_sched_run with it; default (the seed's
                                  * silence_task_prerun): the run is logged as failed, the
                                  * session goes on */
    bool crash_on_cond_error;    /* a condition that cannot be evaluated (an unknown user
                                  * condition) ends sk_sched_run; default (silence_cond_check):
                                  * it counts as false and is reported once per task (a line
                                  * on stderr) */
    bool force_status_from_logs; /* conditions read task status from the log on every
                                  * evaluation; default: from the session's cache, which the
                                  * log fills on open */
    double cycle_sleep;          /* at least this many seconds between cycles; 0: none (the
                                  * session sleeps until something can change) */
    sk_log_kind log;
    const char *log_path;
    size_t log_max_runs;    /* in memory (SK_LOG_MEMORY, and a CSV log read back): the
                             * runs kept, oldest dropped first (each task's latest of
                             * each outcome, its latest start and its last return value
                             * are kept apart); 0: 10,000 */
    const char *shutdown;   /* a condition that ends sk_sched_run when it becomes true */
    sk_cond *shutdown_cond; /* (text or built, as sk_sched_task.start) */
    double shutdown_grace;  /* at shutdown, running runs are asked to stop and killed
                             * after this many seconds; 0: SK_TASK_KILL_AFTER */
    bool no_signals;        /* sk_sched_run does not catch SIGINT and SIGTERM */
    sk_clock_fn clock;      /* NULL: CLOCK_REALTIME */
    void *clock_arg;
    sk_run_fn on_run; /* called in the session's thread when a run starts and ends, and
                       * once more for a thread run that has not returned kill_after
                       * seconds after the stop request (outcome SK_RUN_RUNNING, error
                       * saying so) */
    void *on_run_arg;
    double prefork;    /* process tasks: when a start is due at a known time (a time
                        * condition's next change, true then), the run's process and its
                        * supervisor are forked this many seconds ahead and wait; at the
                        * due time the session only releases it (a wake-up, not two
                        * forks). The parameters must be known ahead (none from a
                        * parameter function; a session parameter or Return value that
                        * changed meanwhile means a fresh fork). Only on the real clock.
                        * 0: SK_SCHED_PREFORK (0.05 s); < 0: never, every start forks */
    void *reserved[7]; /* zero */
} sk_sched_config;

/* Creates a session and opens its log (for SQLite and CSV: what earlier
 * sessions logged is read, so their runs count; runs left running by a
 * session that was killed are logged as failed).
 *   SK_EINVAL  a bad config (the shutdown condition does not parse: the
 *              message says where); SK_ESYS  the log cannot be opened
 *              (sk_last_error_message has SQLite's or the system's words);
 *   SK_EFORMAT the file is not a run log; SK_ENOMEM */
int sk_sched_create(sk_sched **out, const sk_sched_config *cfg);

/* Stops what still runs (asked, killed after shutdown_grace, trees with
 * them), logs it, closes the log, frees. NULL is fine. */
void sk_sched_release(sk_sched *s);

/* Adds a task.
 *   SK_OK      added (or, SK_EXISTS_IGNORE, the name was taken and nothing changed)
 *   SK_EINVAL  a bad task: no name, both or neither of fn and process, a condition
 *              that does not parse (sk_last_error_message: where and why), a bad
 *              parameter; the task's built conditions are freed
 *   SK_ESTATE  the name is taken (SK_EXISTS_RAISE)
 * name_out (may be NULL, len bytes) receives the name it got (SK_EXISTS_RENAME). */
int sk_sched_add(sk_sched *s, const sk_sched_task *task, char *name_out, size_t len);

/* Removes a task; a run still going goes on and is logged. SK_EINVAL when
 * there is no such task. */
int sk_sched_remove(sk_sched *s, const char *name);

/* A session parameter with a fixed value (packed as sk_image_pack packs),
 * or computed by fn before every run that declares it. Setting a name
 * again replaces it. */
int sk_sched_param(sk_sched *s, const char *name, const char *fmt, ...);
int sk_sched_param_fn(sk_sched *s, const char *name, sk_param_fn fn, void *arg);

/* Registers a user condition ("file_exists" in "daily & file_exists"):
 * fn(arg) is called in the session's thread when a condition needs it. */
int sk_sched_condition(sk_sched *s, const char *name, sk_cond_user_fn fn, void *arg);

/* Makes a task start at the next cycle whatever its start condition (the
 * seed's force_run; overlap still applies). SK_EINVAL: no such task. */
int sk_sched_run_task(sk_sched *s, const char *name);

/* Runs cycles until the shutdown condition holds, sk_sched_shutdown is
 * called or (unless no_signals) SIGINT or SIGTERM arrives; then stops the
 * running runs within shutdown_grace and returns SK_OK. Between cycles it
 * sleeps until a time condition can change, a run ends or a command comes.
 * Returns the failure that crashed it when crash_on_* says so. */
int sk_sched_run(sk_sched *s);

/* One cycle, never sleeping: ends runs that ended (logs them), stops those
 * whose end condition or timeout came, and starts those that are due.
 * For event loops (with sk_sched_fd) and for tests with a fake clock.
 * SK_OK, or the failure that crash_on_* makes fatal (the cycle is finished
 * first); SK_ESTATE when called from a task of the same session. */
int sk_sched_step(sk_sched *s);

/* A descriptor that polls readable when sk_sched_step has work: a run
 * ended, a command came, a timeout or kill bound came, or (real clock) the
 * next time a condition can change has come. With config.clock the
 * conditions' times are not in it: step when sk_sched_next_wake says. */
int sk_sched_fd(sk_sched *s);

/* When the next cycle is due, ns on the session's clock, from the
 * conditions of every task (SK_COND_NO_CHANGE: only events). */
int sk_sched_next_wake(sk_sched *s, int64_t *when);

/* Steps until no run is going, at most timeout seconds (negative: no
 * limit): SK_OK or SK_ETIMEDOUT. For tests and fake-clock programs. */
int sk_sched_join(sk_sched *s, double timeout);

/* Asks sk_sched_run to return. Any thread; async-signal-safe. */
int sk_sched_shutdown(sk_sched *s);

/* ------------------------------------------------------ in a task's code */

/* Unpacks parameter `name` into the pointers after fmt.
 *   SK_OK       done
 *   SK_EINVAL   the task declares no such parameter
 *   SK_ECLOSED  it has no value (Return of a task that never returned one)
 *   SK_EFORMAT  fmt is not the value's format */
int sk_task_param(sk_task_run *run, const char *name, const char *fmt, ...);

/* The parameter's tpl image (NULL when it has none or there is no such
 * parameter). */
const void *sk_task_param_image(sk_task_run *run, const char *name, size_t *len);

/* Sets the run's return value (logged with the run when it succeeds; other
 * tasks read it with SK_PARAM_RETURN). A process-class task returns with
 * sk_return instead. */
int sk_task_return(sk_task_run *run, const char *fmt, ...);
int sk_task_return_image(sk_task_run *run, const void *img, size_t len);

/* True once the session asked this run to stop (end condition, timeout,
 * shutdown). Thread and main tasks should check it; process tasks are
 * also stopped as skproc processes are (sk_stop, then killed). */
bool sk_task_stopping(const sk_task_run *run);

/* The task's name. */
const char *sk_task_run_name(const sk_task_run *run);

/* In a process-class task's hooks: the run it was started for (its
 * parameters). NULL in a process the session did not start. */
sk_task_run *sk_task_run_of(sk_process *self);

/* ------------------------------------------------------- loading tasks */

/* The function a task library exports: adds its tasks to s, returns 0 (or
 * a negative code, which fails sk_sched_load for that library). */
#define SK_SCHED_REGISTER_SYMBOL "skproc_sched_register"
typedef int (*sk_sched_register_fn)(sk_sched *s);

/* Loads tasks from shared objects, as the seed's loader imports every
 * tasks.py under a folder: every regular file under dir whose path
 * relative to dir matches pattern, in sorted path order (byte order), is
 * dlopen'ed (RTLD_NOW | RTLD_LOCAL) and its skproc_sched_register called.
 * pattern is matched segment by segment with fnmatch (FNM_PATHNAME |
 * FNM_PERIOD: '*' stays within a folder name and does not match a leading
 * '.'), where a "**" segment spans any number of folders, none too, that do
 * not start with '.': "**" then "/tasks.so" is every tasks.so; "jobs/" then
 * "*.so" is the .so files in jobs. Links to files are followed, links to
 * folders are not.
 * Returns the number of libraries loaded (0 when nothing matched), or
 *   SK_EINVAL  a bad argument or pattern (empty, absolute, an empty
 *              segment); or some library failed to load, lacks the function
 *              or its function returned non-zero: sk_last_error_message
 *              names each such file with dlerror's or the function's words
 *              (and what sk_last_error_message said when it returned); the
 *              others are loaded
 *   SK_ESYS    dir cannot be read
 * Libraries stay loaded until sk_sched_release, also one whose function
 * failed (the tasks it added point into it). A task library leaves
 * skproc's functions undefined: the program that loads it must export
 * them (link with libskproc.so, or with libskproc.a whole and -rdynamic). */
int sk_sched_load(sk_sched *s, const char *dir, const char *pattern);

/* ------------------------------------------------------------- the log */

/* A run log: a session's, or one opened alone to read. */
typedef struct sk_run_log sk_run_log;

/* The session's log (owned by the session). */
sk_run_log *sk_sched_log(sk_sched *s);

/* Opens a SQLite or CSV log to read, also while a session writes it
 * (the kind from the file's first bytes; an empty file named .csv is an
 * empty CSV log). A CSV log is read into memory, the last 10,000 runs
 * (each task's latest of each outcome kept apart, as log_max_runs says),
 * and what the session appends is read before each query. Runs the
 * session has going show as SK_RUN_RUNNING; a reader never ends them.
 * SK_ESYS: cannot open; SK_EFORMAT: not a run log. Logging into such a
 * log (the session's calls) is SK_ESTATE. */
int sk_run_log_open(const char *path, sk_run_log **out);

/* Closes a log sk_run_log_open opened; NULL is fine. (A session's log is
 * closed by sk_sched_release.) */
void sk_run_log_close(sk_run_log *log);

/* The runs of `task` (NULL: of every task) that started at or after
 * `since` (SK_COND_NEVER: all), oldest first (by id), each passed to fn.
 * Returns the number passed, or a negative code. A memory or CSV log
 * holds the last log_max_runs runs; SQLite holds every run. fn must not
 * log into the same log. */
int64_t sk_run_log_runs(sk_run_log *log, const char *task, int64_t since, sk_run_fn fn, void *arg);

/* The latest run of `task` (NULL: of any task) with that outcome
 * (SK_COND_SUCCEEDED, SK_COND_FAILED, which counts terminated runs too,
 * SK_COND_FINISHED) passed to fn (may be NULL): 1, or 0 when there is
 * none, or a negative code. The latest is the one that ended last (then
 * the greatest id). */
int sk_run_log_last(sk_run_log *log, const char *task, sk_cond_outcome outcome, sk_run_fn fn,
                    void *arg);

/* How many runs of `task` (NULL: of every task) that started at or after
 * `since` had that outcome ("failures since midnight"): the count, or a
 * negative code. Memory and CSV logs count the runs they hold. */
int64_t sk_run_log_count(sk_run_log *log, const char *task, sk_cond_outcome outcome, int64_t since);

#endif
