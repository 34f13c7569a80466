/*
 * One-pass JSON object writer (rtm_jsonw.h).
 */
#include <stdlib.h>
#include <string.h>

#include "rtm_jsonw.h"

#define INT_TEXT 24 /* INT64_MIN is 20 characters */

/* Room for `more` bytes and a NUL when the buffer is full: grows it, or
 * drops it when memory ran out, after which every call is a no-op. */
static bool grow(struct rtm_jsonw *w, size_t more)
{
    if (!w->buf)
        return false;
    size_t cap = w->cap;
    while (more >= cap - w->len) {
        if (cap > SIZE_MAX / 2) {
            cap = 0;
            break;
        }
        cap *= 2;
    }
    char *buf = cap ? realloc(w->buf, cap) : NULL;
    if (!buf) {
        free(w->buf);
        w->buf = NULL;
        return false;
    }
    w->buf = buf;
    w->cap = cap;
    return true;
}

/* Inline, the room check and a short constant memcpy() cost a compare and
 * a store; a call each was most of what an event cost to write. */
static inline __attribute__((always_inline)) void put(struct rtm_jsonw *w, const char *s, size_t n)
{
    if ((!w->buf || n >= w->cap - w->len) && !grow(w, n))
        return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

/* cJSON's escapes: the two-character ones it knows, \u00XX for the other
 * control characters; every other byte (UTF-8 included) as it is. */
static void put_escaped(struct rtm_jsonw *w, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        const unsigned char *run = p;
        while (*p >= 0x20 && *p != '"' && *p != '\\')
            p++;
        put(w, (const char *)run, (size_t)(p - run));
        if (!*p)
            break;
        char esc[6] = {'\\', 0};
        size_t n = 2;
        switch (*p) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[*p >> 4];
            esc[5] = hex[*p & 0xf];
            n = 6;
        }
        put(w, esc, n);
        p++;
    }
}

/* The comma before a member, except the first of its object. */
static void next_member(struct rtm_jsonw *w)
{
    if (!w->empty)
        put(w, ",", 1);
    w->empty = false;
}

/* `,"name":`. Names are the plugin's own literals, which need no
 * escaping. */
static void put_name(struct rtm_jsonw *w, const char *name)
{
    next_member(w);
    put(w, "\"", 1);
    put(w, name, strlen(name));
    put(w, "\":", 2);
}

void rtm_jsonw_begin(struct rtm_jsonw *w, size_t hint)
{
    w->cap = hint < 16 ? 16 : hint;
    w->buf = malloc(w->cap);
    w->len = 0;
    w->empty = true;
    put(w, "{", 1);
}

void rtm_jsonw_string(struct rtm_jsonw *w, const char *name, const char *value)
{
    put_name(w, name);
    put(w, "\"", 1);
    put_escaped(w, value);
    put(w, "\"", 1);
}

/* Decimal digits of `value` at the end of `num`; returns where they start.
 * By hand: snprintf's format parsing cost more than the rest of an event. */
static char *format_int(char num[INT_TEXT], int64_t value)
{
    uint64_t mag = value < 0 ? 0 - (uint64_t)value : (uint64_t)value;
    char *p = num + INT_TEXT;
    do {
        *--p = (char)('0' + mag % 10);
        mag /= 10;
    } while (mag);
    if (value < 0)
        *--p = '-';
    return p;
}

void rtm_jsonw_int(struct rtm_jsonw *w, const char *name, int64_t value)
{
    char num[INT_TEXT];
    char *digits = format_int(num, value);
    put_name(w, name);
    put(w, digits, (size_t)(num + sizeof(num) - digits));
}

void rtm_jsonw_bool(struct rtm_jsonw *w, const char *name, bool value)
{
    put_name(w, name);
    if (value)
        put(w, "true", 4);
    else
        put(w, "false", 5);
}

void rtm_jsonw_object(struct rtm_jsonw *w, const char *name)
{
    put_name(w, name);
    put(w, "{", 1);
    w->empty = true;
}

void rtm_jsonw_close(struct rtm_jsonw *w)
{
    put(w, "}", 1);
    w->empty = false; /* the closed object is a member of its parent */
}

void rtm_jsonw_strings(struct rtm_jsonw *w, const char *name, const char *const *values,
                       size_t count)
{
    put_name(w, name);
    put(w, "[", 1);
    for (size_t i = 0; i < count; i++) {
        if (i > 0)
            put(w, ",", 1);
        put(w, "\"", 1);
        put_escaped(w, values[i]);
        put(w, "\"", 1);
    }
    put(w, "]", 1);
}

void rtm_jsonw_members(struct rtm_jsonw *w, const char *members, size_t len)
{
    next_member(w);
    put(w, members, len);
}

char *rtm_jsonw_end(struct rtm_jsonw *w, size_t *len)
{
    put(w, "}", 1);
    char *text = w->buf;
    *len = text ? w->len : 0;
    if (text)
        text[w->len] = '\0'; /* put() always keeps room for it */
    w->buf = NULL;
    return text;
}
