/* SPDX-License-Identifier: MIT */
/*
 * Pools, records: items and results described by tpl formats (strings in
 * both directions, NULL and long strings, structs of several members), the
 * star form against the plain form over the same records, plain records of
 * odd sizes travelling as bytes, results of size 0, and process classes as
 * jobs (runs, lives after a soft error and after a crash, a failing item, a
 * timed-out item), with the job validation that goes with each.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#define BOUND 30.0
#define MAX_ITEMS 4096

#include "pool_support.h"

/* ---------------------------------------------------- tpl: S(si) -> s */

typedef struct {
    char *name;
    int32_t n;
} named;

/* "<name>#<n>" (or "(null)#<n>"), malloc'ed. */
static char *label_of(const char *name, int32_t n)
{
    const char *s = name ? name : "(null)";
    size_t len = strlen(s) + 16;
    char *out = malloc(len);
    if (out != NULL)
        snprintf(out, len, "%s#%d", s, (int)n);
    return out;
}

static int label_fn(const void *item, void *result, const void *arg)
{
    (void)arg;
    const named *it = item;
    if (*(char **)result != NULL)
        return 99; /* not zeroed */
    char *label = label_of(it->name, it->n);
    if (label == NULL)
        return 98;
    *(char **)result = label;
    return 0;
}

static const sk_pool_job label_job = {.fn = label_fn,
                                      .item_size = sizeof(named),
                                      .item_format = "S(si)",
                                      .result_size = sizeof(char *),
                                      .result_format = "s"};

/* n items: short names, the empty string, bytes above 127, and a long one. */
static named *make_named(size_t n, char **long_name)
{
    named *items = xcalloc(n, sizeof *items);
    assert_non_null(items);
    size_t long_len = 300 * 1000;
    *long_name = xmalloc(long_len + 1);
    assert_non_null(*long_name);
    for (size_t i = 0; i < long_len; i++)
        (*long_name)[i] = (char)('a' + i % 26);
    (*long_name)[long_len] = '\0';
    static char names[64][32];
    for (int k = 0; k < 64; k++)
        snprintf(names[k], sizeof names[k], "name-%d-\xc3\xa9\xe2\x82\xac", k);
    for (size_t i = 0; i < n; i++) {
        items[i].n = (int32_t)i * 11 - 500;
        if (i % 97 == 5)
            items[i].name = "";
        else if (i == n / 2)
            items[i].name = *long_name;
        else
            items[i].name = names[i % 64];
    }
    return items;
}

static void check_label(const char *got, const named *it, size_t i)
{
    char *want = label_of(it->name, it->n);
    assert_non_null(want);
    if (got == NULL || strcmp(got, want) != 0)
        fail_msg("item %zu: got %.60s, want %.60s", i, got ? got : "NULL", want);
    xfree(want);
}

static void test_tpl_strings_map(void **state)
{
    (void)state;
    sk_pool *pool = new_small_pool(2);
    size_t n = 3000;
    char *long_name;
    named *items = make_named(n, &long_name);
    char **results = xcalloc(n, sizeof *results);
    int *status = xcalloc(n, sizeof *status);
    assert_rc(sk_pool_map(pool, &label_job, items, n, results, status), SK_OK);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(status[i], SK_OK);
        check_label(results[i], &items[i], i);
        xfree(results[i]);
    }
    /* The caller's items are untouched. */
    assert_ptr_equal(items[n / 2].name, long_name);
    assert_int_equal(strlen(long_name), 300 * 1000);
    xfree(results);
    xfree(status);
    xfree(items);
    xfree(long_name);
    release_pool(pool);
    assert_no_children();
}

static void test_tpl_strings_imap_and_async(void **state)
{
    (void)state;
    sk_pool *pool = new_small_pool(3);
    size_t n = 2000;
    char *long_name;
    named *items = make_named(n, &long_name);

    sk_pool_call *call = NULL;
    assert_rc(sk_pool_imap(pool, &label_job, items, n, &call), SK_OK);
    track_call(call);
    for (size_t i = 0; i < n; i++) {
        char *r = NULL;
        size_t index = (size_t)-1;
        assert_rc(sk_pool_next(call, BOUND, &index, &r), SK_OK);
        assert_int_equal(index, i);
        check_label(r, &items[i], i);
        xfree(r);
    }
    char *r = NULL;
    size_t index;
    assert_rc(sk_pool_next(call, BOUND, &index, &r), SK_ECLOSED);
    free_call(call);

    unsigned char *seen = xcalloc(n, 1);
    call = NULL;
    assert_rc(sk_pool_unordered_imap(pool, &label_job, items, n, &call), SK_OK);
    track_call(call);
    for (size_t k = 0; k < n; k++) {
        r = NULL;
        assert_rc(sk_pool_next(call, BOUND, &index, &r), SK_OK);
        assert_cmp(index, <, n);
        assert_true(!seen[index]++);
        check_label(r, &items[index], index);
        xfree(r);
    }
    assert_rc(sk_pool_next(call, BOUND, &index, &r), SK_ECLOSED);
    free_call(call);
    xfree(seen);

    char **results = xcalloc(n, sizeof *results);
    call = NULL;
    assert_rc(sk_pool_async_map(pool, &label_job, items, n, results, NULL, &call), SK_OK);
    track_call(call);
    assert_rc(sk_pool_get(call, BOUND), SK_OK);
    for (size_t i = 0; i < n; i++) {
        check_label(results[i], &items[i], i);
        xfree(results[i]);
    }
    free_call(call);
    xfree(results);
    xfree(items);
    xfree(long_name);
    release_pool(pool);
}

