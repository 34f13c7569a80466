/*
 * The plugin's JSON. Call requests are validated field by field before they
 * touch any state; events are rebuilt from validated fields only, so nothing
 * a client adds is ever forwarded and every stamped field is the server's.
 * SPEC 8's replies, member events, counts and stamped attributes are written
 * the same way, and what the plugin stored is recognised when read back.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rtm_jsonw.h"
#include "rtm_message.h"
#include "rtm_topic.h"

static const char *const type_names[] = {
    [RTM_MSG_INVITE] = "invite", [RTM_MSG_RINGING] = "ringing", [RTM_MSG_ACCEPT] = "accept",
    [RTM_MSG_REFUSE] = "refuse", [RTM_MSG_CANCEL] = "cancel",   [RTM_MSG_FAILURE] = "failure",
};

static const char *const err_codes[] = {
    [RTM_OK] = "ok",
    [RTM_ERR_BAD_REQUEST] = "bad_request",
    [RTM_ERR_UNKNOWN_INVITATION] = "unknown_invitation",
    [RTM_ERR_NOT_PARTY] = "not_party",
    [RTM_ERR_INVALID_STATE] = "invalid_state",
    [RTM_ERR_DUPLICATE_ID] = "duplicate_id",
    [RTM_ERR_SELF_CALL] = "self_call",
    [RTM_ERR_RATE_LIMITED] = "rate_limited",
    [RTM_ERR_BUSY_LIMIT] = "busy_limit",
    [RTM_ERR_LIMIT_EXCEEDED] = "limit_exceeded",
};

static const char *const reason_names[] = {
    [RTM_FAIL_NONE] = "",
    [RTM_FAIL_PEER_OFFLINE] = "peer_offline",
    [RTM_FAIL_NO_RESPONSE] = "no_response",
    [RTM_FAIL_EXPIRED] = "expired",
    [RTM_FAIL_CALLER_OFFLINE] = "caller_offline",
};

const char *rtm_msg_type_name(enum rtm_msg_type type)
{
    return type < RTM_MSG_NONE ? type_names[type] : "";
}

const char *rtm_err_code(enum rtm_err err)
{
    return err <= RTM_ERR_LIMIT_EXCEEDED ? err_codes[err] : "internal";
}

const char *rtm_fail_reason_name(enum rtm_fail_reason reason)
{
    return reason <= RTM_FAIL_CALLER_OFFLINE ? reason_names[reason] : "";
}

/* Length of the UTF-8 sequence starting with byte c, 0 when c cannot start one. */
static size_t utf8_seq_len(unsigned char c)
{
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return 2;
    if (c >= 0xe0 && c <= 0xef)
        return 3;
    if (c >= 0xf0 && c <= 0xf4)
        return 4;
    return 0;
}

bool rtm_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq_len(p[i]);
        if (n == 0 || i + n > len)
            return false;
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
        }
        /* Reject overlongs, surrogates and code points above U+10FFFF. */
        if ((p[i] == 0xe0 && p[i + 1] < 0xa0) || (p[i] == 0xed && p[i + 1] > 0x9f) ||
            (p[i] == 0xf0 && p[i + 1] < 0x90) || (p[i] == 0xf4 && p[i + 1] > 0x8f))
            return false;
        i += n;
    }
    return true;
}

static enum rtm_msg_type type_from_name(const char *name)
{
    for (int t = RTM_MSG_INVITE; t <= RTM_MSG_CANCEL; t++) {
        if (strcmp(type_names[t], name) == 0)
            return (enum rtm_msg_type)t;
    }
    return RTM_MSG_NONE;
}

/* An optional string field: absent is fine; present must be a string of at
 * most `max` bytes. */
static bool optional_string(const cJSON *obj, const char *name, size_t max, const char **out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    *out = NULL;
    if (!item)
        return true;
    if (!cJSON_IsString(item) || strlen(item->valuestring) > max)
        return false;
    *out = item->valuestring;
    return true;
}

/* A channel name ends up in push payloads and app logs: no C0 or DEL. */
static bool has_control_char(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    }
    return false;
}

