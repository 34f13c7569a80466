/*
 * The core's entry points: it owns the tables, routes broker events to the
 * presence and invitation modules, runs due timers on each tick, and turns
 * refused requests into error events for the one session that sent them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtm_state.h"
#include "rtm_topic.h"

/* Timers run per tick at most; the rest wait for the next tick (~100 ms),
 * so a burst of expiries never holds the broker loop for long. */
#define TIMERS_PER_TICK 20000

struct rtm_core *rtm_core_new(const struct rtm_config *cfg, const struct rtm_sink *sink,
                              const struct rtm_hash_key *hash_key)
{
    struct rtm_core *core = calloc(1, sizeof(*core));
    if (!core)
        return NULL;
    core->cfg = cfg;
    core->sink = sink;
    rtm_heap_init(&core->timers);
    rtm_pool_init(&core->pool);
    if (hash_key)
        core->hash_key = *hash_key;
    core->registry = rtm_registry_new(cfg->max_devices, &core->hash_key);
    if (!core->registry || rtm_hash_init(&core->users, 1024, &core->hash_key) ||
        rtm_hash_init(&core->sessions, 1024, NULL) ||
        rtm_hash_init(&core->calls, 1024, &core->hash_key)) {
        rtm_core_free(core);
        return NULL;
    }
    return core;
}

const struct rtm_hash_key *rtm_core_hash_key(const struct rtm_core *core)
{
    return &core->hash_key;
}

void rtm_core_set_push(struct rtm_core *core, rtm_push_fn fn, void *ud)
{
    core->push = fn;
    core->push_ud = ud;
}

void rtm_core_free(struct rtm_core *core)
{
    if (!core)
        return;
    rtm_heap_fini(&core->timers); /* first: it touches timers inside calls and users */
    rtm_invite_free_all(core);
    rtm_presence_free_all(core);
    rtm_users_free_all(core);
    if (rtm_pool_live(&core->pool) != 0)
        rtm_core_log(core, RTM_LOG_ERR, "rtm: %zu records were never freed",
                     rtm_pool_live(&core->pool));
    rtm_pool_fini(&core->pool);
    rtm_hash_fini(&core->calls);
    rtm_hash_fini(&core->sessions);
    rtm_hash_fini(&core->users);
    rtm_registry_free(core->registry);
    free(core);
}

const char *rtm_identity_uid(const struct rtm_config *cfg, const char *username,
                             const char *client_id)
{
    const char *uid = NULL;
    switch (cfg->identity) {
    case RTM_IDENTITY_AUTO:
        uid = username ? username : client_id;
        break;
    case RTM_IDENTITY_USERNAME:
        uid = username;
        break;
    case RTM_IDENTITY_CLIENTID:
        uid = client_id;
        break;
    }
    return uid && rtm_uid_valid(uid, strlen(uid)) ? uid : NULL;
}

void rtm_core_log(struct rtm_core *core, enum rtm_log_level level, const char *fmt, ...)
{
    /* Debug lines come per invitation and per presence change; Mosquitto
     * shows them only with log_type debug, but cannot tell the plugin so:
     * unless asked for, they are not even formatted. */
    if (level == RTM_LOG_DEBUG && !core->cfg->debug_log)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    core->sink->log(core->sink->ud, level, line);
}

char *rtm_core_topic(const struct rtm_core *core, char *buf, size_t size, const char *fmt, ...)
{
    int n = snprintf(buf, size, "%s/", core->cfg->topic_prefix);
    if (n < 0 || (size_t)n >= size)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, size - (size_t)n, fmt, ap);
    va_end(ap);
    return m < 0 || (size_t)m >= size - (size_t)n ? NULL : buf;
}

void rtm_core_erase(struct rtm_core *core, const char *topic, const char *why)
{
    struct rtm_publish msg = {NULL, topic, "", 0, 1, true};
    core->sink->publish(core->sink->ud, &msg);
    rtm_core_log(core, RTM_LOG_NOTICE, "rtm: erased the retained message on %s: %s", topic, why);
}

void rtm_core_to_inbox(struct rtm_core *core, const char *uid, const void *handle,
                       const char *payload, size_t len)
{
    char topic[RTM_PREFIX_MAX + RTM_UID_MAX + 16];
    if (!rtm_core_topic(core, topic, sizeof(topic), "u/%s/call", uid))
        return;
    struct rtm_publish msg = {handle, topic, payload, len, 1, false};
    core->sink->publish(core->sink->ud, &msg);
}

void rtm_core_connect(struct rtm_core *core, const struct rtm_client *client, int64_t now_ms)
{
    rtm_presence_connect(core, client, now_ms);
}

