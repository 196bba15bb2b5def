/* SPDX-License-Identifier: MIT */
/*
 * flow_poll: a flow driven from a poll(2) loop, in one thread that never
 * blocks anywhere but in poll.
 *
 * Numbers come on stdin, one per line; each goes through a flow of two
 * steps, square (2 processes) then add 1000, and its result is printed.
 * sk_flow_fd(flow) polls readable when sk_flow_collect has something to
 * give (a task, or the end), so stdin and the flow share one poll():
 *
 *   - stdin readable: read what is there and submit one task per complete
 *     line, with timeout 0. SK_EFULL says queue_size tasks (here 16) are in
 *     the flow and not yet collected: the line waits, and stdin is left out
 *     of poll until collecting makes room (so the writer of stdin feels the
 *     backpressure through its pipe).
 *   - the flow fd readable: collect with timeout 0 until SK_ETIMEDOUT,
 *     printing each result; then submit the line that waited.
 *   - at the end of stdin, once every line is in, sk_flow_close; the loop
 *     ends when collect says SK_ECLOSED: every task came out.
 *
 * Results come out in the order of the lines (config.ordered). Exit status
 * 0 when every line was a number and every result is right.
 *
 *     seq -20 20 | build/default/examples/flow_poll
 *     build/default/examples/flow_poll <<< $'3\n4\n5'
 *
 * Build: gcc -std=c11 flow_poll.c $(pkg-config --cflags --libs skproc)
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <skproc.h>

#define ADD 1000
#define LIMIT 3037000499LL /* the largest number whose square fits an int64_t */

typedef struct {
    int64_t in, out;
    long line; /* of stdin, for the messages */
} number;

/* ------------------------------------------------------------ the steps */

typedef struct {
    sk_step base;
} square_step;

static int square_handle(sk_step *self, sk_task *tasks, size_t count)
{
    (void)self;
    for (size_t i = 0; i < count; i++) {
        number *n = tasks[i].record;
        n->out = n->in * n->in;
    }
    return 0;
}

typedef struct {
    sk_step base;
    int64_t add;
} add_step;

#define ADD_STEP(s) SK_CONTAINER_OF(s, add_step, base)

static int add_handle(sk_step *self, sk_task *tasks, size_t count)
{
    add_step *a = ADD_STEP(self);
    for (size_t i = 0; i < count; i++)
        ((number *)tasks[i].record)->out += a->add;
    return 0;
}

static const sk_step_class square_class = {.name = "square", .handle = square_handle};
static const sk_step_class add_class = {.name = "add", .handle = add_handle};

/* ---------------------------------------------------------------- stdin */

/* What was read from stdin and not yet submitted. */
static struct {
    char buf[4096];
    size_t len;
    bool eof;
    long lines, bad;
} input;

/* The length of the first line in the buffer with its newline, or 0 when
 * it is not complete (at the end of stdin, a last line needs none). */
static size_t first_line(void)
{
    char *nl = memchr(input.buf, '\n', input.len);
    if (nl != NULL)
        return (size_t)(nl - input.buf) + 1;
    if (input.eof || input.len == sizeof input.buf) /* the end, or a line too long */
        return input.len;
    return 0;
}

static void drop(size_t n)
{
    memmove(input.buf, input.buf + n, input.len - n);
    input.len -= n;
}

/* Submits the complete lines in the buffer: SK_OK when all went in,
 * SK_EFULL when the flow is full (the line stays for later), or an error. */
static int feed(sk_flow *flow)
{
    size_t n;
    while ((n = first_line()) > 0) {
        char line[sizeof input.buf + 1];
        memcpy(line, input.buf, n);
        line[n] = '\0';
        char *end;
        errno = 0;
        long long v = strtoll(line, &end, 10);
        bool blank = strspn(line, " \t\r\n") == n;
        bool ok = end != line && strspn(end, " \t\r\n") == strlen(end) && errno == 0 &&
                  v >= -LIMIT && v <= LIMIT;
        if (blank || !ok) {
            input.lines++;
            if (!blank) {
                fprintf(stderr, "line %ld: not a number (or too big): %.*s\n", input.lines,
                        (int)strcspn(line, "\n"), line);
                input.bad++;
            }
            drop(n);
            continue;
        }
        number task = {.in = v, .line = input.lines + 1};
        int rc = sk_flow_submit(flow, &task, 0, 0, NULL); /* 0: never waits */
        if (rc != SK_OK)
            return rc; /* SK_EFULL: the line stays in the buffer */
        input.lines++;
        drop(n);
    }
    return SK_OK;
}

