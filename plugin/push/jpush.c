/*
 * The JPush provider (SPEC 6.3): POST {endpoint}/v3/push with Basic auth.
 *
 * build() writes the whole payload in one pass (rtm_jsonw.h): a cJSON tree,
 * printed and deleted, cost more than the rest of a push on the broker
 * thread (bench/profile.sh). The operator's extra options are read into
 * text once, at start-up (rtm_push_options_prepare()). Any failed
 * allocation frees whatever the request already holds, so the caller sees
 * either a complete request or nothing.
 * classify() reads only the HTTP status, the JPush error object
 * {"error":{"code":N,"message":"..."}} and two headers; a missing, truncated
 * or non-JSON body simply means "no JPush code". Neither function reads a
 * clock or keeps state: time comes in as now_ms, settings as arguments.
 */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtm_jsonw.h"
#include "rtm_push.h"

#define JPUSH_PATH    "/v3/push"
#define JPUSH_TTL_MAX 864000 /* JPush keeps an offline message at most 10 days */

/* JPush error codes (Push API v3) that decide a verdict. */
enum {
    JPUSH_MISSING_PARAM = 1002,
    JPUSH_BAD_PARAM = 1003,
    JPUSH_AUTH_FAILED = 1004,
    JPUSH_BAD_APP_KEY = 1008,
    JPUSH_NO_AUDIENCE = 1011, /* none of the registration ids is known */
    JPUSH_RATE_LIMITED = 2002,
    JPUSH_BLOCKED_FIRST = 2003, /* 2003-2005: app or feature blocked or forbidden */
    JPUSH_BLOCKED_LAST = 2005,
};

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

/* ------------------------------------------------------------------------ */
/* Templates */

/* The placeholder at `p`, if any: its length and its replacement. */
static size_t placeholder(const char *p, const char *caller, const char *channel,
                          const char **value)
{
    static const char caller_key[] = "{caller}", channel_key[] = "{channel}";
    if (strncmp(p, caller_key, sizeof(caller_key) - 1) == 0) {
        *value = caller;
        return sizeof(caller_key) - 1;
    }
    if (strncmp(p, channel_key, sizeof(channel_key) - 1) == 0) {
        *value = channel;
        return sizeof(channel_key) - 1;
    }
    return 0;
}

/* Expands `template` into `out` (when not NULL); returns the length. One
 * function does both passes so that measuring and writing cannot disagree. */
static size_t expand(const char *template, const char *caller, const char *channel, char *out)
{
    size_t len = 0;
    for (const char *p = template; *p;) {
        const char *value;
        size_t skip = *p == '{' ? placeholder(p, caller, channel, &value) : 0;
        size_t n = skip ? strlen(value) : 1;
        if (out)
            memcpy(out + len, skip ? value : p, n);
        len += n;
        p += skip ? skip : 1;
    }
    return len;
}

char *rtm_push_render(const char *template, const char *caller, const char *channel)
{
    template = or_empty(template);
    caller = or_empty(caller);
    channel = or_empty(channel);
    size_t len = expand(template, caller, channel, NULL);
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    expand(template, caller, channel, out);
    out[len] = '\0';
    return out;
}

/* ------------------------------------------------------------------------ */
/* The request */

/* Whole seconds from now_ms to expires_at, rounded up, in [1, JPUSH_TTL_MAX]:
 * a call push that arrives after the call is useless, and a cancel push is
 * still worth a second. Unsigned arithmetic: no overflow on odd clocks. */
static int64_t ttl_seconds(int64_t expires_at, int64_t now_ms)
{
    if (expires_at <= now_ms)
        return 1;
    uint64_t left_ms = (uint64_t)expires_at - (uint64_t)now_ms;
    uint64_t secs = left_ms / 1000 + (left_ms % 1000 != 0);
    return secs > JPUSH_TTL_MAX ? JPUSH_TTL_MAX : (int64_t)secs;
}

/* The app's view of the call: what it needs to ring or to stop ringing,
 * and, on a call_cancel only, why it stops (answered_elsewhere, canceled,
 * or the failure's reason), so the app can tell a missed call from one
 * taken on another device. */
