/* SPDX-License-Identifier: MIT */
/*
 * message.h: the one place where skproc turns tpl formats and values into
 * images and back (internal; not installed).
 *
 * Packing writes the image that tpl_dump would write, directly (one pass
 * sizes it, a second writes it where the caller wants it), checked byte for
 * byte against tpl in the tests. Validating and unpacking do not call tpl
 * either: one bounds-checked walk of the image (the layout tpl_dump
 * writes: "tpl", flags, total length, format, '#' lengths, data) decides
 * whether the image is well formed and the same walk decodes it, so nothing
 * tpl_load would let through unchecked (see message.c) reaches memory.
 *
 * Formats: exactly tpl's characters i u I U j v c f s B, '#' after an atom
 * or after S(...), S(...) with nested $(...). Variable-length arrays A(...)
 * cannot be filled through one variadic call: sk_msg_pack and sk_msg_unpack
 * return SK_EINVAL for them (an API on tpl_node comes later), while
 * sk_msg_validate and sk_msg_format accept images that contain them.
 * Arguments follow tpl_map: a pointer per top-level item, an int per '#'.
 *
 * Limits (stricter than tpl_map, which accepts some nonsense formats such as
 * "S" or "iS(#i)"): at most SK_MSG_MAX_FORMAT characters, at most 10 '#' in a row, each '#' length
 * in [1, INT_MAX], at most SK_MSG_MAX_NESTING nested S/$/A groups, every fixed array at most
 * INT_MAX bytes, an image at most UINT32_MAX bytes (tpl stores the length in 32 bits).
 *
 * The empty message: a NULL or "" format packs to img = NULL, len = 0. An
 * image of length 0 is the empty message: it validates, its format is "",
 * and it unpacks only with a NULL or "" format.
 *
 * Threads: every call may run in any thread at once with others; the state
 * of a call in progress is thread-local.
 */
#ifndef SKPROC_MESSAGE_H
#define SKPROC_MESSAGE_H

#include "skproc.h"

#include <stdarg.h>
#include <stddef.h>

/* How deep S(...), $(...) and A(...) groups may nest in a format. */
#define SK_MSG_MAX_NESTING 32
/* The longest format, in characters (a buffer of SK_MSG_MAX_FORMAT + 1
 * always fits sk_msg_format's answer). */
#define SK_MSG_MAX_FORMAT 4095

/* Installs skproc's tpl hooks, once per process (pthread_once). skproc
 * itself calls no tpl function at run time; the hooks are for code that
 * calls tpl directly in a process that uses skproc. Afterwards:
 *   - tpl never prints: tpl_hook.oops keeps the last message in a
 *     thread-local buffer (sk_tpl_last_message) instead of writing stderr;
 *   - tpl never calls exit(): a fatal error calls abort() instead, because
 *     tpl's code after a fatal error assumes the hook never returns (see
 *     message.c), and a forked child must never run the parent's atexit
 *     handlers;
 *   - tpl allocates through malloc/realloc/free (with the test hook of
 *     sk_msg_fail_alloc_after).
 * Code that also uses tpl directly must not replace tpl_hook's members
 * afterwards. */
void sk_tpl_hooks_install(void);

/* Packs the values whose addresses follow fmt (as for tpl_map: a pointer per
 * top-level item, an int per '#') into a tpl image. On SK_OK, *img is
 * malloc'ed (free it) and *len is its size; fmt NULL or "" gives *img = NULL,
 * *len = 0. On failure *img and *len are untouched.
 *   SK_EINVAL  img or len NULL, a malformed format, A(...) in it, a NULL
 *              value pointer, a '#' length below 1, a tpl_bin with sz > 0
 *              and addr NULL, an image over UINT32_MAX bytes
 *   SK_ENOMEM  out of memory */
int sk_msg_pack(const char *fmt, va_list ap, void **img, size_t *len);

