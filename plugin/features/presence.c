/*
 * Presence (rtm_presence.h): what subscribers of {prefix}/presence/{uid}
 * were last shown, and the checks that keep a stale or forged presence
 * message from being delivered.
 */
#include <stdlib.h>
#include <string.h>

#include "rtm_outbox.h"
#include "rtm_presence.h"
#include "rtm_users.h"

static void flush_user(struct rtm_core *core, struct rtm_user *user, int64_t now);

void rtm_presence_changed(struct rtm_core *core, struct rtm_user *user, int64_t now)
{
    if (user->dirty)
        return;
    /* Out of memory, publishes it now rather than never. */
    if (rtm_vec_push(&core->dirty, user) == 0)
        user->dirty = true;
    else
        flush_user(core, user, now);
}

static void publish_presence(struct rtm_core *core, const char *uid, bool online, unsigned sessions,
                             int64_t now)
{
    char topic[RTM_PREFIX_MAX + RTM_UID_MAX + 16];
    size_t len;
    char *json = rtm_presence_json(uid, online, sessions, now, &len);
    if (!json || !rtm_out_topic(core, topic, sizeof(topic), "presence/%s", uid)) {
        free(json);
        rtm_out_log(core, RTM_LOG_ERR, "rtm: out of memory publishing presence of %s", uid);
        return;
    }
    rtm_out_publish(core, NULL, topic, json, len, true);
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
    rtm_out_log(core, RTM_LOG_DEBUG, "rtm: presence %s %s sessions=%u", user->uid,
                online ? "online" : "offline", user->confirmed);
}

void rtm_presence_tick(struct rtm_core *core, int64_t now)
{
    /* A queued user is never freed (struct rtm_user.dirty pins it). */
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
    if (rtm_out_topic(core, topic, sizeof(topic), "presence/%s", uid))
        rtm_out_erase(core, topic, "not a presence message");
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
        rtm_out_log(core, RTM_LOG_INFO, "rtm: presence %s was stale online; now offline", uid);
    }
    return false;
}

void rtm_presence_free_all(struct rtm_core *core)
{
    rtm_vec_free(&core->dirty);
}