static void write_extras(struct rtm_jsonw *w, const struct rtm_push *push)
{
    bool cancel = push->kind == RTM_PUSH_CALL_CANCEL;
    rtm_jsonw_object(w, "extras");
    rtm_jsonw_string(w, "rtm", cancel ? "call_cancel" : "call_invite");
    rtm_jsonw_string(w, "id", or_empty(push->call_id));
    rtm_jsonw_string(w, "caller", or_empty(push->caller));
    rtm_jsonw_string(w, "channel", or_empty(push->channel));
    rtm_jsonw_int(w, "expires_at", push->expires_at);
    if (cancel)
        rtm_jsonw_string(w, "reason", or_empty(push->reason));
    rtm_jsonw_close(w);
}

/* The iOS alert is the plain text; a call_cancel carries the same text and
 * the app replaces it (same apns_collapse_id). */
static void write_notification(struct rtm_jsonw *w, const struct rtm_push *push, const char *alert,
                               const char *title)
{
    rtm_jsonw_object(w, "notification");
    rtm_jsonw_object(w, "android");
    rtm_jsonw_string(w, "alert", alert);
    rtm_jsonw_string(w, "title", title);
    rtm_jsonw_int(w, "priority", 2);
    rtm_jsonw_string(w, "category", "call");
    write_extras(w, push);
    rtm_jsonw_close(w);
    rtm_jsonw_object(w, "ios");
    rtm_jsonw_string(w, "alert", alert);
    rtm_jsonw_string(w, "sound", "default");
    write_extras(w, push);
    rtm_jsonw_close(w);
    rtm_jsonw_close(w);
}

/* "options": the operator's (plugin_opt_jpush_options) first, then ours.
 * The operator's apns_production overrides the plugin option; but
 * time_to_live and apns_collapse_id are always ours (prepare() removed the
 * operator's), because a call push must die with the call and a cancel
 * must replace its invite. */
static void write_options(struct rtm_jsonw *w, const struct rtm_push_settings *settings,
                          const struct rtm_push *push, int64_t now_ms)
{
    const struct rtm_push_options *extra = settings->extra_options;
    rtm_jsonw_object(w, "options");
    if (extra && extra->len)
        rtm_jsonw_members(w, extra->members, extra->len);
    rtm_jsonw_int(w, "time_to_live", ttl_seconds(push->expires_at, now_ms));
    rtm_jsonw_string(w, "apns_collapse_id", or_empty(push->call_id));
    if (!(extra && extra->sets_apns_production))
        rtm_jsonw_bool(w, "apns_production", settings->apns_production);
    rtm_jsonw_close(w);
}

/* Every member called `name`: a JSON text may repeat a name. */
static void delete_all(cJSON *obj, const char *name)
{
    while (cJSON_GetObjectItemCaseSensitive(obj, name))
        cJSON_DeleteItemFromObjectCaseSensitive(obj, name);
}

/* Read once, at start-up: the cJSON tree this takes (a parse and a print)
 * cost more per push than the rest of the request (bench/profile.sh). */
int rtm_push_options_prepare(const char *json, struct rtm_push_options *out)
{
    memset(out, 0, sizeof(*out));
    cJSON *o = json ? cJSON_Parse(json) : NULL;
    char *text = NULL;
    if (cJSON_IsObject(o)) {
        delete_all(o, "time_to_live");
        delete_all(o, "apns_collapse_id");
        out->sets_apns_production = cJSON_GetObjectItemCaseSensitive(o, "apns_production") != NULL;
        text = cJSON_PrintUnformatted(o);
    }
    cJSON_Delete(o);
    size_t len = text ? strlen(text) : 0;
    char *members = len >= 2 ? malloc(len - 1) : NULL;
    if (members) { /* the text between the braces */
        memcpy(members, text + 1, len - 2);
        members[len - 2] = '\0';
    }
    cJSON_free(text);
    if (!members) {
        memset(out, 0, sizeof(*out));
        return -1;
    }
    out->members = members;
    out->len = len - 2;
    return 0;
}