/* A stream of records with strings: the producer's strings need live only
 * until it is called again. */
struct named_stream {
    size_t next, n;
    char buf[64];
};

static int produce_named(void *state, void *item)
{
    struct named_stream *s = state;
    if (s->next >= s->n)
        return 0;
    snprintf(s->buf, sizeof s->buf, "streamed-%zu", s->next);
    named *it = item;
    it->name = s->buf;
    it->n = (int32_t)s->next;
    s->next++;
    return 1;
}

static void test_tpl_strings_stream(void **state)
{
    (void)state;
    sk_pool *pool = new_small_pool(2);
    for (int ordered = 1; ordered >= 0; ordered--) {
        struct named_stream st = {.n = 5000};
        sk_pool_call *call = NULL;
        assert_rc(sk_pool_imap_stream(pool, &label_job, produce_named, &st, ordered, &call), SK_OK);
        track_call(call);
        unsigned char *seen = xcalloc(st.n, 1);
        for (size_t k = 0; k < st.n; k++) {
            char *r = NULL;
            size_t index = (size_t)-1;
            assert_rc(sk_pool_next(call, BOUND, &index, &r), SK_OK);
            assert_cmp(index, <, st.n);
            assert_true(!seen[index]++);
            if (ordered)
                assert_int_equal(index, k);
            char want[64];
            snprintf(want, sizeof want, "streamed-%zu#%d", index, (int)index);
            assert_non_null(r);
            assert_string_equal(r, want);
            xfree(r);
        }
        char *r = NULL;
        size_t index;
        assert_rc(sk_pool_next(call, BOUND, &index, &r), SK_ECLOSED);
        xfree(seen);
        free_call(call);
    }
    release_pool(pool);
}

/* A NULL string travels as NULL. */
static void test_tpl_null_string(void **state)
{
    (void)state;
    sk_pool *pool = new_small_pool(1);
    named items[3] = {{"x", 1}, {NULL, 2}, {"", 3}};
    char *results[3] = {0};
    int status[3];
    assert_rc(sk_pool_map(pool, &label_job, items, 3, results, status), SK_OK);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(status[i], SK_OK);
        check_label(results[i], &items[i], i);
        xfree(results[i]);
    }
    release_pool(pool);
}

/* A single string as the whole item, an int as the result. */
static int length_fn(const void *item, void *result, const void *arg)
{
    (void)arg;
    const char *s = *(char *const *)item;
    *(int32_t *)result = s ? (int32_t)strlen(s) : -1;
    return 0;
}

static void test_tpl_string_item(void **state)
{
    (void)state;
    sk_pool *pool = new_small_pool(2);
    size_t n = 500;
    char **items = xcalloc(n, sizeof *items);
    for (size_t i = 0; i < n; i++) {
        items[i] = xmalloc(i + 1);
        memset(items[i], 'x', i);
        items[i][i] = '\0';
    }
    int32_t *results = xcalloc(n, sizeof *results);
    sk_pool_job job = {.fn = length_fn,
                       .item_size = sizeof(char *),
                       .item_format = "s",
                       .result_size = sizeof(int32_t)};
    assert_rc(sk_pool_map(pool, &job, items, n, results, NULL), SK_OK);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(results[i], (int32_t)i);
        xfree(items[i]);
    }
    xfree(items);
    xfree(results);
    release_pool(pool);
}

/* A result record of several members with a string. */
typedef struct {
    char *text;
    int64_t len;
    double half;
} summary;

static int summary_fn(const void *item, void *result, const void *arg)
{
    (void)arg;
    const named *it = item;
    summary *out = result;
    out->text = label_of(it->name, it->n);
    out->len = it->name ? (int64_t)strlen(it->name) : -1;
    out->half = it->n / 2.0;
    return 0;
}

static void test_tpl_result_record(void **state)
{
    (void)state;
    sk_pool *pool = new_small_pool(2);
    size_t n = 1000;
    char *long_name;
    named *items = make_named(n, &long_name);
    summary *results = xcalloc(n, sizeof *results);
    sk_pool_job job = {.fn = summary_fn,
                       .item_size = sizeof(named),
                       .item_format = "S(si)",
                       .result_size = sizeof(summary),
                       .result_format = "S(sIf)"};
    assert_rc(sk_pool_map(pool, &job, items, n, results, NULL), SK_OK);
    for (size_t i = 0; i < n; i++) {
        check_label(results[i].text, &items[i], i);
        assert_int_equal(results[i].len, (int64_t)strlen(items[i].name));
        assert_cmp(results[i].half, ==, items[i].n / 2.0);
        xfree(results[i].text);
    }
    xfree(results);
    xfree(items);
    xfree(long_name);
    release_pool(pool);
}

