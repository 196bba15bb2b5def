/* SPDX-License-Identifier: MIT */
/*
 * Running the examples as a user runs them (the test_*_examples programs):
 * examples/<name> from this build, stdin from a pipe filled beforehand,
 * stdout and stderr read through pipes, in a process group of its own with
 * a $TMPDIR of its own, bounded in time (the whole group killed past the
 * bound), and nothing left behind: no process of its group, nothing in its
 * $TMPDIR. Then the checks of what it printed.
 *
 * Include after <cmocka.h> and "support.h".
 */
#ifndef SKPROC_TEST_EXAMPLE_SUPPORT_H
#define SKPROC_TEST_EXAMPLE_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>

#define SKT_EXAMPLE_BOUND 30.0 /* seconds per run of an example (times skt_slowdown()) */
#define SKT_EXAMPLE_OUT_CAP (256 * 1024)
#define SKT_EXAMPLE_ERR_CAP (64 * 1024)

/* One run of an example: its exit status and what it printed. */
struct skt_run {
    int status; /* from waitpid */
    char out[SKT_EXAMPLE_OUT_CAP + 1], err[SKT_EXAMPLE_ERR_CAP + 1];
    size_t out_len, err_len;
};

/* A new empty directory under $TMPDIR (or /tmp) into buf. */
void skt_make_temp_dir(char *buf, size_t cap, const char *tag);
/* Removes dir and all below it when the test ends (skt_defer). */
void skt_defer_rm_rf(const char *dir);
/* The line after the one at l (the end of the text after the last). */
const char *skt_next_line(const char *l);
/* Prints what the run printed, for a failing test. */
void skt_print_run(const char *name, const struct skt_run *r);
/* Runs examples/<name> with args (NULL-terminated, after argv[0]) and
 * input on stdin (NULL: /dev/null); see above. */
struct skt_run *skt_run_example(const char *name, const char *const *args, const char *input);
/* Fails, showing the output, unless the run exited with code. */
void skt_expect_exit(const char *name, const struct skt_run *r, int code);
/* The first line of text that starts with prefix: what follows the prefix
 * (up to the newline) into rest; false when there is none. */
bool skt_find_line(const char *text, const char *prefix, char *rest, size_t cap);
/* The rest of the line of r's output (stdout, or stderr with err) that
 * starts with prefix; fails, showing the output, when there is none. */
const char *skt_line_after(const char *name, const struct skt_run *r, bool err, const char *prefix);
/* A whole line, exactly. */
void skt_expect_line(const char *name, const struct skt_run *r, bool err, const char *line);

#endif
