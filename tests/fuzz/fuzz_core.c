/*
 * libFuzzer target: the whole core, driven the way the adapter drives it,
 * with the push dispatcher (plugin/push/pusher.c) behind it as in the plugin. The
 * first input byte picks a configuration; then each operation byte (and the
 * bytes it reads) is one broker event on one core with a fake clock: a
 * client connects (eight connection handles, uids from a small set with an
 * admin and an invalid one), disconnects, publishes (the ACL check, then the
 * message, as the broker runs them), is checked for a read or a
 * subscription, a stored registration is loaded, JPush answers a push
 * request, or the clock advances and the core ticks.
 *
 * Checked on the way: every publish is on a topic of the topic table under
 * the prefix, with a valid JSON payload; one aimed at a session goes to that
 * session's own inbox; a stamped event names the sender as `by` and the two
 * parties as caller and callee; ACL verdicts follow the topic table; a push
 * names a valid call and its request is valid JSON. At the end every handle
 * disconnects, every request is answered and the clock runs past every
 * timer: the core and the dispatcher must then hold nothing but device
 * registrations, which live as long as their retained messages do. With the
 * top bit of the first byte set, the core is freed in whatever state the
 * operations left it instead (LeakSanitizer checks that nothing is lost).
 */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "rtm_config.h"
#include "rtm_core.h"
#include "rtm_message.h"
#include "rtm_push.h"
#include "rtm_pusher.h"
#include "rtm_registry.h"
#include "rtm_token.h"
#include "rtm_topic.h"

#define INPUT_MAX  4096
#define HANDLES    8
#define T0         1764100000000LL
#define DAY_MS     86400000LL
#define TEXT_MAX   1024
#define SETTLE_MAX 100000 /* ticks to run every timer out; more means one re-arms forever */
#define IN_FLIGHT  16     /* push requests the fake sender holds; more are refused */

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* --- configurations --------------------------------------------------------- */

#define SECRET "fuzz-secret-0123456789"

struct variant {
    struct rtm_option opts[6];
    size_t n;
};

static const struct variant variants[] = {
    {{{"push_fallback_ms", "5000"}}, 1}, /* the defaults */
    {{{"busy_limit", "1"}}, 1},
    {{{"invite_rate", "2"}, {"device_rate", "2"}}, 2},
    {{{"admin_users", "root, ops"}, {"auth", "defer"}}, 2},
    {{{"topic_prefix", "app/rtm/"}, {"other_topics", "allow"}}, 2},
    {{{"invite_timeout", "1"},
      {"ring_timeout", "2"},
      {"caller_grace", "1"},
      {"max_invite_timeout", "3"},
      {"push_fallback_ms", "300"},
      {"max_devices", "2"}},
     6},
    {{{"auth", "token"},
      {"token_secret", SECRET},
      {"admin_users", "root"},
      {"push_on_cancel", "0"}},
     4},
};

/* --- the world ---------------------------------------------------------------- */

/* Usernames a handle connects with: NULL makes the client id the uid, and
 * "bad uid" is no valid uid at all. */
static const char *const usernames[] = {"alice",   "bob", "carol",  "root",
                                        "bad uid", NULL,  "a.b@c-d"};
#define USERS COUNT(usernames)

struct world {
    struct rtm_config cfg;
    struct rtm_core *core;
    struct rtm_pusher *pusher;
    struct rtm_push_options options; /* push_settings' extra options, read at setup */
    struct rtm_push_settings settings;
    int64_t now;
    uint8_t user_of[HANDLES];      /* the username each handle last connected with */
    uint8_t session_of[HANDLES];   /* ... and last got a session with (a valid uid) */
    uint64_t in_flight[IN_FLIGHT]; /* tags of the push requests not answered yet */
    size_t n_in_flight;
};

static struct world W;
static char handle_bytes[HANDLES]; /* a handle is the address of one byte */
/* Even handles connect on a client id of their username's (alice-0), odd
 * ones on an id of nobody's (c1x0): under auth token only the first log in. */
static char client_ids[HANDLES][USERS][16];

static const char *uid_of(size_t slot, size_t user)
{
    return rtm_identity_uid(&W.cfg, usernames[user], client_ids[slot][user]);
}

static struct rtm_client client_of(size_t slot)
{
    struct rtm_client c = {&handle_bytes[slot], uid_of(slot, W.user_of[slot]),
                           client_ids[slot][W.user_of[slot]]};
    return c;
}

/* The slot of a handle the core named; a failed check if it is none. */
static size_t slot_of(const void *handle)
{
    const char *h = handle;
    FUZZ_CHECK(h >= handle_bytes && h < handle_bytes + HANDLES);
    return (size_t)(h - handle_bytes);
}

static bool uid_ok(const char *s)
{
    return s && rtm_uid_valid(s, strlen(s));
}

static bool eq_n(const char *s, const char *p, size_t n)
{
    return s && strlen(s) == n && memcmp(s, p, n) == 0;
}

static enum rtm_topic_kind parse_topic(const char *topic, struct rtm_topic *t)
{
    return rtm_topic_parse(W.cfg.topic_prefix, W.cfg.prefix_len, topic, t);
}

