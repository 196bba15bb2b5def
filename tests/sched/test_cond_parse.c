/* SPDX-License-Identifier: MIT */
/*
 * The condition language: canonical text for hand-picked inputs, exact
 * messages for a few errors, and generated strings.
 *
 * Valid strings are generated from the grammar (random keyword case,
 * whitespace, redundant parentheses, every atom and window shape), and the
 * same condition is built from C alongside: parsing the text must give the
 * built tree, and format -> parse must give it again, with format a fixed
 * point. Invalid strings are a valid prefix, '&', and an atom with one
 * fault whose byte is marked while generating: the parser must refuse at
 * exactly that byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctype.h>

#include "support.h"

#include "cond_support.h"

static uint64_t rng_state = 0x853c49e6748fea9bu;

static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1du;
}

static int pick(int n)
{
    return (int)(rng() % (uint64_t)n);
}

/* ------------------------------------------------------------ canonical */

static void test_canonical_text(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"  Daily   BETWEEN 8:00 and 08:15 ", "daily between 08:00 and 08:15"},
        {"daily\tafter\n08:00", "daily after 08:00"},
        {"every 90 minutes", "every 1 hour 30 minutes"},
        {"every 2 weeks", "every 14 days"},
        {"every minute", "every 1 minute"},
        {"EVERY 1 Second", "every 1 second"},
        {"every 2 hours 3600 seconds", "every 3 hours"},
        {"every 1 day 1 hour 1 minute 1 second", "every 1 day 1 hour 1 minute 1 second"},
        {"minutely", "minutely"},
        {"hourly", "hourly"},
        {"WEEKLY", "weekly"},
        {"monthly", "monthly"},
        {"weekly on mon", "weekly on Monday"},
        {"time of week between MON and fri", "time of week between Monday and Friday"},
        {"time of week between Monday 00:00 and Friday 24:00",
         "time of week between Monday and Friday"},
        {"time of week between Monday and Friday 00:00",
         "time of week between Monday and Friday 00:00"},
        {"weekly before Friday 00:00", "weekly before Friday"},
        {"weekly before Friday 24:00", "weekly before Friday 24:00"},
        {"monthly on 1", "monthly on 1st"},
        {"monthly between 2 and 23RD", "monthly between 2nd and 23rd"},
        {"monthly after 11th 08:30:15", "monthly after 11th 08:30:15"},
        {"time of month between 21st and 22nd", "time of month between 21st and 22nd"},
        {"hourly after 05:00", "hourly after 05:00"},
        {"hourly between 50:00 and 60:00", "hourly between 50:00 and 60:00"},
        {"minutely before 5", "minutely before 5"},
        {"minutely between 05 and 60", "minutely between 5 and 60"},
        {"daily between 22:00 and 24:00", "daily between 22:00 and 24:00"},
        {"time of day between 8:00 and 9:00:30", "time of day between 08:00 and 09:00:30"},
        {"after task 'x'", "after task 'x' succeeded"},
        {"after tasks \"a\", 'b'", "after tasks 'a', 'b' succeeded"},
        {"after tasks 'a'", "after task 'a' succeeded"},
        {"after any tasks 'a' failed", "after task 'a' failed"},
        {"after any tasks 'a','b' finished", "after any tasks 'a', 'b' finished"},
        {"after task 'it\\'s'", "after task 'it\\'s' succeeded"},
        {"after task \"say \\\"hi\\\"\"", "after task 'say \"hi\"' succeeded"},
        {"after task 'back\\\\slash'", "after task 'back\\\\slash' succeeded"},
        {"after task 'a & b | (c)'", "after task 'a & b | (c)' succeeded"},
        {"cron */15 9-17 * JAN-mar Mon-Fri", "cron */15 9-17 * 1-3 1-5"},
        {"cron 0 0 * * 7", "cron 0 0 * * 0"},
        {"cron 0 0 * * 5-7", "cron 0 0 * * 0,5,6"},
        {"cron 1,2,3,5 * * * *", "cron 1-3,5 * * * *"},
        {"cron 0-59 * * * *", "cron 0-59 * * * *"},
        {"cron */1 * * * *", "cron * * * * *"},
        {"cron 5/20 * * * *", "cron 5,25,45 * * * *"},
        {"cron 1,2 * * * *", "cron 1,2 * * * *"},
        {"cron 0-30/10 */6 1,15 * sun", "cron 0,10,20,30 */6 1,15 * 0"},
        {"true&false|~true", "true & false | ~true"},
        {"true & (false | true)", "true & (false | true)"},
        {"(true & false) | true", "true & false | true"},
        {"true | (false | true)", "true | (false | true)"},
        {"(true | false) | true", "true | false | true"},
        {"true & (false & true)", "true & (false & true)"},
        {"~(true & false)", "~(true & false)"},
        {"~~true", "~~true"},
        {"~ ( daily )", "~daily"},
        {"((((daily))))", "daily"},
        {"my_check.v2-x", "my_check.v2-x"},
        {"daily & my_check | ~other", "daily & my_check | ~other"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sk_cond *c = skt_cond(cases[i].in);
        char buf[256];
        int n = sk_cond_format(c, buf, sizeof buf);
        if (n != (int)strlen(cases[i].out) || strcmp(buf, cases[i].out) != 0) {
            print_error("'%s' formats as '%s', want '%s'\n", cases[i].in, buf, cases[i].out);
            fail();
        }
        sk_cond *again = skt_cond(buf);
        assert_true(sk_cond_equal(c, again));
        sk_cond_free(again);
        sk_cond_free(c);
    }
}

