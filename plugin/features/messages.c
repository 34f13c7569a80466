/*
 * Messages (rtm_messages.h). Everything here is decided from the topic, the
 * payload's length and the sender's rate bucket: the payload itself is
 * never read.
 */
#include <stdio.h>
#include <string.h>

#include "rtm_messages.h"
#include "rtm_outbox.h"
#include "rtm_users.h"

bool rtm_messages_sender_ok(const struct rtm_client *client, const struct rtm_topic *t)
{
    return client->uid && strlen(client->uid) == t->sender_len &&
           memcmp(client->uid, t->sender, t->sender_len) == 0;
}

static struct rtm_message_result refuse(struct rtm_core *core, const struct rtm_client *client,
                                        const char *topic, enum rtm_err err, const char *why,
                                        int64_t now)
{
    rtm_out_refuse_topic(core, client, topic, err, why, now);
    return (struct rtm_message_result){RTM_DENY, NULL, 0};
}

struct rtm_message_result rtm_messages_message(struct rtm_core *core,
                                               const struct rtm_client *client, const char *topic,
                                               size_t len, bool retain, int64_t now)
{
    if (retain)
        return refuse(core, client, topic, RTM_ERR_BAD_REQUEST, "messages must not be retained",
                      now);
    if (len > core->cfg->max_message) {
        char why[96];
        snprintf(why, sizeof(why), "a message is at most max_message (%u) bytes",
                 core->cfg->max_message);
        return refuse(core, client, topic, RTM_ERR_BAD_REQUEST, why, now);
    }
    /* The session's user is the sender's (found by handle, not by hashing
     * the uid: this runs for every message). */
    struct rtm_session *s = rtm_session_find(core, client->handle);
    if (s && !rtm_user_take(core, s->user, RTM_LIMIT_MESSAGES, now))
        return refuse(core, client, topic, RTM_ERR_RATE_LIMITED,
                      "more than message_rate messages in a second", now);
    return (struct rtm_message_result){RTM_PASS, NULL, 0};
}

bool rtm_messages_read_ok(struct rtm_core *core, const struct rtm_client *client, const char *topic,
                          const struct rtm_topic *t, size_t len, bool retain)
{
    if (retain) {
        if (len > 0)
            rtm_out_erase(core, topic, "messages are never retained");
        return false;
    }
    if (rtm_config_is_admin(core->cfg, client->uid))
        return true;
    return strlen(client->uid) == t->uid_len && memcmp(client->uid, t->uid, t->uid_len) == 0;
}