/* `len` bytes of JSON as the strict parser sees them (an exact-size copy). */
static cJSON *parse_json(const char *payload, size_t len)
{
    char *buf = fuzz_bytes(payload, len);
    const char *why = NULL;
    cJSON *root = rtm_json_object_parse(buf, len, &why);
    free(buf);
    FUZZ_CHECK(root != NULL);
    return root;
}

static const char *string_of(const cJSON *obj, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

/* --- the sink ------------------------------------------------------------------- */

static void check_presence_publish(const struct rtm_publish *msg, const struct rtm_topic *t)
{
    FUZZ_CHECK(msg->retain && !msg->handle);
    if (msg->payload_len == 0) /* erasing what the plugin did not write */
        return;
    cJSON *root = parse_json(msg->payload, msg->payload_len);
    FUZZ_CHECK(eq_n(string_of(root, "uid"), t->uid, t->uid_len));
    const cJSON *online = cJSON_GetObjectItemCaseSensitive(root, "online");
    const cJSON *sessions = cJSON_GetObjectItemCaseSensitive(root, "sessions");
    FUZZ_CHECK(cJSON_IsBool(online));
    FUZZ_CHECK(!cJSON_IsTrue(online) || (cJSON_IsNumber(sessions) && sessions->valuedouble >= 1));
    cJSON_Delete(root);
}

/* A channel's count: retained, for everyone, the plugin's own format for
 * that channel; or empty, when the channel emptied. */
static void check_count_publish(const struct rtm_publish *msg, const struct rtm_topic *t)
{
    FUZZ_CHECK(msg->retain && !msg->handle);
    if (msg->payload_len == 0)
        return;
    char channel[RTM_CHANNEL_ID_MAX + 1];
    memcpy(channel, t->channel, t->channel_len);
    channel[t->channel_len] = '\0';
    uint64_t count;
    FUZZ_CHECK(rtm_count_payload_parse(msg->payload, msg->payload_len, channel, &count));
    FUZZ_CHECK(count > 0);
}

/* An inbox publish aimed at one session goes to that session's own inbox:
 * the inbox of the uid its handle speaks as in the event being handled, or
 * of the session the core tracks for it (confirmed at a tick). */
static void check_inbox_publish(const struct rtm_publish *msg, const struct rtm_topic *t)
{
    FUZZ_CHECK(!msg->retain);
    cJSON *root = parse_json(msg->payload, msg->payload_len);
    FUZZ_CHECK(string_of(root, "type") != NULL);
    if (msg->handle) {
        size_t slot = slot_of(msg->handle);
        FUZZ_CHECK(eq_n(uid_of(slot, W.user_of[slot]), t->uid, t->uid_len) ||
                   eq_n(uid_of(slot, W.session_of[slot]), t->uid, t->uid_len));
    }
    cJSON_Delete(root);
}

static void on_publish(void *ud, const struct rtm_publish *msg)
{
    (void)ud;
    struct rtm_topic t;
    FUZZ_CHECK(msg->topic && msg->qos >= 0 && msg->qos <= 2);
    switch (parse_topic(msg->topic, &t)) {
    case RTM_TOPIC_PRESENCE:
        check_presence_publish(msg, &t);
        break;
    case RTM_TOPIC_CALL:
        if (msg->retain) /* only ever to erase a retained call message */
            FUZZ_CHECK(msg->payload_len == 0 && !msg->handle);
        else
            check_inbox_publish(msg, &t);
        break;
    case RTM_TOPIC_DEVICE: /* only ever to clear a moved registration or erase junk */
    case RTM_TOPIC_MSG:    /* only ever to erase a retained message */
    case RTM_TOPIC_CH_MSG:
    case RTM_TOPIC_USER_ATTR: /* to delete an attribute (stamps replace the writer's) */
    case RTM_TOPIC_CH_ATTR:
        FUZZ_CHECK(msg->retain && msg->payload_len == 0 && !msg->handle);
        break;
    case RTM_TOPIC_CH_EVENTS: /* member events, or erasing a retained one */
        FUZZ_CHECK(!msg->handle && (msg->retain ? msg->payload_len == 0 : msg->payload_len > 0));
        break;
    case RTM_TOPIC_CH_COUNT: /* the count, or erasing it */
        check_count_publish(msg, &t);
        break;
    default:
        fuzz_fail(__FILE__, __LINE__, "a publish outside the topic table");
    }
}

static void on_log(void *ud, enum rtm_log_level level, const char *line)
{
    (void)ud;
    FUZZ_CHECK(level <= RTM_LOG_ERR && line && strlen(line) < 512);
}

static const struct rtm_sink sink = {NULL, on_publish, on_log};

/* An invite push is for a pending call, a cancel push for one just ended. */
static void on_push(void *ud, const struct rtm_push *p)
{
    (void)ud;
    FUZZ_CHECK(p->kind == RTM_PUSH_CALL_INVITE || p->kind == RTM_PUSH_CALL_CANCEL);
    FUZZ_CHECK(p->call_id && rtm_id_valid(p->call_id, strlen(p->call_id)));
    FUZZ_CHECK(uid_ok(p->caller) && uid_ok(p->callee) && strcmp(p->caller, p->callee) != 0);
    FUZZ_CHECK(p->channel && strlen(p->channel) <= RTM_CHANNEL_MAX && p->why);
    FUZZ_CHECK(p->now_ms == W.now);
    FUZZ_CHECK(rtm_core_call_pending(W.core, p->caller, p->call_id) ==
               (p->kind == RTM_PUSH_CALL_INVITE));
    /* A cancel says why; an invite does not. */
    FUZZ_CHECK((p->reason != NULL) == (p->kind == RTM_PUSH_CALL_CANCEL));
    rtm_pusher_on_push(W.pusher, p);
}

/* --- the fake push sender (the plugin's HTTP worker) ---------------------------------- */

static const struct rtm_push_settings push_settings = {
    .endpoint = "https://api.jpush.cn",
    .app_key = "app-key",
    .master_secret = "master-secret",
    .title = "Call from {caller}",
    .alert = "{caller} is calling ({channel})",
};
#define PUSH_OPTIONS "{\"classification\":1}"

/* Holds the request's tag until an operation answers it; refuses when full,
 * as the plugin's queue does at push_queue_max. */
static int submit(void *ud, uint64_t tag, struct rtm_push_request *req)
{
    (void)ud;
    if (W.n_in_flight == IN_FLIGHT)
        return -1;
    FUZZ_CHECK(strcmp(req->url, "https://api.jpush.cn/v3/push") == 0);
    FUZZ_CHECK(strcmp(req->username, "app-key") == 0);
    FUZZ_CHECK(strcmp(req->password, "master-secret") == 0);
    cJSON *body = parse_json(req->body, req->body_len);
    const cJSON *audience = cJSON_GetObjectItemCaseSensitive(body, "audience");
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(audience, "registration_id");
    FUZZ_CHECK(cJSON_GetArraySize(ids) >= 1 && cJSON_GetArraySize(ids) <= (int)W.cfg.max_devices);
    cJSON_Delete(body);
    rtm_push_request_free(req);
    W.in_flight[W.n_in_flight++] = tag;
    return 0;
}

static bool call_pending(void *ud, const char *caller, const char *call_id)
{
    (void)ud;
    return rtm_core_call_pending(W.core, caller, call_id);
}

/* --- building topics and payloads ------------------------------------------------- */

static const char *const topic_uids[] = {"alice", "bob",     "carol",  "root",
                                         "c0x5",  "a.b@c-d", "bad uid"};
static const char *const device_ids[] = {"d1", "d2", "d3", "phone-1", "bad.id"};
static const char *const channel_ids[] = {"room1", "room2", "a.b@c", "bad ch"};
static const char *const attr_keys[] = {"status", "k.1", "x", "bad key"};

/* Topics and filters; {p} is the prefix, {me} the client's uid, {u} a uid,
 * {d} a device id, {c} a channel id, {k} an attribute key and {x} raw input
 * text. */
static const char *const topic_templates[] = {
    "{p}/u/{u}/call",
    "{p}/u/{me}/call",
    "{p}/u/{me}/devices/{d}",
    "{p}/u/{u}/devices/{d}",
    "{p}/presence/{u}",
    "{p}/presence/{me}",
    "{p}/{x}",
    "{x}",
    "{p}",
    "{p}/u/{u}/call/{x}",
    "{p}/u/{u}",
    "other/u/{u}/call",
    "#",
    "+/u/+/call",
    "{p}/#",
    "{p}/u/+/call",
    "{p}/u/{me}/#",
    "{p}/u/{u}/+",
    "{p}/presence/+",
    "{p}/u/{me}/devices/+",
    "{p}/u/+/devices/#",
    "{p}/+/{u}/call",
    "{p}/u/{u}/devices/{x}",
    "$SYS/broker/rtm/stats",
    "{p}/u/{u}/msg/{me}",
    "{p}/u/{me}/msg/{u}",
    "{p}/u/{me}/msg/+",
    "{p}/u/{u}/attr/{k}",
    "{p}/u/{me}/attr/{k}",
    "{p}/u/{u}/attr/+",
    "{p}/u/+/attr/+",
    "{p}/c/{c}/join",
    "{p}/c/{c}/leave",
    "{p}/c/{c}/members",
    "{p}/c/{c}/msg/{me}",
    "{p}/c/{c}/msg/{u}",
    "{p}/c/{c}/events",
    "{p}/c/{c}/count",
    "{p}/c/{c}/attr/{k}",
    "{p}/c/{c}/#",
    "{p}/c/+/count",
};

static const char *placeholder(const char *name, size_t len, const struct rtm_client *c,
                               struct fuzz_reader *r, char *raw)
{
    if (len == 1 && *name == 'p')
        return W.cfg.topic_prefix;
    if (len == 2 && memcmp(name, "me", 2) == 0)
        return c->uid ? c->uid : "nobody";
    if (len == 1 && *name == 'u')
        return topic_uids[fuzz_byte(r) % COUNT(topic_uids)];
    if (len == 1 && *name == 'd')
        return device_ids[fuzz_byte(r) % COUNT(device_ids)];
    if (len == 1 && *name == 'c')
        return channel_ids[fuzz_byte(r) % COUNT(channel_ids)];
    if (len == 1 && *name == 'k')
        return attr_keys[fuzz_byte(r) % COUNT(attr_keys)];
    size_t n;
    const uint8_t *at = fuzz_take(r, fuzz_byte(r) % 64, &n);
    const char *nul = memchr(at, '\0', n);
    n = nul ? (size_t)(nul - (const char *)at) : n;
    memcpy(raw, at, n);
    raw[n] = '\0';
    return raw;
}

static void fill(char *buf, size_t size, const char *tmpl, const struct rtm_client *c,
                 struct fuzz_reader *r)
{
    size_t used = 0;
    char raw[64];
    buf[0] = '\0';
    for (const char *p = tmpl; *p;) {
        const char *close = *p == '{' ? strchr(p, '}') : NULL;
        if (!close) {
            fuzz_append(buf, size, &used, p++, 1);
            continue;
        }
        const char *word = placeholder(p + 1, (size_t)(close - p - 1), c, r, raw);
        fuzz_append(buf, size, &used, word, strlen(word));
        p = close + 1;
    }
}

static void build_topic(char *buf, size_t size, const struct rtm_client *c, struct fuzz_reader *r)
{
    fill(buf, size, topic_templates[fuzz_byte(r) % COUNT(topic_templates)], c, r);
}

/* Appends printf-style to buf[0..size); cuts what does not fit. */
__attribute__((format(printf, 4, 5))) static void put(char *buf, size_t size, size_t *used,
                                                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *used, size - *used, fmt, ap);
    va_end(ap);
    if (n > 0)
        *used = *used + (size_t)n < size ? *used + (size_t)n : size - 1;
}

