/* SPDX-License-Identifier: MIT */
/*
 * skproc/typed.h: tell, listen, return and result with the tpl format
 * derived from the argument types at compile time. Included by skproc.h.
 *
 * The format-string forms (sk_tell(p, "iI", &a, &b)) trust the caller: a
 * pointer of the wrong type is memory corruption that no compiler warns
 * about. The typed forms take the same pointers and no format; the format
 * is derived from the pointer types, and a type with no tpl counterpart is
 * a compile-time error:
 *
 *     sk_tellv(p, &count, &name);              sk_tell(p, "Is", &count, &name)
 *     sk_listenv(p, timeout, &count, &name);   sk_listen(p, timeout, "Is", ...)
 *     sk_returnv(self, &total);                sk_return(self, "I", &total)
 *     sk_resultv(p, &total);                   sk_result(p, "I", &total)
 *
 * Each takes 1 to 6 pointers and expands to one call of the format-string
 * form with a constant format (a static one with GCC and Clang): it
 * compiles to the call the format-string form compiles to. Return codes
 * are those of the format-string form.
 *
 *   pointer to                     tpl   notes
 *   uint8_t / unsigned char        c     tpl's c is one byte
 *   int16_t / short                j
 *   uint16_t / unsigned short      v
 *   int32_t / int                  i
 *   uint32_t / unsigned int        u
 *   int64_t / long / long long     I     long is i where it has 32 bits
 *   uint64_t / unsigned long(long) U     unsigned long is u where 32 bits
 *   double                         f
 *   char *  (so: char **)          s     received strings are malloc'ed: free them
 *   sk_bytes                       B     received addr is malloc'ed (NULL when size 0)
 *   T[N]    (so: T (*)[N])         T#    N from sizeof; T any of the above but sk_bytes
 *
 * Sending (tell, return) also takes pointers to const, and a string by
 * value: a char * or const char * argument is sent as s ("abc", or a char
 * buffer, which decays to char *). So a char * sent is always a string,
 * never one char: send single bytes as uint8_t.
 *
 * Refused at compile time: int8_t/signed char (tpl's c has no sign: send a
 * uint8_t or widen to int16_t), plain char where a value is received and
 * pointers to arrays of plain char (strings are char *), bool, float (tpl's f is a
 * double), long double, pointers to pointers other than char **, a char *
 * where a string is received (that needs a char **), a pointer to const
 * where a value is received, arrays of two or more dimensions, structs,
 * values instead of pointers, more than 6 values. The error reads
 * "skproc: a typed value has a type with no tpl format" (C) or lists the
 * types each form takes (C++), at the line of the call.
 *
 * Records (S(...)) and variable-length arrays keep the format-string forms
 * and sk_tell_image.
 *
 * C needs _Generic (C11) and compound literals; C++ (C++17) gets function
 * templates of the same names. In C the macros name their arguments more
 * than once in the text, but each argument is evaluated exactly once.
 */
#ifndef SKPROC_TYPED_H
#define SKPROC_TYPED_H

/* A byte buffer: tpl's B (laid out as tpl_bin). */
typedef struct sk_bytes {
    void *addr;
    uint32_t size;
} sk_bytes;

/* Every supported scalar type with its tpl character, for M(Q type, c). */
#define SK_TYPED_SCALARS(M, Q)                                                                     \
    M(Q unsigned char, 'c')                                                                        \
    M(Q short, 'j')                                                                                \
    M(Q unsigned short, 'v')                                                                       \
    M(Q int, 'i')                                                                                  \
    M(Q unsigned int, 'u')                                                                         \
    M(Q long, (sizeof(long) == 8 ? 'I' : 'i'))                                                     \
    M(Q unsigned long, (sizeof(long) == 8 ? 'U' : 'u'))                                            \
    M(Q long long, 'I')                                                                            \
    M(Q unsigned long long, 'U')                                                                   \
    M(Q double, 'f')

#ifndef __cplusplus

