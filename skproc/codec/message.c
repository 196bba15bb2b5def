/* SPDX-License-Identifier: MIT */
/*
 * message.c: tpl formats to images and back (see message.h).
 *
 * What tpl_load (TPL_MEM) checks, in tpl_sanity: the minimum size, the "tpl"
 * magic, the flags byte, the stored length against the buffer, that the
 * format is NUL-terminated inside the buffer and equal to the mapped one, the
 * '#' lengths against the mapped ones, and a walk of the data in which every
 * length is compared with the end of the buffer. What it does not do, and how
 * skproc deals with it:
 *
 *   - Its bounds checks are `pointer + length > end`: with a 32-bit length
 *     near 4 GiB that sum wraps on 32-bit machines and the check passes.
 *     Here every check is `length > bytes left`.
 *   - A(...) counts are read into an int: a count of 2^31 or more walks as
 *     zero elements in tpl_sanity, but tpl_unpack then takes it as unsigned
 *     and reads elements past the end of the image. The walk here keeps
 *     counts unsigned and checks every element.
 *   - Strings of tpl 1.2 (flags without bit 1: the length without the +1)
 *     are checked with their own rule, but tpl_load then resets the root's
 *     flags (TPL_MEM | TPL_RDONLY), dropping TPL_OLD_STRING_FMT, so
 *     tpl_unpack reads them as new strings: one byte short, after which it
 *     takes lengths from string bytes and reads past the image (a 22-byte
 *     "ss" image makes it memcpy 99 bytes; ASan confirms). Every tpl since
 *     1.3 sets the flag when the format has an 's', so an image whose format
 *     has one and whose flag is clear is rejected here.
 *   - It validates against a mapped format only: checking an image whose
 *     format is unknown (a fuzzer's, a peer's) needs a tpl_map with made-up
 *     arguments, and tpl_map itself accepts formats that make no sense.
 *     The walk here compiles the image's own format with a strict parser
 *     that also bounds nesting, '#' runs and fixed-array sizes.
 *   - tpl_load with TPL_MEM does not copy the image (unpacking reads it
 *     later), and tpl_unpack writes each value as it goes, so a failure in
 *     the middle (out of memory on the third string) leaves the first two
 *     written and allocated. Unpacking here decodes into a scratch area
 *     first and copies into the caller's variables only when all of it
 *     worked.
 *   - tpl reports errors on stderr (tpl_hook.oops) and ends the process on
 *     fatal ones (tpl_hook.fatal calls exit(-1)), also for out of memory.
 *     See "tpl's hooks" below.
 *
 * So validating and unpacking use one walk written here (what was validated
 * is exactly what is decoded: no second parser to disagree with), and
 * packing writes the bytes tpl_dump would write, also here: skproc calls no
 * tpl function at run time.
 */
#include "codec/message.h"

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tpl.h>

extern tpl_hook_t tpl_hook;

_Static_assert(sizeof(double) == 8, "tpl's 'f' is an 8-byte double");

/* ============================================================ allocation */

/* Per-thread state: the test hook that makes an allocation fail, and tpl's
 * last message. */
typedef struct codec_thread_state {
    long fail_countdown; /* sk_msg_fail_alloc_after: -1 off */
    char last_message[256];
} codec_thread_state;

static _Thread_local codec_thread_state codec_thread = {.fail_countdown = -1};

static bool injected_failure(void)
{
    if (codec_thread.fail_countdown < 0)
        return false;
    if (codec_thread.fail_countdown-- > 0)
        return false;
    codec_thread.fail_countdown = -1;
    return true;
}

static void *raw_malloc(size_t size)
{
    return injected_failure() ? NULL : malloc(size ? size : 1);
}

static void *raw_realloc(void *old, size_t size)
{
    return injected_failure() ? NULL : realloc(old, size ? size : 1);
}

long sk_msg_fail_alloc_after(long after)
{
    long previous = codec_thread.fail_countdown;
    codec_thread.fail_countdown = after < 0 ? -1 : after;
    return previous;
}

/* ============================================================ tpl's hooks */

/* skproc itself never calls tpl at run time (images are written and read
 * here); the hooks are for users who call tpl directly in a process that
 * uses skproc, and for its children. */

/* tpl prints its errors through this: keep the text, print nothing. */
static int hook_oops(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(codec_thread.last_message, sizeof codec_thread.last_message, fmt, ap);
    va_end(ap);
    return 0;
}

/*
 * tpl calls this when it cannot go on: out of memory (about twenty places),
 * a '#' length below 1, more than 10 '#' in a row, internal inconsistencies.
 * It aborts, because returning is worse: tpl's code after every fatal call
 * assumes the hook never returns, as its guide says. After out of memory it
 * dereferences the NULL it got; after too many '#' it writes past a 10-int
 * array on the stack; after "must unpack parent" it memcpy's from NULL;
 * after the internal errors it reads past the image. abort() ends the
 * process without running atexit handlers or flushing stdio (unlike tpl's
 * exit(-1), which a forked child must never call); the supervisor reports it
 * as a crash, and the message stays in sk_tpl_last_message for a debugger or
 * a core dump.
 */