static bool optional_timeout(const cJSON *obj, uint32_t max, uint32_t *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, "timeout");
    *out = 0;
    if (!item)
        return true;
    if (!cJSON_IsNumber(item))
        return false;
    double v = item->valuedouble;
    if (!(v >= 1 && v <= (double)max) || floor(v) != v)
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool only_whitespace(const char *p, const char *end)
{
    for (; p < end; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            return false;
    }
    return true;
}

/* An escaped NUL anywhere; an escaped backslash before "u0000" is not one. */
static bool has_nul_escape(const char *p, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (p[i] != '\\')
            continue;
        if (p[i + 1] == 'u' && i + 5 < len && memcmp(p + i + 2, "0000", 4) == 0)
            return true;
        i++;
    }
    return false;
}

/* The deepest nesting of arrays and objects, counted without parsing (so
 * cJSON's recursion never sees a hostile depth); strings are skipped. */
static size_t nesting_depth(const char *p, size_t len)
{
    size_t depth = 0, deepest = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > deepest)
                deepest = depth;
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return deepest;
}

/* Too many members, or one name twice: parsers disagree on which of two
 * duplicates wins, so the plugin and the apps could read different values. */
static const char *check_members(const cJSON *root)
{
    size_t n = 0;
    for (const cJSON *a = root->child; a; a = a->next) {
        if (++n > RTM_JSON_MEMBERS_MAX)
            return "payload has more than 32 fields";
        for (const cJSON *b = root->child; b != a; b = b->next) {
            if (strcmp(a->string, b->string) == 0)
                return "payload has a field twice";
        }
    }
    return NULL;
}

cJSON *rtm_json_object_parse(const char *payload, size_t len, const char **why)
{
    if (!rtm_utf8_valid(payload, len)) {
        *why = "payload is not valid UTF-8";
        return NULL;
    }
    if (nesting_depth(payload, len) > RTM_JSON_DEPTH_MAX) {
        *why = "payload nests deeper than 8 levels";
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = payload && len ? cJSON_ParseWithLengthOpts(payload, len, &end, 0) : NULL;
    if (!root || !only_whitespace(end, payload + len)) {
        cJSON_Delete(root);
        *why = "payload is not JSON";
        return NULL;
    }
    if (!cJSON_IsObject(root) || has_nul_escape(payload, len)) {
        *why = cJSON_IsObject(root) ? "payload contains an escaped NUL (\\u0000)"
                                    : "payload is not a JSON object";
        cJSON_Delete(root);
        return NULL;
    }
    if ((*why = check_members(root)) != NULL) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* Reads `id` and `type`, each kept when valid so an error can name them. */
static enum rtm_err parse_type_and_id(const cJSON *root, struct rtm_request *out, const char **why)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    bool id_ok = cJSON_IsString(id) && rtm_id_valid(id->valuestring, strlen(id->valuestring));
    if (id_ok)
        strcpy(out->id, id->valuestring);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "type");
    if (cJSON_IsString(type))
        out->type = type_from_name(type->valuestring);
    if (!cJSON_IsString(type)) {
        *why = "missing or non-string field: type";
        return RTM_ERR_BAD_REQUEST;
    }
    if (out->type == RTM_MSG_NONE) {
        *why = "unknown type (expected invite, ringing, accept, refuse or cancel)";
        return RTM_ERR_BAD_REQUEST;
    }
    if (!cJSON_IsString(id)) {
        *why = "missing or non-string field: id";
        return RTM_ERR_BAD_REQUEST;
    }
    if (!id_ok) {
        *why = "id must be 1-64 characters of A-Z a-z 0-9 _ -";
        return RTM_ERR_BAD_REQUEST;
    }
    return RTM_OK;
}

static enum rtm_err parse_fields(const cJSON *root, const struct rtm_config *cfg,
                                 struct rtm_request *out, const char **why)
{
    switch (out->type) {
    case RTM_MSG_INVITE:
        if (!optional_string(root, "content", RTM_CONTENT_MAX, &out->content)) {
            *why = "content must be a string of at most 4096 bytes";
            return RTM_ERR_BAD_REQUEST;
        }
        if (!optional_string(root, "channel", RTM_CHANNEL_MAX, &out->channel) ||
            (out->channel && has_control_char(out->channel))) {
            *why = "channel must be a string of at most 64 bytes without control characters";
            return RTM_ERR_BAD_REQUEST;
        }
        if (!optional_timeout(root, cfg->max_invite_timeout_s, &out->timeout_s)) {
            *why = "timeout must be a whole number of seconds from 1 to max_invite_timeout";
            return RTM_ERR_BAD_REQUEST;
        }
        return RTM_OK;
    case RTM_MSG_ACCEPT:
    case RTM_MSG_REFUSE:
        if (!optional_string(root, "response", RTM_RESPONSE_MAX, &out->response)) {
            *why = "response must be a string of at most 4096 bytes";
            return RTM_ERR_BAD_REQUEST;
        }
        return RTM_OK;
    default:
        return RTM_OK;
    }
}