static const char *const msg_types[] = {"invite", "ringing", "accept", "refuse",
                                        "cancel", "failure", "bogus"};
static const char *const call_ids[] = {"c1", "c2", "c3", "call-4", "bad id", ""};

/* A call message: type and id from small sets, optional fields by flag. */
static size_t call_payload(struct fuzz_reader *r, char *buf, size_t size)
{
    uint8_t t = fuzz_byte(r), flags = fuzz_byte(r);
    size_t used = 0;
    put(buf, size, &used, "{\"type\":\"%s\"", msg_types[t % COUNT(msg_types)]);
    if (!(flags & 1))
        put(buf, size, &used, ",\"id\":\"%s\"", call_ids[(t / COUNT(msg_types)) % COUNT(call_ids)]);
    if (flags & 2)
        put(buf, size, &used, ",\"content\":\"hi \\u00e9\\n\"");
    if (flags & 4)
        put(buf, size, &used, ",\"channel\":\"room-1\"");
    if (flags & 8)
        put(buf, size, &used, ",\"timeout\":%u", fuzz_byte(r) % 130);
    if (flags & 16)
        put(buf, size, &used, ",\"response\":\"ok\"");
    if (flags & 32)
        put(buf, size, &used, ",\"caller\":\"mallory\",\"x\":[1,{\"a\":null}]");
    if (flags & 64)
        put(buf, size, &used, ",\"type\":\"cancel\""); /* a field twice */
    put(buf, size, &used, "}");
    return used;
}