static _Noreturn void hook_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(codec_thread.last_message, sizeof codec_thread.last_message, fmt, ap);
    va_end(ap);
    abort();
}

static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;

static void install_hooks(void)
{
    tpl_hook.oops = hook_oops;
    tpl_hook.malloc = raw_malloc;
    tpl_hook.realloc = raw_realloc;
    tpl_hook.free = free;
    tpl_hook.fatal = hook_fatal;
}

void sk_tpl_hooks_install(void)
{
    pthread_once(&hooks_once, install_hooks);
}

const char *sk_tpl_last_message(void)
{
    return codec_thread.last_message;
}

/* ============================================================ formats */

/* Most '#' in a row: tpl_map keeps them in a 10-int array. */
#define MAX_POUND_RUN 10
/* Formats this long are compiled without allocating. */
#define INLINE_NODES 24

typedef enum node_kind { NODE_LEAF, NODE_STRUCT, NODE_ARRAY } node_kind;

/* One compiled format element: an atom (c i u j v I U f s B), an S(...)
 * whose members (the atoms inside, $(...) flattened as tpl does) follow it,
 * or an A(...) whose items follow it. Nodes are in format order. */
typedef struct fmt_node {
    node_kind kind;
    char type;           /* the format character: an atom, 'S' or 'A' */
    bool top;            /* an item of its own at the top: it takes a pointer */
    int end;             /* index just past this node and everything inside it */
    int pound_first;     /* index in plan.lengths of its first '#' */
    int pound_count;     /* how many '#' follow it */
    uint64_t count;      /* the product of its '#' lengths; 1 without */
    size_t offset;       /* struct member: offset in one struct element */
    size_t stride;       /* struct: distance between consecutive elements */
    size_t scratch_at;   /* top item: where its scratch copy starts */
    unsigned char *user; /* top item: the caller's pointer */
} fmt_node;

typedef struct fmt_plan {
    fmt_node *nodes;
    uint32_t *lengths; /* the '#' lengths, in format order */
    int n_nodes;
    int n_pounds;
    bool has_array;
    void *heap; /* nodes and lengths when the format is long */
    fmt_node inline_nodes[INLINE_NODES];
    uint32_t inline_lengths[INLINE_NODES];
} fmt_plan;

typedef struct fmt_parser {
    const char *fmt;
    size_t pos;
    fmt_plan *plan;
} fmt_parser;

static bool is_atom(char c)
{
    return c != '\0' && strchr("cijvuIUfs", c) != NULL;
}

/* Bytes of one value in the caller's memory; for fixed-size atoms also in
 * the image. */
static size_t value_size(char type)
{
    switch (type) {
    case 'c':
        return 1;
    case 'j':
    case 'v':
        return 2;
    case 'i':
    case 'u':
        return 4;
    case 'I':
    case 'U':
    case 'f':
        return 8;
    case 's':
        return sizeof(char *);
    case 'B':
        return sizeof(tpl_bin);
    default:
        return 0;
    }
}

/* tpl's alignment of a struct member (calc_field_addr): the value's size,
 * except double and 64-bit integers, aligned as the compiler aligns them. */
struct double_align_probe {
    char c;
    double d;
};
struct int64_align_probe {
    int i;
    int64_t j;
};

static size_t member_alignment(char type)
{
    if (type == 'f')
        return sizeof(struct double_align_probe) > 12 ? 8 : 4;
    if (type == 'I' || type == 'U')
        return sizeof(struct int64_align_probe) > 12 ? 8 : 4;
    return value_size(type);
}

static size_t align_up(size_t n, size_t alignment)
{
    return (n + alignment - 1) / alignment * alignment;
}

static int add_node(fmt_parser *p, node_kind kind, char type, bool top)
{
    fmt_plan *pl = p->plan;
    int i = pl->n_nodes++;
    pl->nodes[i] = (fmt_node){.kind = kind,
                              .type = type,
                              .top = top,
                              .end = i + 1,
                              .pound_first = pl->n_pounds,
                              .count = 1};
    return i;
}

static bool expect(fmt_parser *p, char c)
{
    if (p->fmt[p->pos] != c)
        return false;
    p->pos++;
    return true;
}

static bool parse_pounds(fmt_parser *p, int node)
{
    fmt_node *n = &p->plan->nodes[node];
    n->pound_first = p->plan->n_pounds;
    while (p->fmt[p->pos] == '#') {
        p->pos++;
        n->pound_count++;
        p->plan->n_pounds++;
    }
    return n->pound_count <= MAX_POUND_RUN;
}