void rtm_core_connected(struct rtm_core *core, const struct rtm_client *client, int64_t now_ms)
{
    if (!rtm_presence_has_session(core, client->handle))
        rtm_presence_connect(core, client, now_ms);
    rtm_presence_confirm_handle(core, client->handle, now_ms);
}

bool rtm_core_has_session(struct rtm_core *core, const void *handle)
{
    return rtm_presence_has_session(core, handle);
}

void rtm_core_disconnect(struct rtm_core *core, const void *handle, int64_t now_ms)
{
    rtm_presence_disconnect(core, handle, now_ms);
}

static void record_lateness(struct rtm_late_hist *h, int64_t late)
{
    h->fired++;
    if (late > h->max_ms)
        h->max_ms = late;
    h->count[late < RTM_LATE_BUCKETS - 1 ? late : RTM_LATE_BUCKETS - 1]++;
}

void rtm_core_timer_report(struct rtm_core *core, struct rtm_timer_report *out)
{
    struct rtm_late_hist *h = &core->late;
    out->fired = h->fired;
    out->late_max_ms = h->max_ms;
    out->late_p99_ms = 0;
    uint64_t want = h->fired - h->fired / 100, seen = 0; /* the 99th percentile's rank */
    for (int64_t ms = 0; h->fired > 0 && ms < RTM_LATE_BUCKETS; ms++) {
        seen += h->count[ms];
        if (seen >= want) {
            out->late_p99_ms = ms < RTM_LATE_BUCKETS - 1 ? ms : h->max_ms;
            break;
        }
    }
    memset(h, 0, sizeof(*h));
}

static void run_timers(struct rtm_core *core, int64_t now)
{
    struct rtm_timer *t;
    for (int budget = TIMERS_PER_TICK; budget > 0; budget--) {
        if (!(t = rtm_heap_pop_due(&core->timers, now)))
            return;
        record_lateness(&core->late, now - t->due);
        if (t->kind == RTM_TIMER_CALL)
            rtm_invite_timer(core, rtm_container_of(t, struct rtm_call, timer), now);
        else if (t->kind == RTM_TIMER_CALLER_GRACE)
            rtm_invite_caller_gone(core, rtm_user_of_timer(t), now);
        else
            rtm_user_linger_done(core, rtm_user_of_timer(t));
    }
}

void rtm_core_tick(struct rtm_core *core, int64_t now_ms)
{
    /* Presence first: a callee confirmed now counts as seen before its
     * invitation's timer can fire in this same tick. */
    rtm_presence_tick(core, now_ms);
    run_timers(core, now_ms);
}

/* Tells the one session that sent a refused request why, and logs it. */
static void refuse_request(struct rtm_core *core, const struct rtm_client *client, enum rtm_err err,
                           const char *why, const struct rtm_request *req, int64_t now)
{
    size_t len;
    char *json = rtm_error_json(err, why, req->id, req->type, now, &len);
    if (json)
        rtm_core_to_inbox(core, client->uid, client->handle, json, len);
    free(json);
    rtm_core_log(core, RTM_LOG_NOTICE, "rtm: refused %s from %s (%s): %s: %s",
                 req->type < RTM_MSG_FAILURE ? rtm_msg_type_name(req->type) : "request",
                 client->uid, client->client_id ? client->client_id : "", rtm_err_code(err), why);
}

static struct rtm_message_result handle_call(struct rtm_core *core, const struct rtm_client *client,
                                             const struct rtm_topic *topic, const void *payload,
                                             size_t len, bool retain, int64_t now)
{
    struct rtm_message_result res = {RTM_DENY, NULL, 0};
    struct rtm_request req;
    const char *why = NULL;
    char reason[256];
    enum rtm_err err = rtm_request_parse(payload, len, core->cfg, &req, &why);
    if (err == RTM_OK && retain) {
        err = RTM_ERR_BAD_REQUEST;
        why = "call messages must not be retained";
    }
    if (err == RTM_OK) {
        char peer[RTM_UID_MAX + 1];
        memcpy(peer, topic->uid, topic->uid_len);
        peer[topic->uid_len] = '\0';
        err = rtm_invite_request(core, client->uid, peer, &req, now, &res.payload, &res.payload_len,
                                 reason, sizeof(reason));
        why = reason;
    }
    if (err == RTM_OK)
        res.verdict = RTM_REPLACE;
    else
        refuse_request(core, client, err, why, &req, now);
    rtm_request_free(&req);
    return res;
}