void rtm_push_options_free(struct rtm_push_options *o)
{
    if (!o)
        return;
    free(o->members);
    memset(o, 0, sizeof(*o));
}

/* The whole push object in one pass, or NULL when out of memory. */
static char *payload(const struct rtm_push_settings *settings, const struct rtm_push *push,
                     const char *const *tokens, size_t count, int64_t now_ms, size_t *len)
{
    char *alert = rtm_push_render(settings->alert, push->caller, push->channel);
    char *title = rtm_push_render(settings->title, push->caller, push->channel);
    char *text = NULL;
    *len = 0;
    if (alert && title) {
        struct rtm_jsonw w;
        size_t hint = 1024;
        for (size_t i = 0; i < count; i++)
            hint += strlen(tokens[i]) + 3;
        rtm_jsonw_begin(&w, hint);
        rtm_jsonw_string(&w, "platform", "all");
        rtm_jsonw_object(&w, "audience");
        rtm_jsonw_strings(&w, "registration_id", tokens, count);
        rtm_jsonw_close(&w);
        write_notification(&w, push, alert, title);
        write_options(&w, settings, push, now_ms);
        text = rtm_jsonw_end(&w, len);
    }
    free(alert);
    free(title);
    return text;
}

static char *concat(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);
    if (s) {
        memcpy(s, a, la);
        memcpy(s + la, b, lb + 1);
    }
    return s;
}

static int jpush_build(const struct rtm_push_settings *settings, const struct rtm_push *push,
                       const char *const *tokens, size_t count, int64_t now_ms,
                       struct rtm_push_request *out)
{
    memset(out, 0, sizeof(*out));
    out->body = payload(settings, push, tokens, count, now_ms, &out->body_len);
    out->url = concat(or_empty(settings->endpoint), JPUSH_PATH);
    out->username = concat(or_empty(settings->app_key), "");
    out->password = concat(or_empty(settings->master_secret), "");
    if (!out->body || !out->url || !out->username || !out->password) {
        rtm_push_request_free(out);
        return -1;
    }
    return 0;
}

/* Overwrites a secret before its memory goes back to the allocator. */
static void wipe(char *s)
{
    if (!s)
        return;
    for (volatile char *p = s; *p; p++)
        *p = '\0';
}

void rtm_push_request_free(struct rtm_push_request *req)
{
    if (!req)
        return;
    wipe(req->password);
    free(req->url);
    free(req->body);
    free(req->username);
    free(req->password);
    memset(req, 0, sizeof(*req));
}

/* ------------------------------------------------------------------------ */
/* The response */

/* A header's delay as milliseconds: only plain whole seconds count (an HTTP
 * date or anything else is treated as absent, -1). */
static int64_t seconds_header_ms(const char *value)
{
    if (!value)
        return -1;
    while (*value == ' ' || *value == '\t')
        value++;
    int64_t secs = 0;
    int digits = 0;
    for (; isdigit((unsigned char)*value); value++, digits++) {
        if (digits == 9) /* over 31 years: nonsense */
            return -1;
        secs = secs * 10 + (*value - '0');
    }
    while (isspace((unsigned char)*value))
        value++;
    return digits && !*value ? secs * 1000 : -1;
}

/* When to come back: Retry-After first, then, only when the quota is what
 * ran out, JPush's quota reset (JPush sends it on every response, and a 5xx
 * has nothing to do with the quota). */
static int64_t retry_after_ms(const struct rtm_push_response *r, bool rate_limited)
{
    int64_t ms = seconds_header_ms(r->retry_after);
    return ms >= 0 || !rate_limited ? ms : seconds_header_ms(r->rate_limit_reset);
}

/* What a JPush body says: error code (0 if none) and its message, copied
 * into `msg` (empty if none). */