/* The members of S(...) or $(...): atoms with '#', nested $(...). */
static bool parse_members(fmt_parser *p, int depth)
{
    if (depth > SK_MSG_MAX_NESTING)
        return false;
    int members = 0;
    for (char c; (c = p->fmt[p->pos]) != ')'; members++) {
        p->pos++;
        if (is_atom(c)) {
            if (!parse_pounds(p, add_node(p, NODE_LEAF, c, false)))
                return false;
        } else if (c == '$') {
            if (!expect(p, '(') || !parse_members(p, depth + 1) || !expect(p, ')'))
                return false;
            if (p->fmt[p->pos] == '#') /* tpl cannot repeat a nested struct */
                return false;
        } else {
            return false; /* B, S, A, a stray '#', the end of the format */
        }
    }
    return members > 0;
}

/* A sequence of items: the whole format (top), or the inside of A(...). */
static bool parse_items(fmt_parser *p, int depth, bool top)
{
    if (depth > SK_MSG_MAX_NESTING)
        return false;
    char closer = top ? '\0' : ')';
    int items = 0;
    for (char c; (c = p->fmt[p->pos]) != closer; items++) {
        p->pos++;
        if (is_atom(c)) {
            if (!parse_pounds(p, add_node(p, NODE_LEAF, c, top)))
                return false;
        } else if (c == 'B') {
            add_node(p, NODE_LEAF, c, top);
            if (p->fmt[p->pos] == '#')
                return false;
        } else if (c == 'S') {
            int s = add_node(p, NODE_STRUCT, c, top);
            if (!expect(p, '(') || !parse_members(p, depth + 1) || !expect(p, ')'))
                return false;
            p->plan->nodes[s].end = p->plan->n_nodes;
            if (!parse_pounds(p, s))
                return false;
        } else if (c == 'A') {
            int a = add_node(p, NODE_ARRAY, c, top);
            p->plan->has_array = true;
            if (!expect(p, '(') || !parse_items(p, depth + 1, false) || !expect(p, ')'))
                return false;
            p->plan->nodes[a].end = p->plan->n_nodes;
            if (p->fmt[p->pos] == '#')
                return false;
        } else {
            return false;
        }
    }
    return top || items > 0;
}

static void plan_free(fmt_plan *pl)
{
    free(pl->heap);
    pl->heap = NULL;
}

/* Compiles fmt (fmt_len characters, NUL-terminated) into pl. SK_EINVAL when
 * malformed or longer than SK_MSG_MAX_FORMAT, SK_ENOMEM. Every node and every
 * '#' takes a character, so fmt_len bounds both; the cap keeps a forged image
 * with a long format from costing more than about 300 KiB here. */
static int plan_compile(fmt_plan *pl, const char *fmt, size_t fmt_len)
{
    pl->n_nodes = pl->n_pounds = 0;
    pl->has_array = false;
    pl->heap = NULL;
    pl->nodes = pl->inline_nodes;
    pl->lengths = pl->inline_lengths;
    if (fmt_len > SK_MSG_MAX_FORMAT)
        return SK_EINVAL;
    if (fmt_len > INLINE_NODES) {
        pl->heap = raw_malloc(fmt_len * (sizeof(fmt_node) + sizeof(uint32_t)));
        if (pl->heap == NULL)
            return SK_ENOMEM;
        pl->nodes = pl->heap;
        pl->lengths = (uint32_t *)(pl->nodes + fmt_len);
    }
    fmt_parser p = {.fmt = fmt, .pos = 0, .plan = pl};
    if (!parse_items(&p, 0, true) || p.pos != fmt_len) {
        plan_free(pl);
        return SK_EINVAL;
    }
    return SK_OK;
}

int sk_msg_format_check(const char *fmt)
{
    if (fmt == NULL)
        return SK_EINVAL;
    fmt_plan pl;
    int rc = plan_compile(&pl, fmt, strlen(fmt));
    if (rc != SK_OK)
        return rc;
    bool has_array = pl.has_array;
    plan_free(&pl);
    return has_array ? SK_EINVAL : SK_OK;
}

/* Lays out one S(...) as tpl_map does (calc_field_addr): each member at the
 * end of the previous one rounded up to its alignment, $(...) flattened;
 * elements one stride apart, the stride being the end of the last member
 * rounded up to the alignment of the widest member. */
static bool layout_struct(fmt_plan *pl, int s)
{
    fmt_node *st = &pl->nodes[s];
    size_t end = 0;
    char widest = pl->nodes[s + 1].type;
    for (int m = s + 1; m < st->end; m++) {
        fmt_node *mb = &pl->nodes[m];
        mb->offset = m == s + 1 ? 0 : align_up(end, member_alignment(mb->type));
        end = mb->offset + value_size(mb->type) * mb->count;
        if (value_size(mb->type) > value_size(widest))
            widest = mb->type;
        /* tpl sizes each member's storage in int: size * count * repeats
         * (each count is at most INT_MAX, so the first product fits) */
        uint64_t values = mb->count * st->count;
        if (values > INT_MAX || value_size(mb->type) * values > INT_MAX)
            return false;
    }
    st->stride = align_up(end, member_alignment(widest));
    return st->stride <= INT_MAX / st->count;
}