static size_t registration_payload(struct fuzz_reader *r, char *buf, size_t size)
{
    static const char *const platforms[] = {"android", "ios", "hmos", "web"};
    static const char *const tokens[] = {"T1", "T2", "T3", "tok:4.x", "bad token"};
    uint8_t a = fuzz_byte(r), b = fuzz_byte(r);
    size_t used = 0;
    put(buf, size, &used, "{\"provider\":\"%s\",\"platform\":\"%s\",\"token\":\"%s\"}",
        a & 1 ? "fcm" : "jpush", platforms[(a >> 1) % COUNT(platforms)], tokens[b % COUNT(tokens)]);
    return used;
}

static size_t presence_payload(struct fuzz_reader *r, char *buf, size_t size)
{
    uint8_t a = fuzz_byte(r);
    size_t used = 0;
    put(buf, size, &used, "{\"uid\":\"%s\",\"online\":%s,\"sessions\":1,\"ts\":1}",
        topic_uids[(a >> 1) % COUNT(topic_uids)], a & 1 ? "true" : "false");
    return used;
}

/* A payload in a heap block of exactly its size (NULL when empty). */
static char *build_payload(struct fuzz_reader *r, size_t *len)
{
    char text[TEXT_MAX];
    uint8_t kind = fuzz_byte(r) % 8;
    if (kind < 4) {
        *len = call_payload(r, text, sizeof(text));
    } else if (kind == 4) {
        *len = registration_payload(r, text, sizeof(text));
    } else if (kind == 5) {
        *len = presence_payload(r, text, sizeof(text));
    } else if (kind == 6) {
        *len = 0;
    } else {
        const uint8_t *at = fuzz_take(r, fuzz_byte(r), len);
        return fuzz_bytes(at, *len);
    }
    return fuzz_bytes(text, *len);
}