enum rtm_err rtm_request_parse(const char *payload, size_t len, const struct rtm_config *cfg,
                               struct rtm_request *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    out->type = RTM_MSG_NONE;
    if (len > cfg->max_payload) {
        *why = "payload larger than max_payload";
        return RTM_ERR_BAD_REQUEST;
    }
    cJSON *root = rtm_json_object_parse(payload, len, why);
    if (!root)
        return RTM_ERR_BAD_REQUEST;
    out->json = root;
    enum rtm_err err = parse_type_and_id(root, out, why);
    if (err == RTM_OK)
        err = parse_fields(root, cfg, out, why);
    return err;
}

void rtm_request_free(struct rtm_request *req)
{
    cJSON_Delete(req->json);
    req->json = NULL;
}

/* A first guess at an event's size: the fixed fields fit, long content
 * or responses grow the buffer once or twice. */
#define EVENT_HINT 256

char *rtm_event_json(const struct rtm_event *ev, size_t *len)
{
    struct rtm_jsonw w;
    rtm_jsonw_begin(&w, EVENT_HINT);
    rtm_jsonw_string(&w, "type", rtm_msg_type_name(ev->type));
    rtm_jsonw_string(&w, "id", ev->id);
    rtm_jsonw_string(&w, "caller", ev->caller);
    rtm_jsonw_string(&w, "callee", ev->callee);
    rtm_jsonw_string(&w, "by", ev->by ? ev->by : "server");
    rtm_jsonw_int(&w, "ts", ev->ts);
    if (ev->type == RTM_MSG_INVITE) {
        rtm_jsonw_string(&w, "content", ev->content ? ev->content : "");
        rtm_jsonw_string(&w, "channel", ev->channel ? ev->channel : "");
        rtm_jsonw_int(&w, "expires_at", ev->expires_at);
    }
    if (ev->response)
        rtm_jsonw_string(&w, "response", ev->response);
    if (ev->type == RTM_MSG_FAILURE)
        rtm_jsonw_string(&w, "reason", rtm_fail_reason_name(ev->reason));
    return rtm_jsonw_end(&w, len);
}

char *rtm_error_json(enum rtm_err err, const char *message, const char *id,
                     enum rtm_msg_type request, int64_t ts, size_t *len)
{
    struct rtm_jsonw w;
    rtm_jsonw_begin(&w, EVENT_HINT);
    rtm_jsonw_string(&w, "type", "error");
    rtm_jsonw_string(&w, "code", rtm_err_code(err));
    rtm_jsonw_string(&w, "message", message);
    if (id && *id)
        rtm_jsonw_string(&w, "id", id);
    if (request < RTM_MSG_FAILURE)
        rtm_jsonw_string(&w, "request", rtm_msg_type_name(request));
    rtm_jsonw_int(&w, "ts", ts);
    return rtm_jsonw_end(&w, len);
}

char *rtm_device_error_json(enum rtm_err err, const char *message, const char *device, int64_t ts,
                            size_t *len)
{
    struct rtm_jsonw w;
    rtm_jsonw_begin(&w, EVENT_HINT);
    rtm_jsonw_string(&w, "type", "error");
    rtm_jsonw_string(&w, "code", rtm_err_code(err));
    rtm_jsonw_string(&w, "message", message);
    rtm_jsonw_string(&w, "device", device);
    rtm_jsonw_int(&w, "ts", ts);
    return rtm_jsonw_end(&w, len);
}