/* ------------------------------------------------------------ messages */

static void expect_error(const char *text, size_t position, const char *message)
{
    sk_cond *c = (sk_cond *)0x1;
    sk_cond_parse_error err;
    int rc = sk_cond_parse(text, &c, &err);
    if (rc != SK_EINVAL || c != NULL || err.position != position ||
        (message != NULL && strcmp(err.message, message) != 0)) {
        print_error("'%s': rc %d, position %zu, message '%s'; want position %zu '%s'\n", text, rc,
                    err.position, err.message, position, message ? message : "(any)");
        fail();
    }
    assert_true(err.expected[0] != '\0');
    assert_string_equal(sk_last_error_message(), err.message);
}

static void test_error_messages(void **state)
{
    (void)state;
    expect_error("daily between 08:00 or 08:15", 20, "expected 'and' after '08:00' at 20");
    expect_error("weekly & daily between 8:00 or 08:15", 28, "expected 'and' after '8:00' at 28");
    expect_error("", 0, "expected a condition at 0");
    expect_error("   ", 3, "expected a condition at 3");
    expect_error("daily Monday", 6,
                 "expected 'between', 'after', 'before', '&', '|' or the end after 'daily' at 6");
    expect_error("(daily Monday)", 7,
                 "expected 'between', 'after', 'before', '&', '|' or ')' after 'daily' at 7");
    expect_error("daily between 08:00 and 08:00", 24,
                 "the window is empty: it ends where it starts: expected a time of day (HH:MM or "
                 "HH:MM:SS) after '08:00' at 24");
    expect_error("cron 61 * * * *", 5,
                 "value out of range: expected a minute (0-59), '*', a range or a step after "
                 "'cron' at 5");
    expect_error("true)", 4, "no '(' to close: expected '&', '|' or the end after 'true' at 4");
    expect_error("'x'", 0, "a task name alone is not a condition: expected a condition at 0");
    expect_error("daily | between", 8,
                 "a keyword out of place: expected a condition after '|' at 8");
    expect_error("after task 'x' succeeded failed", 25,
                 "expected '&', '|' or the end after 'succeeded' at 25");
    expect_error("after task 'x' wins", 15,
                 "expected 'succeeded', 'failed', 'finished', '&', '|' or the end after ''x'' at "
                 "15");
    expect_error("every 0 seconds", 8, NULL);
    expect_error("every 101 years", 10, NULL);
    expect_error("every 40000 days", 12,
                 "too long: expected a duration up to 100 years after "
                 "'40000' at 12");
}

static void test_limits(void **state)
{
    (void)state;
    sk_cond *c;
    sk_cond_parse_error err;
    assert_int_equal(sk_cond_parse(NULL, &c, &err), SK_EINVAL);
    assert_null(c);
    assert_int_equal(sk_cond_parse("true", NULL, &err), SK_EINVAL);
    assert_int_equal(sk_cond_parse("true", &c, NULL), SK_OK); /* err is optional */
    sk_cond_free(c);
    assert_int_equal(sk_cond_parse("true &", &c, NULL), SK_EINVAL);

    /* Too long. */
    char *text = xcalloc(1, SK_COND_TEXT_MAX + 2);
    memset(text, ' ', SK_COND_TEXT_MAX + 1);
    memcpy(text, "true", 4);
    expect_error(text, SK_COND_TEXT_MAX, NULL);
    text[SK_COND_TEXT_MAX] = '\0'; /* exactly the limit: fine */
    c = skt_cond(text);
    sk_cond_free(c);

    /* Too deep: nesting, and chains. */
    memset(text, 0, SK_COND_TEXT_MAX + 2);
    for (int i = 0; i < 300; i++)
        strcat(text, "~");
    strcat(text, "true");
    expect_error(text, SK_COND_MAX_DEPTH - 1, NULL);
    memset(text, 0, SK_COND_TEXT_MAX + 2);
    for (int i = 0; i < 300; i++)
        strcat(text, "(");
    expect_error(text, SK_COND_MAX_DEPTH - 1, NULL);
    memset(text, 0, SK_COND_TEXT_MAX + 2);
    strcat(text, "true");
    for (int i = 0; i < 300; i++)
        strcat(text, " & true");
    /* The 256th '&' would make 257 levels. */
    expect_error(text, 4 + 7 * (SK_COND_MAX_DEPTH - 1) + 1, NULL);
    /* 255 levels of ~ is fine, and round trips. */
    memset(text, 0, SK_COND_TEXT_MAX + 2);
    for (int i = 0; i < SK_COND_MAX_DEPTH - 2; i++)
        strcat(text, "~");
    strcat(text, "true");
    c = skt_cond(text);
    char *buf = xcalloc(1, 1024);
    assert_int_equal(sk_cond_format(c, buf, 1024), (int)strlen(text));
    assert_string_equal(buf, text);
    sk_cond_free(c);
    xfree(buf);
    xfree(text);

    /* Names: 255 bytes, not 256. */
    char name[300] = "after task '";
    memset(name + 12, 'n', 255);
    strcpy(name + 12 + 255, "'");
    c = skt_cond(name);
    sk_cond_free(c);
    memset(name + 12, 'n', 256);
    strcpy(name + 12 + 256, "'");
    expect_error(name, 11, NULL);
}