/* --- checking verdicts ---------------------------------------------------------------- */

static bool owner_or_admin(const struct rtm_client *c, const struct rtm_topic *t)
{
    return rtm_config_is_admin(&W.cfg, c->uid) || eq_n(c->uid, t->uid, t->uid_len);
}

/* SPEC 8's rows of the topic table; -1 where the answer depends on the
 * core's state (membership, attributes held). Messages and member events
 * are never delivered retained. */
static int expected_rtm_access(const struct rtm_client *c, bool reading, enum rtm_topic_kind kind,
                               const struct rtm_topic *t, bool retain)
{
    bool admin = rtm_config_is_admin(&W.cfg, c->uid);
    switch (kind) {
    case RTM_TOPIC_MSG:
        if (reading)
            return !retain && owner_or_admin(c, t) ? RTM_ACL_ALLOW : RTM_ACL_DENY;
        return eq_n(c->uid, t->sender, t->sender_len) ? RTM_ACL_ALLOW : RTM_ACL_DENY;
    case RTM_TOPIC_USER_ATTR:
        return reading ? -1 : owner_or_admin(c, t) ? RTM_ACL_ALLOW : RTM_ACL_DENY;
    case RTM_TOPIC_CH_JOIN:
    case RTM_TOPIC_CH_LEAVE:
    case RTM_TOPIC_CH_MEMBERS:
        return reading ? RTM_ACL_DENY : RTM_ACL_ALLOW;
    case RTM_TOPIC_CH_MSG:
        if (reading)
            return retain ? RTM_ACL_DENY : -1;
        return eq_n(c->uid, t->sender, t->sender_len) ? -1 : RTM_ACL_DENY;
    case RTM_TOPIC_CH_EVENTS:
        return reading && !retain ? -1 : RTM_ACL_DENY;
    case RTM_TOPIC_CH_COUNT:
        return reading ? -1 : RTM_ACL_DENY;
    case RTM_TOPIC_CH_ATTR:
        return reading || !admin ? -1 : RTM_ACL_ALLOW;
    default:
        return RTM_ACL_DENY;
    }
}

/* The topic table (PROTOCOL.md section 2) for a read or a write of a
 * concrete topic; -1 where the verdict depends on the core's state. A read
 * delivers only what the plugin writes there: never a retained or an empty
 * call message, never a malformed registration. */
static int expected_access(const struct rtm_client *c, enum rtm_access access,
                           enum rtm_topic_kind kind, const struct rtm_topic *t, const char *payload,
                           size_t len, bool retain)
{
    if (kind == RTM_TOPIC_OUTSIDE)
        return W.cfg.other_topics == RTM_OTHER_ALLOW ? RTM_ACL_ALLOW : RTM_ACL_DEFER;
    if (!c->uid)
        return RTM_ACL_DENY;
    bool reading = access == RTM_ACCESS_READ;
    struct rtm_registration reg;
    const char *why;
    switch (kind) {
    case RTM_TOPIC_CALL:
        if (reading && (retain || len == 0))
            return RTM_ACL_DENY;
        return !reading || owner_or_admin(c, t) ? RTM_ACL_ALLOW : RTM_ACL_DENY;
    case RTM_TOPIC_DEVICE:
        if (reading && len > 0 && !rtm_registration_parse(payload, len, &reg, &why))
            return RTM_ACL_DENY;
        return owner_or_admin(c, t) ? RTM_ACL_ALLOW : RTM_ACL_DENY;
    case RTM_TOPIC_PRESENCE: /* a stale "online" is refused */
        return reading ? -1 : RTM_ACL_DENY;
    default:
        return expected_rtm_access(c, reading, kind, t, retain);
    }
}

static void check_acl(const struct rtm_client *c, enum rtm_access access, const char *topic,
                      const char *payload, size_t len, bool retain, enum rtm_acl verdict)
{
    struct rtm_topic t;
    enum rtm_topic_kind kind = parse_topic(topic, &t);
    bool admin = rtm_config_is_admin(&W.cfg, c->uid);
    if (access == RTM_ACCESS_UNSUBSCRIBE) {
        FUZZ_CHECK(verdict == RTM_ACL_ALLOW);
    } else if (access == RTM_ACCESS_SUBSCRIBE) {
        FUZZ_CHECK(verdict != RTM_ACL_DEFER);
        FUZZ_CHECK(verdict == RTM_ACL_DENY || admin ||
                   (uid_ok(c->uid) && rtm_core_owns_topic(W.core, topic)));
    } else {
        int want = expected_access(c, access, kind, &t, payload, len, retain);
        FUZZ_CHECK(want < 0 ? verdict != RTM_ACL_DEFER : (int)verdict == want);
    }
}

/* A stamped call event: the sender is `by`, and the two parties are the
 * sender and the owner of the inbox it was published to. */