char *rtm_pushed_json(const char *id, const char *caller, const char *callee, size_t devices,
                      int64_t ts, size_t *len)
{
    struct rtm_jsonw w;
    rtm_jsonw_begin(&w, EVENT_HINT);
    rtm_jsonw_string(&w, "type", "pushed");
    rtm_jsonw_string(&w, "id", id);
    rtm_jsonw_string(&w, "caller", caller);
    rtm_jsonw_string(&w, "callee", callee);
    rtm_jsonw_string(&w, "by", "server");
    rtm_jsonw_int(&w, "ts", ts);
    rtm_jsonw_int(&w, "devices", (int64_t)devices);
    return rtm_jsonw_end(&w, len);
}

char *rtm_presence_json(const char *uid, bool online, unsigned sessions, int64_t ts, size_t *len)
{
    struct rtm_jsonw w;
    rtm_jsonw_begin(&w, 128);
    rtm_jsonw_string(&w, "uid", uid);
    rtm_jsonw_bool(&w, "online", online);
    if (online)
        rtm_jsonw_int(&w, "sessions", sessions);
    rtm_jsonw_int(&w, "ts", ts);
    return rtm_jsonw_end(&w, len);
}

enum rtm_presence_claim rtm_presence_payload_claim(const void *payload, size_t len, const char *uid)
{
    cJSON *root = payload && len > 0 ? cJSON_ParseWithLength(payload, len) : NULL;
    const cJSON *who = cJSON_GetObjectItemCaseSensitive(root, "uid");
    const cJSON *online = cJSON_GetObjectItemCaseSensitive(root, "online");
    enum rtm_presence_claim claim = RTM_PRESENCE_NOT_OURS;
    if (cJSON_IsObject(root) && cJSON_IsString(who) && strcmp(who->valuestring, uid) == 0 &&
        cJSON_IsBool(online))
        claim = cJSON_IsTrue(online) ? RTM_PRESENCE_ONLINE : RTM_PRESENCE_OFFLINE;
    cJSON_Delete(root);
    return claim;
}

/* The refused topic as an error names it: at most RTM_ERROR_TOPIC_MAX
 * bytes, cut before the character the limit falls in, and '?' for each byte
 * above ASCII when the rest is not UTF-8, so the error is valid JSON text. */
static void topic_for_error(const char *topic, char out[RTM_ERROR_TOPIC_MAX + 1])
{
    size_t len = strnlen(topic, RTM_ERROR_TOPIC_MAX + 1);
    if (len > RTM_ERROR_TOPIC_MAX) {
        len = RTM_ERROR_TOPIC_MAX;
        /* A UTF-8 character has at most three continuation bytes. */
        for (int k = 0; k < 3 && ((unsigned char)topic[len] & 0xc0) == 0x80; k++)
            len--;
    }
    memcpy(out, topic, len);
    out[len] = '\0';
    if (rtm_utf8_valid(out, len))
        return;
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)out[i] >= 0x80)
            out[i] = '?';
    }
}

char *rtm_topic_error_json(enum rtm_err err, const char *message, const char *topic, int64_t ts,
                           size_t *len)
{
    char named[RTM_ERROR_TOPIC_MAX + 1];
    topic_for_error(topic, named);
    struct rtm_jsonw w;
    rtm_jsonw_begin(&w, EVENT_HINT + RTM_ERROR_TOPIC_MAX);
    rtm_jsonw_string(&w, "type", "error");
    rtm_jsonw_string(&w, "code", rtm_err_code(err));
    rtm_jsonw_string(&w, "message", message);
    rtm_jsonw_string(&w, "topic", named);
    rtm_jsonw_int(&w, "ts", ts);
    return rtm_jsonw_end(&w, len);
}

/* Room for a member list's uids at first: a full list of 512 short uids
 * fits, longer ones grow the buffer. */
#define MEMBERS_HINT(n) (EVENT_HINT + ((n) < 512 ? (n) : 512) * 24)

char *rtm_members_json(bool joined, const char *channel, size_t count, const char *const *members,
                       size_t n, bool truncated, int64_t ts, size_t *len)
{
    struct rtm_jsonw w;
    rtm_jsonw_begin(&w, MEMBERS_HINT(n));
    rtm_jsonw_string(&w, "type", joined ? "joined" : "members");
    rtm_jsonw_string(&w, "channel", channel);
    rtm_jsonw_int(&w, "count", (int64_t)count);
    rtm_jsonw_strings(&w, "members", members, n);
    rtm_jsonw_bool(&w, "truncated", truncated);
    rtm_jsonw_int(&w, "ts", ts);
    return rtm_jsonw_end(&w, len);
}