struct rtm_message_result rtm_core_message(struct rtm_core *core, const struct rtm_client *client,
                                           const char *topic, const void *payload,
                                           size_t payload_len, bool retain, int64_t now_ms)
{
    struct rtm_message_result res = {RTM_DENY, NULL, 0};
    struct rtm_topic t;
    enum rtm_topic_kind kind =
        rtm_topic_parse(core->cfg->topic_prefix, core->cfg->prefix_len, topic, &t);
    if (kind == RTM_TOPIC_OUTSIDE) {
        res.verdict = RTM_PASS;
        return res;
    }
    if (!client->uid) {
        rtm_core_log(core, RTM_LOG_NOTICE,
                     "rtm: refused publish to %s from client %s: no valid uid", topic,
                     client->client_id ? client->client_id : "");
        return res;
    }
    rtm_presence_confirm_handle(core, client->handle, now_ms);
    if (kind == RTM_TOPIC_CALL)
        return handle_call(core, client, &t, payload, payload_len, retain, now_ms);
    if (kind == RTM_TOPIC_DEVICE) /* the ACL check has already enforced ownership */
        return rtm_devices_message(core, client, &t, payload, payload_len, retain, now_ms);
    return res;
}

static bool owns_uid(const struct rtm_core *core, const struct rtm_client *client,
                     const struct rtm_topic *t)
{
    if (rtm_config_is_admin(core->cfg, client->uid))
        return true;
    return strlen(client->uid) == t->uid_len && memcmp(client->uid, t->uid, t->uid_len) == 0;
}

/* The device id of a devices topic as an error names it: at most
 * RTM_ID_MAX bytes, cut between two UTF-8 characters, so the error stays
 * valid JSON text. The broker only accepts UTF-8 topics; should one that is
 * not reach here, its bytes above ASCII are named '?'. */
static void device_for_error(const struct rtm_topic *t, char out[RTM_ID_MAX + 1])
{
    size_t len = t->device_len;
    if (len > RTM_ID_MAX) {
        len = RTM_ID_MAX;
        while (len > 0 && ((unsigned char)t->device[len] & 0xC0) == 0x80)
            len--;
    }
    memcpy(out, t->device, len);
    out[len] = '\0';
    if (rtm_utf8_valid(out, len))
        return;
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)out[i] >= 0x80)
            out[i] = '?';
    }
}

/* A publish the topic table forbids never reaches rtm_core_message, so the
 * sender learns why here: an error on its own inbox, to that session only.
 * A devices topic gets bad_request with `device`: another user's, or the
 * publisher's own (or, for an admin, anyone's) with a malformed device id. */
static void refuse_write(struct rtm_core *core, const struct rtm_client *client, const char *topic,
                         const struct rtm_topic *t, int64_t now)
{
    size_t len;
    char *json;
    char device[RTM_ID_MAX + 1];
    if (t->kind == RTM_TOPIC_DEVICE) {
        device_for_error(t, device);
        json = rtm_device_error_json(RTM_ERR_BAD_REQUEST,
                                     "only the owner or an admin may register "
                                     "its devices",
                                     device, now, &len);
    } else if (t->device && owns_uid(core, client, t)) {
        device_for_error(t, device);
        json = rtm_device_error_json(RTM_ERR_BAD_REQUEST, "a device id is 1-64 of A-Z a-z 0-9 _ -",
                                     device, now, &len);
    } else {
        json = rtm_error_json(RTM_ERR_NOT_PARTY, "this topic is not yours to publish to", NULL,
                              RTM_MSG_NONE, now, &len);
    }
    if (json)
        rtm_core_to_inbox(core, client->uid, client->handle, json, len);
    free(json);
    rtm_core_log(core, RTM_LOG_NOTICE, "rtm: refused publish to %s by %s", topic, client->uid);
}

static enum rtm_acl check_subscribe(struct rtm_core *core, const struct rtm_client *client,
                                    const char *filter, int64_t now)
{
    const struct rtm_config *cfg = core->cfg;
    bool admin = rtm_config_is_admin(cfg, client->uid);
    if (!rtm_topic_filter_allowed(cfg->topic_prefix, cfg->prefix_len, filter, client->uid, admin)) {
        rtm_core_log(core, RTM_LOG_NOTICE, "rtm: refused subscription to %s by %s", filter,
                     client->uid ? client->uid : "a client without a valid uid");
        return RTM_ACL_DENY;
    }
    bool just_confirmed = rtm_presence_confirm_handle(core, client->handle, now);
    /* Whatever rang while this session was not yet subscribed rings now
     * (confirming it just now has already delivered it). */
    if (!just_confirmed &&
        rtm_topic_filter_covers_inbox(cfg->topic_prefix, cfg->prefix_len, filter, client->uid)) {
        struct rtm_user *user = rtm_user_find(core, client->uid);
        if (user)
            rtm_invite_redeliver(core, user, client->handle, now);
    }
    return RTM_ACL_ALLOW;
}

/* READ of a call inbox: the plugin never retains a call message, and an
 * empty one is the fan-out of erasing one. */
