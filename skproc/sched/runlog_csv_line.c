/* SPDX-License-Identifier: MIT */
/* One line of a CSV run log (runlog_csv_line.h): RFC 4180 fields, base64
 * values, and a strict reader that calls anything else not a line. */
#include "sched/runlog_csv_line.h"

#include "sched/runlog_store.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CSV_FIELDS 18

enum {
    F_ID,
    F_EVENT,
    F_TASK,
    F_TIME,
    F_OUTCOME,
    F_KIND, /* the error's fields, F_KIND to F_CAUSE: all empty for no error */
    F_SECTION,
    F_RUN,
    F_CODE,
    F_REASON,
    F_SIGNAL,
    F_EXIT_STATUS,
    F_TIMEOUT,
    F_LIVES_SPENT,
    F_ITEM,
    F_MESSAGE,
    F_CAUSE,
    F_VALUE
};

static const char *const event_names[] = {
    [CSV_START] = "start", [CSV_END] = "end", [CSV_ALIVE] = "alive"};

/* ----------------------------------------------------------- the buffer */

int csv_buf_reserve(csv_buf *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return SK_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra) {
        if (cap > SIZE_MAX / 2)
            return SK_ENOMEM;
        cap *= 2;
    }
    char *data = realloc(b->data, cap);
    if (data == NULL)
        return SK_ENOMEM;
    b->data = data;
    b->cap = cap;
    return SK_OK;
}

void csv_buf_free(csv_buf *b)
{
    free(b->data);
    *b = (csv_buf){0};
}

static int put(csv_buf *b, const char *s, size_t n)
{
    if (csv_buf_reserve(b, n) != SK_OK)
        return SK_ENOMEM;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return SK_OK;
}

/* ------------------------------------------------------------- writing */

/* s (n bytes) as one field: quoted, quotes doubled, when it holds a
 * comma, a quote or a line break. */
static int put_text(csv_buf *b, const char *s, size_t n)
{
    if (strcspn(s, ",\"\r\n") >= n)
        return put(b, s, n);
    if (csv_buf_reserve(b, 2 * n + 2) != SK_OK)
        return SK_ENOMEM;
    b->data[b->len++] = '"';
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"')
            b->data[b->len++] = '"';
        b->data[b->len++] = s[i];
    }
    b->data[b->len++] = '"';
    return SK_OK;
}

static int put_int(csv_buf *b, long long v)
{
    char num[24];
    return put(b, num, (size_t)snprintf(num, sizeof num, "%lld", v));
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int put_base64(csv_buf *b, const unsigned char *v, size_t n)
{
    if (n > (SIZE_MAX / 4) * 3 - 3 || csv_buf_reserve(b, (n + 2) / 3 * 4) != SK_OK)
        return SK_ENOMEM;
    char *o = b->data + b->len;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t w = (uint32_t)v[i] << 16;
        if (i + 1 < n)
            w |= (uint32_t)v[i + 1] << 8;
        if (i + 2 < n)
            w |= v[i + 2];
        *o++ = b64[w >> 18 & 63];
        *o++ = b64[w >> 12 & 63];
        *o++ = i + 1 < n ? b64[w >> 6 & 63] : '=';
        *o++ = i + 2 < n ? b64[w & 63] : '=';
    }
    b->len = (size_t)(o - b->data);
    return SK_OK;
}

static int put_error(csv_buf *b, const sk_error *e)
{
    if (e == NULL)
        return put(b, ",,,,,,,,,,,,", 12); /* F_KIND to F_CAUSE, each followed by a comma */
    const long long ints[] = {e->kind,   e->section, e->run,        e->code,
                              e->reason, e->signal,  e->exit_status};
    int rc = SK_OK;
    for (size_t i = 0; i < sizeof ints / sizeof ints[0] && rc == SK_OK; i++) {
        rc = put_int(b, ints[i]);
        if (rc == SK_OK)
            rc = put(b, ",", 1);
    }
    char num[40];
    int n = snprintf(num, sizeof num, "%.17g,%d,%ld,", e->timeout, e->lives_spent, e->item);
    if (rc == SK_OK)
        rc = put(b, num, (size_t)n);
    if (rc == SK_OK)
        rc = put_text(b, e->message, strnlen(e->message, sizeof e->message));
    if (rc == SK_OK)
        rc = put(b, ",", 1);
    if (rc == SK_OK)
        rc = put_text(b, e->cause, strnlen(e->cause, sizeof e->cause));
    if (rc == SK_OK)
        rc = put(b, ",", 1);
    return rc;
}