/* With pl->lengths filled in: the counts, the struct layouts, and the limits
 * that keep tpl's int arithmetic (and ours) from overflowing. */
static bool plan_bind(fmt_plan *pl)
{
    for (int k = 0; k < pl->n_pounds; k++)
        if (pl->lengths[k] < 1 || pl->lengths[k] > INT_MAX)
            return false;
    for (int i = 0; i < pl->n_nodes; i++) {
        fmt_node *n = &pl->nodes[i];
        uint64_t count = 1;
        for (int k = 0; k < n->pound_count; k++) {
            count *= pl->lengths[n->pound_first + k];
            if (count > INT_MAX)
                return false;
        }
        n->count = count;
        if (n->kind == NODE_LEAF && n->type != 'B' && value_size(n->type) * count > INT_MAX)
            return false;
    }
    for (int i = 0; i < pl->n_nodes; i++)
        if (pl->nodes[i].kind == NODE_STRUCT && !layout_struct(pl, i))
            return false;
    return true;
}

/* Reads the caller's arguments in tpl_map's order: a pointer for each
 * top-level atom, B and S, an int for each '#'. Only for well-formed formats
 * without A(...), so the order is exactly what tpl_map would read. */
static int plan_read_args(fmt_plan *pl, const char *fmt, va_list ap, bool packing)
{
    int depth = 0, pound = 0, node = 0;
    bool ok = true;
    for (const char *c = fmt; *c != '\0'; c++) {
        if (*c == '(') {
            depth++;
        } else if (*c == ')') {
            depth--;
        } else if (*c == '#') {
            int length = va_arg(ap, int);
            ok = ok && length >= 1;
            pl->lengths[pound++] = length >= 1 ? (uint32_t)length : 0;
        } else if (depth == 0 && (is_atom(*c) || *c == 'B' || *c == 'S')) {
            while (!pl->nodes[node].top)
                node++;
            unsigned char *user = va_arg(ap, void *);
            pl->nodes[node++].user = user;
            ok = ok && user != NULL;
            if (user != NULL && *c == 'B' && packing) {
                const tpl_bin *bin = (const tpl_bin *)(void *)user;
                ok = ok && (bin->sz == 0 || bin->addr != NULL);
            }
        }
    }
    return ok ? SK_OK : SK_EINVAL;
}

/* ============================================================ images */

/* The bytes of an image not yet walked. Every read asks for a length and
 * gets NULL when fewer bytes are left: nothing is ever read past the end. */
typedef struct reader {
    const unsigned char *at;
    size_t left;
    bool swap; /* written on a CPU of the other byte order */
} reader;

static const unsigned char *take(reader *r, size_t n)
{
    if (n > r->left)
        return NULL;
    const unsigned char *p = r->at;
    r->at += n;
    r->left -= n;
    return p;
}

static void byteswap(unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n / 2; i++) {
        unsigned char t = p[i];
        p[i] = p[n - 1 - i];
        p[n - 1 - i] = t;
    }
}

static bool take_u32(reader *r, uint32_t *value)
{
    const unsigned char *p = take(r, 4);
    if (p == NULL)
        return false;
    memcpy(value, p, 4);
    if (r->swap)
        byteswap((unsigned char *)value, 4);
    return true;
}

/* The bytes of a string in the image, and whether it is NULL: the stored
 * length is 0 for NULL, else the string's length + 1 (no NUL is stored). */
static bool take_string(reader *r, const unsigned char **bytes, size_t *n, bool *is_null)
{
    uint32_t stored;
    if (!take_u32(r, &stored))
        return false;
    *is_null = stored == 0;
    *n = stored > 0 ? (size_t)stored - 1 : 0;
    *bytes = take(r, *n);
    return *bytes != NULL;
}

#define TPL_FLAG_BIG_ENDIAN 1u
#define TPL_FLAG_NULL_STRINGS 2u
#define TPL_PREAMBLE 8 /* "tpl", flags, 32-bit total length */

typedef struct image_view {
    const char *fmt;
    size_t fmt_len;
    const unsigned char *lengths; /* the '#' lengths as stored */
    size_t n_lengths;
    reader data;
} image_view;

static bool cpu_big_endian(void)
{
    const uint16_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 0;
}

