/* SPDX-License-Identifier: MIT */
/*
 * A flow's metrics, exported: the Prometheus text format (0.0.4) to a
 * stream, and StatsD lines over UDP. Both read only a snapshot
 * (sk_flow_metrics, see flow.h) and the public timer getters, never the
 * flow itself, so they work on a snapshot built by hand as well.
 *
 * Numbers. Both formats want "." as the decimal point whatever the
 * program's locale says, so every number is written while this thread uses
 * the C locale (uselocale: the rest of the program is not affected), and a
 * double is the shortest of %.15g, %.16g, %.17g that reads back as itself.
 *
 * Prometheus. One family per metric name, each with its HELP and TYPE lines
 * and then every sample of that name (all steps), as the format requires.
 * The batch-size histogram has no _sum: see flow.h for why.
 *
 * StatsD. Counters go out as deltas against what was sent before, and a
 * delta counts as sent only once send() took the datagram that holds it:
 * the counts of a datagram that could not be sent go out with the next
 * call, so a failed send() never loses or doubles a count (what the network
 * drops after send() is lost, as with any UDP).
 */
#include "skproc.h"

#include "core/error.h"
#include "os/fd.h"

#include <errno.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define PROM_DEFAULT_PREFIX "skproc_flow"
#define STATSD_DEFAULT_PREFIX "skproc.flow"
#define STATSD_DATAGRAM 1432 /* Ethernet MTU 1500 - IPv6 40 - UDP 8 - a margin for options */
#define STATSD_MAX_PREFIX 200
#define STATSD_MAX_KEY 128 /* a step's name in a StatsD name, sanitized */
#define STATSD_LINE 512    /* prefix + key + _index + metric + value: always fits */
#define STATSD_PENDING 256 /* lines per datagram: each is at least 8 bytes with its \n */

_Static_assert(STATSD_MAX_PREFIX + 1 + STATSD_MAX_KEY + 12 + 1 + 40 + 1 + 40 + 4 < STATSD_LINE,
               "a StatsD line always fits its buffer");
_Static_assert(STATSD_LINE < STATSD_DATAGRAM, "a StatsD line always fits a datagram alone");

/* ------------------------------------------------------------- numbers */

/* The C locale for this thread while an exporter writes numbers. */
struct c_numbers {
    locale_t c, old;
};

static bool c_numbers_begin(struct c_numbers *n)
{
    n->c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (n->c == (locale_t)0)
        return false;
    n->old = uselocale(n->c);
    return true;
}

static void c_numbers_end(struct c_numbers *n)
{
    uselocale(n->old);
    freelocale(n->c);
}

/* v as Prometheus writes a float: NaN, +Inf, -Inf, or the shortest %g that
 * reads back exactly (0.1 stays "0.1", not 0.10000000000000001). */
