/*
 * A one-pass writer for the JSON objects the plugin sends (stamped events,
 * errors, presence, push requests): one growing buffer instead of a cJSON
 * tree of a node and a string copy per field, printed and freed again.
 * Strings are escaped as cJSON escapes them, so the output reads the same
 * to any parser. Names are the caller's literals and are not escaped. Pure.
 */
#ifndef RTM_JSONW_H
#define RTM_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rtm_jsonw {
    char *buf; /* malloc'd; NULL once something failed */
    size_t len;
    size_t cap;
    bool empty; /* no member written yet: no comma before the next */
};

/* Opens an object in a buffer of `hint` bytes (it grows when needed). */
void rtm_jsonw_begin(struct rtm_jsonw *w, size_t hint);
void rtm_jsonw_string(struct rtm_jsonw *w, const char *name, const char *value);
void rtm_jsonw_int(struct rtm_jsonw *w, const char *name, int64_t value);
void rtm_jsonw_bool(struct rtm_jsonw *w, const char *name, bool value);
/* Opens an object as member `name`: what is written next goes into it until
 * rtm_jsonw_close(). The writer keeps no stack: every object opened must be
 * closed before rtm_jsonw_end(). */
void rtm_jsonw_object(struct rtm_jsonw *w, const char *name);
void rtm_jsonw_close(struct rtm_jsonw *w);
/* An array of `count` strings as member `name`. */
void rtm_jsonw_strings(struct rtm_jsonw *w, const char *name, const char *const *values,
                       size_t count);
/* Members the caller has already serialized (`"a":1,"b":2`: valid, not
 * empty, no braces), into the object open now. */
void rtm_jsonw_members(struct rtm_jsonw *w, const char *members, size_t len);
/* Closes the outermost object (the one rtm_jsonw_begin() opened). Returns the malloc'd
 * NUL-terminated text and its length in `*len`, or NULL (and 0) when memory ran out on the way. */
char *rtm_jsonw_end(struct rtm_jsonw *w, size_t *len);

#endif
