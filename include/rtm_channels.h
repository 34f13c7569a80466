/*
 * Channels (a feature, SPEC 8.2): membership per session, the joined and
 * members answers, member events, the coalesced retained member count, and
 * who may send to and read a channel. It owns the channel records, each
 * session's memberships (struct rtm_session.channels) and the channels'
 * count timers (plugin/features/channel_members.h says how they are laid
 * out; channels.c states the guarantees).
 *
 * Where SPEC 8.2 is silent:
 *   - a leave is not answered (there is no `left` answer), whether or not
 *     the session was a member; joining again is answered `joined` again;
 *   - a member event is published for a change between k-1 and k member
 *     uids (a member_joined that makes k, a member_left from k) only when
 *     k <= member_events_max: a member_left is decided by the count before
 *     the leave, so that both halves of a join and a leave are shown or
 *     neither;
 *   - a join the broker has no memory for is refused with limit_exceeded.
 */
#ifndef RTM_CHANNELS_H
#define RTM_CHANNELS_H

#include "rtm_context.h"

struct rtm_channels;

/* 0, or -1 when out of memory. */
int rtm_channels_init(struct rtm_core *core);
void rtm_channels_free_all(struct rtm_core *core);

/* A publish to {prefix}/c/{ch}/join, /leave or /members by a confirmed
 * session: applied (and for a join or a members request answered on that
 * session's inbox) with RTM_PASS, since nobody may read the request
 * topics; or refused with an error naming the topic and RTM_DENY: retained
 * (bad_request), no tracked session (bad_request), more than max_channels
 * (limit_exceeded), members asked by a non-member (not_party). */
struct rtm_message_result rtm_channels_request(struct rtm_core *core,
                                               const struct rtm_client *client, const char *topic,
                                               const struct rtm_topic *t, bool retain, int64_t now);

/* Is the session of client `handle` a member of channel t->channel? Runs
 * once per subscriber of a delivered channel message: no allocation, one
 * hash lookup (cached for repeated names) and a scan of that session's at
 * most max_channels memberships. */
bool rtm_channels_is_member(struct rtm_core *core, const void *handle, const struct rtm_topic *t);

/* May `client` read this channel message, member event or count? Messages
 * and events: only member sessions, never retained. Count: any valid user,
 * but only the plugin's own, current count (a stale or foreign retained one
 * is erased). */
bool rtm_channels_read_ok(struct rtm_core *core, const struct rtm_client *client, const char *topic,
                          const struct rtm_topic *t, const void *payload, size_t len, bool retain,
                          int64_t now);

/* Session event: the session ended; it leaves every channel it was in. */
void rtm_channels_session_down(struct rtm_core *core, struct rtm_session *session, int64_t now);

/* A channel's count timer fired (RTM_TIMER_CHANNEL). */
void rtm_channels_timer(struct rtm_core *core, struct rtm_timer *timer, int64_t now);

void rtm_channels_stats(const struct rtm_core *core, size_t *channels, size_t *memberships);

#endif