/* Checks the preamble and finds the format, the '#' lengths and the data. */
static bool image_open(const void *img, size_t len, image_view *v)
{
    const unsigned char *b = img;
    if (len < TPL_PREAMBLE + 1 || len > UINT32_MAX || memcmp(b, "tpl", 3) != 0)
        return false;
    unsigned flags = b[3];
    if (flags & ~(TPL_FLAG_BIG_ENDIAN | TPL_FLAG_NULL_STRINGS))
        return false;
    reader r = {.at = b + 4,
                .left = len - 4,
                .swap = ((flags & TPL_FLAG_BIG_ENDIAN) != 0) != cpu_big_endian()};
    uint32_t total;
    if (!take_u32(&r, &total) || total != len)
        return false;
    const unsigned char *nul = memchr(r.at, '\0', r.left);
    if (nul == NULL)
        return false;
    v->fmt = (const char *)r.at;
    v->fmt_len = (size_t)(nul - r.at);
    take(&r, v->fmt_len + 1);
    /* tpl 1.2 strings, which tpl 1.6 itself mis-decodes (see the top) */
    if (!(flags & TPL_FLAG_NULL_STRINGS) && memchr(v->fmt, 's', v->fmt_len) != NULL)
        return false;
    v->n_lengths = 0;
    for (size_t i = 0; i < v->fmt_len; i++)
        v->n_lengths += v->fmt[i] == '#';
    v->lengths = take(&r, v->n_lengths * 4);
    if (v->lengths == NULL)
        return false;
    v->data = r;
    return true;
}

static uint32_t image_length(const image_view *v, size_t k)
{
    uint32_t value;
    memcpy(&value, v->lengths + 4 * k, 4);
    if (v->data.swap)
        byteswap((unsigned char *)&value, 4);
    return value;
}

/* Steps over one atom's values (count of them). */
static bool walk_leaf(const fmt_node *n, reader *r)
{
    if (n->type == 'B') {
        uint32_t size;
        return take_u32(r, &size) && take(r, size) != NULL;
    }
    if (n->type == 's') {
        for (uint64_t k = 0; k < n->count; k++) {
            const unsigned char *bytes;
            size_t len;
            bool is_null;
            if (!take_string(r, &bytes, &len, &is_null))
                return false;
        }
        return true;
    }
    return take(r, value_size(n->type) * n->count) != NULL;
}

/*
 * Steps over the data of nodes [begin, end). Every repetition (a struct's
 * '#', an array's count) reads at least one byte per element (the smallest
 * element is a 'c'), so a forged count fails after at most `left` steps
 * instead of looping 2^32 times; recursion is as deep as the format nests.
 */
static bool walk_nodes(const fmt_plan *pl, int begin, int end, reader *r)
{
    for (int i = begin; i < end; i = pl->nodes[i].end) {
        const fmt_node *n = &pl->nodes[i];
        uint64_t repeats = n->count;
        if (n->kind == NODE_LEAF) {
            if (!walk_leaf(n, r))
                return false;
            continue;
        }
        if (n->kind == NODE_ARRAY) {
            uint32_t elements;
            if (!take_u32(r, &elements))
                return false;
            repeats = elements;
        }
        for (uint64_t k = 0; k < repeats; k++)
            if (!walk_nodes(pl, i + 1, n->end, r))
                return false;
    }
    return true;
}

/* Validates img completely; on SK_OK, v and pl (to be freed) describe it. */
static int image_check(const void *img, size_t len, image_view *v, fmt_plan *pl)
{
    if (!image_open(img, len, v))
        return SK_EFORMAT;
    int rc = plan_compile(pl, v->fmt, v->fmt_len);
    if (rc != SK_OK)
        return rc == SK_ENOMEM ? SK_ENOMEM : SK_EFORMAT;
    for (int k = 0; k < pl->n_pounds; k++)
        pl->lengths[k] = image_length(v, (size_t)k);
    reader r = v->data;
    if (!plan_bind(pl) || !walk_nodes(pl, 0, pl->n_nodes, &r) || r.left != 0) {
        plan_free(pl);
        return SK_EFORMAT;
    }
    return SK_OK;
}

int sk_msg_validate(const void *img, size_t len)
{
    sk_tpl_hooks_install();
    if (len == 0)
        return SK_OK;
    if (img == NULL)
        return SK_EINVAL;
    image_view v;
    fmt_plan pl;
    int rc = image_check(img, len, &v, &pl);
    if (rc == SK_OK)
        plan_free(&pl);
    return rc;
}

int sk_msg_format(const void *img, size_t len, char *buf, size_t buflen)
{
    sk_tpl_hooks_install();
    if (buf == NULL || buflen == 0 || (img == NULL && len > 0))
        return SK_EINVAL;
    if (len == 0) {
        buf[0] = '\0';
        return SK_OK;
    }
    image_view v;
    fmt_plan pl;
    int rc = image_check(img, len, &v, &pl);
    if (rc != SK_OK)
        return rc;
    plan_free(&pl);
    if (v.fmt_len >= buflen)
        return SK_EINVAL;
    memcpy(buf, v.fmt, v.fmt_len + 1);
    return SK_OK;
}

/* ============================================================ unpacking */

/* Calls fn for every atom of every top-level item, in the image's order,
 * with where its values go in the scratch area and in the caller's memory;
 * stops at the first non-zero return. */
typedef int (*slot_fn)(void *ctx, const fmt_node *leaf, unsigned char *scratch,
                       unsigned char *user);