static void check_stamped(const cJSON *ev, const char *sender, const struct rtm_topic *t)
{
    const char *type = string_of(ev, "type"), *id = string_of(ev, "id");
    const char *caller = string_of(ev, "caller"), *callee = string_of(ev, "callee");
    FUZZ_CHECK(type && id && caller && callee && rtm_id_valid(id, strlen(id)));
    FUZZ_CHECK(strcmp(string_of(ev, "by") ? string_of(ev, "by") : "", sender) == 0);
    if (strcmp(type, "invite") == 0)
        FUZZ_CHECK(strcmp(caller, sender) == 0 && eq_n(callee, t->uid, t->uid_len));
    else
        FUZZ_CHECK((strcmp(caller, sender) == 0 && eq_n(callee, t->uid, t->uid_len)) ||
                   (strcmp(callee, sender) == 0 && eq_n(caller, t->uid, t->uid_len)));
}

static void check_result(const struct rtm_client *c, const char *topic, size_t len,
                         const struct rtm_message_result *res)
{
    struct rtm_topic t;
    enum rtm_topic_kind kind = parse_topic(topic, &t);
    bool attr = kind == RTM_TOPIC_USER_ATTR || kind == RTM_TOPIC_CH_ATTR;
    if (res->verdict != RTM_REPLACE) {
        FUZZ_CHECK(!res->payload && res->payload_len == 0);
        /* Passed unchanged: the removal of a registration or an attribute,
         * a message, a channel request. */
        FUZZ_CHECK(res->verdict != RTM_PASS || ((kind == RTM_TOPIC_DEVICE || attr) && len == 0) ||
                   kind == RTM_TOPIC_MSG || kind == RTM_TOPIC_CH_MSG || kind == RTM_TOPIC_CH_JOIN ||
                   kind == RTM_TOPIC_CH_LEAVE || kind == RTM_TOPIC_CH_MEMBERS);
        return;
    }
    FUZZ_CHECK(res->payload && res->payload_len > 0);
    FUZZ_CHECK(kind == RTM_TOPIC_CALL || kind == RTM_TOPIC_DEVICE || attr);
    if (attr) { /* stamped: this key, by the writer */
        char key[RTM_ATTR_KEY_MAX + 1];
        memcpy(key, t.key, t.key_len);
        key[t.key_len] = '\0';
        struct rtm_attr_claim claim;
        FUZZ_CHECK(rtm_attr_payload_parse(res->payload, res->payload_len, key, &claim));
        FUZZ_CHECK(strcmp(claim.by, c->uid) == 0 && claim.ts == W.now);
        return;
    }
    if (kind == RTM_TOPIC_DEVICE) {
        struct rtm_registration reg;
        const char *why;
        FUZZ_CHECK(rtm_registration_parse(res->payload, res->payload_len, &reg, &why));
        return;
    }
    cJSON *ev = parse_json(res->payload, res->payload_len);
    check_stamped(ev, c->uid, &t);
    cJSON_Delete(ev);
}

static void check_stats(void)
{
    struct rtm_core_stats st;
    rtm_core_stats(W.core, &st);
    int64_t due = rtm_core_next_due(W.core, W.now);
    FUZZ_CHECK(st.sessions <= HANDLES);
    FUZZ_CHECK(st.calls_remembered < ((size_t)1 << 20)); /* no underflow */
    FUZZ_CHECK(due >= -1 && (st.timers == 0) == (due == -1));
    FUZZ_CHECK(st.devices == rtm_registry_count(rtm_core_registry(W.core)));
}

/* --- operations ------------------------------------------------------------------------- */

/* The password a client presents under auth token: a valid token for its
 * uid or for bob, an expired one, a malformed one, or none. */
static const char *password_for(uint8_t choice, const char *uid, char *buf, size_t size)
{
    int64_t now_s = W.now / 1000;
    const char *for_uid = choice % 5 == 2 ? "bob" : uid;
    int64_t expiry = choice % 5 == 3 ? now_s - 3600 : now_s + 3600;
    if (choice % 5 == 0 || !for_uid)
        return NULL;
    if (choice % 5 == 4)
        return "rtm1.1893456000.not-a-signature";
    FUZZ_CHECK(rtm_token_mint(SECRET, strlen(SECRET), for_uid, expiry, buf, size) > 0);
    return buf;
}

/* SPEC 7: the uid itself, or the uid followed by '-' or '/' and anything. */
static bool id_of_uid(const char *client_id, const char *uid)
{
    size_t n = strlen(uid);
    return strncmp(client_id, uid, n) == 0 &&
           (client_id[n] == '\0' || client_id[n] == '-' || client_id[n] == '/');
}

static enum rtm_login_verdict expected_login(uint8_t choice, const struct rtm_client *c)
{
    if (W.cfg.auth == RTM_AUTH_NONE)
        return RTM_LOGIN_ACCEPT;
    if (W.cfg.auth == RTM_AUTH_DEFER)
        return RTM_LOGIN_DEFER;
    const char *uid = c->uid;
    bool valid = uid && (choice % 5 == 1 || (choice % 5 == 2 && strcmp(uid, "bob") == 0));
    return valid && id_of_uid(c->client_id, uid) ? RTM_LOGIN_ACCEPT : RTM_LOGIN_REFUSE;
}

