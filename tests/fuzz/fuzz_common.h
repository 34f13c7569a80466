/*
 * What the libFuzzer targets share: the entry point's prototype, a check
 * that aborts (so libFuzzer reports the input and a stack), copies of the
 * input into buffers of exactly the right size (so AddressSanitizer catches
 * a read one byte too far), and a reader that turns the input into a
 * sequence of small choices. Header-only: each target is one program.
 */
#ifndef RTM_FUZZ_COMMON_H
#define RTM_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fuzz_fail(__FILE__, __LINE__, #cond);                                                  \
    } while (0)

static inline _Noreturn void fuzz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: invariant violated: %s\n", file, line, what);
    abort();
}

/* `len` bytes in a heap block of exactly that size, with no NUL after them
 * (an MQTT payload has none); NULL for an empty input, as the broker passes
 * an empty payload. */
static inline char *fuzz_bytes(const void *data, size_t len)
{
    if (len == 0)
        return NULL;
    char *buf = malloc(len);
    FUZZ_CHECK(buf != NULL);
    memcpy(buf, data, len);
    return buf;
}

/* The input as a C string: cut at its first NUL, in a block of exactly
 * strlen + 1 bytes. */
static inline char *fuzz_string(const void *data, size_t len)
{
    const char *nul = memchr(data, '\0', len);
    size_t n = nul ? (size_t)(nul - (const char *)data) : len;
    char *s = malloc(n + 1);
    FUZZ_CHECK(s != NULL);
    memcpy(s, data, n);
    s[n] = '\0';
    return s;
}

/* The input consumed front to back; an exhausted reader yields zeros. */
struct fuzz_reader {
    const uint8_t *p;
    size_t left;
};

static inline uint8_t fuzz_byte(struct fuzz_reader *r)
{
    if (r->left == 0)
        return 0;
    r->left--;
    return *r->p++;
}

/* Up to `max` bytes (fewer when the input runs out); *len says how many. */
static inline const uint8_t *fuzz_take(struct fuzz_reader *r, size_t max, size_t *len)
{
    const uint8_t *at = r->p;
    *len = max < r->left ? max : r->left;
    r->p += *len;
    r->left -= *len;
    return at;
}

/* Splits off the bytes up to the next `sep` (or the end); the separator is
 * consumed and not returned. */
static inline const uint8_t *fuzz_until(struct fuzz_reader *r, uint8_t sep, size_t *len)
{
    const uint8_t *at = r->p;
    const uint8_t *end = r->left ? memchr(r->p, sep, r->left) : NULL;
    *len = end ? (size_t)(end - at) : r->left;
    r->p += *len + (end ? 1 : 0);
    r->left -= *len + (end ? 1 : 0);
    return at;
}

/* Appends s[0..len) to the NUL-terminated text in buf[0..size), cutting
 * what does not fit. */
static inline void fuzz_append(char *buf, size_t size, size_t *used, const char *s, size_t len)
{
    if (*used + len >= size)
        len = *used < size - 1 ? size - 1 - *used : 0;
    memcpy(buf + *used, s, len);
    *used += len;
    buf[*used] = '\0';
}

#endif