/* A string item survives a crash of the worker that had it (lives = 2). */
static int crash_once_fn(const void *item, void *result, const void *arg)
{
    (void)arg;
    const named *it = item;
    if (it->n >= 0 && it->n < MAX_ITEMS &&
        __atomic_fetch_add(&sh->attempts[it->n], 1, __ATOMIC_ACQ_REL) == 0 && it->n % 10 == 3)
        skt_die_by(SIGSEGV);
    *(char **)result = label_of(it->name, it->n);
    return 0;
}

static void test_tpl_items_survive_a_crash(void **state)
{
    (void)state;
    make_shared();
    sk_pool_config cfg = {.workers = 2, .lives = 2, .no_progress = true};
    sk_pool *pool = new_pool(&cfg);
    size_t n = 100;
    named *items = xcalloc(n, sizeof *items);
    char names[100][16];
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "n%zu", i);
        items[i] = (named){names[i], (int32_t)i};
    }
    char **results = xcalloc(n, sizeof *results);
    int *status = xcalloc(n, sizeof *status);
    sk_pool_job job = label_job;
    job.fn = crash_once_fn;
    assert_rc(sk_pool_map(pool, &job, items, n, results, status), SK_OK);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(status[i], SK_OK);
        check_label(results[i], &items[i], i);
        xfree(results[i]);
        if (i % 10 == 3)
            assert_int_equal(sh->attempts[i], 2);
    }
    xfree(results);
    xfree(status);
    xfree(items);
    release_pool(pool);
    assert_no_children();
}

/* --------------------------------------------------------- star form */

typedef struct {
    int32_t a, b;
    double c;
} triple;

static int triple_star(void *const *fields, void *result, const void *arg)
{
    const double *scale = arg;
    int32_t a = *(const int32_t *)fields[0];
    int32_t b = *(const int32_t *)fields[1];
    double c = *(const double *)fields[2];
    *(double *)result = ((double)a * b + c) * *scale;
    return 0;
}

static int triple_plain(const void *item, void *result, const void *arg)
{
    const triple *t = item;
    const double *scale = arg;
    *(double *)result = ((double)t->a * t->b + t->c) * *scale;
    return 0;
}

static void test_star_vs_plain(void **state)
{
    (void)state;
    sk_pool *pool = new_small_pool(2);
    size_t n = 4000;
    triple *items = xcalloc(n, sizeof *items);
    for (size_t i = 0; i < n; i++)
        items[i] = (triple){(int32_t)i - 2000, (int32_t)(i % 13), (double)i / 8.0};
    double *star_r = xcalloc(n, sizeof *star_r);
    double *plain_r = xcalloc(n, sizeof *plain_r);
    double *formatted_r = xcalloc(n, sizeof *formatted_r);
    double scale = 0.5;
    sk_pool_job star = {.star = triple_star,
                        .arg = &scale,
                        .arg_size = sizeof scale,
                        .item_size = sizeof(triple),
                        .item_format = "S(iif)",
                        .result_size = sizeof(double)};
    sk_pool_job plain = {.fn = triple_plain,
                         .arg = &scale,
                         .arg_size = sizeof scale,
                         .item_size = sizeof(triple),
                         .result_size = sizeof(double)};
    sk_pool_job formatted = plain; /* a format without strings: still bytes */
    formatted.item_format = "S(iif)";
    assert_rc(sk_pool_map(pool, &star, items, n, star_r, NULL), SK_OK);
    assert_rc(sk_pool_map(pool, &plain, items, n, plain_r, NULL), SK_OK);
    assert_rc(sk_pool_map(pool, &formatted, items, n, formatted_r, NULL), SK_OK);
    for (size_t i = 0; i < n; i++) {
        double want = ((double)items[i].a * items[i].b + items[i].c) * scale;
        if (star_r[i] != want || plain_r[i] != want || formatted_r[i] != want)
            fail_msg("item %zu: star %g, plain %g, formatted %g, want %g", i, star_r[i], plain_r[i],
                     formatted_r[i], want);
    }

    /* imap over the star form. */
    sk_pool_call *call = NULL;
    assert_rc(sk_pool_imap(pool, &star, items, n, &call), SK_OK);
    track_call(call);
    for (size_t i = 0; i < n; i++) {
        double r = -1;
        size_t index;
        assert_rc(sk_pool_next(call, BOUND, &index, &r), SK_OK);
        assert_int_equal(index, i);
        assert_cmp(r, ==, star_r[i]);
    }
    free_call(call);
    xfree(items);
    xfree(star_r);
    xfree(plain_r);
    xfree(formatted_r);
    release_pool(pool);
}

/* Star over members that need padding between them. */
typedef struct {
    char c;
    int64_t big;
    int32_t small;
} padded;

static int padded_star(void *const *fields, void *result, const void *arg)
{
    (void)arg;
    char c = *(const char *)fields[0];
    int64_t big = *(const int64_t *)fields[1];
    int32_t small = *(const int32_t *)fields[2];
    *(int64_t *)result = big + small * 1000 + c;
    return 0;
}

