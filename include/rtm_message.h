/*
 * The plugin's JSON: validating the call requests clients send, and writing
 * what the plugin delivers (stamped call events, errors, presence, channel
 * replies and events, member counts, stamped attributes) and recognising it
 * when read back. Pure: cJSON reads, rtm_jsonw writes.
 */
#ifndef RTM_MESSAGE_H
#define RTM_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rtm_config.h"

#define RTM_CONTENT_MAX  4096
#define RTM_RESPONSE_MAX 4096
#define RTM_CHANNEL_MAX  64
/* The most of a refused topic an error names (rtm_topic_error_json). */
#define RTM_ERROR_TOPIC_MAX 256
/* Every payload a client sends is a flat JSON object; these bounds leave
 * apps room for their own extra fields and refuse anything built to hurt. */
#define RTM_JSON_DEPTH_MAX   8
#define RTM_JSON_MEMBERS_MAX 32

enum rtm_msg_type {
    RTM_MSG_INVITE,
    RTM_MSG_RINGING,
    RTM_MSG_ACCEPT,
    RTM_MSG_REFUSE,
    RTM_MSG_CANCEL,
    RTM_MSG_FAILURE, /* generated only */
    RTM_MSG_NONE,    /* unknown: the request had no valid type */
};

enum rtm_err {
    RTM_OK,
    RTM_ERR_BAD_REQUEST,
    RTM_ERR_UNKNOWN_INVITATION,
    RTM_ERR_NOT_PARTY,
    RTM_ERR_INVALID_STATE,
    RTM_ERR_DUPLICATE_ID,
    RTM_ERR_SELF_CALL,
    RTM_ERR_RATE_LIMITED,
    RTM_ERR_BUSY_LIMIT,
    RTM_ERR_LIMIT_EXCEEDED,
};

enum rtm_fail_reason {
    RTM_FAIL_NONE,
    RTM_FAIL_PEER_OFFLINE,
    RTM_FAIL_NO_RESPONSE,
    RTM_FAIL_EXPIRED,
    RTM_FAIL_CALLER_OFFLINE,
};

/* A validated client request. String fields point into `json`, which the
 * request owns; they are NULL when absent. */
struct rtm_request {
    enum rtm_msg_type type;
    char id[RTM_ID_MAX + 1]; /* "" when the id was missing or invalid */
    const char *content;
    const char *channel;
    const char *response;
    uint32_t timeout_s; /* 0 when absent */
    void *json;         /* cJSON * */
};

const char *rtm_msg_type_name(enum rtm_msg_type type);
const char *rtm_err_code(enum rtm_err err);
const char *rtm_fail_reason_name(enum rtm_fail_reason reason);

bool rtm_utf8_valid(const char *s, size_t len);

struct cJSON;

/* Parses `payload` as one UTF-8 JSON object (nothing but whitespace after
 * it, no escaped NUL, which cJSON would silently cut a string at, nesting at
 * most RTM_JSON_DEPTH_MAX deep, at most RTM_JSON_MEMBERS_MAX members, no
 * member name twice). Returns
 * the object, to free with cJSON_Delete, or NULL with `*why` (static text). */
struct cJSON *rtm_json_object_parse(const char *payload, size_t len, const char **why);

/* Parses and validates `payload`. On RTM_ERR_BAD_REQUEST, `*why` says what
 * is wrong (a static string) and `out->type`/`out->id` hold whatever was
 * valid. Always call rtm_request_free() afterwards. */
enum rtm_err rtm_request_parse(const char *payload, size_t len, const struct rtm_config *cfg,
                               struct rtm_request *out, const char **why);

void rtm_request_free(struct rtm_request *req);

/* Everything a delivered call event carries. NULL strings are left out,
 * except content/channel on invites, which are written as "". */
