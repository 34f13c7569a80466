/*
 * The dispatcher: the core's entry points for broker events. Each event is
 * routed to the one feature that owns its topic (rtm_topic_parse says
 * which); session events and fired timers are fanned out to the features
 * that need them. No feature logic lives here: only who hears what.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtm_attrs.h"
#include "rtm_calls.h"
#include "rtm_channels.h"
#include "rtm_devices.h"
#include "rtm_dispatch.h"
#include "rtm_messages.h"
#include "rtm_outbox.h"
#include "rtm_presence.h"
#include "rtm_timers.h"
#include "rtm_users.h"

/* --- session events and timers, fanned out to the features ---------------- */

static void session_up(struct rtm_core *core, struct rtm_session *s, bool first, int64_t now)
{
    if (first)
        rtm_calls_user_online(core, s->user);
    rtm_presence_changed(core, s->user, now);
    rtm_calls_session_up(core, s->user, s->handle, now);
}

static void session_down(struct rtm_core *core, struct rtm_session *s, bool was_confirmed,
                         bool last, int64_t now)
{
    if (was_confirmed)
        rtm_presence_changed(core, s->user, now);
    rtm_channels_session_down(core, s, now);
    if (last) {
        rtm_calls_user_offline(core, s->user, now);
        rtm_attrs_user_offline(core, s->user, now);
    }
}

static void timer_fired(struct rtm_core *core, struct rtm_timer *t, int64_t now)
{
    switch ((enum rtm_timer_kind)t->kind) {
    case RTM_TIMER_CALL:
        rtm_calls_timer(core, rtm_container_of(t, struct rtm_call, timer), now);
        break;
    case RTM_TIMER_CALLER_GRACE:
        rtm_calls_caller_gone(core, rtm_user_of_timer(t), now);
        break;
    case RTM_TIMER_USER_LINGER:
        rtm_user_linger_done(core, rtm_user_of_timer(t));
        break;
    case RTM_TIMER_CHANNEL:
        rtm_channels_timer(core, t, now);
        break;
    }
}

const struct rtm_session_hooks rtm_dispatch_hooks = {session_up, session_down, timer_fired};

/* --- parsing, once per topic ------------------------------------------------- */

/* The same pointer at the same offset into `base`. */
static const char *rebase(const char *p, const char *from, const char *base)
{
    return p ? base + (p - from) : NULL;
}

/* rtm_topic_parse, remembering the last topic: a hit (the same text) copies
 * the remembered parse and points it into `topic`. A topic too long to
 * remember is parsed in place. */
static enum rtm_topic_kind parse(struct rtm_core *core, const char *topic, struct rtm_topic *t)
{
    struct rtm_topic_cache *c = &core->parsed;
    size_t len = strlen(topic);
    if (len == 0 || len >= sizeof(c->topic))
        return rtm_topic_parse(core->cfg->topic_prefix, core->cfg->prefix_len, topic, t);
    if (len != c->len || memcmp(topic, c->topic, len) != 0) {
        memcpy(c->topic, topic, len + 1);
        rtm_topic_parse(core->cfg->topic_prefix, core->cfg->prefix_len, c->topic, &c->parsed);
        c->len = len;
    }
    *t = c->parsed;
    t->uid = rebase(t->uid, c->topic, topic);
    t->device = rebase(t->device, c->topic, topic);
    t->channel = rebase(t->channel, c->topic, topic);
    t->sender = rebase(t->sender, c->topic, topic);
    t->key = rebase(t->key, c->topic, topic);
    return t->kind;
}

/* --- broker events ---------------------------------------------------------- */

void rtm_core_connect(struct rtm_core *core, const struct rtm_client *client, int64_t now_ms)
{
    rtm_session_open(core, client, now_ms);
}

void rtm_core_connected(struct rtm_core *core, const struct rtm_client *client, int64_t now_ms)
{
    if (!rtm_session_find(core, client->handle))
        rtm_session_open(core, client, now_ms);
    rtm_session_confirm(core, client->handle, now_ms);
}

