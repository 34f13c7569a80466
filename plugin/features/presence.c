/*
 * Sessions and presence. Sessions are keyed by the broker's client handle:
 * on a takeover the new connection authenticates before the old one
 * disconnects, so the client id cannot tell them apart.
 *
 * A session starts unconfirmed, because an authentication source after ours
 * may still refuse it; the broker then reports the disconnect in the same
 * loop iteration. The next tick confirms whatever is left. Presence is
 * published from the tick too, only for users whose state changed, so a
 * takeover (new session in, old one out, same iteration) never shows the
 * user offline and a refused connection never shows it online.
 */
#include <stdlib.h>
#include <string.h>

#include "rtm_state.h"

static bool session_eq(const struct rtm_hnode *node, const void *key)
{
    return rtm_container_of(node, struct rtm_session, node)->handle == key;
}

static struct rtm_session *session_find(struct rtm_core *core, const void *handle)
{
    struct rtm_hnode *n = rtm_hash_find(&core->sessions, rtm_hash_ptr(handle), session_eq, handle);
    return n ? rtm_container_of(n, struct rtm_session, node) : NULL;
}

static void flush_user(struct rtm_core *core, struct rtm_user *user, int64_t now);

/* Queues the user's presence for the next tick; out of memory, publishes it
 * now rather than never. */
static void mark_dirty(struct rtm_core *core, struct rtm_user *user, int64_t now)
{
    if (user->dirty)
        return;
    if (rtm_vec_push(&core->dirty, user) == 0)
        user->dirty = true;
    else
        flush_user(core, user, now);
}

bool rtm_presence_has_session(struct rtm_core *core, const void *handle)
{
    return session_find(core, handle) != NULL;
}

void rtm_presence_connect(struct rtm_core *core, const struct rtm_client *client, int64_t now)
{
    if (!client->uid)
        return;
    if (session_find(core, client->handle)) /* the handle authenticated again */
        rtm_presence_disconnect(core, client->handle, now);
    struct rtm_session *s = rtm_pool_alloc(&core->pool, sizeof(*s));
    struct rtm_user *user = s ? rtm_user_acquire(core, client->uid) : NULL;
    if (!user) {
        rtm_pool_free(&core->pool, s);
        rtm_core_log(core, RTM_LOG_ERR, "rtm: out of memory tracking session of %s", client->uid);
        return;
    }
    s->handle = client->handle;
    s->user = user;
    rtm_hash_insert(&core->sessions, &s->node, rtm_hash_ptr(client->handle));
    user->unconfirmed++;
    /* Out of memory, it is confirmed at its first publish or subscribe. */
    if (rtm_vec_push(&core->unconfirmed, (void *)client->handle) != 0)
        rtm_core_log(core, RTM_LOG_ERR, "rtm: out of memory queueing session of %s", client->uid);
}

static void confirm(struct rtm_core *core, struct rtm_session *s, int64_t now)
{
    struct rtm_user *user = s->user;
    s->confirmed = true;
    user->unconfirmed--;
    user->confirmed++;
    if (user->confirmed == 1)
        rtm_invite_user_online(core, user);
    mark_dirty(core, user, now);
    /* Tracked, so still connected (the broker reports the disconnect before
     * it frees the client): its handle may name it to the adapter. */
    rtm_invite_session_up(core, user, s->handle, now);
}

bool rtm_presence_confirm_handle(struct rtm_core *core, const void *handle, int64_t now)
{
    struct rtm_session *s = session_find(core, handle);
    if (!s || s->confirmed)
        return false;
    confirm(core, s, now);
    return true;
}

void rtm_presence_disconnect(struct rtm_core *core, const void *handle, int64_t now)
{
    struct rtm_session *s = session_find(core, handle);
    if (!s)
        return;
    struct rtm_user *user = s->user;
    rtm_hash_remove(&core->sessions, &s->node);
    if (s->confirmed) {
        user->confirmed--;
        mark_dirty(core, user, now);
    } else {
        user->unconfirmed--; /* its handle in core->unconfirmed finds nothing */
    }
    rtm_pool_free(&core->pool, s);
    if (!rtm_user_live(user))
        rtm_invite_user_offline(core, user, now);
    rtm_user_release(core, user);
}