static int visit_slots(const fmt_plan *pl, unsigned char *scratch, slot_fn fn, void *ctx)
{
    for (int i = 0; i < pl->n_nodes; i = pl->nodes[i].end) {
        const fmt_node *item = &pl->nodes[i];
        unsigned char *mine = scratch != NULL ? scratch + item->scratch_at : NULL;
        if (item->kind == NODE_LEAF) {
            int rc = fn(ctx, item, mine, item->user);
            if (rc != 0)
                return rc;
            continue;
        }
        for (uint64_t k = 0; k < item->count; k++) {
            for (int m = i + 1; m < item->end; m++) {
                const fmt_node *member = &pl->nodes[m];
                size_t at = (size_t)k * item->stride + member->offset;
                int rc = fn(ctx, member, mine != NULL ? mine + at : NULL, item->user + at);
                if (rc != 0)
                    return rc;
            }
        }
    }
    return 0;
}

/* Decodes one atom into the scratch area (zeroed beforehand, so a string or
 * buffer not reached yet is NULL for release_slot). */
static int decode_slot(void *ctx, const fmt_node *leaf, unsigned char *scratch, unsigned char *user)
{
    (void)user;
    reader *r = ctx;
    if (leaf->type == 'B') {
        uint32_t size;
        const unsigned char *bytes;
        if (!take_u32(r, &size) || (bytes = take(r, size)) == NULL)
            return SK_EFORMAT;
        tpl_bin bin = {.addr = NULL, .sz = size};
        if (size > 0) {
            if ((bin.addr = raw_malloc(size)) == NULL)
                return SK_ENOMEM;
            memcpy(bin.addr, bytes, size);
        }
        memcpy(scratch, &bin, sizeof bin);
        return SK_OK;
    }
    if (leaf->type == 's') {
        for (uint64_t k = 0; k < leaf->count; k++) {
            const unsigned char *bytes;
            size_t len;
            bool is_null;
            if (!take_string(r, &bytes, &len, &is_null))
                return SK_EFORMAT;
            char *s = NULL;
            if (!is_null) {
                if ((s = raw_malloc(len + 1)) == NULL)
                    return SK_ENOMEM;
                memcpy(s, bytes, len);
                s[len] = '\0';
            }
            memcpy(scratch + k * sizeof s, &s, sizeof s);
        }
        return SK_OK;
    }
    size_t size = value_size(leaf->type);
    const unsigned char *bytes = take(r, size * leaf->count);
    if (bytes == NULL)
        return SK_EFORMAT;
    memcpy(scratch, bytes, size * leaf->count);
    if (r->swap)
        for (uint64_t k = 0; k < leaf->count; k++)
            byteswap(scratch + k * size, size);
    return SK_OK;
}

static int release_slot(void *ctx, const fmt_node *leaf, unsigned char *scratch,
                        unsigned char *user)
{
    (void)ctx;
    (void)user;
    if (leaf->type == 'B') {
        tpl_bin bin;
        memcpy(&bin, scratch, sizeof bin);
        free(bin.addr);
    } else if (leaf->type == 's') {
        for (uint64_t k = 0; k < leaf->count; k++) {
            char *s;
            memcpy(&s, scratch + k * sizeof s, sizeof s);
            free(s);
        }
    }
    return 0;
}

/* Copies exactly the bytes tpl_unpack would write: the values, never the
 * padding between struct members or after the last element. */
static int commit_slot(void *ctx, const fmt_node *leaf, unsigned char *scratch, unsigned char *user)
{
    (void)ctx;
    if (leaf->type == 'B') {
        tpl_bin bin, *out = (tpl_bin *)(void *)user;
        memcpy(&bin, scratch, sizeof bin);
        out->addr = bin.addr;
        out->sz = bin.sz;
    } else {
        memcpy(user, scratch, value_size(leaf->type) * leaf->count);
    }
    return 0;
}

/* Decodes the data of a validated image into a scratch area, then into the
 * caller's variables; on failure frees what was decoded and writes
 * nothing. */
static int decode_and_commit(fmt_plan *pl, reader *r)
{
    size_t total = 0;
    for (int i = 0; i < pl->n_nodes; i = pl->nodes[i].end) {
        fmt_node *item = &pl->nodes[i];
        size_t bytes = item->kind == NODE_LEAF ? value_size(item->type) * item->count
                                               : item->stride * item->count;
        item->scratch_at = total;
        total += align_up(bytes, 16);
    }
    if (total == 0)
        return SK_OK;
    unsigned char *scratch = raw_malloc(total);
    if (scratch == NULL)
        return SK_ENOMEM;
    memset(scratch, 0, total);
    int rc = visit_slots(pl, scratch, decode_slot, r);
    if (rc == SK_OK && r->left != 0)
        rc = SK_EFORMAT;
    if (rc != SK_OK)
        visit_slots(pl, scratch, release_slot, NULL);
    else
        visit_slots(pl, scratch, commit_slot, NULL);
    free(scratch);
    return rc;
}

