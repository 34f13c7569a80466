/*
 * Channels (rtm_channels.h, SPEC 8.2): what a join, a leave and a members
 * request do, the member events, the retained member count, and who may
 * send to and read a channel. The records live in channel_members.c.
 *
 * Guarantees:
 *   - membership belongs to a session; a uid is a member while one of its
 *     sessions is, and member events and counts follow uids, not sessions;
 *   - a member event is published for a change between k-1 and k member
 *     uids (a join to k, a leave from k) only when k <= member_events_max,
 *     so a subscriber sees both halves of a join and a leave or neither;
 *   - the count topic is published at most once a second per channel and
 *     the last change gets out within a second: a change arms the channel's
 *     timer, unless already armed, for a second after the last publish (or
 *     at once); when it fires, the count is published if it differs from
 *     the one shown, and a channel that emptied is erased instead;
 *   - after an erase the record lingers a second (so a channel that comes
 *     back keeps the rate) and is then freed; a channel that empties with
 *     nothing shown and its second over is freed at once, publishing
 *     nothing;
 *   - a count is shown to readers only if it is the one last published;
 *     anything else retained is erased unless a count of ours may be
 *     waiting behind it in the broker's queue (never stale after a restart).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel_members.h"
#include "rtm_channels.h"
#include "rtm_outbox.h"
#include "rtm_timers.h"
#include "rtm_users.h"

/* The count topic's pace. */
#define COUNT_PERIOD_MS 1000
/* The most uids a joined or members answer lists. */
#define ANSWER_MAX 512

#define TOPIC_SIZE (RTM_PREFIX_MAX + RTM_CHANNEL_ID_MAX + 16)

int rtm_channels_init(struct rtm_core *core)
{
    return rtm_chan_init(core);
}

void rtm_channels_free_all(struct rtm_core *core)
{
    rtm_chan_free_all(core);
}

/* --- the count ----------------------------------------------------------------- */

/* Publishes the count, or erases it when the channel is empty, if it
 * differs from the one shown. Out of memory, nothing changes. */
static void show_count(struct rtm_core *core, struct rtm_channel *ch, int64_t now)
{
    if (ch->count == ch->shown)
        return;
    char topic[TOPIC_SIZE];
    size_t len = 0;
    char *json = ch->count ? rtm_count_json(ch->name, ch->count, now, &len) : NULL;
    if (!rtm_out_topic(core, topic, sizeof(topic), "c/%s/count", ch->name) ||
        (ch->count && !json)) {
        free(json);
        rtm_out_log(core, RTM_LOG_ERR, "rtm: out of memory publishing the count of channel %s",
                    ch->name);
        return;
    }
    rtm_out_publish(core, NULL, topic, json ? json : "", len, true);
    free(json);
    ch->shown = ch->count;
    ch->shown_at = now;
}

static bool arm(struct rtm_core *core, struct rtm_channel *ch, int64_t due)
{
    return rtm_timer_arm(core, &ch->timer, due, ch->name);
}

/* The channel's count may have changed: frees the record when nothing is
 * left to do for it, else makes sure its timer is armed. `ch` may be gone
 * afterwards. */
static void settle(struct rtm_core *core, struct rtm_channel *ch, int64_t now)
{
    int64_t next = ch->shown_at + COUNT_PERIOD_MS;
    if (ch->count == 0 && ch->shown == 0 && now >= next) {
        rtm_chan_free(core, ch);
        return;
    }
    if (rtm_timer_armed(&ch->timer) || arm(core, ch, next > now ? next : now))
        return;
    /* Out of memory for the timer: the count goes out now, early rather
     * than never. */
    show_count(core, ch, now);
    if (ch->count == 0 && ch->shown == 0)
        rtm_chan_free(core, ch);
}

void rtm_channels_timer(struct rtm_core *core, struct rtm_timer *timer, int64_t now)
{
    struct rtm_channel *ch = rtm_container_of(timer, struct rtm_channel, timer);
    if (ch->count == ch->shown) {
        if (ch->count == 0) /* the second after an erase is over, or nothing was shown */
            rtm_chan_free(core, ch);
        return;
    }
    show_count(core, ch, now);
    if (ch->count == ch->shown && ch->count > 0)
        return;
    /* Erased (it lingers a second), or out of memory (it tries again then). */
    if (!arm(core, ch, now + COUNT_PERIOD_MS) && ch->count == 0 && ch->shown == 0)
        rtm_chan_free(core, ch);
}