int csv_line_format(csv_buf *b, const csv_line *l)
{
    size_t at = b->len;
    int rc = SK_OK;
    if (l->event != CSV_ALIVE)
        rc = put_int(b, l->id);
    const char *event = event_names[l->event];
    if (rc == SK_OK)
        rc = put(b, ",", 1);
    if (rc == SK_OK)
        rc = put(b, event, strlen(event));
    if (rc == SK_OK)
        rc = put(b, ",", 1);
    if (rc == SK_OK && l->task != NULL)
        rc = put_text(b, l->task, strlen(l->task));
    if (rc == SK_OK)
        rc = put(b, ",", 1);
    if (rc == SK_OK)
        rc = put_int(b, l->time);
    if (rc == SK_OK)
        rc = put(b, ",", 1);
    if (rc == SK_OK && l->event == CSV_END) {
        const char *outcome = sk_runlog_outcome_name(l->outcome);
        rc = put(b, outcome, strlen(outcome));
    }
    if (rc == SK_OK)
        rc = put(b, ",", 1);
    if (rc == SK_OK)
        rc = put_error(b, l->event == CSV_END ? l->error : NULL);
    if (rc == SK_OK && l->value != NULL && l->value_len > 0)
        rc = put_base64(b, l->value, l->value_len);
    if (rc == SK_OK)
        rc = put(b, "\n", 1);
    if (rc != SK_OK)
        b->len = at;
    return rc;
}

/* ------------------------------------------------------------- reading */

size_t csv_line_length(const char *text, size_t len)
{
    bool quoted = false;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '"')
            quoted = !quoted; /* a doubled quote toggles twice */
        else if (text[i] == '\n' && !quoted)
            return i + 1;
    }
    return 0;
}

/* Splits the line (without its end) into CSV_FIELDS fields, unquoted and
 * NUL-terminated in scratch; at[i] is field i's offset there. */
static bool split(const char *s, size_t n, csv_buf *scratch, size_t at[CSV_FIELDS])
{
    scratch->len = 0;
    if (csv_buf_reserve(scratch, n + CSV_FIELDS) != SK_OK)
        return false;
    char *o = scratch->data;
    size_t i = 0, f = 0;
    for (;;) {
        if (f == CSV_FIELDS)
            return false;
        at[f] = (size_t)(o - scratch->data);
        if (i < n && s[i] == '"') {
            for (i++;; i++) {
                if (i >= n)
                    return false; /* unclosed */
                if (s[i] == '"') {
                    if (i + 1 < n && s[i + 1] == '"')
                        i++;
                    else
                        break;
                }
                *o++ = s[i];
            }
            i++; /* the closing quote */
        } else {
            for (; i < n && s[i] != ','; i++) {
                if (s[i] == '"' || s[i] == '\r' || s[i] == '\n')
                    return false;
                *o++ = s[i];
            }
        }
        *o++ = '\0';
        f++;
        if (i == n)
            break;
        if (s[i] != ',')
            return false; /* text after a closing quote */
        i++;
    }
    scratch->len = (size_t)(o - scratch->data);
    return f == CSV_FIELDS;
}

static bool parse_int(const char *s, long long lo, long long hi, long long *v)
{
    if (!((*s >= '0' && *s <= '9') || (*s == '-' && s[1] >= '0' && s[1] <= '9')))
        return false;
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || x < lo || x > hi)
        return false;
    *v = x;
    return true;
}

static int b64_value(char c)
{
    const char *p = c ? strchr(b64, c) : NULL;
    return p ? (int)(p - b64) : -1;
}

/* Decodes base64 text s (its length a multiple of 4, padding only at the
 * end) into out; *n is the length. */
static bool parse_base64(const char *s, unsigned char *out, size_t *n)
{
    size_t len = strlen(s), k = 0;
    if (len % 4 != 0)
        return false;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        int pad = 0;
        for (int j = 0; j < 4; j++) {
            if (s[i + j] == '=' && i + 4 == len && j >= 2) {
                v[j] = 0;
                pad++;
            } else if (pad > 0 || (v[j] = b64_value(s[i + j])) < 0) {
                return false;
            }
        }
        uint32_t w =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[k++] = (unsigned char)(w >> 16);
        if (pad < 2)
            out[k++] = (unsigned char)(w >> 8);
        if (pad < 1)
            out[k++] = (unsigned char)w;
    }
    *n = k;
    return true;
}

