/* SPDX-License-Identifier: MIT */
/*
 * The progress of long maps. An application gets the numbers through its
 * callback and draws its own UI; a program that wants what Python users
 * know from tqdm asks for the bar: one line on stderr, as wide as the
 * terminal, redrawn in place and cleared when the map is done,
 *
 *    45%|#########           | 4500/10000 [00:02<00:03, 1.93k items/s]
 *
 * It is off by default (a library does not write on its user's terminal
 * unasked), never drawn into a pipe or a file, never for streams (no known
 * length), and each redraw is one write(2), so that it never splits a line
 * that a worker prints meanwhile into pieces.
 */
#include "pool/progress.h"

#include "os/clock.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define REPORT_EVERY_NS (SK_NS_PER_SEC / 10)
#define BAR_AFTER_NS (SK_NS_PER_SEC / 2)
#define LINE_MAX 512

static void format_clock(char *buf, size_t cap, double seconds)
{
    if (!isfinite(seconds) || seconds < 0) {
        snprintf(buf, cap, "?");
        return;
    }
    long s = (long)seconds;
    if (s >= 3600)
        snprintf(buf, cap, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, cap, "%02ld:%02ld", s / 60, s % 60);
}

static void format_rate(char *buf, size_t cap, double rate)
{
    if (!isfinite(rate) || rate <= 0)
        snprintf(buf, cap, "? items/s");
    else if (rate >= 1e6)
        snprintf(buf, cap, "%.2fM items/s", rate / 1e6);
    else if (rate >= 1e3)
        snprintf(buf, cap, "%.2fk items/s", rate / 1e3);
    else
        snprintf(buf, cap, "%.1f items/s", rate);
}

size_t pool_progress_format(char *buf, size_t cap, int columns, const sk_pool_progress *p)
{
    if (cap == 0)
        return 0;
    size_t room = columns > 1 ? (size_t)columns - 1 : 0;
    if (room >= cap)
        room = cap - 1;
    double frac = p->total > 0 ? (double)p->done / (double)p->total : 0;
    char elapsed[32], eta[32], rate[40], failed[48] = "";
    format_clock(elapsed, sizeof elapsed, p->elapsed);
    format_clock(eta, sizeof eta, p->finished ? 0 : p->eta);
    format_rate(rate, sizeof rate, p->rate);
    if (p->failed > 0)
        snprintf(failed, sizeof failed, ", %zu failed", p->failed);
    char tail[200];
    snprintf(tail, sizeof tail, "| %zu/%zu [%s<%s, %s%s]", p->done, p->total, elapsed, eta, rate,
             failed);
    char head[8];
    snprintf(head, sizeof head, "%3d%%|", (int)(frac * 100));
    size_t fixed = strlen(head) + strlen(tail);
    char line[LINE_MAX];
    if (fixed + 10 <= room) { /* a bar of 10 or more cells */
        size_t cells = room - fixed;
        if (cells > 60)
            cells = 60;
        size_t full = (size_t)(frac * (double)cells);
        memcpy(line, head, strlen(head));
        size_t n = strlen(head);
        for (size_t i = 0; i < cells; i++)
            line[n++] = i < full ? '#' : ' ';
        memcpy(line + n, tail, strlen(tail) + 1);
    } else { /* too narrow for a bar: the numbers, cut to fit */
        snprintf(line, sizeof line, "%3d%% %zu/%zu%s", (int)(frac * 100), p->done, p->total,
                 failed);
    }
    size_t len = strlen(line);
    if (len > room)
        len = room;
    memcpy(buf, line, len);
    buf[len] = '\0';
    return len;
}

static int terminal_columns(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 80;
}

static void write_all(const char *s, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, s, len);
        if (n <= 0)
            return; /* the terminal is gone: the bar does not matter */
        s += n;
        len -= (size_t)n;
    }
}

static bool bar_wanted(const sk_pool_call *c)
{
    const sk_pool_config *cfg = &c->pool->config;
    return cfg->progress_bar && !cfg->no_progress && c->produce == NULL && isatty(STDERR_FILENO);
}

void pool_progress_report(const sk_pool_call *c, struct pool_progress_state *st, bool final)
{
    const sk_pool_config *cfg = &c->pool->config;
    bool bar = bar_wanted(c);
    if (cfg->progress == NULL && !bar)
        return;
    int64_t now = sk_now_ns();
    if (!final && st->last != 0 && now - st->last < REPORT_EVERY_NS)
        return;
    if (!final && st->last == 0 && now - st->started < REPORT_EVERY_NS)
        return;
    st->last = now;
    sk_pool_progress p = {.done = (size_t)c->collected_items,
                          .total = c->produce == NULL ? c->n : (size_t)c->collected_items,
                          .failed = (size_t)c->failed,
                          .elapsed = (double)(now - st->started) / 1e9,
                          .finished = final};
    p.rate = p.elapsed > 0 ? (double)p.done / p.elapsed : 0;
    p.eta = p.rate > 0 && p.total >= p.done ? (double)(p.total - p.done) / p.rate : NAN;
    if (cfg->progress != NULL)
        cfg->progress(&p, cfg->progress_ctx);
    if (!bar)
        return;
    if (final) {
        if (st->drawn)
            write_all("\r\033[K", 4); /* done: leave no trail */
        st->drawn = false;
        return;
    }
    if (now - st->started < BAR_AFTER_NS)
        return; /* a short map does not flash a bar */
    char line[LINE_MAX + 8] = "\r";
    size_t len = 1 + pool_progress_format(line + 1, LINE_MAX, terminal_columns(), &p);
    memcpy(line + len, "\033[K", 4);
    write_all(line, len + 3);
    st->drawn = true;
}
