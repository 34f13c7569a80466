/*
 * One-pass JSON object writer (rtm_jsonw.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtm_jsonw.h"

/* Room for `more` bytes and a NUL; false (and the buffer dropped) when
 * memory ran out, after which every call is a no-op. */
static bool reserve(struct rtm_jsonw *w, size_t more)
{
    if (!w->buf)
        return false;
    if (more < w->cap - w->len)
        return true;
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

static void put(struct rtm_jsonw *w, const char *s, size_t n)
{
    if (!reserve(w, n))
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

/* `,"name":` (no comma before the first member). Names are the plugin's
 * own literals, which need no escaping. */
static void put_name(struct rtm_jsonw *w, const char *name)
{
    if (!w->empty)
        put(w, ",", 1);
    w->empty = false;
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

void rtm_jsonw_int(struct rtm_jsonw *w, const char *name, int64_t value)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%" PRId64, value);
    put_name(w, name);
    put(w, num, (size_t)n);
}

void rtm_jsonw_bool(struct rtm_jsonw *w, const char *name, bool value)
{
    put_name(w, name);
    if (value)
        put(w, "true", 4);
    else
        put(w, "false", 5);
}

char *rtm_jsonw_end(struct rtm_jsonw *w, size_t *len)
{
    put(w, "}", 1);
    char *text = w->buf;
    *len = text ? w->len : 0;
    if (text)
        text[w->len] = '\0'; /* reserve() always keeps room for it */
    w->buf = NULL;
    return text;
}