static void test_format_buffer(void **state)
{
    (void)state;
    sk_cond *c = skt_cond("daily between 08:00 and 08:15");
    char buf[8];
    assert_int_equal(sk_cond_format(c, buf, sizeof buf), 29);
    assert_string_equal(buf, "daily b");
    assert_int_equal(sk_cond_format(c, NULL, 0), 29);
    assert_int_equal(sk_cond_format(c, buf, 1), 29);
    assert_string_equal(buf, "");
    assert_int_equal(sk_cond_format(NULL, buf, sizeof buf), SK_EINVAL);
    assert_int_equal(sk_cond_format(c, NULL, 4), SK_EINVAL);
    sk_cond_free(c);
}

/* ------------------------------------------------------------- builders */

static void test_builders(void **state)
{
    (void)state;
    static const struct {
        sk_cond_window w;
        sk_cond_unit unit;
        const char *text;
    } windows[] = {
        {{SK_SPAN_ALL, {0, 0}, {0, 0}}, SK_COND_MONTH, "monthly"},
        {{SK_SPAN_AFTER, {0, 8 * 3600}, {0, 0}}, SK_COND_DAY, "daily after 08:00"},
        {{SK_SPAN_BEFORE, {0, 0}, {0, 30}}, SK_COND_MINUTE, "minutely before 30"},
        {{SK_SPAN_BETWEEN, {0, 50 * 60}, {0, 10 * 60}},
         SK_COND_HOUR,
         "hourly between 50:00 and 10:00"},
        {{SK_SPAN_ON, {SK_MONDAY, -1}, {0, 0}}, SK_COND_WEEK, "weekly on Monday"},
        {{SK_SPAN_ON, {31, 0}, {0, 0}}, SK_COND_MONTH, "monthly on 31st"},
        {{SK_SPAN_BETWEEN, {SK_FRIDAY, 18 * 3600}, {SK_MONDAY, -1}},
         SK_COND_WEEK,
         "weekly between Friday 18:00 and Monday"},
        {{SK_SPAN_BEFORE, {0, 0}, {SK_FRIDAY, -1}}, SK_COND_WEEK, "weekly before Friday"},
    };
    for (size_t i = 0; i < sizeof windows / sizeof windows[0]; i++) {
        sk_cond *b = sk_cond_periodic(windows[i].unit, &windows[i].w);
        sk_cond *p = skt_cond(windows[i].text);
        assert_non_null(b);
        assert_true(sk_cond_equal(b, p));
        sk_cond_free(b);
        sk_cond_free(p);
    }
    sk_cond *b = sk_cond_periodic(SK_COND_DAY, NULL), *p = skt_cond("daily");
    assert_true(sk_cond_equal(b, p));
    sk_cond_free(b);
    sk_cond_free(p);

    const char *names[] = {"a", "b"};
    struct {
        sk_cond *built;
        const char *text;
    } cases[] = {
        {sk_cond_true(), "true"},
        {sk_cond_false(), "false"},
        {sk_cond_every(5400), "every 90 minutes"},
        {sk_cond_time_of_day(16 * 3600, 20 * 3600), "time of day between 16:00 and 20:00"},
        {sk_cond_time_of_day(22 * 3600, 86400), "time of day between 22:00 and 24:00"},
        {sk_cond_time_of_week(SK_MONDAY, SK_FRIDAY), "time of week between Monday and Friday"},
        {sk_cond_after_task("get_data", SK_COND_SUCCEEDED), "after task 'get_data'"},
        {sk_cond_after_all(names, 2, SK_COND_FAILED), "after tasks 'a', 'b' failed"},
        {sk_cond_after_any(names, 2, SK_COND_FINISHED), "after any tasks 'a', 'b' finished"},
        {sk_cond_after_any(names, 1, SK_COND_FINISHED), "after task 'a' finished"},
        {sk_cond_cron("*/15 9-17 * * mon-fri"), "cron */15 9-17 * * 1-5"},
        {sk_cond_user("file_exists"), "file_exists"},
        {sk_cond_or(sk_cond_and(sk_cond_true(), sk_cond_not(sk_cond_false())), sk_cond_user("x")),
         "true & ~false | x"},
        {sk_cond_and(sk_cond_true(), sk_cond_or(sk_cond_false(), sk_cond_true())),
         "true & (false | true)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sk_cond *parsed = skt_cond(cases[i].text);
        if (cases[i].built == NULL || !sk_cond_equal(cases[i].built, parsed)) {
            print_error("case %zu, '%s': built %p differs (%s)\n", i, cases[i].text,
                        (void *)cases[i].built, sk_last_error_message());
            fail();
        }
        sk_cond_free(parsed);
        sk_cond_free(cases[i].built);
    }
}

static void expect_refused(sk_cond *c, const char *what)
{
    if (c != NULL) {
        print_error("%s: built, should be refused\n", what);
        sk_cond_free(c);
        fail();
    }
    if (sk_last_error_message()[0] == '\0') {
        print_error("%s: refused without a reason\n", what);
        fail();
    }
}

static void test_builders_refuse(void **state)
{
    (void)state;
    expect_refused(sk_cond_every(0), "every 0");
    expect_refused(sk_cond_every(101LL * 365 * 86400), "every 101 years");
    expect_refused(sk_cond_time_of(SK_COND_DAY, NULL), "time of day, no window");
    sk_cond_window all = {.span = SK_SPAN_ALL};
    expect_refused(sk_cond_time_of(SK_COND_DAY, &all), "time of day, whole day");
    sk_cond_window w = {.span = SK_SPAN_BETWEEN, .from = {0, 8 * 3600}, .to = {0, 8 * 3600}};
    expect_refused(sk_cond_periodic(SK_COND_DAY, &w), "empty window");
    w.to.seconds = 86401;
    expect_refused(sk_cond_periodic(SK_COND_DAY, &w), "past 24:00");
    w = (sk_cond_window){.span = SK_SPAN_AFTER, .from = {0, 86400}};
    expect_refused(sk_cond_periodic(SK_COND_DAY, &w), "after 24:00");
    w = (sk_cond_window){.span = SK_SPAN_AFTER, .from = {1, 0}};
    expect_refused(sk_cond_periodic(SK_COND_DAY, &w), "a day in a daily window");
    w = (sk_cond_window){.span = SK_SPAN_ON, .from = {8, -1}};
    expect_refused(sk_cond_periodic(SK_COND_WEEK, &w), "day 8 of a week");
    w = (sk_cond_window){.span = SK_SPAN_ON, .from = {32, -1}};
    expect_refused(sk_cond_periodic(SK_COND_MONTH, &w), "day 32 of a month");
    w = (sk_cond_window){.span = SK_SPAN_ON, .from = {1, -1}};
    expect_refused(sk_cond_periodic(SK_COND_DAY, &w), "on, for a day");
    w = (sk_cond_window){.span = SK_SPAN_BEFORE, .to = {SK_MONDAY, -1}};
    expect_refused(sk_cond_periodic(SK_COND_WEEK, &w), "before Monday 00:00");
    w = (sk_cond_window){.span = (sk_cond_span)42};
    expect_refused(sk_cond_periodic(SK_COND_WEEK, &w), "unknown span");
    expect_refused(sk_cond_periodic((sk_cond_unit)9, NULL), "unknown unit");
    expect_refused(sk_cond_time_of_day(-1, 3600), "negative time");
    expect_refused(sk_cond_time_of_week(SK_MONDAY, (sk_weekday)0), "weekday 0");
    expect_refused(sk_cond_after_task(NULL, SK_COND_SUCCEEDED), "no name");
    expect_refused(sk_cond_after_task("", SK_COND_SUCCEEDED), "empty name");
    char longname[300];
    memset(longname, 'x', 256);
    longname[256] = '\0';
    expect_refused(sk_cond_after_task(longname, SK_COND_SUCCEEDED), "long name");
    expect_refused(sk_cond_after_task("x", (sk_cond_outcome)7), "unknown outcome");
    expect_refused(sk_cond_after_all(NULL, 2, SK_COND_SUCCEEDED), "no names");
    const char *names[] = {"a", NULL};
    expect_refused(sk_cond_after_all(names, 2, SK_COND_SUCCEEDED), "a NULL name");
    expect_refused(sk_cond_after_all(names, 0, SK_COND_SUCCEEDED), "zero names");
    expect_refused(sk_cond_cron("* * * *"), "four cron fields");
    expect_refused(sk_cond_cron("* * * * * & true"), "more than cron");
    expect_refused(sk_cond_cron(NULL), "NULL cron");
    expect_refused(sk_cond_user("daily"), "keyword as a user name");
    expect_refused(sk_cond_user("Between"), "keyword in another case");
    expect_refused(sk_cond_user("9lives"), "name from a digit");
    expect_refused(sk_cond_user("a b"), "name with a space");
    expect_refused(sk_cond_user(NULL), "NULL user name");
    /* Combinators free what they were given when an operand failed. */
    expect_refused(sk_cond_and(sk_cond_true(), sk_cond_every(0)), "and with a failed operand");
    expect_refused(sk_cond_or(sk_cond_every(0), sk_cond_user("x")), "or with a failed operand");
    expect_refused(sk_cond_not(NULL), "not NULL");
    /* Depth. */
    sk_cond *c = sk_cond_true();
    for (int i = 1; i < SK_COND_MAX_DEPTH; i++)
        c = sk_cond_not(c);
    assert_non_null(c);
    expect_refused(sk_cond_and(c, sk_cond_true()), "deeper than 256");
}

/* --------------------------------------------------------- generating */

struct gen {
    char text[12000];
    size_t len;
    bool fault; /* a fault was put in */
    size_t fault_at;
    bool overflow; /* too long: skip this one */
};

static void put(struct gen *g, const char *s)
{
    size_t n = strlen(s);
    if (g->len + n + 1 >= sizeof g->text) {
        g->overflow = true;
        return;
    }
    memcpy(g->text + g->len, s, n + 1);
    g->len += n;
}

static void putf(struct gen *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct gen *g, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    put(g, tmp);
}

/* Whitespace: at least one character when required, else maybe none. */
static void space(struct gen *g, bool required)
{
    static const char *const spaces[] = {" ", " ", " ", "\t", "\n", "  ", " \r\n "};
    int n = required ? 1 + pick(2) : pick(3) == 0 ? 1 : 0;
    for (int i = 0; i < n; i++)
        put(g, spaces[pick(7)]);
}

/* A keyword in a random case. */
static void word(struct gen *g, const char *kw)
{
    char tmp[64];
    size_t n = strlen(kw);
    int style = pick(4);
    for (size_t i = 0; i <= n; i++) {
        char c = kw[i];
        if (style == 1 || (style == 3 && pick(2)))
            c = (char)toupper((unsigned char)c);
        else if (style == 2 && i == 0)
            c = (char)toupper((unsigned char)c);
        tmp[i] = c;
    }
    put(g, tmp);
}

/* Marks the fault at the current end of the text. */
static void mark(struct gen *g)
{
    g->fault = true;
    g->fault_at = g->len;
}

static const char *const day_full[] = {"",         "Monday", "Tuesday",  "Wednesday",
                                       "Thursday", "Friday", "Saturday", "Sunday"};

static const char *ordinal(int d)
{
    if (d % 100 >= 11 && d % 100 <= 13)
        return "th";
    return d % 10 == 1 ? "st" : d % 10 == 2 ? "nd" : d % 10 == 3 ? "rd" : "th";
}

static void clock_text(struct gen *g, int s)
{
    int h = s / 3600, m = s / 60 % 60, sec = s % 60;
    if (sec != 0 || pick(5) == 0)
        putf(g, "%02d:%02d:%02d", h, m, sec);
    else if (h < 10 && pick(2))
        putf(g, "%d:%02d", h, m);
    else
        putf(g, "%02d:%02d", h, m);
}

/* A random point of unit (an end may be the period's end) as text, and as
 * the builder's point. */
static sk_cond_point point(struct gen *g, sk_cond_unit unit, bool end)
{
    switch (unit) {
    case SK_COND_MINUTE: {
        int s = pick(end ? 61 : 60);
        putf(g, s < 10 && pick(2) ? "0%d" : "%d", s);
        return (sk_cond_point){0, s};
    }
    case SK_COND_HOUR: {
        int s = end && pick(10) == 0 ? 3600 : pick(60) * 60 + (pick(3) == 0 ? pick(60) : 0);
        putf(g, "%02d:%02d", s / 60, s % 60);
        return (sk_cond_point){0, s};
    }
    case SK_COND_DAY: {
        int s = end && pick(10) == 0
                    ? 86400
                    : pick(24) * 3600 + pick(4) * 15 * 60 + (pick(4) ? 0 : pick(60));
        clock_text(g, s);
        return (sk_cond_point){0, s};
    }
    default: {
        int d;
        if (unit == SK_COND_WEEK) {
            d = 1 + pick(7);
            char name[16];
            snprintf(name, sizeof name, "%s", day_full[d]);
            if (pick(2))
                name[3] = '\0';
            word(g, name);
        } else {
            d = 1 + pick(31);
            if (pick(3)) {
                putf(g, "%d", d);
                word(g, ordinal(d)); /* any case */
            } else {
                putf(g, "%d", d);
            }
        }
        if (pick(3) == 0) {
            int s = end && pick(5) == 0 ? 86400 : pick(24) * 3600 + pick(60) * 60;
            space(g, true);
            clock_text(g, s);
            return (sk_cond_point){d, s};
        }
        return (sk_cond_point){d, -1};
    }
    }
}

/* The position the library compares windows by (days not clamped). */
static long linear(sk_cond_unit unit, sk_cond_point p, bool between_end)
{
    int s = p.seconds;
    if (s < 0)
        s = between_end ? 86400 : 0;
    if (unit == SK_COND_WEEK || unit == SK_COND_MONTH)
        return (long)(p.day - 1) * 86400 + s;
    return s;
}

/* A window of unit: text and the builder's window; false when the random
 * choice is not a window (an empty one): the caller starts over. */
static bool window(struct gen *g, sk_cond_unit unit, bool periodic, sk_cond_window *w)
{
    bool days = unit == SK_COND_WEEK || unit == SK_COND_MONTH;
    int span = pick(periodic ? 5 : 4);
    *w = (sk_cond_window){.span = SK_SPAN_ALL};
    if (span == 4)
        return true; /* periodic, whole period */
    if (span == 3 && !days)
        span = pick(3);
    space(g, true);
    switch (span) {
    case 0:
        w->span = SK_SPAN_BETWEEN;
        word(g, "between");
        space(g, true);
        w->from = point(g, unit, false);
        space(g, true);
        word(g, "and");
        space(g, true);
        w->to = point(g, unit, true);
        return linear(unit, w->from, false) != linear(unit, w->to, true);
    case 1:
        w->span = SK_SPAN_AFTER;
        word(g, "after");
        space(g, true);
        w->from = point(g, unit, false);
        return true;
    case 2:
        w->span = SK_SPAN_BEFORE;
        word(g, "before");
        space(g, true);
        w->to = point(g, unit, true);
        return linear(unit, w->to, false) > 0;
    default: {
        w->span = SK_SPAN_ON;
        word(g, "on");
        space(g, true);
        size_t before = g->len;
        sk_cond_point p = point(g, unit, false);
        if (p.seconds >= 0) { /* on takes a day alone: drop the time */
            while (g->len > before && g->text[g->len - 1] != ' ' && g->text[g->len - 1] != '\t' &&
                   g->text[g->len - 1] != '\n' && g->text[g->len - 1] != '\r')
                g->len--;
            while (g->len > before && (g->text[g->len - 1] == ' ' || g->text[g->len - 1] == '\t' ||
                                       g->text[g->len - 1] == '\n' || g->text[g->len - 1] == '\r'))
                g->len--;
            g->text[g->len] = '\0';
        }
        w->from = (sk_cond_point){p.day, -1};
        return true;
    }
    }
}

static const char *const periodic_words[] = {"minutely", "hourly", "daily", "weekly", "monthly"};
static const char *const unit_words[] = {"minute", "hour", "day", "week", "month"};

/* A quoted task name with random bytes, quotes and escapes; the name
 * itself goes into out. */
static void task_name(struct gen *g, char *out)
{
    static const char pool[] = "abcxyz_-. 0129&|~()'\"\\,;:\t\xc3\xa9";
    char q = pick(2) ? '\'' : '"';
    int n = 1 + pick(12);
    char text[64];
    size_t t = 0;
    text[t++] = q;
    for (int i = 0; i < n; i++) {
        char c = pool[pick((int)sizeof pool - 1)];
        out[i] = c;
        if (c == q || c == '\\' || pick(10) == 0)
            text[t++] = '\\';
        text[t++] = c;
    }
    out[n] = '\0';
    text[t++] = q;
    text[t] = '\0';
    put(g, text);
}

static const char *const cron_fields[5][10] = {
    {"*", "*/5", "0", "30", "0-29", "1,2,3", "10-50/10", "5/20", "59", "*/7"},
    {"*", "*/2", "0", "9-17", "23", "0,12", "1-5/2", "6/6", "12", "*/24"},
    {"*", "*/3", "1", "15", "31", "1,15", "1-7", "10-20/5", "29", "28/2"},
    {"*", "*/6", "1", "jan", "JUN-aug", "2,4", "1-12/3", "Dec", "feb,Mar", "12"},
    {"*", "*/2", "0", "7", "mon-fri", "SAT,sun", "1-5", "0-6/3", "5-7", "Wed"},
};

static sk_cond *atom(struct gen *g);

static sk_cond *user_atom(struct gen *g)
{
    char name[32] = "u_";
    int n = 1 + pick(10);
    static const char chars[] = "abcXYZ019_-.";
    for (int i = 0; i < n; i++)
        name[2 + i] = chars[pick((int)sizeof chars - 1)];
    name[2 + n] = '\0';
    put(g, name);
    return sk_cond_user(name);
}

static sk_cond *atom(struct gen *g)
{
    for (;;) {
        size_t start = g->len;
        sk_cond_window w;
        switch (pick(8)) {
        case 0:
            if (pick(2)) {
                word(g, "true");
                return sk_cond_true();
            }
            word(g, "false");
            return sk_cond_false();
        case 1: {
            static const struct {
                const char *one, *many;
                int64_t s;
            } units[] = {{"second", "seconds", 1},
                         {"minute", "minutes", 60},
                         {"hour", "hours", 3600},
                         {"day", "days", 86400},
                         {"week", "weeks", 604800}};
            word(g, "every");
            int parts = 1 + pick(3);
            int64_t total = 0;
            for (int i = 0; i < parts; i++) {
                int u = pick(5);
                int64_t n = 1 + pick(500);
                space(g, true);
                if (parts == 1 && pick(5) == 0) {
                    n = 1; /* "every minute" */
                } else {
                    putf(g, "%lld", (long long)n);
                    space(g, true);
                }
                word(g, n == 1 && pick(2) ? units[u].one : units[u].many);
                total += n * units[u].s;
            }
            return sk_cond_every(total);
        }
        case 2:
        case 3: {
            int u = pick(5);
            word(g, periodic_words[u]);
            if (!window(g, (sk_cond_unit)u, true, &w))
                break;
            return sk_cond_periodic((sk_cond_unit)u, &w);
        }
        case 4: {
            int u = pick(5);
            word(g, "time");
            space(g, true);
            word(g, "of");
            space(g, true);
            word(g, unit_words[u]);
            if (!window(g, (sk_cond_unit)u, false, &w) || w.span == SK_SPAN_ALL)
                break;
            return sk_cond_time_of((sk_cond_unit)u, &w);
        }
        case 5: {
            word(g, "after");
            space(g, true);
            int n = 1 + pick(3);
            bool any = n > 1 && pick(2);
            if (any) {
                word(g, "any");
                space(g, true);
            }
            word(g, n == 1 && pick(2) ? "task" : "tasks");
            space(g, true);
            char names[3][16];
            const char *ptrs[3];
            for (int i = 0; i < n; i++) {
                if (i > 0) {
                    space(g, false);
                    put(g, ",");
                    space(g, false);
                }
                task_name(g, names[i]);
                ptrs[i] = names[i];
            }
            int o = pick(4);
            static const char *const outcomes[] = {"succeeded", "failed", "finished"};
            if (o < 3) {
                space(g, true);
                word(g, outcomes[o]);
            }
            sk_cond_outcome oc = o == 3 ? SK_COND_SUCCEEDED : (sk_cond_outcome)o;
            return any ? sk_cond_after_any(ptrs, (size_t)n, oc)
                       : sk_cond_after_all(ptrs, (size_t)n, oc);
        }
        case 6: {
            word(g, "cron");
            char expr[128] = "";
            for (int f = 0; f < 5; f++) {
                const char *field = cron_fields[f][pick(10)];
                space(g, true);
                put(g, field);
                strcat(expr, field);
                strcat(expr, " ");
            }
            return sk_cond_cron(expr);
        }
        default:
            return user_atom(g);
        }
        g->len = start; /* an empty window: try another atom */
        g->text[start] = '\0';
    }
}

static sk_cond *gen_or(struct gen *g, int depth);

static sk_cond *gen_not(struct gen *g, int depth)
{
    int choice = depth > 0 ? pick(6) : 5;
    if (choice == 0) {
        put(g, "~");
        space(g, false);
        return sk_cond_not(gen_not(g, depth - 1));
    }
    if (choice == 1) {
        put(g, "(");
        space(g, false);
        sk_cond *c = gen_or(g, depth - 1);
        space(g, false);
        put(g, ")");
        return c;
    }
    return atom(g);
}

static sk_cond *gen_chain(struct gen *g, int depth, const char *op,
                          sk_cond *(*operand)(struct gen *, int),
                          sk_cond *(*combine)(sk_cond *, sk_cond *))
{
    sk_cond *c = operand(g, depth);
    int more = depth > 0 ? pick(3) : 0;
    for (int i = 0; i < more; i++) {
        space(g, false);
        put(g, op);
        space(g, false);
        c = combine(c, operand(g, depth));
    }
    return c;
}

static sk_cond *gen_and(struct gen *g, int depth)
{
    return gen_chain(g, depth, "&", gen_not, sk_cond_and);
}

static sk_cond *gen_or(struct gen *g, int depth)
{
    return gen_chain(g, depth, "|", gen_and, sk_cond_or);
}

static void test_generated_valid(void **state)
{
    (void)state;
    int done = 0;
    struct gen *g = xcalloc(1, sizeof *g);
    char *buf = xcalloc(1, 16384), *buf2 = xcalloc(1, 16384);
    while (done < 3000) {
        memset(g, 0, sizeof *g);
        space(g, false);
        sk_cond *built = gen_or(g, pick(4));
        space(g, false);
        if (g->overflow) {
            sk_cond_free(built);
            continue;
        }
        if (built == NULL) {
            print_error("the builders refused '%s': %s\n", g->text, sk_last_error_message());
            fail();
        }
        sk_cond *parsed = NULL;
        sk_cond_parse_error err;
        if (sk_cond_parse(g->text, &parsed, &err) != SK_OK) {
            print_error("'%s' does not parse: %s\n", g->text, err.message);
            fail();
        }
        int n = sk_cond_format(parsed, buf, 16384);
        assert_true(n > 0 && n < 16384);
        if (!sk_cond_equal(built, parsed)) {
            sk_cond_format(built, buf2, 16384);
            print_error("'%s' parses as '%s', built '%s'\n", g->text, buf, buf2);
            fail();
        }
        sk_cond *again = skt_cond(buf);
        assert_true(sk_cond_equal(parsed, again));
        assert_int_equal(sk_cond_format(again, buf2, 16384), n);
        assert_string_equal(buf, buf2);
        sk_cond_free(again);
        sk_cond_free(parsed);
        sk_cond_free(built);
        done++;
    }
    print_message("%d generated conditions round trip\n", done);
    xfree(g);
    xfree(buf);
    xfree(buf2);
}

/* Faulty atoms: '^' marks the byte the parser must refuse at; '$' at the
 * end means the fault is the end of the text (nothing may follow). */
static const char *const faults[] = {
    "daily between 08:00 and ^25:00",
    "daily between 08:00 ^or 09:00",
    "time of day ^on Monday",
    "time of ^fortnight between 08:00 and 09:00",
    "every 10 ^fortnights",
    "every ^ten seconds",
    "every 5 seconds 7 ^parsecs",
    "cron ^61 * * * *",
    "cron * ^24 * * *",
    "cron * * ^0 * *",
    "cron * * * ^13 *",
    "cron * * * * ^8",
    "cron 1-2^-3 * * * *",
    "cron * * * ^foo *",
    "cron 5-^1 * * * *",
    "cron */^0 * * * *",
    "cron *^-5 * * * *",
    "cron 1,^ * * * *",
    "cron */^ * * * *",
    "after task ^nothing",
    "after task ^''",
    "after ^dogs 'x'",
    "after any ^task 'x'",
    "after tasks 'a' ^'b'",
    "weekly on ^Funday",
    "weekly on ^Mo",
    "monthly on ^32nd",
    "monthly on ^3th",
    "monthly on ^0",
    "monthly after 3rd ^25:00",
    "daily between 08:00 and ^08:00",
    "weekly between Monday and ^Monday 00:00",
    "daily before ^00:00",
    "weekly before ^Monday",
    "true &^& true",
    "^9lives",
    "^between",
    "^'quoted'",
    "daily ^Monday",
    "daily ^on Monday",
    "time of day between ^08:00:60 and 09:00",
    "time of day between ^24:00 and 09:00",
    "hourly between ^61:00 and 10:00",
    "minutely between ^60 and 10",
    "minutely before ^61",
    "true^)",
    "time of week between Monday ^25:00 and Friday",
    "time ^off day after 08:00",
    "every$",
    "every 5$",
    "cron * * * *$",
    "after tasks 'a',$",
    "after task$",
    "~$",
    "(true$",
    "daily after$",
    "daily between 08:00 and$",
    "daily between 08:00$",
    "after task 'abc$",
    "true &$",
    "time of$",
};

static void test_generated_invalid(void **state)
{
    (void)state;
    int done = 0;
    struct gen *g = xcalloc(1, sizeof *g);
    while (done < 3000) {
        memset(g, 0, sizeof *g);
        space(g, false);
        sk_cond *prefix = gen_or(g, pick(3));
        sk_cond_free(prefix);
        if (g->overflow)
            continue;
        space(g, false);
        put(g, pick(2) ? "&" : "|");
        space(g, false);
        const char *f = faults[pick(sizeof faults / sizeof faults[0])];
        size_t flen = strlen(f);
        bool at_end = f[flen - 1] == '$';
        for (size_t i = 0; i < flen; i++) {
            if (f[i] == '^' || f[i] == '$') {
                mark(g);
                continue;
            }
            /* Single spaces in the pattern become random whitespace. */
            if (f[i] == ' ')
                space(g, true);
            else
                putf(g, "%c", f[i]);
        }
        if (!at_end) {
            if (pick(2)) {
                space(g, false);
                put(g, "| true");
            }
        } else {
            /* Trailing spaces move the end; the parser reports where the
             * text ends, after them. */
            space(g, false);
            mark(g);
        }
        if (g->overflow)
            continue;
        sk_cond *c = (sk_cond *)0x1;
        sk_cond_parse_error err;
        int rc = sk_cond_parse(g->text, &c, &err);
        if (rc != SK_EINVAL || c != NULL || err.position != g->fault_at) {
            print_error("'%s' (fault '%s' at %zu): rc %d, position %zu, '%s'\n", g->text, f,
                        g->fault_at, rc, err.position, err.message);
            fail();
        }
        assert_true(err.expected[0] != '\0');
        char at[32];
        snprintf(at, sizeof at, " at %zu", err.position);
        assert_non_null(strstr(err.message, at));
        done++;
    }
    print_message("%d generated invalid conditions refused at the right byte\n", done);
    xfree(g);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_canonical_text),  SKT_TEST(test_error_messages),
        SKT_TEST(test_limits),          SKT_TEST(test_format_buffer),
        SKT_TEST(test_builders),        SKT_TEST(test_builders_refuse),
        SKT_TEST(test_generated_valid), SKT_TEST(test_generated_invalid),
    };
    return skt_run(argc, argv, tests);
}