static void test_star_padded_record(void **state)
{
    (void)state;
    sk_pool *pool = new_small_pool(2);
    size_t n = 1000;
    padded *items = xcalloc(n, sizeof *items);
    for (size_t i = 0; i < n; i++)
        items[i] = (padded){(char)(i % 100), (int64_t)i << 33, (int32_t)i};
    int64_t *results = xcalloc(n, sizeof *results);
    sk_pool_job job = {.star = padded_star,
                       .item_size = sizeof(padded),
                       .item_format = "S(cIi)",
                       .result_size = sizeof(int64_t)};
    assert_rc(sk_pool_map(pool, &job, items, n, results, NULL), SK_OK);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(results[i], items[i].big + items[i].small * 1000 + items[i].c);
    xfree(items);
    xfree(results);
    release_pool(pool);
}

/* Star with a string member: fields[0] points at the char *. */
static int named_star(void *const *fields, void *result, const void *arg)
{
    (void)arg;
    const char *name = *(char *const *)fields[0];
    int32_t n = *(const int32_t *)fields[1];
    *(char **)result = label_of(name, n);
    return 0;
}

static void test_star_with_strings(void **state)
{
    (void)state;
    sk_pool *pool = new_small_pool(2);
    size_t n = 1500;
    char *long_name;
    named *items = make_named(n, &long_name);
    char **results = xcalloc(n, sizeof *results);
    sk_pool_job job = label_job;
    job.fn = NULL;
    job.star = named_star;
    assert_rc(sk_pool_map(pool, &job, items, n, results, NULL), SK_OK);
    for (size_t i = 0; i < n; i++) {
        check_label(results[i], &items[i], i);
        xfree(results[i]);
    }
    xfree(results);
    xfree(items);
    xfree(long_name);
    release_pool(pool);
}

static void test_star_validation(void **state)
{
    (void)state;
    sk_pool *pool = new_small_pool(1);
    triple items[2] = {{1, 2, 3.0}, {4, 5, 6.0}};
    double results[2];
    double scale = 1;
    sk_pool_job job = {.star = triple_star,
                       .arg = &scale,
                       .arg_size = sizeof scale,
                       .item_size = sizeof(triple),
                       .result_size = sizeof(double)};
    sk_pool_call *call = NULL;
    /* No item_format. */
    assert_rc(sk_pool_map(pool, &job, items, 2, results, NULL), SK_EINVAL);
    assert_rc(sk_pool_imap(pool, &job, items, 2, &call), SK_EINVAL);
    assert_rc(sk_pool_async_map(pool, &job, items, 2, results, NULL, &call), SK_EINVAL);
    /* Not a record. */
    job.item_format = "i";
    assert_rc(sk_pool_map(pool, &job, items, 2, results, NULL), SK_EINVAL);
    /* Not a tpl format. */
    job.item_format = "S(i";
    assert_rc(sk_pool_map(pool, &job, items, 2, results, NULL), SK_EINVAL);
    job.item_format = "S(iiq)";
    assert_rc(sk_pool_map(pool, &job, items, 2, results, NULL), SK_EINVAL);
    /* The right one works. */
    job.item_format = "S(iif)";
    assert_rc(sk_pool_map(pool, &job, items, 2, results, NULL), SK_OK);
    assert_cmp(results[0], ==, 5.0);
    assert_cmp(results[1], ==, 26.0);
    release_pool(pool);
}

/* A format whose record size is not item_size. */
static void test_format_size_mismatch(void **state)
{
    (void)state;
    sk_pool *pool = new_small_pool(1);
    triple items[2] = {{1, 2, 3.0}, {4, 5, 6.0}};
    double results[2];
    double scale = 1;
    sk_pool_job job = {.star = triple_star,
                       .arg = &scale,
                       .arg_size = sizeof scale,
                       .item_size = sizeof(int32_t),
                       .item_format = "S(iif)",
                       .result_size = sizeof(double)};
    assert_rc(sk_pool_map(pool, &job, items, 2, results, NULL), SK_EINVAL);
    sk_pool_job strings = label_job;
    strings.result_size = 1; /* result_format "s" is a pointer */
    char *r[2];
    named nitems[2] = {{"a", 1}, {"b", 2}};
    assert_rc(sk_pool_map(pool, &strings, nitems, 2, r, NULL), SK_EINVAL);
    release_pool(pool);
}

/* ------------------------------------------------ plain bytes, odd sizes */

static int odd_fn(const void *item, void *result, const void *arg)
{
    (void)arg;
    const unsigned char *in = item;
    unsigned char *out = result;
    for (int k = 0; k < 5; k++)
        out[k] = (unsigned char)(in[k % 3] + k);
    return 0;
}

