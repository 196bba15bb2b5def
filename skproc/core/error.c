/* SPDX-License-Identifier: MIT */
/*
 * Return codes, error kinds and their names, the hierarchy, and the
 * messages and reports built from an sk_error record.
 */
#include "core/class.h"
#include "core/error.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_refusal[1024]; /* room for sk_sched_load's list of failures */

int sk_refuse(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_refusal, sizeof last_refusal, fmt, ap);
    va_end(ap);
    return code;
}

const char *sk_last_error_message(void)
{
    return last_refusal;
}

static bool code_known(int code)
{
    switch (code) {
#define CODE_KNOWN(code, text) case code:
        SK_CODE_LIST(CODE_KNOWN)
#undef CODE_KNOWN
        return true;
    default:
        return false;
    }
}

void sk_error_sanitize(sk_error *e)
{
    e->message[sizeof e->message - 1] = '\0';
    e->cause[sizeof e->cause - 1] = '\0';
    if ((unsigned)e->kind > SK_CRASH_ERROR)
        e->kind = SK_PROCESS_ERROR;
    if ((int)e->section < SK_NO_SECTION || (int)e->section >= SK_SECTION_COUNT)
        e->section = SK_NO_SECTION;
    if (e->lives_spent < 0)
        e->lives_spent = 0;
    if (e->reason >= 0 || !code_known(e->reason)) /* no failure skproc names */
        e->reason = SK_ECORRUPT;
}

const char *sk_strerror(int code)
{
    switch (code) {
#define CODE_TEXT(code, text)                                                                      \
    case code:                                                                                     \
        return text;
        SK_CODE_LIST(CODE_TEXT)
#undef CODE_TEXT
    default:
        return "unknown error code";
    }
}

static const char *const kind_names[] = {
#define KIND_NAME(kind, name) [kind] = name,
    SK_ERROR_KIND_LIST(KIND_NAME)
#undef KIND_NAME
};

const char *sk_error_name(sk_error_kind kind)
{
    if ((unsigned)kind >= sizeof kind_names / sizeof kind_names[0])
        return "UnknownError";
    return kind_names[kind];
}

/* The hierarchy is one level deep: every kind derives from ProcessError. */
static sk_error_kind error_parent(sk_error_kind kind)
{
    return kind == SK_PROCESS_ERROR ? kind : SK_PROCESS_ERROR;
}

bool sk_error_is(const sk_error *e, sk_error_kind kind)
{
    if (e == NULL)
        return false;
    for (sk_error_kind k = e->kind;; k = error_parent(k)) {
        if (k == kind)
            return true;
        if (k == SK_PROCESS_ERROR)
            return false;
    }
}

/* Seconds the way suitkaise's Python errors print them: "5.0s", "0.05s". */
static void format_seconds(char *buf, size_t len, double s)
{
    if (s == floor(s) && fabs(s) < 1e15)
        snprintf(buf, len, "%.1fs", s);
    else
        snprintf(buf, len, "%gs", s);
}

static void error_reset(sk_error *e, sk_error_kind kind, sk_section section, long run, int reason)
{
    memset(e, 0, sizeof *e);
    e->item = -1;
    e->kind = kind;
    e->section = section;
    e->run = run;
    e->reason = reason;
}

/* "the run hook": how messages name a section, so that the error hook reads
 * "Error in the error hook" rather than "Error in error". */
static const char *section_phrase(sk_section section, char *buf, size_t len)
{
    if (section == SK_NO_SECTION)
        snprintf(buf, len, "no hook");
    else
        snprintf(buf, len, "the %s hook", sk_section_name(section));
    return buf;
}

/* The headline of a failure that is not a timeout or a crash. */
static void error_headline(sk_error *e)
{
    char where[32];
    if (e->kind == SK_PROCESS_ERROR)
        snprintf(e->message, sizeof e->message, "Error on run %ld", e->run);
    else
        snprintf(e->message, sizeof e->message, "Error in %s on run %ld",
                 section_phrase(e->section, where, sizeof where), e->run);
}

void sk_error_set(sk_error *e, sk_error_kind kind, sk_section section, long run, int code,
                  const char *cause)
{
    error_reset(e, kind, section, run, SK_EPROCESS);
    e->code = code;
    error_headline(e);
    snprintf(e->cause, sizeof e->cause, "%s", cause ? cause : "");
}

void sk_error_set_internal(sk_error *e, sk_error_kind kind, sk_section section, long run,
                           int reason, const char *cause)
{
    error_reset(e, kind, section, run, reason);
    error_headline(e);
    snprintf(e->cause, sizeof e->cause, "%s", cause ? cause : "");
}