/* ----------------------------------------------------------------- main */

int main(void)
{
    /* Without a stdin at all (started with <&-), the flow's own fds would
     * take number 0: never read it. */
    input.eof = fcntl(STDIN_FILENO, F_GETFD) < 0;
    sk_flow_config cfg = {.task_size = sizeof(number), .queue_size = 16, .ordered = true};
    sk_flow *flow;
    int rc = sk_flow_create(&flow, &cfg);
    if (rc != SK_OK) {
        fprintf(stderr, "sk_flow_create: %s\n", sk_strerror(rc));
        return 1;
    }
    square_step square = {0};
    add_step add = {.add = ADD};
    sk_step_init(&square.base, &square_class);
    sk_step_init(&add.base, &add_class);
    square.base.config.processes = 2;
    square.base.config.batch_size = 4;
    if ((rc = sk_flow_add(flow, &square.base)) != SK_OK ||
        (rc = sk_flow_add(flow, &add.base)) != SK_OK || (rc = sk_flow_start(flow)) != SK_OK) {
        fprintf(stderr, "could not start the flow: %s\n", sk_strerror(rc));
        sk_flow_release(flow);
        return 1;
    }

    long results = 0, wrong = 0, polls = 0, pauses = 0;
    bool full = false, closed = false;
    for (;;) {
        if (!full) {
            rc = feed(flow);
            full = rc == SK_EFULL;
            pauses += full;
            if (rc != SK_OK && rc != SK_EFULL) {
                fprintf(stderr, "sk_flow_submit: %s\n", sk_strerror(rc));
                break;
            }
        }
        if (input.eof && input.len == 0 && !closed) {
            sk_flow_close(flow); /* every line is in: end of stream */
            closed = true;
        }
        /* stdin only when there is room for what it brings */
        bool want_stdin = !input.eof && !full && first_line() == 0;
        struct pollfd fds[2] = {
            {.fd = want_stdin ? STDIN_FILENO : -1, .events = POLLIN},
            {.fd = sk_flow_fd(flow), .events = POLLIN},
        };
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            perror("poll");
            break;
        }
        polls++;
        if (fds[0].revents != 0) { /* POLLIN, or POLLHUP at the end */
            ssize_t got = read(STDIN_FILENO, input.buf + input.len, sizeof input.buf - input.len);
            if (got > 0)
                input.len += (size_t)got;
            else if (got == 0 || errno != EINTR)
                input.eof = true; /* the end, or an error: nothing more comes */
        }
        if (fds[1].revents & POLLIN) {
            number n;
            sk_flow_result r;
            long before = results;
            while ((rc = sk_flow_collect(flow, 0, &n, &r)) == SK_OK) {
                results++;
                if (r.status != SK_OK) {
                    printf("line %ld: %" PRId64 ": failed: %s\n", n.line, n.in, r.error.message);
                    wrong++;
                    continue;
                }
                printf("line %ld: %" PRId64 "^2 + %d = %" PRId64 "\n", n.line, n.in, ADD, n.out);
                wrong += n.out != n.in * n.in + ADD;
            }
            if (results > before)
                full = false; /* collecting made room */
            if (rc == SK_ECLOSED)
                break; /* the flow has ended and every task came out */
            if (rc != SK_ETIMEDOUT) {
                fprintf(stderr, "sk_flow_collect: %s\n", sk_strerror(rc));
                break;
            }
        }
    }

    int wait_rc = rc == SK_ECLOSED ? sk_flow_wait(flow, 5.0) : rc; /* its status */
    sk_flow_release(flow);
    printf("%ld results, %ld wrong, %ld lines not numbers; %ld polls, stdin paused %ld times "
           "for room\n",
           results, wrong, input.bad, polls, pauses);
    bool good = rc == SK_ECLOSED && wait_rc == SK_OK && wrong == 0 && input.bad == 0;
    return good ? 0 : 1;
}