static void test_odd_sized_records(void **state)
{
    (void)state;
    sk_pool *pool = new_small_pool(2);
    size_t n = 10007;
    unsigned char *items = xmalloc(n * 3), *results = xcalloc(n, 5);
    for (size_t i = 0; i < n * 3; i++)
        items[i] = (unsigned char)(i * 31 + 7);
    sk_pool_job job = {.fn = odd_fn, .item_size = 3, .result_size = 5};
    assert_rc(sk_pool_map(pool, &job, items, n, results, NULL), SK_OK);
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 5; k++)
            if (results[i * 5 + k] != (unsigned char)(items[i * 3 + k % 3] + k))
                fail_msg("item %zu byte %d", i, k);
    xfree(items);
    xfree(results);
    release_pool(pool);
}

/* result_size 0: the function works for its side effects. */
static int touch_fn(const void *item, void *result, const void *arg)
{
    (void)result;
    (void)arg;
    int32_t x = *(const int32_t *)item;
    __atomic_fetch_add(&sh->attempts[x], 1, __ATOMIC_RELAXED);
    return 0;
}

static void test_no_result(void **state)
{
    (void)state;
    make_shared();
    sk_pool *pool = new_small_pool(2);
    size_t n = MAX_ITEMS;
    int32_t *items = xmalloc(n * sizeof *items);
    for (size_t i = 0; i < n; i++)
        items[i] = (int32_t)i;
    int *status = xcalloc(n, sizeof *status);
    sk_pool_job job = {.fn = touch_fn, .item_size = sizeof(int32_t)};
    assert_rc(sk_pool_map(pool, &job, items, n, NULL, status), SK_OK);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(status[i], SK_OK);
        assert_int_equal(sh->attempts[i], 1);
    }
    sk_pool_call *call = NULL;
    assert_rc(sk_pool_unordered_imap(pool, &job, items, n, &call), SK_OK);
    track_call(call);
    for (size_t k = 0; k < n; k++) {
        size_t index;
        assert_rc(sk_pool_next(call, BOUND, &index, NULL), SK_OK);
    }
    size_t index;
    assert_rc(sk_pool_next(call, BOUND, &index, NULL), SK_ECLOSED);
    free_call(call);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(sh->attempts[i], 2);
    xfree(items);
    xfree(status);
    release_pool(pool);
}

/* ----------------------------------------------------------- classes */

enum mode { M_PLAIN, M_SOFT_ONCE, M_CRASH_ONCE, M_FAIL, M_SPIN, M_CRASH_ALWAYS };

typedef struct {
    int32_t runs;
    int32_t mode;
    int32_t slot; /* index into sh->attempts */
    int32_t lives;
} class_item;

typedef struct {
    sk_process base;
    class_item item;
    int64_t count;  /* runs that succeeded in this worker's memory */
    int soft_fails; /* kept across soft retries */
} counter;

#define COUNTER(p) SK_CONTAINER_OF(p, counter, base)

static int counter_init(sk_process *self, const void *item)
{
    counter *c = COUNTER(self);
    memcpy(&c->item, item, sizeof c->item);
    self->config.runs = c->item.runs;
    if (c->item.lives > 0)
        self->config.lives = c->item.lives;
    if (c->item.mode == M_SPIN)
        self->config.timeouts.run = 0.2;
    return 0;
}

static int counter_run(sk_process *self)
{
    counter *c = COUNTER(self);
    long run = sk_current_run(self);
    if (run == 1) {
        switch (c->item.mode) {
        case M_SOFT_ONCE:
            if (c->soft_fails++ == 0)
                return sk_fail(self, 5, "soft failure of slot %d", c->item.slot);
            break;
        case M_CRASH_ONCE:
            if (__atomic_fetch_add(&sh->attempts[c->item.slot], 1, __ATOMIC_ACQ_REL) == 0)
                skt_die_by(SIGSEGV);
            break;
        case M_CRASH_ALWAYS:
            __atomic_fetch_add(&sh->attempts[c->item.slot], 1, __ATOMIC_ACQ_REL);
            skt_die_by(SIGABRT);
            break;
        case M_FAIL:
            return sk_fail(self, 42, "unlucky item %d", c->item.slot);
        case M_SPIN:
            skt_spin_forever();
            break;
        default:
            break;
        }
    }
    c->count++;
    return 0;
}

static int counter_result(sk_process *self)
{
    /* current_run * 1000 + the runs counted in this worker's memory */
    int64_t v = sk_current_run(self) * 1000 + COUNTER(self)->count;
    return sk_return(self, "I", &v);
}

static const sk_class counter_class = {.name = "counter",
                                       .run = counter_run,
                                       .result = counter_result,
                                       .size = sizeof(counter),
                                       .init = counter_init};

static const sk_pool_job counter_job = {.cls = &counter_class,
                                        .item_size = sizeof(class_item),
                                        .result_size = sizeof(int64_t),
                                        .result_format = "I"};