/* ------------------------------------------------------------------ C */

#define SK_TYPED_PTR_IS(T, c) T * : c,
#define SK_TYPED_PTR2_IS_0(T, c) T ** : 0,
#define SK_TYPED_PTR_IS_SIZE(T, c) T * : sizeof(T),

/* The character of one array element, from *(x), which decays to a
 * pointer to the element when x points to an array; 0 when unsupported. */
#define SK_TYPED_ELEM_RECV(x)                                                                      \
    _Generic(*(x), SK_TYPED_SCALARS(SK_TYPED_PTR_IS, ) char ** : 's', default : 0)
#define SK_TYPED_ELEM_SEND(x)                                                                      \
    _Generic(*(x),                                                                                 \
        SK_TYPED_SCALARS(SK_TYPED_PTR_IS, ) SK_TYPED_SCALARS(SK_TYPED_PTR_IS, const) char **: 's',                     \
        const char **: 's',                                                                        \
        char *const *: 's',                                                                        \
        const char *const *: 's',                                                                  \
        default: 0)

/* Pointers to pointers look like arrays through *(x): they are refused
 * here, before *(x) is looked at. */
#define SK_TYPED_NOT_ARRAYS                                                                        \
    SK_TYPED_SCALARS(SK_TYPED_PTR2_IS_0, )                                                         \
    SK_TYPED_SCALARS(SK_TYPED_PTR2_IS_0, const)                                                    \
    char *** : 0, sk_bytes ** : 0, const sk_bytes ** : 0,

/* The tpl character of a receiving pointer x (0: unsupported). */
#define SK_TYPED_CODE_sk_typed_recv(x)                                                             \
    _Generic((x),                                                                                  \
        SK_TYPED_SCALARS(SK_TYPED_PTR_IS, ) char **: 's',                                                    \
        sk_bytes *: 'B',                                                                           \
        SK_TYPED_NOT_ARRAYS default: SK_TYPED_ELEM_RECV(x))

/* The tpl character of a sending argument x (0: unsupported). */
#define SK_TYPED_CODE_sk_typed_send(x)                                                             \
    _Generic((x),                                                                                  \
        SK_TYPED_SCALARS(SK_TYPED_PTR_IS, ) SK_TYPED_SCALARS(SK_TYPED_PTR_IS, const) char **: 's',                     \
        const char **: 's',                                                                        \
        char *const *: 's',                                                                        \
        const char *const *: 's',                                                                  \
        char *: 's',                                                                               \
        const char *: 's',                                                                         \
        sk_bytes *: 'B',                                                                           \
        const sk_bytes *: 'B',                                                                     \
        SK_TYPED_NOT_ARRAYS default: SK_TYPED_ELEM_SEND(x))

/* 1 when x points to a fixed array (its format gets a '#'). */
#define SK_TYPED_IS_ARRAY(x)                                                                       \
    _Generic((x),                                                                                  \
             SK_TYPED_SCALARS(SK_TYPED_PTR_IS_0, )                                                 \
                 SK_TYPED_SCALARS(SK_TYPED_PTR_IS_0, const) char ** : 0,                           \
             const char ** : 0, char *const * : 0, const char *const * : 0, char * : 0,            \
             const char * : 0, sk_bytes * : 0, const sk_bytes * : 0,                               \
             SK_TYPED_NOT_ARRAYS default : 1)
#define SK_TYPED_PTR_IS_0(T, c) T * : 0,

/* The '#' length of an array x: its size over its element's size. */
#define SK_TYPED_ELEM_SIZE(x)                                                                      \
    _Generic(*(x), SK_TYPED_SCALARS(SK_TYPED_PTR_IS_SIZE, )                                        \
                       SK_TYPED_SCALARS(SK_TYPED_PTR_IS_SIZE, const) default                       \
             : sizeof(char *))
#define SK_TYPED_LENGTH(x) ((int)(sizeof(*(x)) / (1 * SK_TYPED_ELEM_SIZE(x))))