static void publish_presence(struct rtm_core *core, const char *uid, bool online, unsigned sessions,
                             int64_t now)
{
    char topic[RTM_PREFIX_MAX + RTM_UID_MAX + 16];
    size_t len;
    char *json = rtm_presence_json(uid, online, sessions, now, &len);
    if (!json || !rtm_core_topic(core, topic, sizeof(topic), "presence/%s", uid)) {
        free(json);
        rtm_core_log(core, RTM_LOG_ERR, "rtm: out of memory publishing presence of %s", uid);
        return;
    }
    struct rtm_publish msg = {NULL, topic, json, len, 1, true};
    core->sink->publish(core->sink->ud, &msg);
    free(json);
}

/* Publishes the user's presence if it differs from what was last shown. */
static void flush_user(struct rtm_core *core, struct rtm_user *user, int64_t now)
{
    bool online = user->confirmed > 0;
    if (user->shown_online == online && (!online || user->shown_sessions == user->confirmed))
        return;
    publish_presence(core, user->uid, online, user->confirmed, now);
    user->shown_online = online;
    user->shown_sessions = user->confirmed;
    rtm_core_log(core, RTM_LOG_DEBUG, "rtm: presence %s %s sessions=%u", user->uid,
                 online ? "online" : "offline", user->confirmed);
}

void rtm_presence_tick(struct rtm_core *core, int64_t now)
{
    /* A handle may be stale (disconnected, or reused by a new session that
     * is queued again after it): only a session still unconfirmed counts. */
    for (size_t i = 0; i < core->unconfirmed.len; i++)
        rtm_presence_confirm_handle(core, core->unconfirmed.v[i], now);
    rtm_vec_clear(&core->unconfirmed);
    /* Confirming may queue more users; a queued user is never freed. */
    for (size_t i = 0; i < core->dirty.len; i++) {
        struct rtm_user *user = core->dirty.v[i];
        user->dirty = false;
        flush_user(core, user, now);
        rtm_user_gc(core, user);
    }
    rtm_vec_clear(&core->dirty);
}

static void erase_presence(struct rtm_core *core, const char *uid)
{
    char topic[RTM_PREFIX_MAX + RTM_UID_MAX + 16];
    if (rtm_core_topic(core, topic, sizeof(topic), "presence/%s", uid))
        rtm_core_erase(core, topic, "not a presence message");
}

bool rtm_presence_read_ok(struct rtm_core *core, const char *uid, const void *payload, size_t len,
                          bool retain, int64_t now)
{
    enum rtm_presence_claim claim = rtm_presence_payload_claim(payload, len, uid);
    struct rtm_user *user = rtm_user_find(core, uid);
    if (claim == RTM_PRESENCE_NOT_OURS) {
        /* Not written by the plugin (left by a broker that ran without it),
         * or the fan-out of erasing such a message. */
        if (retain && len > 0) {
            if (user && user->shown_online)
                publish_presence(core, uid, true, user->shown_sessions, now);
            else
                erase_presence(core, uid);
        }
        return false;
    }
    if (claim == RTM_PRESENCE_OFFLINE || (user && rtm_user_live(user)))
        return true;
    /* Left over from before a restart (or overtaken by a disconnect whose
     * offline message is already queued): never show it. */
    if (!user || !user->dirty) {
        publish_presence(core, uid, false, 0, now);
        rtm_core_log(core, RTM_LOG_INFO, "rtm: presence %s was stale online; now offline", uid);
    }
    return false;
}

void rtm_presence_free_all(struct rtm_core *core)
{
    struct rtm_hnode *n;
    while ((n = rtm_hash_pop(&core->sessions)) != NULL)
        rtm_pool_free(&core->pool, rtm_container_of(n, struct rtm_session, node));
    rtm_vec_free(&core->unconfirmed);
    rtm_vec_free(&core->dirty);
}