static void op_connect(size_t slot, struct fuzz_reader *r)
{
    W.user_of[slot] = fuzz_byte(r) % USERS;
    struct rtm_client c = client_of(slot);
    uint8_t choice = fuzz_byte(r);
    char token[RTM_LOGIN_TOKEN_MAX + 1];
    const char *password = password_for(choice, c.uid, token, sizeof(token));
    enum rtm_login_verdict v = rtm_core_authenticate(W.core, &c, password, W.now);
    FUZZ_CHECK(v == expected_login(choice, &c));
    if (v != RTM_LOGIN_REFUSE) {
        rtm_core_connect(W.core, &c, W.now);
        if (c.uid) /* without one, the core tracks nothing and keeps what it had */
            W.session_of[slot] = W.user_of[slot];
    }
}

static void advance(int64_t ms)
{
    W.now += ms;
    rtm_core_tick(W.core, W.now);
    rtm_pusher_tick(W.pusher, W.now);
}

/* What JPush may answer, as the HTTP worker hands it over. */
#define BODY(text) text, sizeof(text) - 1
static const struct rtm_push_response answers[] = {
    {200, BODY("{\"sendno\":\"0\",\"msg_id\":\"54043196\"}"), NULL, "60", NULL},
    {0, NULL, 0, NULL, NULL, "Operation timed out after 10000 milliseconds"},
    {429, BODY("{\"error\":{\"code\":2002,\"message\":\"rate\"}}"), "1", "3", NULL},
    {503, BODY("<html>busy</html>"), NULL, NULL, NULL},
    {400, BODY("{\"error\":{\"code\":1011,\"message\":\"no audience\"}}"), NULL, NULL, NULL},
    {401, BODY("{\"error\":{\"code\":1004,\"message\":\"Authen failed\"}}"), NULL, NULL, NULL},
    {400, BODY("{\"error\":{\"code\":1003,\"message\":\"bad\"}}"), NULL, NULL, NULL},
    {302, BODY(""), "5", NULL, NULL},
};

static void answer(size_t i, const struct rtm_push_response *resp)
{
    uint64_t tag = W.in_flight[i];
    W.in_flight[i] = W.in_flight[--W.n_in_flight];
    rtm_pusher_result(W.pusher, tag, resp, W.now);
}

/* JPush answers one request in flight (or a tag nobody holds any more). */
static void op_answer(struct fuzz_reader *r)
{
    uint8_t which = fuzz_byte(r), how = fuzz_byte(r);
    const struct rtm_push_response *resp = &answers[how % COUNT(answers)];
    if (W.n_in_flight == 0 || which == 0xff)
        rtm_pusher_result(W.pusher, 1000000 + which, resp, W.now);
    else
        answer(which % W.n_in_flight, resp);
}

/* Up to 20 s in 100 ms steps, or up to 285 s in 5 s steps. */
static void op_tick(struct fuzz_reader *r)
{
    uint8_t b = fuzz_byte(r);
    advance(b < 200 ? b * 100 : (b - 199) * 5000);
}

/* The ACL check for the write, then, if allowed, the message itself. */
static void publish(const struct rtm_client *c, const char *topic, const char *payload, size_t len,
                    bool retain)
{
    enum rtm_acl acl =
        rtm_core_acl(W.core, c, RTM_ACCESS_WRITE, topic, payload, len, retain, W.now);
    check_acl(c, RTM_ACCESS_WRITE, topic, payload, len, retain, acl);
    if (acl != RTM_ACL_ALLOW || !rtm_core_owns_topic(W.core, topic))
        return;
    struct rtm_message_result res = rtm_core_message(W.core, c, topic, payload, len, retain, W.now);
    check_result(c, topic, len, &res);
    free(res.payload);
}

static void op_publish(size_t slot, struct fuzz_reader *r)
{
    struct rtm_client c = client_of(slot);
    char topic[TEXT_MAX];
    build_topic(topic, sizeof(topic), &c, r);
    size_t len;
    char *payload = build_payload(r, &len);
    publish(&c, topic, payload, len, fuzz_byte(r) & 1);
    free(payload);
}

/* A call message to someone's inbox: the bulk of real traffic. */
static void op_call(size_t slot, struct fuzz_reader *r)
{
    struct rtm_client c = client_of(slot);
    char topic[TEXT_MAX], text[TEXT_MAX];
    fill(topic, sizeof(topic), "{p}/u/{u}/call", &c, r);
    size_t len = call_payload(r, text, sizeof(text));
    char *payload = fuzz_bytes(text, len);
    publish(&c, topic, payload, len, false);
    free(payload);
}

static void op_acl(size_t slot, struct fuzz_reader *r)
{
    struct rtm_client c = client_of(slot);
    uint8_t how = fuzz_byte(r);
    enum rtm_access access = (enum rtm_access)(how % 4);
    bool retain = how & 4; /* a stored retained message, or a retained publish */
    char topic[TEXT_MAX];
    build_topic(topic, sizeof(topic), &c, r);
    size_t len;
    char *payload = build_payload(r, &len);
    enum rtm_acl v = rtm_core_acl(W.core, &c, access, topic, payload, len, retain, W.now);
    check_acl(&c, access, topic, payload, len, retain, v);
    free(payload);
}