static bool parse_error(char *const f[CSV_FIELDS], sk_error *e)
{
    long long v[F_ITEM - F_KIND + 1] = {0};
    static const long long lo[] = {SK_PROCESS_ERROR, SK_NO_SECTION, LONG_MIN, INT_MIN, INT_MIN,
                                   INT_MIN,          INT_MIN,       0,        INT_MIN, LONG_MIN};
    static const long long hi[] = {SK_CRASH_ERROR, SK_FULL_RUN, LONG_MAX, INT_MAX, INT_MAX,
                                   INT_MAX,        INT_MAX,     0,        INT_MAX, LONG_MAX};
    for (int i = F_KIND; i <= F_ITEM; i++)
        if (i != F_TIMEOUT && !parse_int(f[i], lo[i - F_KIND], hi[i - F_KIND], &v[i - F_KIND]))
            return false;
    char *end;
    double timeout = strtod(f[F_TIMEOUT], &end);
    if (*f[F_TIMEOUT] == '\0' || *end != '\0')
        return false;
    if (strlen(f[F_MESSAGE]) >= sizeof e->message || strlen(f[F_CAUSE]) >= sizeof e->cause)
        return false;
    memset(e, 0, sizeof *e);
    e->kind = (sk_error_kind)v[F_KIND - F_KIND];
    e->section = (sk_section)v[F_SECTION - F_KIND];
    e->run = (long)v[F_RUN - F_KIND];
    e->code = (int)v[F_CODE - F_KIND];
    e->reason = (int)v[F_REASON - F_KIND];
    e->signal = (int)v[F_SIGNAL - F_KIND];
    e->exit_status = (int)v[F_EXIT_STATUS - F_KIND];
    e->timeout = timeout;
    e->lives_spent = (int)v[F_LIVES_SPENT - F_KIND];
    e->item = (long)v[F_ITEM - F_KIND];
    strcpy(e->message, f[F_MESSAGE]);
    strcpy(e->cause, f[F_CAUSE]);
    return true;
}

static bool all_empty(char *const f[CSV_FIELDS], int from, int to)
{
    for (int i = from; i <= to; i++)
        if (*f[i] != '\0')
            return false;
    return true;
}

bool csv_line_parse(const char *text, size_t len, csv_buf *scratch, sk_error *e, csv_line *line)
{
    if (len == 0 || text[len - 1] != '\n')
        return false;
    len--;
    if (len > 0 && text[len - 1] == '\r')
        len--;
    size_t at[CSV_FIELDS];
    if (!split(text, len, scratch, at))
        return false;
    /* Room for the decoded value after the fields (it is shorter than its
     * text). */
    size_t value_at = scratch->len;
    if (csv_buf_reserve(scratch, strlen(scratch->data + at[F_VALUE]) + 1) != SK_OK)
        return false;
    char *f[CSV_FIELDS];
    for (int i = 0; i < CSV_FIELDS; i++)
        f[i] = scratch->data + at[i];

    *line = (csv_line){0};
    int event = -1;
    for (int i = 0; i < 3; i++)
        if (strcmp(f[F_EVENT], event_names[i]) == 0)
            event = i;
    long long v;
    if (event < 0 || !parse_int(f[F_TIME], INT64_MIN, INT64_MAX, &v))
        return false;
    line->event = (csv_event)event;
    line->time = v;
    if (event == CSV_ALIVE)
        return all_empty(f, F_ID, F_ID) && all_empty(f, F_TASK, F_TASK) &&
               all_empty(f, F_OUTCOME, F_VALUE);
    size_t task_len = strlen(f[F_TASK]);
    if (!parse_int(f[F_ID], 1, INT64_MAX, &v) || task_len == 0 || task_len > SK_COND_NAME_MAX)
        return false;
    line->id = v;
    line->task = f[F_TASK];
    if (event == CSV_START)
        return all_empty(f, F_OUTCOME, F_VALUE);

    int outcome = sk_runlog_outcome_parse(f[F_OUTCOME], strlen(f[F_OUTCOME]));
    if (outcome <= SK_RUN_RUNNING)
        return false;
    line->outcome = (sk_run_outcome)outcome;
    if (!all_empty(f, F_KIND, F_CAUSE)) {
        if (!parse_error(f, e))
            return false;
        line->error = e;
    }
    if (*f[F_VALUE] != '\0') {
        unsigned char *out = (unsigned char *)scratch->data + value_at;
        if (!parse_base64(f[F_VALUE], out, &line->value_len))
            return false;
        line->value = out;
    }
    return true;
}