static bool call_read_ok(struct rtm_core *core, const char *topic, size_t len, bool retain)
{
    if (retain && len > 0)
        rtm_core_erase(core, topic, "call messages are never retained");
    return !retain && len > 0;
}

/* READ of a device topic: a registration as the plugin stores it, or the
 * empty message that unregisters one. */
static bool device_read_ok(struct rtm_core *core, const char *topic, const void *payload,
                           size_t len, bool retain)
{
    struct rtm_registration reg;
    const char *why = NULL;
    if (len == 0 || rtm_registration_parse(payload, len, &reg, &why))
        return true;
    if (retain)
        rtm_core_erase(core, topic, why);
    return false;
}

static enum rtm_acl check_read(struct rtm_core *core, const struct rtm_client *client,
                               const char *topic, const struct rtm_topic *t, const void *payload,
                               size_t len, bool retain, int64_t now)
{
    switch (t->kind) {
    case RTM_TOPIC_CALL:
        if (!call_read_ok(core, topic, len, retain))
            return RTM_ACL_DENY;
        return owns_uid(core, client, t) ? RTM_ACL_ALLOW : RTM_ACL_DENY;
    case RTM_TOPIC_DEVICE:
        if (!device_read_ok(core, topic, payload, len, retain))
            return RTM_ACL_DENY;
        return owns_uid(core, client, t) ? RTM_ACL_ALLOW : RTM_ACL_DENY;
    case RTM_TOPIC_PRESENCE: {
        char uid[RTM_UID_MAX + 1];
        memcpy(uid, t->uid, t->uid_len);
        uid[t->uid_len] = '\0';
        return rtm_presence_read_ok(core, uid, payload, len, retain, now) ? RTM_ACL_ALLOW
                                                                          : RTM_ACL_DENY;
    }
    default:
        return RTM_ACL_DENY;
    }
}

static enum rtm_acl check_write(struct rtm_core *core, const struct rtm_client *client,
                                const struct rtm_topic *t)
{
    switch (t->kind) {
    case RTM_TOPIC_CALL: /* any valid user may ring anyone */
        return RTM_ACL_ALLOW;
    case RTM_TOPIC_DEVICE:
        return owns_uid(core, client, t) ? RTM_ACL_ALLOW : RTM_ACL_DENY;
    default: /* presence, and every topic the table does not name */
        return RTM_ACL_DENY;
    }
}

enum rtm_acl rtm_core_acl(struct rtm_core *core, const struct rtm_client *client,
                          enum rtm_access access, const char *topic, const void *payload,
                          size_t payload_len, bool retain, int64_t now_ms)
{
    if (access == RTM_ACCESS_UNSUBSCRIBE)
        return RTM_ACL_ALLOW;
    if (access == RTM_ACCESS_SUBSCRIBE)
        return check_subscribe(core, client, topic, now_ms);
    struct rtm_topic t;
    if (rtm_topic_parse(core->cfg->topic_prefix, core->cfg->prefix_len, topic, &t) ==
        RTM_TOPIC_OUTSIDE)
        return core->cfg->other_topics == RTM_OTHER_ALLOW ? RTM_ACL_ALLOW : RTM_ACL_DEFER;
    if (access == RTM_ACCESS_READ)
        return client->uid
                   ? check_read(core, client, topic, &t, payload, payload_len, retain, now_ms)
                   : RTM_ACL_DENY;
    if (!client->uid)
        return RTM_ACL_DENY;
    enum rtm_acl verdict = check_write(core, client, &t);
    if (verdict == RTM_ACL_DENY)
        refuse_write(core, client, topic, &t, now_ms);
    return verdict;
}

bool rtm_core_owns_topic(const struct rtm_core *core, const char *topic)
{
    return rtm_topic_under_prefix(core->cfg->topic_prefix, core->cfg->prefix_len, topic);
}

int64_t rtm_core_next_due(const struct rtm_core *core, int64_t now_ms)
{
    const struct rtm_timer *t = rtm_heap_peek(&core->timers);
    if (!t)
        return -1;
    return t->due > now_ms ? t->due - now_ms : 0;
}

struct rtm_registry *rtm_core_registry(struct rtm_core *core)
{
    return core->registry;
}

bool rtm_core_call_pending(const struct rtm_core *core, const char *caller, const char *id)
{
    return rtm_invite_pending(core, caller, id);
}

void rtm_core_stats(const struct rtm_core *core, struct rtm_core_stats *out)
{
    out->users = core->users.count;
    out->sessions = core->sessions.count;
    out->calls_live = core->calls_live;
    out->calls_remembered = core->calls.count - core->calls_live;
    out->timers = core->timers.len;
    out->devices = rtm_registry_count(core->registry);
    out->pool_bytes = rtm_pool_bytes(&core->pool);
    out->pool_records = rtm_pool_live(&core->pool);
}