void sk_error_set_text(sk_error *e, sk_error_kind kind, int reason, const char *fmt, ...)
{
    error_reset(e, kind, SK_NO_SECTION, -1, reason);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

void sk_error_set_timeout(sk_error *e, sk_section section, long run, double limit, bool join_in)
{
    char secs[48], where[32];
    format_seconds(secs, sizeof secs, limit);
    section_phrase(section, where, sizeof where);
    error_reset(e, SK_TIMEOUT_ERROR, section, run, SK_ETIMEDOUT);
    e->timeout = limit;
    if (join_in) {
        snprintf(e->message, sizeof e->message, "join_in of %s exceeded in %s on run %ld", secs,
                 where, run);
        snprintf(e->cause, sizeof e->cause,
                 "%s was still running when join_in had passed twice over; it was ended", where);
    } else {
        snprintf(e->message, sizeof e->message, "Timeout in %s after %s on run %ld", where, secs,
                 run);
        snprintf(e->cause, sizeof e->cause, "%s did not return within %s; it was ended", where,
                 secs);
    }
}

void sk_error_set_crash(sk_error *e, sk_section section, bool in_section, long run, int signal,
                        int exit_status)
{
    char where[32];
    section_phrase(section, where, sizeof where);
    error_reset(e, SK_CRASH_ERROR, section, run, SK_ECRASHED);
    e->signal = signal;
    e->exit_status = exit_status;
    const char *when = in_section ? "in" : "after";
    if (signal) {
        snprintf(e->message, sizeof e->message, "Crash %s %s on run %ld: signal %d (%s)", when,
                 where, run, signal, strsignal(signal));
        snprintf(e->cause, sizeof e->cause, "the child was ended by signal %d (%s)", signal,
                 strsignal(signal));
    } else {
        snprintf(e->message, sizeof e->message, "Crash %s %s on run %ld: exit status %d", when,
                 where, run, exit_status);
        snprintf(e->cause, sizeof e->cause, "the child called exit(%d) outside skproc's control",
                 exit_status);
    }
}

void sk_error_while_handling(sk_error *e, const sk_error *first)
{
    e->run = first->run;
    e->lives_spent = first->lives_spent;
    size_t used = strlen(e->cause);
    snprintf(e->cause + used, sizeof e->cause - used, " (while handling %s: %s)",
             sk_error_name(first->kind), first->message);
}

/* "SK_ETIMEDOUT": the name of a code as the header spells it. */
static const char *code_name(int code)
{
    switch (code) {
#define CODE_NAME(code, text)                                                                      \
    case code:                                                                                     \
        return #code;
        SK_CODE_LIST(CODE_NAME)
#undef CODE_NAME
    default:
        return "SK_E?";
    }
}

/* Each number is printed where it means something and only there: the
 * user's code beside the cause it came with, the signal or exit status of a
 * crash, skproc's reason on a line of its own. */
int sk_error_format(const sk_error *e, char *buf, size_t len)
{
    if (e == NULL || (buf == NULL && len > 0))
        return SK_EINVAL;
    char item[48] = "", extra[160] = "", code[32] = "";
    if (e->item >= 0)
        snprintf(item, sizeof item, "  item:    %ld\n", e->item);
    if (e->kind == SK_TIMEOUT_ERROR) {
        char secs[48];
        format_seconds(secs, sizeof secs, e->timeout);
        snprintf(extra, sizeof extra, "  timeout: %s\n", secs);
    } else if (e->kind == SK_CRASH_ERROR && e->signal) {
        snprintf(extra, sizeof extra, "  signal:  %d (%s)\n", e->signal, strsignal(e->signal));
    } else if (e->kind == SK_CRASH_ERROR) {
        snprintf(extra, sizeof extra, "  exit status: %d\n", e->exit_status);
    }
    if (e->code != 0)
        snprintf(code, sizeof code, " (code %d)", e->code);
    int n = snprintf(buf, len,
                     "skproc.%s: %s\n"
                     "  section: %s\n"
                     "  run:     %ld\n"
                     "%s%s"
                     "  lives spent: %d\n"
                     "  reason:  %s (%s)\n"
                     "\n"
                     "The above error was caused by:\n"
                     "  %s%s\n",
                     sk_error_name(e->kind), e->message, sk_section_name(e->section), e->run, item,
                     extra, e->lives_spent, code_name(e->reason), sk_strerror(e->reason),
                     e->cause[0] ? e->cause : "(no message)", code);
    return n < 0 ? SK_ESYS : n;
}