void rtm_core_disconnect(struct rtm_core *core, const void *handle, int64_t now_ms)
{
    rtm_session_close(core, handle, now_ms);
}

void rtm_core_tick(struct rtm_core *core, int64_t now_ms)
{
    /* Sessions first: a callee confirmed now counts as seen before its
     * invitation's timer can fire in this same tick. */
    rtm_sessions_confirm_queued(core, now_ms);
    rtm_presence_tick(core, now_ms);
    rtm_timers_run(core, now_ms);
}

struct rtm_message_result rtm_core_message(struct rtm_core *core, const struct rtm_client *client,
                                           const char *topic, const void *payload,
                                           size_t payload_len, bool retain, int64_t now_ms)
{
    struct rtm_message_result res = {RTM_DENY, NULL, 0};
    struct rtm_topic t;
    enum rtm_topic_kind kind = parse(core, topic, &t);
    if (kind == RTM_TOPIC_OUTSIDE) {
        res.verdict = RTM_PASS;
        return res;
    }
    if (!client->uid) {
        rtm_out_log(core, RTM_LOG_NOTICE, "rtm: refused publish to %s from client %s: no valid uid",
                    topic, client->client_id ? client->client_id : "");
        return res;
    }
    rtm_session_confirm(core, client->handle, now_ms);
    /* The ACL check has already enforced who may publish here (check_write). */
    switch (kind) {
    case RTM_TOPIC_CALL:
        return rtm_calls_message(core, client, &t, payload, payload_len, retain, now_ms);
    case RTM_TOPIC_DEVICE:
        return rtm_devices_message(core, client, &t, payload, payload_len, retain, now_ms);
    case RTM_TOPIC_MSG:
    case RTM_TOPIC_CH_MSG:
        return rtm_messages_message(core, client, topic, payload_len, retain, now_ms);
    case RTM_TOPIC_CH_JOIN:
    case RTM_TOPIC_CH_LEAVE:
    case RTM_TOPIC_CH_MEMBERS:
        return rtm_channels_request(core, client, topic, &t, retain, now_ms);
    case RTM_TOPIC_USER_ATTR:
    case RTM_TOPIC_CH_ATTR:
        return rtm_attrs_message(core, client, topic, &t, payload, payload_len, retain, now_ms);
    default:
        return res;
    }
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
/* Why a SPEC 8 topic refused a publish; NULL for the topics of SPEC 4-6,
 * whose errors name no topic. */
static const char *refusal_of(enum rtm_topic_kind kind)
{
    switch (kind) {
    case RTM_TOPIC_MSG:
        return "a peer message is sent as its sender: {prefix}/u/{peer}/msg/{your uid}";
    case RTM_TOPIC_CH_MSG:
        return "only a member session may send, as its own uid: {prefix}/c/{ch}/msg/{your uid}";
    case RTM_TOPIC_USER_ATTR:
        return "only the user (or an admin) writes its attributes";
    case RTM_TOPIC_CH_ATTR:
        return "only a member session (or an admin) writes a channel's attributes";
    case RTM_TOPIC_CH_EVENTS:
    case RTM_TOPIC_CH_COUNT:
        return "only the plugin publishes member events and counts";
    default:
        return NULL;
    }
}

static void refuse_write(struct rtm_core *core, const struct rtm_client *client, const char *topic,
                         const struct rtm_topic *t, int64_t now)
{
    const char *why = refusal_of(t->kind);
    if (why) {
        rtm_out_refuse_topic(core, client, topic, RTM_ERR_NOT_PARTY, why, now);
        return;
    }
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
        rtm_out_inbox(core, client->uid, client->handle, json, len);
    free(json);
    rtm_out_log(core, RTM_LOG_NOTICE, "rtm: refused publish to %s by %s", topic, client->uid);
}

static enum rtm_acl check_subscribe(struct rtm_core *core, const struct rtm_client *client,
                                    const char *filter, int64_t now)
{
    const struct rtm_config *cfg = core->cfg;
    bool admin = rtm_config_is_admin(cfg, client->uid);
    if (!rtm_topic_filter_allowed(cfg->topic_prefix, cfg->prefix_len, filter, client->uid, admin)) {
        rtm_out_log(core, RTM_LOG_NOTICE, "rtm: refused subscription to %s by %s", filter,
                    client->uid ? client->uid : "a client without a valid uid");
        return RTM_ACL_DENY;
    }
    bool just_confirmed = rtm_session_confirm(core, client->handle, now);
    /* Whatever rang while this session was not yet subscribed rings now
     * (confirming it just now has already delivered it). */
    if (!just_confirmed &&
        rtm_topic_filter_covers_inbox(cfg->topic_prefix, cfg->prefix_len, filter, client->uid)) {
        struct rtm_user *user = rtm_user_find(core, client->uid);
        if (user)
            rtm_calls_redeliver(core, user, client->handle, now);
    }
    return RTM_ACL_ALLOW;
}

static enum rtm_acl check_read(struct rtm_core *core, const struct rtm_client *client,
                               const char *topic, const struct rtm_topic *t, const void *payload,
                               size_t len, bool retain, int64_t now)
{
    switch (t->kind) {
    case RTM_TOPIC_CALL:
        if (!rtm_calls_read_ok(core, topic, len, retain))
            return RTM_ACL_DENY;
        return owns_uid(core, client, t) ? RTM_ACL_ALLOW : RTM_ACL_DENY;
    case RTM_TOPIC_DEVICE:
        if (!rtm_devices_read_ok(core, topic, payload, len, retain))
            return RTM_ACL_DENY;
        return owns_uid(core, client, t) ? RTM_ACL_ALLOW : RTM_ACL_DENY;
    case RTM_TOPIC_PRESENCE: {
        char uid[RTM_UID_MAX + 1];
        memcpy(uid, t->uid, t->uid_len);
        uid[t->uid_len] = '\0';
        return rtm_presence_read_ok(core, uid, payload, len, retain, now) ? RTM_ACL_ALLOW
                                                                          : RTM_ACL_DENY;
    }
    case RTM_TOPIC_MSG:
        return rtm_messages_read_ok(core, client, topic, t, len, retain) ? RTM_ACL_ALLOW
                                                                         : RTM_ACL_DENY;
    case RTM_TOPIC_CH_MSG:
    case RTM_TOPIC_CH_EVENTS:
    case RTM_TOPIC_CH_COUNT:
        return rtm_channels_read_ok(core, client, topic, t, payload, len, retain, now)
                   ? RTM_ACL_ALLOW
                   : RTM_ACL_DENY;
    case RTM_TOPIC_USER_ATTR:
    case RTM_TOPIC_CH_ATTR:
        return rtm_attrs_read_ok(core, client, topic, t, payload, len, retain, now) ? RTM_ACL_ALLOW
                                                                                    : RTM_ACL_DENY;
    default: /* the channel requests, and every topic the table does not name */
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
    case RTM_TOPIC_USER_ATTR:
        return owns_uid(core, client, t) ? RTM_ACL_ALLOW : RTM_ACL_DENY;
    case RTM_TOPIC_MSG: /* the topic proves the sender */
        return rtm_messages_sender_ok(client, t) ? RTM_ACL_ALLOW : RTM_ACL_DENY;
    case RTM_TOPIC_CH_MSG:
        return rtm_messages_sender_ok(client, t) && rtm_channels_is_member(core, client->handle, t)
                   ? RTM_ACL_ALLOW
                   : RTM_ACL_DENY;
    case RTM_TOPIC_CH_ATTR:
        return rtm_config_is_admin(core->cfg, client->uid) ||
                       rtm_channels_is_member(core, client->handle, t)
                   ? RTM_ACL_ALLOW
                   : RTM_ACL_DENY;
    case RTM_TOPIC_CH_JOIN: /* any valid user may join, leave, or ask (as a member) */
    case RTM_TOPIC_CH_LEAVE:
    case RTM_TOPIC_CH_MEMBERS:
        return RTM_ACL_ALLOW;
    default: /* presence, member events, counts, and every topic the table does not name */
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
    if (parse(core, topic, &t) == RTM_TOPIC_OUTSIDE)
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
