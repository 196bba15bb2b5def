/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the condition language (include/skproc/sched.h).
 *
 * Each input is a condition's text (cut at its first NUL byte). The parser
 * either refuses it, with a position inside the text, a message that ends
 * " at <position>" and what it expected, or accepts it; then the canonical
 * text (sk_cond_format) must parse back into an equal tree and format to
 * the same bytes, and the condition is evaluated and its next change
 * searched for, in New York's time zone (so the DST code runs), at an
 * instant and with a last start taken from the input's bytes. A broken
 * invariant calls abort(), which libFuzzer reports as a crash with the
 * input saved; ASan/UBSan report the memory errors.
 *
 * Build: `scons fuzz` (clang, into build/fuzz/fuzz_cond). Run for a bounded
 * time:
 *
 *   mkdir -p build/fuzz-cond-corpus
 *   build/fuzz/fuzz_cond -max_total_time=60 -max_len=1024 build/fuzz-cond-corpus
 *
 * Reproduce a crash: build/fuzz/fuzz_cond crash-<sha1>.
 */
#include "skproc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS INT64_C(1000000000)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("TZ", "America/New_York", 1);
    tzset();
    return 0;
}

static bool always(void *arg)
{
    return arg != NULL;
}

static void check(bool ok, const char *what, const char *text)
{
    if (!ok) {
        fprintf(stderr, "fuzz_cond: %s for '%s'\n", what, text);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > SK_COND_TEXT_MAX + 64)
        size = SK_COND_TEXT_MAX + 64;
    char *text = malloc(size + 1);
    if (text == NULL)
        abort();
    memcpy(text, data, size);
    text[size] = '\0';
    size_t len = strlen(text);

    sk_cond *c = (sk_cond *)0x1;
    sk_cond_parse_error err;
    int rc = sk_cond_parse(text, &c, &err);
    if (rc != SK_OK) {
        check(rc == SK_EINVAL && c == NULL, "a refusal that is not SK_EINVAL", text);
        check(err.position <= len, "an error position past the text", text);
        check(err.expected[0] != '\0', "an error without an expectation", text);
        char at[32];
        snprintf(at, sizeof at, " at %zu", err.position);
        size_t ml = strlen(err.message), al = strlen(at);
        check(ml >= al && strcmp(err.message + ml - al, at) == 0,
              "a message that does not end with its position", text);
        free(text);
        return 0;
    }

    int n = sk_cond_format(c, NULL, 0);
    check(n > 0, "an empty canonical text", text);
    char *canon = malloc((size_t)n + 1), *again_text = malloc((size_t)n + 1);
    if (canon == NULL || again_text == NULL)
        abort();
    check(sk_cond_format(c, canon, (size_t)n + 1) == n, "two lengths of one text", text);
    sk_cond *again = NULL;
    check(sk_cond_parse(canon, &again, &err) == SK_OK, "a canonical text that does not parse",
          canon);
    check(sk_cond_equal(c, again), "a canonical text that parses into another tree", canon);
    check(sk_cond_format(again, again_text, (size_t)n + 1) == n &&
              memcmp(canon, again_text, (size_t)n + 1) == 0,
          "a canonical text that formats differently", canon);

    /* Evaluate: the instant and the last start come from the input. */
    uint64_t h = 1469598103934665603u;
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 1099511628211u;
    int64_t now = (INT64_C(1700000000) + (int64_t)(h % (400u * 86400u))) * NS;
    int64_t last = h & 1 ? SK_COND_NEVER : now - (int64_t)((h >> 8) % (3u * 86400u)) * NS;
    sk_cond_user_def users[] = {{"u", always, text}, {"x", always, NULL}};
    sk_cond_ctx ctx = {
        .now = now, .last_start = last, .last_end = last, .users = users, .user_count = 2};
    int v = sk_cond_eval(c, &ctx);
    check(v == 0 || v == 1 || v == SK_EINVAL, "an evaluation that is not 0, 1 or SK_EINVAL", canon);
    int64_t when = 0;
    rc = sk_cond_next_change(c, &ctx, &when);
    check(rc == (v == SK_EINVAL ? SK_EINVAL : SK_OK) || (rc == SK_EINVAL && v != SK_EINVAL),
          "next_change and eval disagree on errors", canon);
    if (rc == SK_OK) {
        check(when > now, "a next change that is not after now", canon);
        /* The value holds just before it. */
        if (when != SK_COND_NO_CHANGE && when - 1 > now) {
            ctx.now = when - 1;
            check(sk_cond_eval(c, &ctx) == v, "a change before the next change", canon);
        }
    }

    sk_cond_free(again);
    sk_cond_free(c);
    free(canon);
    free(again_text);
    free(text);
    return 0;
}