static long body_error(const struct rtm_push_response *r, char *msg, size_t msg_len)
{
    msg[0] = '\0';
    if (!r->body || !r->body_len)
        return 0;
    cJSON *root = cJSON_ParseWithLength(r->body, r->body_len);
    cJSON *err = cJSON_GetObjectItemCaseSensitive(root, "error");
    cJSON *code = cJSON_GetObjectItemCaseSensitive(err, "code");
    cJSON *text = cJSON_GetObjectItemCaseSensitive(err, "message");
    long n = 0;
    if (cJSON_IsNumber(code) && code->valuedouble >= 1 && code->valuedouble <= 999999999)
        n = (long)code->valuedouble;
    if (cJSON_IsString(text))
        snprintf(msg, msg_len, "%s", text->valuestring);
    cJSON_Delete(root);
    return n;
}

static bool config_code(long code)
{
    return code == JPUSH_MISSING_PARAM || code == JPUSH_BAD_PARAM || code == JPUSH_AUTH_FAILED ||
           code == JPUSH_BAD_APP_KEY || (code >= JPUSH_BLOCKED_FIRST && code <= JPUSH_BLOCKED_LAST);
}

/* The verdict for a response that came back with an HTTP status. */
static enum rtm_push_outcome outcome(long status, long code)
{
    if (status >= 200 && status <= 299)
        return RTM_PUSH_OK;
    if (status >= 500 && status <= 599)
        return RTM_PUSH_RETRY;
    if (status == 429 || code == JPUSH_RATE_LIMITED)
        return RTM_PUSH_RETRY;
    if (status < 400 || status > 499)
        return RTM_PUSH_REJECTED; /* 1xx, 3xx or nonsense: nothing to retry */
    if (code == JPUSH_NO_AUDIENCE)
        return RTM_PUSH_INVALID_TOKENS;
    /* 401 without a JPush code still means the credentials are wrong. */
    if (config_code(code) || (status == 401 && code == 0))
        return RTM_PUSH_CONFIG_ERROR;
    return RTM_PUSH_REJECTED;
}

/* Keeps the log line one line: control bytes become spaces, and a cut
 * UTF-8 sequence at the end is dropped. */
static void tidy(char *s)
{
    size_t len = strlen(s);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            s[i] = ' ';
    size_t start = len;
    while (start > 0 && ((unsigned char)s[start - 1] & 0xC0) == 0x80)
        start--;
    if (start > 0 && (unsigned char)s[start - 1] >= 0xC0) {
        unsigned char lead = (unsigned char)s[start - 1];
        size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
        if (len - (start - 1) < need)
            s[start - 1] = '\0';
    }
}

static void jpush_classify(const struct rtm_push_response *response, struct rtm_push_verdict *out)
{
    out->retry_after_ms = -1;
    out->provider_code = 0;
    if (response->status == 0) {
        out->outcome = RTM_PUSH_RETRY;
        snprintf(out->message, sizeof(out->message), "JPush: no HTTP response%s%s",
                 response->error && *response->error ? ": " : "",
                 response->error ? response->error : "");
        return;
    }
    /* A 2xx is a success whatever its body says: no need to parse it. */
    char text[sizeof(out->message)] = "";
    bool ok = response->status >= 200 && response->status <= 299;
    long code = ok ? 0 : body_error(response, text, sizeof(text));
    out->provider_code = code;
    out->outcome = outcome(response->status, code);
    if (out->outcome == RTM_PUSH_RETRY)
        out->retry_after_ms =
            retry_after_ms(response, response->status == 429 || code == JPUSH_RATE_LIMITED);
    /* A long JPush message is cut to fit and tidy() mends the cut. The
     * length is kept only because gcc -O0 warns about a truncating
     * snprintf() whose result is ignored. */
    int written =
        code ? snprintf(out->message, sizeof(out->message), "JPush HTTP %ld, error %ld: %s",
                        response->status, code, text[0] ? text : "(no message)")
             : snprintf(out->message, sizeof(out->message), "JPush HTTP %ld", response->status);
    (void)written;
    tidy(out->message);
}

const struct rtm_push_provider rtm_push_jpush = {
    .name = "jpush",
    .build = jpush_build,
    .classify = jpush_classify,
};