/* Where an image of `size` bytes is to be written: sets *dst, or returns a
 * code (SK_EFULL, SK_ENOMEM, ...) that sk_msg_encode hands back. */
typedef int (*sk_msg_reserve_fn)(void *ctx, size_t size, void **dst);

/* Encodes the values after fmt as a tpl image (the bytes tpl_dump would
 * write) straight into the memory reserve() returns, once their size is
 * known; *len is that size. Errors as sk_msg_pack, plus whatever reserve
 * returns; an empty format is SK_EINVAL here. */
int sk_msg_encode(const char *fmt, va_list ap, sk_msg_reserve_fn reserve, void *ctx, size_t *len);

/* Unpacks img into the pointers that follow fmt. fmt must be exactly the
 * image's format and every '#' length the image's. Strings ('s') and binary
 * buffers (tpl_bin.addr of 'B') are malloc'ed for the caller, who frees them;
 * a NULL string stays NULL and a zero-length buffer has addr NULL. Nothing is
 * written through the pointers unless the whole unpack succeeds, and nothing
 * is left allocated when it fails.
 *   SK_EINVAL   img NULL with len > 0, a malformed format, A(...) in it, a
 *               NULL value pointer, a '#' length below 1
 *   SK_EFORMAT  fmt or a '#' length does not match the image, or the image
 *               is truncated, corrupt or not a tpl image
 *   SK_ENOMEM   out of memory */
int sk_msg_unpack(const void *img, size_t len, const char *fmt, va_list ap);

/* Copies the format of a valid image (the whole image is validated) into
 * buf, NUL-terminated; "" for the empty message.
 *   SK_EINVAL   buf NULL, buflen too small for the format and its NUL, img
 *               NULL with len > 0
 *   SK_EFORMAT  img is not a valid tpl image
 *   SK_ENOMEM   out of memory (formats longer than a few dozen characters
 *               need a small allocation) */
int sk_msg_format(const void *img, size_t len, char *buf, size_t buflen);

/* Checks that img is one complete, well-formed tpl image of exactly len
 * bytes, reading nothing outside [img, img + len): SK_OK or SK_EFORMAT.
 * len == 0 is the empty message (SK_OK). SK_EINVAL for img NULL with
 * len > 0, SK_ENOMEM as for sk_msg_format. Safe on arbitrary bytes. */
int sk_msg_validate(const void *img, size_t len);

/* SK_OK when fmt is a well-formed format that sk_msg_pack and sk_msg_unpack
 * take (no A(...)); SK_EINVAL otherwise (also for NULL), SK_ENOMEM. Lets a
 * caller reject a malformed format before it waits for data. */
int sk_msg_format_check(const char *fmt);

/* Records (the pool's items and results): formats of one value, such as
 * "S(is)" or "s", with no '#' and no A(...), bound to one pointer. */

/* Frees the strings and buffers inside *value (as unpacked) and NULLs them. */
void sk_msg_release_one(const char *fmt, void *value);
/* SK_OK when fmt is such a format and its value fits in size bytes. */
int sk_msg_check_one(const char *fmt, size_t size);
/* The offsets of the members of an "S(...)" format, in order ($(...)
 * flattened); returns how many (at most max), or SK_EINVAL. */
int sk_msg_struct_fields(const char *fmt, size_t *offsets, int max);

/* The last message tpl tried to print in this thread ("" if none), for
 * debugging: skproc keeps tpl quiet on stderr. */
const char *sk_tpl_last_message(void);

/* For tests only: makes allocation attempt number `after` (0 = the next one)
 * fail once, counting the allocations this thread makes through tpl's hooks
 * (tpl called by skproc or directly) and in skproc's message code. A
 * negative value cancels. Returns the previous setting: -1 when the planned
 * failure has happened (or none was planned), otherwise how many allocations
 * were still to go before it. */
long sk_msg_fail_alloc_after(long after);

#endif /* SKPROC_MESSAGE_H */
