/* SPDX-License-Identifier: MIT */
/*
 * One line of a CSV run log, written and read: RFC 4180 fields (quoted
 * when they hold a comma, a quote or a line break; quotes doubled), lines
 * ended by "\n" ("\r\n" is read too), values in base64. The columns are
 * CSV_HEADER's; docs/scheduling.md shows an example.
 */
#ifndef SKPROC_SCHED_RUNLOG_CSV_LINE_H
#define SKPROC_SCHED_RUNLOG_CSV_LINE_H

#include "skproc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CSV_HEADER                                                                                 \
    "id,event,task,time,outcome,error_kind,error_section,error_run,error_code,error_reason,"       \
    "error_signal,error_exit_status,error_timeout,error_lives_spent,error_item,error_message,"     \
    "error_cause,value\n"

typedef enum csv_event { CSV_START, CSV_END, CSV_ALIVE } csv_event;

/* A line, as written or as read (then its strings and value point into
 * the csv_buf given to csv_line_parse). */
typedef struct csv_line {
    csv_event event;
    int64_t id;             /* start, end; 0 for alive */
    const char *task;       /* start, end */
    int64_t time;           /* the start, the end, or the time the session was alive */
    sk_run_outcome outcome; /* end */
    const sk_error *error;  /* end: NULL for none */
    const void *value;      /* end: NULL for none */
    size_t value_len;
} csv_line;

/* A growable byte buffer. */
typedef struct csv_buf {
    char *data;
    size_t len, cap;
} csv_buf;

int csv_buf_reserve(csv_buf *b, size_t extra);
void csv_buf_free(csv_buf *b);

/* Appends line (with its "\n") to b. SK_ENOMEM. */
int csv_line_format(csv_buf *b, const csv_line *line);

/* The length of the first complete line in text[0, len) with its end
 * ("\n" outside quotes), or 0 when the text holds no complete line. */
size_t csv_line_length(const char *text, size_t len);

/* Reads the complete line text[0, len) into *line; its strings, error and
 * value are kept in scratch and e. false: not a run log line. */
bool csv_line_parse(const char *text, size_t len, csv_buf *scratch, sk_error *e, csv_line *line);

#endif