int sk_msg_unpack(const void *img, size_t len, const char *fmt, va_list ap)
{
    sk_tpl_hooks_install();
    if (img == NULL && len > 0)
        return SK_EINVAL;
    if (fmt == NULL)
        fmt = "";
    size_t fmt_len = strlen(fmt);
    fmt_plan mine;
    int rc = plan_compile(&mine, fmt, fmt_len);
    if (rc != SK_OK)
        return rc;
    if (mine.has_array) {
        rc = SK_EINVAL;
        goto out;
    }
    va_list args;
    va_copy(args, ap);
    rc = plan_read_args(&mine, fmt, args, false);
    va_end(args);
    if (rc != SK_OK)
        goto out;
    if (!plan_bind(&mine)) {
        rc = SK_EINVAL;
        goto out;
    }
    if (len == 0) {
        rc = fmt_len == 0 ? SK_OK : SK_EFORMAT;
        goto out;
    }
    /* The image must have exactly the caller's format and '#' lengths; then
     * the caller's plan describes it and one walk checks all of its data. */
    image_view v;
    rc = SK_EFORMAT;
    if (!image_open(img, len, &v) || v.fmt_len != fmt_len || memcmp(v.fmt, fmt, fmt_len) != 0)
        goto out;
    for (int k = 0; k < mine.n_pounds; k++)
        if (image_length(&v, (size_t)k) != mine.lengths[k])
            goto out;
    reader r = v.data;
    if (!walk_nodes(&mine, 0, mine.n_nodes, &r) || r.left != 0)
        goto out;
    r = v.data;
    rc = decode_and_commit(&mine, &r);
out:
    plan_free(&mine);
    return rc;
}

/* ============================================================ packing */

/*
 * Images are written here, not by tpl: the same plan that checks and decodes
 * an image lays out the caller's values, so one pass computes the size and a
 * second writes the bytes straight where they go (into a channel's ring, or
 * a malloc'ed buffer), with no intermediate copies. The bytes are exactly
 * what tpl_dump writes for the same format and values; tests/test_message.c
 * compares the two.
 */

typedef struct image_writer {
    unsigned char *at;
    uint64_t size; /* the sizing pass adds up here */
} image_writer;

static void put_bytes(image_writer *w, const void *bytes, size_t n)
{
    if (n > 0)
        memcpy(w->at, bytes, n);
    w->at += n;
}

static void put_u32(image_writer *w, uint32_t value)
{
    put_bytes(w, &value, 4);
}

static int size_slot(void *ctx, const fmt_node *leaf, unsigned char *scratch, unsigned char *user)
{
    (void)scratch;
    image_writer *w = ctx;
    if (leaf->type == 'B') {
        const tpl_bin *bin = (const tpl_bin *)(void *)user;
        w->size += 4 + (uint64_t)bin->sz;
    } else if (leaf->type == 's') {
        for (uint64_t k = 0; k < leaf->count; k++) {
            const char *str;
            memcpy(&str, user + k * sizeof str, sizeof str);
            w->size += 4 + (str != NULL ? (uint64_t)strlen(str) : 0);
        }
    } else {
        w->size += value_size(leaf->type) * leaf->count;
    }
    return 0;
}

static int write_slot(void *ctx, const fmt_node *leaf, unsigned char *scratch, unsigned char *user)
{
    (void)scratch;
    image_writer *w = ctx;
    if (leaf->type == 'B') {
        const tpl_bin *bin = (const tpl_bin *)(void *)user;
        put_u32(w, bin->sz);
        put_bytes(w, bin->addr, bin->sz);
    } else if (leaf->type == 's') {
        for (uint64_t k = 0; k < leaf->count; k++) {
            const char *str;
            memcpy(&str, user + k * sizeof str, sizeof str);
            size_t n = str != NULL ? strlen(str) : 0;
            put_u32(w, str != NULL ? (uint32_t)n + 1 : 0);
            put_bytes(w, str, n);
        }
    } else {
        put_bytes(w, user, value_size(leaf->type) * leaf->count);
    }
    return 0;
}