/* The variadic argument for x: the pointer itself, except a string sent by
 * value, which travels as the address of a temporary holding it. */
#define SK_TYPED_ARG_sk_typed_recv(x) ((void *)(x))
#define SK_TYPED_ARG_sk_typed_send(x)                                                              \
    _Generic((x),                                                                                  \
        char *: (void *)(const char *[1]){(const char *)(x)},                                      \
        const char *: (void *)(const char *[1]){(const char *)(x)},                                \
        default: (void *)(x))

/* A compile-time error when x has no tpl format. */
#define SK_TYPED_CHECK(code)                                                                       \
    sizeof(struct {                                                                                \
        _Static_assert((code) != 0, "skproc: a typed value has a type with no tpl format "         \
                                    "(see skproc/typed.h)");                                       \
        char ok;                                                                                   \
    })

/* The call, built one value at a time: F gathers the format characters
 * (each followed by a comma), A the variadic arguments (each preceded by
 * one). A fixed array adds a '#' and an int length after its pointer, so
 * the shape of the call depends on the types: each value branches on
 * SK_TYPED_IS_ARRAY, a constant, and the compiler keeps one branch. One
 * macro per level: a macro cannot expand inside its own expansion. */
#define SK_TYPED_UNP(...) __VA_ARGS__
/* The leaf: the call. With GCC and Clang the format is a static constant,
 * so that the call is the very call the format-string form compiles to;
 * elsewhere a compound literal (a few stores on the stack). */
#if defined(__GNUC__)
#define SK_TYPED_LEAF(K, fn, pre, F, A)                                                            \
    __extension__({                                                                                \
        static const char sk_typed_format_[] = {SK_TYPED_UNP F 0};                                 \
        fn(SK_TYPED_UNP pre, sk_typed_format_ SK_TYPED_UNP A);                                     \
    })
#else
#define SK_TYPED_LEAF(K, fn, pre, F, A)                                                            \
    fn(SK_TYPED_UNP pre, (const char[]){SK_TYPED_UNP F 0} SK_TYPED_UNP A)