/* A retained registration read back at start-up (any time, for the fuzzer). */
static void op_load(size_t slot, struct fuzz_reader *r)
{
    struct rtm_client c = client_of(slot);
    char topic[TEXT_MAX];
    build_topic(topic, sizeof(topic), &c, r);
    size_t len;
    char *payload = build_payload(r, &len);
    struct rtm_topic t;
    if (rtm_core_load_device(W.core, topic, payload, len))
        FUZZ_CHECK(parse_topic(topic, &t) == RTM_TOPIC_DEVICE);
    free(payload);
}

static void run_op(struct fuzz_reader *r)
{
    uint8_t b = fuzz_byte(r);
    size_t slot = (b / 9) % HANDLES;
    switch (b % 9) {
    case 0:
        op_connect(slot, r);
        break;
    case 1:
        rtm_core_disconnect(W.core, &handle_bytes[slot], W.now);
        break;
    case 2:
        op_tick(r);
        break;
    case 3:
        op_publish(slot, r);
        break;
    case 4:
        op_call(slot, r);
        break;
    case 5:
        op_acl(slot, r);
        break;
    case 6:
        op_load(slot, r);
        break;
    case 7:
        op_answer(r);
        break;
    default:
        advance(fuzz_byte(r) * 10); /* a short step: up to 2.55 s */
        break;
    }
    check_stats();
}

/* --- the run -----------------------------------------------------------------------------------
 */

static void setup(uint8_t variant)
{
    const struct variant *v = &variants[(variant & 0x7f) % COUNT(variants)];
    char err[256];
    memset(&W, 0, sizeof(W));
    rtm_config_defaults(&W.cfg);
    FUZZ_CHECK(rtm_config_parse(&W.cfg, v->opts, v->n, err, sizeof(err)) == 0);
    W.core = rtm_core_new(&W.cfg, &sink, NULL);
    FUZZ_CHECK(W.core != NULL);
    FUZZ_CHECK(rtm_push_options_prepare(PUSH_OPTIONS, &W.options) == 0);
    W.settings = push_settings;
    W.settings.extra_options = &W.options;
    struct rtm_pusher_env env = {
        .cfg = &W.cfg,
        .sink = &sink,
        .registry = rtm_core_registry(W.core),
        .provider = &rtm_push_jpush,
        .settings = &W.settings,
        .submit = submit,
        .call_pending = call_pending,
        .seed = 1,
    };
    W.pusher = rtm_pusher_new(&env);
    FUZZ_CHECK(W.pusher != NULL);
    rtm_core_set_push(W.core, on_push, NULL);
    W.now = T0;
    for (size_t s = 0; s < HANDLES; s++) {
        for (size_t u = 0; u < USERS; u++)
            if (s % 2 == 0 && usernames[u])
                snprintf(client_ids[s][u], sizeof(client_ids[s][u]), "%s-%zu", usernames[u], s);
            else
                snprintf(client_ids[s][u], sizeof(client_ids[s][u]), "c%zux%zu", s, u);
    }
}

/* Runs the core's timers until none is left. */
static void run_out_timers(void)
{
    for (int i = 0;; i++) {
        FUZZ_CHECK(i < SETTLE_MAX);
        int64_t due = rtm_core_next_due(W.core, W.now);
        if (due < 0)
            return;
        advance(due);
    }
}

/* Everyone leaves, JPush answers everything, and every timer runs out:
 * only registrations remain. */
static void settle(void)
{
    for (size_t s = 0; s < HANDLES; s++)
        rtm_core_disconnect(W.core, &handle_bytes[s], W.now);
    advance(0);
    run_out_timers();
    for (int round = 0; W.n_in_flight > 0; round++) {
        FUZZ_CHECK(round < SETTLE_MAX);
        answer(0, &answers[0]);
    }
    advance(DAY_MS);
    struct rtm_core_stats st;
    rtm_core_stats(W.core, &st);
    FUZZ_CHECK(st.sessions == 0 && st.calls_live == 0 && st.calls_remembered == 0);
    FUZZ_CHECK(st.timers == 0 && st.users == 0);
    FUZZ_CHECK(st.devices == rtm_registry_count(rtm_core_registry(W.core)));
    struct rtm_pusher_stats ps;
    rtm_pusher_stats(W.pusher, &ps);
    FUZZ_CHECK(ps.jobs == 0 && ps.calls == 0 && W.n_in_flight == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > INPUT_MAX)
        return 0;
    setup(data[0]);
    struct fuzz_reader r = {data + 1, size - 1};
    while (r.left)
        run_op(&r);
    if (!(data[0] & 0x80))
        settle();
    rtm_pusher_free(W.pusher);
    rtm_push_options_free(&W.options);
    rtm_core_free(W.core);
    rtm_config_free(&W.cfg);
    return 0;
}