int sk_msg_encode(const char *fmt, va_list ap, sk_msg_reserve_fn reserve, void *ctx, size_t *len)
{
    sk_tpl_hooks_install();
    if (fmt == NULL || reserve == NULL)
        return SK_EINVAL;
    size_t fmt_len = strlen(fmt);
    fmt_plan plan;
    int rc = plan_compile(&plan, fmt, fmt_len);
    if (rc != SK_OK)
        return rc;
    if (fmt_len == 0 || plan.has_array) {
        rc = SK_EINVAL;
        goto out;
    }
    va_list args;
    va_copy(args, ap);
    rc = plan_read_args(&plan, fmt, args, true);
    va_end(args);
    if (rc == SK_OK && !plan_bind(&plan))
        rc = SK_EINVAL;
    if (rc != SK_OK)
        goto out;

    image_writer w = {.at = NULL, .size = TPL_PREAMBLE + fmt_len + 1 + 4 * (uint64_t)plan.n_pounds};
    visit_slots(&plan, NULL, size_slot, &w);
    if (w.size > UINT32_MAX) {
        rc = SK_EINVAL;
        goto out;
    }
    void *dst = NULL;
    rc = reserve(ctx, (size_t)w.size, &dst);
    if (rc != SK_OK)
        goto out;
    w.at = dst;
    unsigned char flags = cpu_big_endian() ? TPL_FLAG_BIG_ENDIAN : 0;
    if (memchr(fmt, 's', fmt_len) != NULL)
        flags |= TPL_FLAG_NULL_STRINGS; /* as tpl_dump: only when there are strings */
    put_bytes(&w, "tpl", 3);
    put_bytes(&w, &flags, 1);
    put_u32(&w, (uint32_t)w.size);
    put_bytes(&w, fmt, fmt_len + 1);
    for (int k = 0; k < plan.n_pounds; k++)
        put_u32(&w, plan.lengths[k]);
    visit_slots(&plan, NULL, write_slot, &w);
    *len = (size_t)w.size;
out:
    plan_free(&plan);
    return rc;
}

static int reserve_malloc(void *ctx, size_t size, void **dst)
{
    void **img = ctx;
    if ((*img = raw_malloc(size)) == NULL)
        return SK_ENOMEM;
    *dst = *img;
    return SK_OK;
}

int sk_msg_pack(const char *fmt, va_list ap, void **img, size_t *len)
{
    if (img == NULL || len == NULL)
        return SK_EINVAL;
    if (fmt == NULL || fmt[0] == '\0') {
        *img = NULL;
        *len = 0;
        return SK_OK;
    }
    void *buf = NULL;
    size_t n = 0;
    int rc = sk_msg_encode(fmt, ap, reserve_malloc, &buf, &n);
    if (rc == SK_OK) {
        *img = buf;
        *len = n;
    }
    return rc;
}

/* ============================================================ records */

/* Compiles a one-value format ("S(...)", "s", "i", ...: no '#', no A) and
 * binds it to value. */
static int plan_one(fmt_plan *pl, const char *fmt, void *value)
{
    if (fmt == NULL || value == NULL || strchr(fmt, '#') != NULL)
        return SK_EINVAL;
    int rc = plan_compile(pl, fmt, strlen(fmt));
    if (rc != SK_OK)
        return rc;
    if (pl->has_array || pl->n_nodes == 0 || pl->nodes[0].end != pl->n_nodes || !plan_bind(pl)) {
        plan_free(pl);
        return SK_EINVAL;
    }
    pl->nodes[0].user = value;
    return SK_OK;
}

static int free_user_slot(void *ctx, const fmt_node *leaf, unsigned char *scratch,
                          unsigned char *user)
{
    (void)ctx;
    (void)scratch;
    if (leaf->type == 'B') {
        tpl_bin *bin = (tpl_bin *)(void *)user;
        free(bin->addr);
        bin->addr = NULL;
        bin->sz = 0;
    } else if (leaf->type == 's') {
        for (uint64_t k = 0; k < leaf->count; k++) {
            char *str;
            memcpy(&str, user + k * sizeof str, sizeof str);
            free(str);
            str = NULL;
            memcpy(user + k * sizeof str, &str, sizeof str);
        }
    }
    return 0;
}

void sk_msg_release_one(const char *fmt, void *value)
{
    fmt_plan pl;
    if (plan_one(&pl, fmt, value) != SK_OK)
        return;
    visit_slots(&pl, NULL, free_user_slot, NULL);
    plan_free(&pl);
}

int sk_msg_check_one(const char *fmt, size_t size)
{
    unsigned char probe[16] = {0};
    fmt_plan pl;
    int rc = plan_one(&pl, fmt, probe);
    if (rc != SK_OK)
        return rc;
    const fmt_node *n = &pl.nodes[0];
    size_t need = n->kind == NODE_STRUCT ? n->stride : value_size(n->type);
    plan_free(&pl);
    return need <= size ? SK_OK : SK_EINVAL;
}

int sk_msg_struct_fields(const char *fmt, size_t *offsets, int max)
{
    unsigned char probe[16] = {0};
    fmt_plan pl;
    int rc = plan_one(&pl, fmt, probe);
    if (rc != SK_OK)
        return rc;
    int n = 0;
    if (pl.nodes[0].kind != NODE_STRUCT) {
        rc = SK_EINVAL;
    } else {
        for (int m = 1; m < pl.n_nodes && rc == SK_OK; m++) {
            if (n == max)
                rc = SK_EINVAL;
            else
                offsets[n++] = pl.nodes[m].offset;
        }
    }
    plan_free(&pl);
    return rc == SK_OK ? n : rc;
}