#endif
#define SK_TYPED_T0(K, fn, pre, F, A, ...) SK_TYPED_LEAF(K, fn, pre, F, A)
#define SK_TYPED_T1(K, fn, pre, F, A, x)                                                           \
    (SK_TYPED_IS_ARRAY(x)                                                                          \
         ? SK_TYPED_T0(K, fn, pre, (SK_TYPED_UNP F SK_TYPED_CODE_##K(x), '#', ),                   \
                       (SK_TYPED_UNP A, SK_TYPED_ARG_##K(x), SK_TYPED_LENGTH(x)), ~)               \
         : SK_TYPED_T0(K, fn, pre, (SK_TYPED_UNP F SK_TYPED_CODE_##K(x), ),                        \
                       (SK_TYPED_UNP A, SK_TYPED_ARG_##K(x)), ~))
#define SK_TYPED_T2(K, fn, pre, F, A, x, ...)                                                      \
    (SK_TYPED_IS_ARRAY(x)                                                                          \
         ? SK_TYPED_T1(K, fn, pre, (SK_TYPED_UNP F SK_TYPED_CODE_##K(x), '#', ),                   \
                       (SK_TYPED_UNP A, SK_TYPED_ARG_##K(x), SK_TYPED_LENGTH(x)), __VA_ARGS__)     \
         : SK_TYPED_T1(K, fn, pre, (SK_TYPED_UNP F SK_TYPED_CODE_##K(x), ),                        \
                       (SK_TYPED_UNP A, SK_TYPED_ARG_##K(x)), __VA_ARGS__))
#define SK_TYPED_T3(K, fn, pre, F, A, x, ...)                                                      \
    (SK_TYPED_IS_ARRAY(x)                                                                          \
         ? SK_TYPED_T2(K, fn, pre, (SK_TYPED_UNP F SK_TYPED_CODE_##K(x), '#', ),                   \
                       (SK_TYPED_UNP A, SK_TYPED_ARG_##K(x), SK_TYPED_LENGTH(x)), __VA_ARGS__)     \
         : SK_TYPED_T2(K, fn, pre, (SK_TYPED_UNP F SK_TYPED_CODE_##K(x), ),                        \
                       (SK_TYPED_UNP A, SK_TYPED_ARG_##K(x)), __VA_ARGS__))
#define SK_TYPED_T4(K, fn, pre, F, A, x, ...)                                                      \
    (SK_TYPED_IS_ARRAY(x)                                                                          \
         ? SK_TYPED_T3(K, fn, pre, (SK_TYPED_UNP F SK_TYPED_CODE_##K(x), '#', ),                   \
                       (SK_TYPED_UNP A, SK_TYPED_ARG_##K(x), SK_TYPED_LENGTH(x)), __VA_ARGS__)     \
         : SK_TYPED_T3(K, fn, pre, (SK_TYPED_UNP F SK_TYPED_CODE_##K(x), ),                        \
                       (SK_TYPED_UNP A, SK_TYPED_ARG_##K(x)), __VA_ARGS__))
#define SK_TYPED_T5(K, fn, pre, F, A, x, ...)                                                      \
    (SK_TYPED_IS_ARRAY(x)                                                                          \
         ? SK_TYPED_T4(K, fn, pre, (SK_TYPED_UNP F SK_TYPED_CODE_##K(x), '#', ),                   \
                       (SK_TYPED_UNP A, SK_TYPED_ARG_##K(x), SK_TYPED_LENGTH(x)), __VA_ARGS__)     \
         : SK_TYPED_T4(K, fn, pre, (SK_TYPED_UNP F SK_TYPED_CODE_##K(x), ),                        \
                       (SK_TYPED_UNP A, SK_TYPED_ARG_##K(x)), __VA_ARGS__))
#define SK_TYPED_T6(K, fn, pre, F, A, x, ...)                                                      \
    (SK_TYPED_IS_ARRAY(x)                                                                          \
         ? SK_TYPED_T5(K, fn, pre, (SK_TYPED_UNP F SK_TYPED_CODE_##K(x), '#', ),                   \
                       (SK_TYPED_UNP A, SK_TYPED_ARG_##K(x), SK_TYPED_LENGTH(x)), __VA_ARGS__)     \
         : SK_TYPED_T5(K, fn, pre, (SK_TYPED_UNP F SK_TYPED_CODE_##K(x), ),                        \
                       (SK_TYPED_UNP A, SK_TYPED_ARG_##K(x)), __VA_ARGS__))

#define SK_TYPED_C1(K, a) SK_TYPED_CHECK(SK_TYPED_CODE_##K(a))
#define SK_TYPED_C2(K, a, ...) SK_TYPED_C1(K, a) + SK_TYPED_C1(K, __VA_ARGS__)
#define SK_TYPED_C3(K, a, ...) SK_TYPED_C1(K, a) + SK_TYPED_C2(K, __VA_ARGS__)
#define SK_TYPED_C4(K, a, ...) SK_TYPED_C1(K, a) + SK_TYPED_C3(K, __VA_ARGS__)
#define SK_TYPED_C5(K, a, ...) SK_TYPED_C1(K, a) + SK_TYPED_C4(K, __VA_ARGS__)
#define SK_TYPED_C6(K, a, ...) SK_TYPED_C1(K, a) + SK_TYPED_C5(K, __VA_ARGS__)

#define SK_TYPED_NTH(_1, _2, _3, _4, _5, _6, _7, n, ...) n
#define SK_TYPED_COUNT(...) SK_TYPED_NTH(__VA_ARGS__, 7, 6, 5, 4, 3, 2, 1, 0)
#define SK_TYPED_CAT(a, b) SK_TYPED_CAT_(a, b)
#define SK_TYPED_CAT_(a, b) a##b
/* More than 6 values: SK_TYPED_C7 is undefined (use the format-string form). */
#define SK_TYPED_CALL(K, fn, pre, ...)                                                             \
    ((void)(SK_TYPED_CAT(SK_TYPED_C, SK_TYPED_COUNT(__VA_ARGS__))(K, __VA_ARGS__)),                \
     SK_TYPED_CAT(SK_TYPED_T, SK_TYPED_COUNT(__VA_ARGS__))(K, fn, pre, (), (), __VA_ARGS__))

/* sk_tell(p, <format of the values>, ...): 1 to 6 pointers (or strings). */
#define sk_tellv(p, ...) SK_TYPED_CALL(sk_typed_send, sk_tell, (p), __VA_ARGS__)
/* sk_listen(p, timeout, <format>, ...): 1 to 6 receiving pointers. */
#define sk_listenv(p, timeout, ...)                                                                \
    SK_TYPED_CALL(sk_typed_recv, sk_listen, (p, timeout), __VA_ARGS__)
/* sk_return(self, <format>, ...): in the result or error hook. */
#define sk_returnv(self, ...) SK_TYPED_CALL(sk_typed_send, sk_return, (self), __VA_ARGS__)
/* sk_result(p, <format>, ...): 1 to 6 receiving pointers. */
#define sk_resultv(p, ...) SK_TYPED_CALL(sk_typed_recv, sk_result, (p), __VA_ARGS__)

#else /* __cplusplus */

/* ---------------------------------------------------------------- C++ */

} /* extern "C" */

#include <array>
#include <cstddef>
#include <tuple>
#include <type_traits>

extern "C++" {

namespace sk_typed
{

/* The tpl character of a scalar type; 0 when it has none. */
template <class T> struct scalar {
    static constexpr char code = 0;
};
#define SK_TYPED_CXX_SCALAR(T, c)                                                                  \
    template <> struct scalar<T> {                                                                 \
        static constexpr char code = c;                                                            \
    };
SK_TYPED_SCALARS(SK_TYPED_CXX_SCALAR, )
#undef SK_TYPED_CXX_SCALAR
template <> struct scalar<char *> {
    static constexpr char code = 's';
};
template <> struct scalar<const char *> {
    static constexpr char code = 's';
};
template <> struct scalar<sk_bytes> {
    static constexpr char code = 'B';
};

/* How one argument of type A travels: its tpl character, whether it is a
 * fixed array of `length` elements, and whether it may receive. */
template <class A> struct arg {
    static constexpr char code = 0;
    static constexpr bool array = false, receives = false, by_value = false;
    static constexpr int length = 1;
};
/* T *: a scalar, a string (char **), bytes, or a fixed array (T (*)[N]). */
template <class T> struct arg<T *> {
    using U = std::remove_const_t<T>;
    static constexpr char code = scalar<U>::code;
    static constexpr bool array = false, receives = !std::is_const_v<T>, by_value = false;
    static constexpr int length = 1;
};
template <class T, std::size_t N> struct arg<T (*)[N]> {
    using U = std::remove_const_t<T>;
    static constexpr char code = std::is_same_v<U, sk_bytes> ? 0 : scalar<U>::code;
    static constexpr bool array = true, receives = !std::is_const_v<T>, by_value = false;
    static constexpr int length = static_cast<int>(N);
};
/* const char * and const char ** send strings; char * and char ** too. */
template <> struct arg<const char **> {
    static constexpr char code = 's';
    static constexpr bool array = false, receives = false, by_value = false;
    static constexpr int length = 1;
};
template <> struct arg<const char *const *> : arg<const char **> {
};
template <> struct arg<char *const *> : arg<const char **> {
};
/* A string by value (sending only). */
template <> struct arg<char *> {
    static constexpr char code = 's';
    static constexpr bool array = false, receives = false, by_value = true;
    static constexpr int length = 1;
};
template <> struct arg<const char *> : arg<char *> {
};
/* Plain char, signed char, bool and float have no tpl format. */
template <> struct arg<char **> {
    static constexpr char code = 's';
    static constexpr bool array = false, receives = true, by_value = false;
    static constexpr int length = 1;
};

template <class... A> constexpr std::array<char, 2 * sizeof...(A) + 1> format()
{
    std::array<char, 2 * sizeof...(A) + 1> f{};
    std::size_t n = 0;
    ((f[n++] = arg<A>::code, arg<A>::array ? (void)(f[n++] = '#') : (void)0), ...);
    f[n] = '\0';
    return f;
}

template <class A> constexpr bool sends()
{
    return arg<A>::code != 0;
}
template <class A> constexpr bool receives()
{
    return arg<A>::code != 0 && arg<A>::receives;
}

/* The variadic arguments of one value: its pointer, and the length of an
 * array. A string by value travels as the address of the parameter. */
template <class A> auto slots(A &a)
{
    if constexpr (arg<A>::by_value)
        return std::tuple<void *>(static_cast<void *>(&a));
    else if constexpr (arg<A>::array)
        return std::tuple<void *, int>(const_cast<void *>(static_cast<const void *>(a)),
                                       arg<A>::length);
    else
        return std::tuple<void *>(const_cast<void *>(static_cast<const void *>(a)));
}

#define SK_TYPED_CXX_SEND_MSG                                                                      \
    "skproc: sk_tellv/sk_returnv take pointers to uint8_t, int16..int64, uint16..uint64, "         \
    "double, char * (strings), sk_bytes, fixed arrays of these, or strings by value"
#define SK_TYPED_CXX_RECV_MSG                                                                      \
    "skproc: sk_listenv/sk_resultv take non-const pointers to uint8_t, int16..int64, "             \
    "uint16..uint64, double, char * (char **: strings), sk_bytes, or fixed arrays of these"

} /* namespace sk_typed */

template <class... A> inline int sk_tellv(sk_process *p, A... a)
{
    static_assert(sizeof...(A) >= 1, "skproc: sk_tellv needs a value");
    static_assert((sk_typed::sends<A>() && ...), SK_TYPED_CXX_SEND_MSG);
    static constexpr auto fmt = sk_typed::format<A...>();
    return std::apply([p](auto... s) { return sk_tell(p, fmt.data(), s...); },
                      std::tuple_cat(sk_typed::slots(a)...));
}

template <class... A> inline int sk_returnv(sk_process *self, A... a)
{
    static_assert(sizeof...(A) >= 1, "skproc: sk_returnv needs a value");
    static_assert((sk_typed::sends<A>() && ...), SK_TYPED_CXX_SEND_MSG);
    static constexpr auto fmt = sk_typed::format<A...>();
    return std::apply([self](auto... s) { return sk_return(self, fmt.data(), s...); },
                      std::tuple_cat(sk_typed::slots(a)...));
}

template <class... A> inline int sk_listenv(sk_process *p, double timeout, A... a)
{
    static_assert(sizeof...(A) >= 1, "skproc: sk_listenv needs a pointer");
    static_assert((sk_typed::receives<A>() && ...), SK_TYPED_CXX_RECV_MSG);
    static constexpr auto fmt = sk_typed::format<A...>();
    return std::apply([p, timeout](auto... s) { return sk_listen(p, timeout, fmt.data(), s...); },
                      std::tuple_cat(sk_typed::slots(a)...));
}

template <class... A> inline int sk_resultv(sk_process *p, A... a)
{
    static_assert(sizeof...(A) >= 1, "skproc: sk_resultv needs a pointer");
    static_assert((sk_typed::receives<A>() && ...), SK_TYPED_CXX_RECV_MSG);
    static constexpr auto fmt = sk_typed::format<A...>();
    return std::apply([p](auto... s) { return sk_result(p, fmt.data(), s...); },
                      std::tuple_cat(sk_typed::slots(a)...));
}

} /* extern "C++" */

extern "C" {

#endif /* __cplusplus */

#endif /* SKPROC_TYPED_H */