char *rtm_member_event_json(bool joined, const char *channel, const char *uid, size_t count,
                            int64_t ts, size_t *len)
{
    struct rtm_jsonw w;
    rtm_jsonw_begin(&w, EVENT_HINT);
    rtm_jsonw_string(&w, "type", joined ? "member_joined" : "member_left");
    rtm_jsonw_string(&w, "channel", channel);
    rtm_jsonw_string(&w, "uid", uid);
    rtm_jsonw_int(&w, "count", (int64_t)count);
    rtm_jsonw_int(&w, "ts", ts);
    return rtm_jsonw_end(&w, len);
}

char *rtm_count_json(const char *channel, size_t count, int64_t ts, size_t *len)
{
    struct rtm_jsonw w;
    rtm_jsonw_begin(&w, 128);
    rtm_jsonw_string(&w, "channel", channel);
    rtm_jsonw_int(&w, "count", (int64_t)count);
    rtm_jsonw_int(&w, "ts", ts);
    return rtm_jsonw_end(&w, len);
}

char *rtm_attr_json(const char *key, const char *value, size_t value_len, const char *by,
                    int64_t ts, size_t *len)
{
    /* The writer takes NUL-terminated strings; a value is a payload's bytes. */
    char *text = value_len < SIZE_MAX ? malloc(value_len + 1) : NULL;
    *len = 0;
    if (!text)
        return NULL;
    memcpy(text, value, value_len);
    text[value_len] = '\0';
    struct rtm_jsonw w;
    rtm_jsonw_begin(&w, EVENT_HINT + value_len + value_len / 8);
    rtm_jsonw_string(&w, "key", key);
    rtm_jsonw_string(&w, "value", text);
    rtm_jsonw_string(&w, "by", by);
    rtm_jsonw_int(&w, "ts", ts);
    free(text);
    return rtm_jsonw_end(&w, len);
}

static bool string_is(const cJSON *item, const char *s)
{
    return cJSON_IsString(item) && strcmp(item->valuestring, s) == 0;
}

/* A number with no fraction in [0, limit), as the plugin writes counts and
 * timestamps; `limit` keeps the conversion to the caller's type defined. */
static bool whole_number(const cJSON *item, double limit, double *out)
{
    if (!cJSON_IsNumber(item))
        return false;
    double v = item->valuedouble;
    if (!(v >= 0 && v < limit) || floor(v) != v)
        return false;
    *out = v;
    return true;
}

#define INT64_LIMIT  9223372036854775808.0  /* 2^63 */
#define UINT64_LIMIT 18446744073709551616.0 /* 2^64 */

bool rtm_attr_payload_parse(const void *payload, size_t len, const char *key,
                            struct rtm_attr_claim *out)
{
    const char *why;
    cJSON *root = rtm_json_object_parse(payload, len, &why);
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(root, "value");
    const cJSON *by = cJSON_GetObjectItemCaseSensitive(root, "by");
    double ts;
    bool ok = string_is(cJSON_GetObjectItemCaseSensitive(root, "key"), key) &&
              cJSON_IsString(value) && cJSON_IsString(by) &&
              rtm_uid_valid(by->valuestring, strlen(by->valuestring)) &&
              whole_number(cJSON_GetObjectItemCaseSensitive(root, "ts"), INT64_LIMIT, &ts);
    if (ok) {
        out->value_len = strlen(value->valuestring);
        strcpy(out->by, by->valuestring);
        out->ts = (int64_t)ts;
    }
    cJSON_Delete(root);
    return ok;
}

bool rtm_count_payload_parse(const void *payload, size_t len, const char *channel, uint64_t *count)
{
    const char *why;
    cJSON *root = rtm_json_object_parse(payload, len, &why);
    double n;
    bool ok = string_is(cJSON_GetObjectItemCaseSensitive(root, "channel"), channel) &&
              whole_number(cJSON_GetObjectItemCaseSensitive(root, "count"), UINT64_LIMIT, &n) &&
              cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(root, "ts"));
    if (ok)
        *count = (uint64_t)n;
    cJSON_Delete(root);
    return ok;
}