/* --- answers and events ---------------------------------------------------------- */

static struct rtm_message_result refuse(struct rtm_core *core, const struct rtm_client *client,
                                        const char *topic, enum rtm_err err, const char *why,
                                        int64_t now)
{
    rtm_out_refuse_topic(core, client, topic, err, why, now);
    return (struct rtm_message_result){RTM_DENY, NULL, 0};
}

static const struct rtm_message_result applied = {RTM_PASS, NULL, 0};

/* The joined or members answer, to the asking session only. */
static void answer(struct rtm_core *core, const struct rtm_client *client,
                   const struct rtm_channel *ch, bool joined, int64_t now)
{
    const char *uids[ANSWER_MAX];
    size_t n = rtm_chan_list(ch, uids, ANSWER_MAX);
    size_t len;
    char *json = rtm_members_json(joined, ch->name, ch->count, uids, n, ch->count > n, now, &len);
    if (json)
        rtm_out_inbox(core, client->uid, client->handle, json, len);
    else
        rtm_out_log(core, RTM_LOG_ERR, "rtm: out of memory answering %s about channel %s",
                    client->uid, ch->name);
    free(json);
}

/* `uid` became (joined) or stopped being a member; ch->count is the new
 * count. */
static void member_event(struct rtm_core *core, const struct rtm_channel *ch, const char *uid,
                         bool joined, int64_t now)
{
    size_t larger = joined ? ch->count : (size_t)ch->count + 1;
    if (larger > core->cfg->member_events_max)
        return;
    char topic[TOPIC_SIZE];
    size_t len;
    char *json = rtm_member_event_json(joined, ch->name, uid, ch->count, now, &len);
    if (json && rtm_out_topic(core, topic, sizeof(topic), "c/%s/events", ch->name))
        rtm_out_publish(core, NULL, topic, json, len, false);
    else
        rtm_out_log(core, RTM_LOG_ERR, "rtm: out of memory publishing an event of channel %s",
                    ch->name);
    free(json);
}

/* --- requests ------------------------------------------------------------------------ */

static struct rtm_message_result join(struct rtm_core *core, const struct rtm_client *client,
                                      struct rtm_session *s, const char *topic,
                                      const struct rtm_topic *t, int64_t now)
{
    struct rtm_channel *ch = rtm_chan_find(core, t->channel, t->channel_len);
    if (ch && rtm_chan_has(s, ch)) { /* again: the same answer, nothing changes */
        answer(core, client, ch, true, now);
        return applied;
    }
    /* Each new channel name leaves Mosquitto 2.0 a retained-store node for
     * its count that outlives the channel: joins are rate limited per uid
     * so that no client can grow the broker's memory fast. */
    if (!rtm_user_take(core, s->user, RTM_LIMIT_JOINS, now))
        return refuse(core, client, topic, RTM_ERR_RATE_LIMITED,
                      "more than join_rate joins in a second", now);
    uint32_t max = core->cfg->max_channels;
    if (rtm_chan_joined(s) >= max) {
        char why[96];
        snprintf(why, sizeof(why), "a session is in at most max_channels (%u) channels", max);
        return refuse(core, client, topic, RTM_ERR_LIMIT_EXCEEDED, why, now);
    }
    bool first = false;
    if (!ch)
        ch = rtm_chan_new(core, t->channel, t->channel_len);
    if (!ch || rtm_chan_enter(core, s, ch, &first) != 0) {
        if (ch)
            settle(core, ch, now); /* frees a record made for this join */
        rtm_out_log(core, RTM_LOG_ERR, "rtm: out of memory: %s could not join a channel",
                    client->uid);
        return refuse(core, client, topic, RTM_ERR_LIMIT_EXCEEDED, "the broker is out of memory",
                      now);
    }
    answer(core, client, ch, true, now);
    rtm_out_log(core, RTM_LOG_DEBUG, "rtm: %s (%s) joined channel %s: %u members", client->uid,
                client->client_id ? client->client_id : "", ch->name, ch->count);
    if (first) {
        member_event(core, ch, client->uid, true, now);
        settle(core, ch, now);
    }
    return applied;
}