static void test_class_runs(void **state)
{
    (void)state;
    sk_pool *pool = new_small_pool(2);
    size_t n = 60;
    class_item *items = xcalloc(n, sizeof *items);
    for (size_t i = 0; i < n; i++)
        items[i] = (class_item){.runs = (int32_t)(1 + i % 17), .mode = M_PLAIN};
    int64_t *results = xcalloc(n, sizeof *results);
    int *status = xcalloc(n, sizeof *status);
    assert_rc(sk_pool_map(pool, &counter_job, items, n, results, status), SK_OK);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(status[i], SK_OK);
        assert_int_equal(results[i], items[i].runs * 1000 + items[i].runs);
    }
    /* And as an iterator. */
    sk_pool_call *call = NULL;
    assert_rc(sk_pool_unordered_imap(pool, &counter_job, items, n, &call), SK_OK);
    track_call(call);
    unsigned char seen[60] = {0};
    for (size_t k = 0; k < n; k++) {
        int64_t r = 0;
        size_t index;
        assert_rc(sk_pool_next(call, BOUND, &index, &r), SK_OK);
        assert_cmp(index, <, n);
        assert_true(!seen[index]++);
        assert_int_equal(r, items[index].runs * 1000 + items[index].runs);
    }
    free_call(call);
    xfree(items);
    xfree(results);
    xfree(status);
    release_pool(pool);
    assert_no_children();
}

/* Lives of the class: a soft failure is retried in the same worker (its
 * count kept), a crash in a new one from the state at start (count lost,
 * run index kept). */
static void test_class_lives(void **state)
{
    (void)state;
    make_shared();
    sk_pool *pool = new_small_pool(2);
    size_t n = 12;
    class_item items[12];
    for (size_t i = 0; i < n; i++)
        items[i] = (class_item){
            .runs = 5, .mode = (int32_t)(i % 3), .slot = (int32_t)i, .lives = 2}; /* 0, 1, 2 */
    int64_t results[12] = {0};
    int status[12];
    assert_rc(sk_pool_map(pool, &counter_job, items, n, results, status), SK_OK);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(status[i], SK_OK);
        switch (items[i].mode) {
        case M_PLAIN:
        case M_SOFT_ONCE:
            assert_int_equal(results[i], 5 * 1000 + 5);
            break;
        case M_CRASH_ONCE:
            assert_int_equal(results[i], 5 * 1000 + 4); /* run 0 was counted by the lost worker */
            assert_int_equal(sh->attempts[i], 2);
            break;
        }
    }
    release_pool(pool);
}

/* A class item whose run fails (lives = 1) fails alone, with the error of
 * its own process; the others succeed. */
static void test_class_failing_item(void **state)
{
    (void)state;
    make_shared();
    sk_pool *pool = new_small_pool(2);
    size_t n = 30;
    class_item items[30];
    for (size_t i = 0; i < n; i++)
        items[i] = (class_item){.runs = 3, .mode = M_PLAIN, .slot = (int32_t)i};
    items[13].mode = M_FAIL;
    int64_t results[30] = {0};
    int status[30];
    sk_pool_call *call = NULL;
    assert_rc(sk_pool_async_map(pool, &counter_job, items, n, results, status, &call), SK_OK);
    track_call(call);
    assert_rc(sk_pool_get(call, BOUND), SK_EPROCESS);
    const sk_error *e = sk_pool_error(call);
    assert_non_null(e);
    skt_print_error(e);
    assert_int_equal(e->item, 13);
    assert_int_equal(e->kind, SK_RUN_ERROR);
    assert_int_equal(e->section, SK_RUN);
    assert_int_equal(e->run, 1);
    assert_int_equal(e->code, 42);
    assert_non_null(strstr(e->cause, "unlucky item 13"));
    const sk_error *ie = sk_pool_item_error(call, 13);
    assert_non_null(ie);
    assert_int_equal(ie->kind, SK_RUN_ERROR);
    assert_int_equal(ie->item, 13);
    for (size_t i = 0; i < n; i++) {
        if (i == 13) {
            assert_int_equal(status[i], SK_EPROCESS);
            continue;
        }
        assert_int_equal(status[i], SK_OK);
        assert_null(sk_pool_item_error(call, i));
        assert_int_equal(results[i], 3 * 1000 + 3);
    }
    free_call(call);

    /* A crash that spends every life, and a timeout of the class's own. */
    items[13].mode = M_CRASH_ALWAYS;
    items[13].lives = 3;
    items[20].mode = M_SPIN;
    memset(results, 0, sizeof results);
    call = NULL;
    assert_rc(sk_pool_async_map(pool, &counter_job, items, n, results, status, &call), SK_OK);
    track_call(call);
    assert_rc(sk_pool_get(call, BOUND), SK_EPROCESS);
    ie = sk_pool_item_error(call, 13);
    assert_non_null(ie);
    skt_print_error(ie);
    assert_int_equal(ie->kind, SK_CRASH_ERROR);
    assert_int_equal(ie->signal, SIGABRT);
    assert_int_equal(ie->item, 13);
    assert_int_equal(ie->lives_spent, 3);
    assert_int_equal(sh->attempts[13], 3);
    ie = sk_pool_item_error(call, 20);
    assert_non_null(ie);
    skt_print_error(ie);
    assert_int_equal(ie->kind, SK_TIMEOUT_ERROR);
    assert_int_equal(ie->section, SK_RUN);
    assert_cmp(ie->timeout, >, 0.19);
    assert_cmp(ie->timeout, <, 0.21);
    assert_int_equal(ie->item, 20);
    for (size_t i = 0; i < n; i++) {
        if (i == 13 || i == 20) {
            assert_int_equal(status[i], SK_EPROCESS);
            continue;
        }
        assert_int_equal(status[i], SK_OK);
        assert_int_equal(results[i], 3 * 1000 + 3);
    }
    free_call(call);
    release_pool(pool);
    assert_no_children();
}