static void fmt_double(char buf[40], double v)
{
    if (isnan(v)) {
        strcpy(buf, "NaN");
        return;
    }
    if (isinf(v)) {
        strcpy(buf, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, 40, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

/* ---------------------------------------------------------- prometheus */

struct prom {
    FILE *out;
    const char *prefix;
    int err; /* errno of the first failed write, 0 while none failed */
};

static void prom_put(struct prom *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void prom_put(struct prom *p, const char *fmt, ...)
{
    if (p->err != 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int rc = vfprintf(p->out, fmt, ap);
    va_end(ap);
    if (rc < 0)
        p->err = errno != 0 ? errno : EIO;
}

static bool prom_name_ok(const char *s)
{
    if (s[0] == '\0' || !(s[0] == '_' || s[0] == ':' || (s[0] >= 'a' && s[0] <= 'z') ||
                          (s[0] >= 'A' && s[0] <= 'Z')))
        return false;
    for (const char *c = s + 1; *c != '\0'; c++)
        if (!(*c == '_' || *c == ':' || (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
              (*c >= '0' && *c <= '9')))
            return false;
    return true;
}

/* The length of the well-formed UTF-8 sequence at s, or 0 when s does not
 * start one (a stray continuation byte, an overlong form, a surrogate, a
 * code point past U+10FFFF, a sequence cut short). */
static size_t utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF; /* the range of the second byte */
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* no overlong forms */
        else if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F; /* nothing past U+10FFFF */
    } else
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0; /* also stops at the terminating NUL */
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return n;
}

/* A label value: backslash, double quote and newline escaped as the format
 * says. The format wants UTF-8, and a step's name is whatever bytes its
 * class gave: a byte that is not part of well-formed UTF-8 is written as
 * U+FFFD, so the output always parses. */
static void prom_label_value(struct prom *p, const char *v)
{
    const unsigned char *s = (const unsigned char *)(v != NULL ? v : "");
    while (*s != '\0' && p->err == 0) {
        size_t run = 0; /* plain ASCII, written as it is */
        while (s[run] != '\0' && s[run] < 0x80 && s[run] != '\\' && s[run] != '"' && s[run] != '\n')
            run++;
        if (run > 0) {
            prom_put(p, "%.*s", (int)run, (const char *)s);
            s += run;
            continue;
        }
        if (*s == '\\' || *s == '"') {
            prom_put(p, "\\%c", *s);
            s++;
        } else if (*s == '\n') {
            prom_put(p, "\\n");
            s++;
        } else {
            size_t n = utf8_len(s);
            if (n == 0) {
                prom_put(p, "\xEF\xBF\xBD");
                s++;
            } else {
                prom_put(p, "%.*s", (int)n, (const char *)s);
                s += n;
            }
        }
    }
}

static void prom_family(struct prom *p, const char *name, const char *type, const char *help)
{
    prom_put(p, "# HELP %s_%s %s\n# TYPE %s_%s %s\n", p->prefix, name, help, p->prefix, name, type);
}

/* One sample: <prefix>_<name>{step="..",index="..",<k>="<v>"} <value>.
 * step NULL: a flow-wide sample, with only the k label if any. */
static void prom_sample(struct prom *p, const char *name, const sk_flow_step_metrics *step,
                        const char *k, const char *v, const char *value)
{
    prom_put(p, "%s_%s", p->prefix, name);
    if (step != NULL || k != NULL) {
        prom_put(p, "{");
        if (step != NULL) {
            prom_put(p, "step=\"");
            prom_label_value(p, step->name);
            prom_put(p, "\",index=\"%d\"", step->index);
        }
        if (k != NULL) {
            prom_put(p, "%s%s=\"", step != NULL ? "," : "", k);
            prom_label_value(p, v);
            prom_put(p, "\"");
        }
        prom_put(p, "}");
    }
    prom_put(p, " %s\n", value);
}

static void prom_u64(struct prom *p, const char *name, const sk_flow_step_metrics *step,
                     const char *k, const char *v, uint64_t value)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRIu64, value);
    prom_sample(p, name, step, k, v, buf);
}

static void prom_double(struct prom *p, const char *name, const sk_flow_step_metrics *step,
                        double value)
{
    char buf[40];
    fmt_double(buf, value);
    prom_sample(p, name, step, NULL, NULL, buf);
}

/* A timer as a summary: quantiles 0.5, 0.9, 0.99 (NaN with no samples),
 * _sum in seconds and _count. A NULL timer is written as an empty one, so
 * the set of series stays the same from one scrape to the next. */
static void prom_summary(struct prom *p, const char *name, const sk_flow_step_metrics *step,
                         const sk_timer *t)
{
    static const struct {
        const char *label;
        double pct;
    } q[] = {{"0.5", 50.0}, {"0.9", 90.0}, {"0.99", 99.0}};
    char buf[40], sub[64];
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
        fmt_double(buf, t != NULL ? sk_timer_percentile(t, q[i].pct) : NAN);
        prom_sample(p, name, step, "quantile", q[i].label, buf);
    }
    long count = sk_timer_count(t);
    snprintf(sub, sizeof sub, "%s_sum", name);
    fmt_double(buf, count > 0 ? sk_timer_total(t) : 0.0);
    prom_sample(p, sub, step, NULL, NULL, buf);
    snprintf(sub, sizeof sub, "%s_count", name);
    snprintf(buf, sizeof buf, "%ld", count);
    prom_sample(p, sub, step, NULL, NULL, buf);
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Batch sizes: bin k holds the handle calls of 2^k .. 2^(k+1)-1 tasks, so
 * the cumulative bucket le="2^(k+1)-1" is exact. _count is the bins' total
 * (equal to +Inf, as the format requires, even when a torn snapshot made
 * `batches` differ). No _sum: the flow does not record it and the bins only
 * bound it; see flow.h. */
static void prom_batch_sizes(struct prom *p, const sk_flow_step_metrics *st)
{
    uint64_t cum = 0;
    char le[24];
    for (int k = 0; k < SK_FLOW_BATCH_BINS; k++) {
        cum = add_sat(cum, st->batch_sizes[k]);
        snprintf(le, sizeof le, "%" PRIu64, ((uint64_t)2 << k) - 1);
        prom_u64(p, "step_batch_size_bucket", st, "le", le, cum);
    }
    prom_u64(p, "step_batch_size_bucket", st, "le", "+Inf", cum);
    prom_u64(p, "step_batch_size_count", st, NULL, NULL, cum);
}

static void prom_write(struct prom *p, const sk_flow_metrics *m)
{
    prom_family(p, "tasks_submitted_total", "counter", "Tasks put into the flow.");
    prom_u64(p, "tasks_submitted_total", NULL, NULL, NULL, m->submitted);
    prom_family(p, "tasks_completed_total", "counter", "Tasks that came out with SK_OK.");
    prom_u64(p, "tasks_completed_total", NULL, NULL, NULL, m->completed);
    prom_family(p, "tasks_failed_total", "counter",
                "Tasks that came out failed (any status but SK_OK).");
    prom_u64(p, "tasks_failed_total", NULL, NULL, NULL, m->failed);
    prom_family(p, "tasks_in_flight", "gauge", "Tasks submitted and not yet out.");
    prom_u64(p, "tasks_in_flight", NULL, NULL, NULL, m->in_flight);
    prom_family(p, "elapsed_seconds", "gauge", "Seconds since the flow started.");
    prom_double(p, "elapsed_seconds", NULL, m->elapsed);
    prom_family(p, "throughput_tasks_per_second", "gauge",
                "Tasks out (ok or failed) per second, averaged since the flow started.");
    prom_double(p, "throughput_tasks_per_second", NULL, m->throughput);
    prom_family(p, "latency_seconds", "summary",
                "Seconds from submit to coming out of the last step.");
    prom_summary(p, "latency_seconds", NULL, m->latency);

    /* Per step: each family once, with every step's samples under it. */
    const sk_flow_step_metrics *st = m->step;
    int n = m->steps;
    prom_family(p, "step_processes", "gauge", "Processes of the step.");
    for (int i = 0; i < n; i++)
        prom_u64(p, "step_processes", &st[i], NULL, NULL,
                 st[i].processes > 0 ? (uint64_t)st[i].processes : 0);
    prom_family(p, "step_tasks_total", "counter",
                "Tasks of the step: taken from its input queue (in), passed on (out), failed "
                "for good in it (failed), passed on untouched by its condition (skipped).");
    for (int i = 0; i < n; i++) {
        prom_u64(p, "step_tasks_total", &st[i], "outcome", "in", st[i].tasks_in);
        prom_u64(p, "step_tasks_total", &st[i], "outcome", "out", st[i].tasks_out);
        prom_u64(p, "step_tasks_total", &st[i], "outcome", "failed", st[i].tasks_failed);
        prom_u64(p, "step_tasks_total", &st[i], "outcome", "skipped", st[i].tasks_skipped);
    }
    prom_family(p, "step_batches_total", "counter", "Handle calls of the step.");
    for (int i = 0; i < n; i++)
        prom_u64(p, "step_batches_total", &st[i], NULL, NULL, st[i].batches);
    prom_family(p, "step_batch_size", "histogram",
                "Tasks per handle call (no _sum: not recorded).");
    for (int i = 0; i < n; i++)
        prom_batch_sizes(p, &st[i]);
    prom_family(p, "step_queue_depth", "gauge", "Tasks waiting in the step's input queue.");
    for (int i = 0; i < n; i++)
        prom_u64(p, "step_queue_depth", &st[i], NULL, NULL, st[i].queue_depth);
    prom_family(p, "step_restarts_total", "counter",
                "Restarts of the step's processes after crashes and timeouts.");
    for (int i = 0; i < n; i++)
        prom_u64(p, "step_restarts_total", &st[i], NULL, NULL, st[i].restarts);
    prom_family(p, "step_handle_seconds", "summary", "Seconds per handle call.");
    for (int i = 0; i < n; i++)
        prom_summary(p, "step_handle_seconds", &st[i], st[i].handle);
    prom_family(p, "step_queue_wait_seconds", "summary",
                "Seconds a frame of tasks waited in the step's input queue.");
    for (int i = 0; i < n; i++)
        prom_summary(p, "step_queue_wait_seconds", &st[i], st[i].queue_wait);
}

int sk_flow_metrics_prometheus(const sk_flow_metrics *m, const char *prefix, FILE *out)
{
    if (m == NULL || out == NULL || m->steps < 0 || (m->steps > 0 && m->step == NULL))
        return sk_refuse(SK_EINVAL, "sk_flow_metrics_prometheus: a snapshot and a stream are "
                                    "needed");
    if (prefix == NULL)
        prefix = PROM_DEFAULT_PREFIX;
    if (!prom_name_ok(prefix))
        return sk_refuse(SK_EINVAL,
                         "sk_flow_metrics_prometheus: prefix \"%.64s\" is not a metric name "
                         "([a-zA-Z_:][a-zA-Z0-9_:]*)",
                         prefix);
    struct c_numbers cn;
    if (!c_numbers_begin(&cn))
        return SK_ENOMEM;
    struct prom p = {.out = out, .prefix = prefix};
    prom_write(&p, m);
    c_numbers_end(&cn);
    /* Flushed, so that a failure the buffer would hide until later (a full
     * disk, a closed pipe) is reported here. */
    if (p.err == 0 && fflush(out) == EOF)
        p.err = errno != 0 ? errno : EIO;
    if (p.err != 0)
        return sk_refuse(SK_ESYS, "sk_flow_metrics_prometheus: writing failed: %s",
                         strerror(p.err));
    return SK_OK;
}

/* -------------------------------------------------------------- statsd */

/* A step's counters, in the order of their StatsD names. */
enum {
    SC_IN,
    SC_OUT,
    SC_FAILED,
    SC_SKIPPED,
    SC_BATCHES,
    SC_RESTARTS,
    SC_BINS, /* SK_FLOW_BATCH_BINS entries from here */
    SC_COUNT = SC_BINS + SK_FLOW_BATCH_BINS
};

/* A flow's counters. */
enum { FC_SUBMITTED, FC_COMPLETED, FC_FAILED, FC_COUNT };

/* What was sent of a timer: its count and total when the last mean went. */
struct sent_timer {
    uint64_t count;
    double total;
};

struct sent_step {
    char key[STATSD_MAX_KEY + 16]; /* the step's name in StatsD names */
    uint64_t counter[SC_COUNT];
    struct sent_timer handle, queue_wait;
};

/* What becomes true once the datagram holding a line is sent. */
struct commit {
    uint64_t *counter;
    uint64_t value;
    struct sent_timer *timer;
    struct sent_timer now;
};

struct sk_statsd {
    int fd;
    char prefix[STATSD_MAX_PREFIX + 1];
    uint64_t counter[FC_COUNT];
    struct sent_timer latency;
    struct sent_step *steps;
    int n_steps;
    /* The datagram being filled, and the commits of its lines. */
    char buf[STATSD_DATAGRAM];
    size_t len;
    struct commit pending[STATSD_PENDING];
    size_t n_pending;
    int sent, failed, err; /* datagrams of this call; errno of the last failure */
};

static bool statsd_prefix_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > STATSD_MAX_PREFIX || s[0] == '.' || s[n - 1] == '.' || strstr(s, ".."))
        return false;
    for (const char *c = s; *c != '\0'; c++)
        if (!(*c == '_' || *c == '-' || *c == '.' || (*c >= 'a' && *c <= 'z') ||
              (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
            return false;
    return true;
}

int sk_statsd_open(sk_statsd **out, const char *host, int port, const char *prefix)
{
    if (out == NULL)
        return sk_refuse(SK_EINVAL, "sk_statsd_open: out is NULL");
    *out = NULL;
    if (host == NULL || host[0] == '\0' || port < 1 || port > 65535)
        return sk_refuse(SK_EINVAL, "sk_statsd_open: a host and a port from 1 to 65535 are "
                                    "needed");
    if (prefix == NULL)
        prefix = STATSD_DEFAULT_PREFIX;
    if (!statsd_prefix_ok(prefix))
        return sk_refuse(SK_EINVAL,
                         "sk_statsd_open: prefix must be 1 to %d characters of [A-Za-z0-9_.-], "
                         "with no empty part between dots",
                         STATSD_MAX_PREFIX);

    char service[8];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, service, &hints, &res);
    if (gai != 0) {
        int code =
            gai == EAI_MEMORY ? SK_ENOMEM
            : gai == EAI_NONAME || gai == EAI_FAMILY || gai == EAI_SERVICE || gai == EAI_SOCKTYPE
                ? SK_EINVAL
                : SK_ESYS;
        return sk_refuse(code, "sk_statsd_open: %.100s: %s", host,
                         gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai));
    }
    /* The first address a socket connects to wins. A UDP connect sends
     * nothing: it fixes the peer, so send() needs no address and an ICMP
     * "port unreachable" comes back as ECONNREFUSED. */
    int fd = -1, err = 0;
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int rc;
        do
            rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        while (rc != 0 && errno == EINTR);
        if (rc != 0) {
            err = errno;
            sk_fd_close(&fd);
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        return sk_refuse(SK_ESYS, "sk_statsd_open: %.100s port %d: %s", host, port,
                         strerror(err != 0 ? err : EADDRNOTAVAIL));
    sk_statsd *s = calloc(1, sizeof *s);
    if (s == NULL) {
        sk_fd_close(&fd);
        return SK_ENOMEM;
    }
    s->fd = fd;
    snprintf(s->prefix, sizeof s->prefix, "%s", prefix);
    *out = s;
    return SK_OK;
}

void sk_statsd_close(sk_statsd *s)
{
    if (s == NULL)
        return;
    sk_fd_close(&s->fd);
    free(s->steps);
    free(s);
}

/* Sends the datagram being filled. ECONNREFUSED is an earlier datagram's
 * ICMP "port unreachable", reported by this send() instead of sending: it
 * is tried once more, so that a missing server costs nothing but the
 * datagrams it would have received. */
static void statsd_flush(sk_statsd *s)
{
    if (s->len == 0)
        return;
    bool refused_once = false;
    ssize_t rc;
    for (;;) {
        rc = send(s->fd, s->buf, s->len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (rc >= 0)
            break;
        if (errno == EINTR)
            continue;
        if (errno == ECONNREFUSED && !refused_once) {
            refused_once = true;
            continue;
        }
        break;
    }
    if (rc == (ssize_t)s->len) {
        for (size_t i = 0; i < s->n_pending; i++) {
            struct commit *c = &s->pending[i];
            if (c->counter != NULL)
                *c->counter = c->value;
            if (c->timer != NULL)
                *c->timer = c->now;
        }
        s->sent++;
    } else {
        s->failed++;
        s->err = rc < 0 ? errno : EMSGSIZE;
    }
    s->len = 0;
    s->n_pending = 0;
}

/* Appends one line (and what its sending makes true) to the datagram,
 * sending the datagram first when the line would not fit: a line is never
 * cut. */
static void statsd_line(sk_statsd *s, const char *line, size_t n, const struct commit *c)
{
    if (s->len > 0 && s->len + 1 + n > STATSD_DATAGRAM)
        statsd_flush(s);
    if (s->len > 0)
        s->buf[s->len++] = '\n';
    memcpy(s->buf + s->len, line, n);
    s->len += n;
    if (c != NULL)
        s->pending[s->n_pending++] = *c;
    if (s->n_pending == STATSD_PENDING)
        statsd_flush(s);
}

/* <prefix>[.<key>].<name>:<value>|<type> */
static void statsd_put(sk_statsd *s, const char *key, const char *name, const char *value,
                       const char *type, const struct commit *c)
{
    char line[STATSD_LINE];
    int n = snprintf(line, sizeof line, "%s%s%s.%s:%s|%s", s->prefix, key != NULL ? "." : "",
                     key != NULL ? key : "", name, value, type);
    if (n > 0 && (size_t)n < sizeof line)
        statsd_line(s, line, (size_t)n, c);
}

/* A counter as its increase since what was sent. A value below it is a
 * counter that started again (another flow): all of it is the increase. A
 * zero increase sends nothing, as Aqueduct's exporter does (it counts
 * only when the count is above 0, and sends durations as timings in ms). */
static void statsd_counter(sk_statsd *s, const char *key, const char *name, uint64_t now,
                           uint64_t *sent)
{
    uint64_t delta = now >= *sent ? now - *sent : now;
    if (delta == 0) {
        *sent = now;
        return;
    }
    char v[24];
    snprintf(v, sizeof v, "%" PRIu64, delta);
    statsd_put(s, key, name, v, "c", &(struct commit){.counter = sent, .value = now});
}

static void statsd_gauge_u64(sk_statsd *s, const char *key, const char *name, uint64_t now)
{
    char v[24];
    snprintf(v, sizeof v, "%" PRIu64, now);
    statsd_put(s, key, name, v, "g", NULL);
}

/* A gauge of a double. Not sent when negative or not finite: StatsD reads
 * a leading sign as a change of the gauge, and has no NaN. */
static void statsd_gauge_double(sk_statsd *s, const char *key, const char *name, double now)
{
    if (!isfinite(now) || now < 0)
        return;
    char v[40];
    fmt_double(v, now);
    statsd_put(s, key, name, v, "g", NULL);
}

/* A timer as one timing: the mean, in milliseconds, of the durations it
 * recorded since the last one sent (StatsD's percentiles and counts are
 * then over those means). Nothing when it recorded none, or is NULL. */
static void statsd_timing(sk_statsd *s, const char *key, const char *name, const sk_timer *t,
                          struct sent_timer *sent)
{
    if (t == NULL)
        return;
    long count = sk_timer_count(t);
    struct sent_timer now = {.count = count > 0 ? (uint64_t)count : 0,
                             .total = count > 0 ? sk_timer_total(t) : 0.0};
    struct sent_timer base = *sent;
    if (now.count < base.count)
        base = (struct sent_timer){0, 0.0}; /* started again */
    if (now.count == base.count)
        return;
    double ms = (now.total - base.total) / (double)(now.count - base.count) * 1000.0;
    if (!isfinite(ms) || ms < 0)
        ms = 0;
    char v[40];
    fmt_double(v, ms);
    statsd_put(s, key, name, v, "ms", &(struct commit){.timer = sent, .now = now});
}

/* A step's name as it appears in StatsD names: [A-Za-z0-9_-] kept, any
 * other byte '_', at most STATSD_MAX_KEY characters, "step" when empty. */
static void statsd_sanitize(char key[STATSD_MAX_KEY + 1], const char *name)
{
    if (name == NULL || name[0] == '\0')
        name = "step";
    size_t n = 0;
    for (; name[n] != '\0' && n < STATSD_MAX_KEY; n++) {
        char c = name[n];
        bool ok = c == '_' || c == '-' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9');
        key[n] = ok ? c : '_';
    }
    key[n] = '\0';
}

/* Step i's key: its sanitized name, with "_<index>" when an earlier step's
 * sanitized name is the same, so that two steps never share a StatsD name
 * (their deltas would add up and their gauges overwrite each other). */
static void statsd_key(char *key, size_t size, const sk_flow_metrics *m, int i)
{
    char base[STATSD_MAX_KEY + 1], other[STATSD_MAX_KEY + 1];
    statsd_sanitize(base, m->step[i].name);
    snprintf(key, size, "%s", base);
    for (int j = 0; j < i; j++) {
        statsd_sanitize(other, m->step[j].name);
        if (strcmp(other, base) == 0) {
            snprintf(key, size, "%s_%d", base, m->step[i].index);
            return;
        }
    }
}

/* The sent state of every step of m, kept by position. A position whose
 * step has another name now (the sender is used with another flow) starts
 * from zero. */
static int statsd_steps(sk_statsd *s, const sk_flow_metrics *m)
{
    if (m->steps > s->n_steps) {
        struct sent_step *more = realloc(s->steps, (size_t)m->steps * sizeof *more);
        if (more == NULL)
            return SK_ENOMEM;
        memset(more + s->n_steps, 0, (size_t)(m->steps - s->n_steps) * sizeof *more);
        s->steps = more;
        s->n_steps = m->steps;
    }
    for (int i = 0; i < m->steps; i++) {
        char key[sizeof s->steps[i].key];
        statsd_key(key, sizeof key, m, i);
        if (strcmp(key, s->steps[i].key) != 0) {
            memset(&s->steps[i], 0, sizeof s->steps[i]);
            snprintf(s->steps[i].key, sizeof s->steps[i].key, "%s", key);
        }
    }
    return SK_OK;
}

static void statsd_write(sk_statsd *s, const sk_flow_metrics *m)
{
    statsd_counter(s, NULL, "submitted", m->submitted, &s->counter[FC_SUBMITTED]);
    statsd_counter(s, NULL, "completed", m->completed, &s->counter[FC_COMPLETED]);
    statsd_counter(s, NULL, "failed", m->failed, &s->counter[FC_FAILED]);
    statsd_gauge_u64(s, NULL, "in_flight", m->in_flight);
    statsd_gauge_double(s, NULL, "elapsed_seconds", m->elapsed);
    statsd_gauge_double(s, NULL, "throughput", m->throughput);
    statsd_timing(s, NULL, "latency", m->latency, &s->latency);
    for (int i = 0; i < m->steps; i++) {
        const sk_flow_step_metrics *st = &m->step[i];
        struct sent_step *ss = &s->steps[i];
        const char *key = ss->key;
        statsd_counter(s, key, "tasks_in", st->tasks_in, &ss->counter[SC_IN]);
        statsd_counter(s, key, "tasks_out", st->tasks_out, &ss->counter[SC_OUT]);
        statsd_counter(s, key, "tasks_failed", st->tasks_failed, &ss->counter[SC_FAILED]);
        statsd_counter(s, key, "tasks_skipped", st->tasks_skipped, &ss->counter[SC_SKIPPED]);
        statsd_counter(s, key, "batches", st->batches, &ss->counter[SC_BATCHES]);
        statsd_counter(s, key, "restarts", st->restarts, &ss->counter[SC_RESTARTS]);
        for (int k = 0; k < SK_FLOW_BATCH_BINS; k++) {
            char name[48];
            snprintf(name, sizeof name, "batch_size.%" PRIu64 "_%" PRIu64, (uint64_t)1 << k,
                     ((uint64_t)2 << k) - 1);
            statsd_counter(s, key, name, st->batch_sizes[k], &ss->counter[SC_BINS + k]);
        }
        statsd_gauge_u64(s, key, "processes", st->processes > 0 ? (uint64_t)st->processes : 0);
        statsd_gauge_u64(s, key, "queue_depth", st->queue_depth);
        statsd_timing(s, key, "handle_time", st->handle, &ss->handle);
        statsd_timing(s, key, "queue_wait", st->queue_wait, &ss->queue_wait);
    }
    statsd_flush(s);
}

int sk_statsd_send(sk_statsd *s, const sk_flow_metrics *m)
{
    if (s == NULL || m == NULL || m->steps < 0 || (m->steps > 0 && m->step == NULL))
        return sk_refuse(SK_EINVAL, "sk_statsd_send: a sender and a snapshot are needed");
    int rc = statsd_steps(s, m);
    if (rc != SK_OK)
        return rc;
    struct c_numbers cn;
    if (!c_numbers_begin(&cn))
        return SK_ENOMEM;
    s->len = 0;
    s->n_pending = 0;
    s->sent = s->failed = s->err = 0;
    statsd_write(s, m);
    c_numbers_end(&cn);
    if (s->sent == 0 && s->failed > 0)
        return sk_refuse(SK_ESYS, "sk_statsd_send: no datagram could be sent (%d tried): %s",
                         s->failed, strerror(s->err));
    return SK_OK;
}