/* Ends the membership of `s` in `ch`. `ch` may be gone afterwards. */
static void leave(struct rtm_core *core, struct rtm_session *s, struct rtm_channel *ch, int64_t now)
{
    bool last = rtm_chan_exit(core, s, ch);
    rtm_out_log(core, RTM_LOG_DEBUG, "rtm: a session of %s left channel %s: %u members",
                s->user->uid, ch->name, ch->count);
    if (last) {
        member_event(core, ch, s->user->uid, false, now);
        settle(core, ch, now);
    }
}

struct rtm_message_result rtm_channels_request(struct rtm_core *core,
                                               const struct rtm_client *client, const char *topic,
                                               const struct rtm_topic *t, bool retain, int64_t now)
{
    if (retain)
        return refuse(core, client, topic, RTM_ERR_BAD_REQUEST,
                      "channel requests must not be retained", now);
    struct rtm_session *s = rtm_session_find(core, client->handle);
    if (!s)
        return refuse(core, client, topic, RTM_ERR_BAD_REQUEST, "no session", now);
    if (t->kind == RTM_TOPIC_CH_JOIN)
        return join(core, client, s, topic, t, now);
    struct rtm_channel *ch = rtm_chan_find(core, t->channel, t->channel_len);
    bool member = ch && rtm_chan_has(s, ch);
    if (t->kind == RTM_TOPIC_CH_LEAVE) { /* not a member: nothing to do, no answer */
        if (member)
            leave(core, s, ch, now);
        return applied;
    }
    if (!member)
        return refuse(core, client, topic, RTM_ERR_NOT_PARTY,
                      "only a member session may ask for a channel's members", now);
    answer(core, client, ch, false, now);
    return applied;
}

void rtm_channels_session_down(struct rtm_core *core, struct rtm_session *session, int64_t now)
{
    struct rtm_channel *ch;
    while ((ch = rtm_chan_any(session)) != NULL)
        leave(core, session, ch, now);
}

/* --- who may send and read ------------------------------------------------------------ */

bool rtm_channels_is_member(struct rtm_core *core, const void *handle, const struct rtm_topic *t)
{
    struct rtm_session *s = rtm_session_find(core, handle);
    if (!s || rtm_chan_joined(s) == 0)
        return false;
    struct rtm_channel *ch = rtm_chan_find(core, t->channel, t->channel_len);
    return ch && rtm_chan_has(s, ch);
}

/* A count is shown only if it is the one last published. A retained one
 * that is not is erased, unless a count of ours has been published (then
 * the store holds ours, or ours is queued behind this one and an erase
 * would follow it and remove it): with no record, or none shown, nothing of
 * ours can be waiting, and what is stored is stale (from before a restart)
 * or foreign. */
static bool count_read_ok(struct rtm_core *core, const char *topic, const struct rtm_topic *t,
                          const void *payload, size_t len, bool retain)
{
    if (len == 0) /* an erase */
        return true;
    const struct rtm_channel *ch = rtm_chan_find(core, t->channel, t->channel_len);
    char name[RTM_CHANNEL_ID_MAX + 1];
    memcpy(name, t->channel, t->channel_len);
    name[t->channel_len] = '\0';
    uint64_t count;
    bool parsed = rtm_count_payload_parse(payload, len, name, &count);
    if (ch && ch->shown > 0)
        return parsed && count == ch->shown;
    if (retain)
        rtm_out_erase(core, topic,
                      ch ? "a count the plugin does not show"
                         : "a count of a channel nobody is in");
    return false;
}

bool rtm_channels_read_ok(struct rtm_core *core, const struct rtm_client *client, const char *topic,
                          const struct rtm_topic *t, const void *payload, size_t len, bool retain,
                          int64_t now)
{
    (void)now;
    if (t->kind == RTM_TOPIC_CH_COUNT)
        return count_read_ok(core, topic, t, payload, len, retain);
    if (retain) {
        if (len > 0)
            rtm_out_erase(core, topic, "channel messages and member events are never retained");
        return false;
    }
    return rtm_channels_is_member(core, client->handle, t);
}

void rtm_channels_stats(const struct rtm_core *core, size_t *channels, size_t *memberships)
{
    const struct rtm_channels *chs = core->channels;
    *channels = chs ? chs->live : 0;
    *memberships = chs ? chs->memberships : 0;
}