static int no_run_init(sk_process *self, const void *item)
{
    (void)self;
    (void)item;
    return 0;
}

static void test_class_validation(void **state)
{
    (void)state;
    sk_pool *pool = new_small_pool(1);
    class_item items[2] = {{.runs = 1}, {.runs = 2}};
    int64_t results[2];
    sk_pool_call *call = NULL;

    sk_pool_job job = counter_job;
    job.result_format = NULL; /* required with cls */
    assert_rc(sk_pool_map(pool, &job, items, 2, results, NULL), SK_EINVAL);
    assert_rc(sk_pool_imap(pool, &job, items, 2, &call), SK_EINVAL);
    assert_rc(sk_pool_unordered_imap(pool, &job, items, 2, &call), SK_EINVAL);
    assert_rc(sk_pool_async_map(pool, &job, items, 2, results, NULL, &call), SK_EINVAL);

    sk_class small = counter_class;
    small.size = sizeof(sk_process) - 1;
    job = counter_job;
    job.cls = &small;
    assert_rc(sk_pool_map(pool, &job, items, 2, results, NULL), SK_EINVAL);
    small.size = 0;
    assert_rc(sk_pool_map(pool, &job, items, 2, results, NULL), SK_EINVAL);

    sk_class no_run = counter_class;
    no_run.run = NULL;
    no_run.init = no_run_init;
    job.cls = &no_run;
    assert_rc(sk_pool_map(pool, &job, items, 2, results, NULL), SK_EINVAL);

    job = counter_job;
    job.result_format = "I(";
    assert_rc(sk_pool_map(pool, &job, items, 2, results, NULL), SK_EINVAL);

    /* The real one works. */
    assert_rc(sk_pool_map(pool, &counter_job, items, 2, results, NULL), SK_OK);
    assert_int_equal(results[0], 1001);
    assert_int_equal(results[1], 2002);
    release_pool(pool);
}

/* ----------------------------------------------------- large records */

/* Results that add up to more than a batch region (8 MiB) in one batch:
 * each result is 100 KiB, and the default batch of 4000 items over two
 * workers is 125 items. Every item succeeds. */
#define BIG_RESULT (100 * 1024)

static int big_result_fn(const void *item, void *result, const void *arg)
{
    (void)arg;
    int32_t x = *(const int32_t *)item;
    char *s = malloc(BIG_RESULT + 1);
    if (s == NULL)
        return 98;
    memset(s, 'a' + x % 26, BIG_RESULT);
    snprintf(s, 16, "%d:", (int)x);
    s[strlen(s)] = 'a' + x % 26; /* snprintf's NUL */
    s[BIG_RESULT] = '\0';
    *(char **)result = s;
    return 0;
}

static void check_big_result(const char *r, int32_t x)
{
    char head[16];
    snprintf(head, sizeof head, "%d:", (int)x);
    if (r == NULL || strlen(r) != BIG_RESULT || strncmp(r, head, strlen(head)) != 0 ||
        r[BIG_RESULT - 1] != 'a' + x % 26)
        fail_msg("item %d: a wrong big result", (int)x);
}

static void test_large_results(void **state)
{
    (void)state;
    sk_pool *pool = new_small_pool(2);
    size_t n = 4000;
    int32_t *items = xmalloc(n * sizeof *items);
    for (size_t i = 0; i < n; i++)
        items[i] = (int32_t)i;
    sk_pool_job job = {.fn = big_result_fn,
                       .item_size = sizeof(int32_t),
                       .result_size = sizeof(char *),
                       .result_format = "s"};
    sk_pool_call *call = NULL;
    assert_rc(sk_pool_imap(pool, &job, items, n, &call), SK_OK);
    track_call(call);
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        char *r = NULL;
        size_t index;
        int rc = sk_pool_next(call, BOUND, &index, &r);
        assert_int_equal(index, i);
        if (rc != SK_OK) {
            if (failed++ == 0)
                skt_print_error(sk_pool_item_error(call, i));
            continue;
        }
        check_big_result(r, (int32_t)i);
        xfree(r);
    }
    if (failed)
        fail_msg("%d of %zu items with 100 KiB results failed", failed, n);
    free_call(call);
    xfree(items);
    release_pool(pool);
}

/* An item larger than a batch region (a 9 MB string) fails alone, or the
 * call is refused; the other items of the call are not lost, and the pool
 * goes on. */