struct rtm_event {
    enum rtm_msg_type type;
    const char *id;
    const char *caller;
    const char *callee;
    const char *by; /* NULL: "server" */
    int64_t ts;
    const char *content;
    const char *channel;
    int64_t expires_at; /* invites only */
    const char *response;
    enum rtm_fail_reason reason;
};

/* Each returns a malloc'd NUL-terminated JSON text and its length in `*len`,
 * or NULL when out of memory. */
char *rtm_event_json(const struct rtm_event *ev, size_t *len);
char *rtm_error_json(enum rtm_err err, const char *message, const char *id,
                     enum rtm_msg_type request, int64_t ts, size_t *len);
/* An error about a device registration: like rtm_error_json, naming the
 * device instead of an invitation. */
char *rtm_device_error_json(enum rtm_err err, const char *message, const char *device, int64_t ts,
                            size_t *len);
/* {"type":"pushed","id","caller","callee","by":"server","ts","devices"} */
char *rtm_pushed_json(const char *id, const char *caller, const char *callee, size_t devices,
                      int64_t ts, size_t *len);
char *rtm_presence_json(const char *uid, bool online, unsigned sessions, int64_t ts, size_t *len);

/* An error about a request made by publishing to `topic` (SPEC 8: messages,
 * channels, attributes): like rtm_error_json, naming the refused topic
 * instead of an invitation. The topic is cut to at most RTM_ERROR_TOPIC_MAX
 * bytes between two UTF-8 characters; should it not be UTF-8, each byte
 * above ASCII is written as '?'. */
char *rtm_topic_error_json(enum rtm_err err, const char *message, const char *topic, int64_t ts,
                           size_t *len);
/* The answer to a join (`joined`) or a members request:
 * {"type":"joined"|"members","channel","count","members":[the n uids],
 *  "truncated","ts"}; `count` is all the channel's members. */
char *rtm_members_json(bool joined, const char *channel, size_t count, const char *const *members,
                       size_t n, bool truncated, int64_t ts, size_t *len);
/* {"type":"member_joined"|"member_left","channel","uid","count","ts"} */
char *rtm_member_event_json(bool joined, const char *channel, const char *uid, size_t count,
                            int64_t ts, size_t *len);
/* A channel's retained member count: {"channel","count","ts"} */
char *rtm_count_json(const char *channel, size_t count, int64_t ts, size_t *len);
/* A stamped user or channel attribute: {"key","value","by","ts"}. `value`
 * is `value_len` bytes of UTF-8 without a NUL (the caller checks both). */
char *rtm_attr_json(const char *key, const char *value, size_t value_len, const char *by,
                    int64_t ts, size_t *len);

/* What an attribute payload the plugin wrote says. */
struct rtm_attr_claim {
    size_t value_len; /* bytes of the value, unescaped */
    char by[RTM_UID_MAX + 1];
    int64_t ts;
};
/* True, filling `out`, only for an object (rtm_json_object_parse) whose
 * "key" is `key`, "value" a string, "by" a valid uid and "ts" a
 * non-negative whole number; other members are ignored. `out` is left
 * alone otherwise. */
bool rtm_attr_payload_parse(const void *payload, size_t len, const char *key,
                            struct rtm_attr_claim *out);
/* True, filling `*count`, only for an object (rtm_json_object_parse) whose
 * "channel" is `channel`, "count" a non-negative whole number and "ts" a
 * number; other members are ignored. `*count` is left alone otherwise. */
bool rtm_count_payload_parse(const void *payload, size_t len, const char *channel, uint64_t *count);

/* What a presence payload on `uid`'s topic says: NOT_OURS unless it is an
 * object naming `uid` with a boolean `online`, as the plugin writes it. */
enum rtm_presence_claim {
    RTM_PRESENCE_NOT_OURS,
    RTM_PRESENCE_OFFLINE,
    RTM_PRESENCE_ONLINE,
};
enum rtm_presence_claim rtm_presence_payload_claim(const void *payload, size_t len,
                                                   const char *uid);

#endif
