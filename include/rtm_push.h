/*
 * Push providers. A provider turns one push (rtm_core.h: struct rtm_push)
 * and a batch of device tokens into an HTTP request, and an HTTP response
 * into a verdict. Both are pure functions: no network, no clock, no globals;
 * the HTTP worker (a later module) sends what they build and feeds back what
 * comes in. JPush is the first provider; FCM or APNs would be more tables of
 * the same shape.
 */
#ifndef RTM_PUSH_H
#define RTM_PUSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rtm_core.h"

#define RTM_PUSH_BATCH_MAX 1000 /* JPush: registration ids per request */

/* The operator's extra request options (plugin_opt_jpush_options) in the
 * form a build merges, read once at start-up: `members` is the object's
 * text without its braces and without the members the plugin always sets
 * (time_to_live, apns_collapse_id); malloc'd, "" when nothing is left. */
struct rtm_push_options {
    char *members;
    size_t len;
    bool sets_apns_production; /* the operator's apns_production wins */
};

/* What a provider needs from the configuration. Strings are NUL-terminated
 * and owned by the caller. */
struct rtm_push_settings {
    const char *endpoint; /* e.g. "https://api.jpush.cn", no trailing slash */
    const char *app_key;
    const char *master_secret; /* never logged */
    const char *title;         /* template: {caller} and {channel} are replaced */
    const char *alert;         /* template, as title */
    bool apns_production;
    const struct rtm_push_options *extra_options; /* merged into "options", or NULL */
};

/* An HTTP request ready to send. Every string is malloc'd and owned by the
 * request: free with rtm_push_request_free(). Credentials go separately so
 * the worker can hand them to libcurl's Basic auth and never log them. */
struct rtm_push_request {
    char *url;
    char *body; /* JSON */
    size_t body_len;
    char *username; /* Basic auth */
    char *password;
};

enum rtm_push_outcome {
    RTM_PUSH_OK,             /* delivered to the provider */
    RTM_PUSH_RETRY,          /* 5xx, 429 or a network error: retry later */
    RTM_PUSH_CONFIG_ERROR,   /* auth, app key, bad parameter, blocked: never retry */
    RTM_PUSH_INVALID_TOKENS, /* none of the request's tokens is known: drop them */
    RTM_PUSH_REJECTED,       /* any other refusal: do not retry */
};

/* What a response means. `retry_after_ms` is -1 unless the provider said
 * when to come back (Retry-After, X-Rate-Limit-Reset). `provider_code` is
 * the provider's own error code, 0 when none (always 0 for a 2xx, whose
 * body is not read). `message` is a short static or provider-given text for
 * the log line, already stripped of secrets. */
struct rtm_push_verdict {
    enum rtm_push_outcome outcome;
    int64_t retry_after_ms;
    long provider_code;
    char message[160];
};

/* The response as the worker received it. `status` 0 means no HTTP response
 * at all (DNS, connect, TLS or timeout error). Header values are NULL when
 * absent. */
struct rtm_push_response {
    long status;
    const char *body;
    size_t body_len;
    const char *retry_after;      /* Retry-After: seconds, or an HTTP date (treated as absent) */
    const char *rate_limit_reset; /* X-Rate-Limit-Reset: seconds until the quota resets */
    const char *error;            /* why no response came (status 0), or NULL */
};

struct rtm_push_provider {
    const char *name; /* "jpush": the value of "provider" in a registration */
    /* Builds the request for `push` to tokens[0..count), count <= RTM_PUSH_BATCH_MAX.
     * `now_ms` sets time_to_live. Returns 0, or -1 when out of memory. */
    int (*build)(const struct rtm_push_settings *settings, const struct rtm_push *push,
                 const char *const *tokens, size_t count, int64_t now_ms,
                 struct rtm_push_request *out);
    void (*classify)(const struct rtm_push_response *response, struct rtm_push_verdict *out);
};

extern const struct rtm_push_provider rtm_push_jpush;

void rtm_push_request_free(struct rtm_push_request *req);

/* Reads a JSON object's text into `out`. -1 (and `out` empty) when the text
 * is not a JSON object or memory ran out. */
int rtm_push_options_prepare(const char *json, struct rtm_push_options *out);
void rtm_push_options_free(struct rtm_push_options *o);

/* Replaces {caller} and {channel} in `template`. malloc'd; NULL when out of memory. */
char *rtm_push_render(const char *template, const char *caller, const char *channel);

#endif