static void test_item_larger_than_a_batch(void **state)
{
    (void)state;
    sk_pool *pool = new_small_pool(2);
    size_t n = 1000;
    named *items = xcalloc(n, sizeof *items);
    static char small[1000][16];
    for (size_t i = 0; i < n; i++) {
        snprintf(small[i], sizeof small[i], "s%zu", i);
        items[i] = (named){small[i], (int32_t)i};
    }
    size_t huge_len = 9 * 1000 * 1000;
    char *huge = xmalloc(huge_len + 1);
    memset(huge, 'h', huge_len);
    huge[huge_len] = '\0';
    items[600].name = huge;
    char **results = xcalloc(n, sizeof *results);
    int *status = xcalloc(n, sizeof *status);
    for (size_t i = 0; i < n; i++)
        status[i] = 12345;
    int rc = sk_pool_map(pool, &label_job, items, n, results, status);
    print_message("    map with a 9 MB item: %d (%s); status[600] %d, status[0] %d, "
                  "status[999] %d\n",
                  rc, sk_strerror(rc), status[600], status[0], status[999]);
    if (rc != SK_EINVAL) { /* refused as a whole is fine too */
        assert_cmp(rc, !=, SK_OK);
        assert_cmp(status[600], !=, SK_OK);
        for (size_t i = 0; i < n; i++) {
            if (i == 600)
                continue;
            if (status[i] != SK_OK)
                fail_msg("item %zu (small) failed with %d (%s) because of item 600", i, status[i],
                         sk_strerror(status[i]));
            check_label(results[i], &items[i], i);
        }
    }
    for (size_t i = 0; i < n; i++)
        xfree(results[i]);
    /* The pool goes on. */
    items[600].name = small[600];
    memset(results, 0, n * sizeof *results);
    assert_rc(sk_pool_map(pool, &label_job, items, n, results, status), SK_OK);
    for (size_t i = 0; i < n; i++) {
        check_label(results[i], &items[i], i);
        xfree(results[i]);
    }
    xfree(huge);
    xfree(items);
    xfree(results);
    xfree(status);
    release_pool(pool);
    assert_no_children();
}

/* A call refused half-way (its item 150 does not fit a batch) while its
 * first batches wait in the queue: the pool serves the next call. */
static int gated_label_fn(const void *item, void *result, const void *arg)
{
    gate_wait(&sh->gate, NULL, 2 * BOUND);
    return label_fn(item, result, arg);
}

static void test_pool_goes_on_after_a_refused_item(void **state)
{
    (void)state;
    make_shared();
    sk_pool *pool = new_small_pool(2);
    size_t n = 200;
    named *items = xcalloc(n, sizeof *items);
    static char small[200][16];
    for (size_t i = 0; i < n; i++) {
        snprintf(small[i], sizeof small[i], "s%zu", i);
        items[i] = (named){small[i], (int32_t)i};
    }
    size_t huge_len = 9 * 1000 * 1000;
    char *huge = xmalloc(huge_len + 1);
    memset(huge, 'h', huge_len);
    items[150].name = huge;
    char **results = xcalloc(n, sizeof *results);
    sk_pool_job gated = label_job;
    gated.fn = gated_label_fn;
    sk_pool_call *call = NULL;
    int rc = sk_pool_async_map(pool, &gated, items, n, results, NULL, &call);
    print_message("    async_map with a 9 MB item: %d (%s)\n", rc, sk_strerror(rc));
    if (rc == SK_OK)
        track_call(call);
    open_gate();
    if (rc == SK_OK) {
        rc = sk_pool_get(call, BOUND);
        print_message("    its get: %d (%s)\n", rc, sk_strerror(rc));
        free_call(call);
        for (size_t i = 0; i < n; i++)
            xfree(results[i]);
    }
    /* The next call. */
    items[150].name = small[150];
    memset(results, 0, n * sizeof *results);
    call = NULL;
    assert_rc(sk_pool_async_map(pool, &label_job, items, n, results, NULL, &call), SK_OK);
    track_call(call);
    rc = sk_pool_get(call, 10.0);
    if (rc == SK_ETIMEDOUT)
        fail_msg("the pool serves no call after one was refused half-way");
    assert_rc(rc, SK_OK);
    for (size_t i = 0; i < n; i++) {
        check_label(results[i], &items[i], i);
        xfree(results[i]);
    }
    free_call(call);
    release_pool(pool);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        SKT_TEST(test_tpl_strings_map),
        SKT_TEST(test_tpl_strings_imap_and_async),
        SKT_TEST(test_tpl_strings_stream),
        SKT_TEST(test_tpl_null_string),
        SKT_TEST(test_tpl_string_item),
        SKT_TEST(test_tpl_result_record),
        SKT_TEST(test_tpl_items_survive_a_crash),
        SKT_TEST(test_star_vs_plain),
        SKT_TEST(test_star_padded_record),
        SKT_TEST(test_star_with_strings),
        SKT_TEST(test_star_validation),
        SKT_TEST(test_format_size_mismatch),
        SKT_TEST(test_odd_sized_records),
        SKT_TEST(test_no_result),
        SKT_TEST(test_class_runs),
        SKT_TEST(test_class_lives),
        SKT_TEST(test_class_failing_item),
        SKT_TEST(test_class_validation),
        SKT_TEST(test_large_results),
        SKT_TEST(test_item_larger_than_a_batch),
        SKT_TEST(test_pool_goes_on_after_a_refused_item),
    };
    return skt_run(argc, argv, tests);
}
