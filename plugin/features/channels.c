/*
 * Channels (rtm_channels.h). PLACEHOLDER until the channels feature lands:
 * every channel request is refused and nobody is a member.
 */
#include "rtm_channels.h"
#include "rtm_outbox.h"

int rtm_channels_init(struct rtm_core *core)
{
    (void)core;
    return 0;
}

void rtm_channels_free_all(struct rtm_core *core)
{
    (void)core;
}

struct rtm_message_result rtm_channels_request(struct rtm_core *core,
                                               const struct rtm_client *client, const char *topic,
                                               const struct rtm_topic *t, bool retain, int64_t now)
{
    (void)t;
    (void)retain;
    rtm_out_refuse_topic(core, client, topic, RTM_ERR_BAD_REQUEST, "channels are not built yet",
                         now);
    return (struct rtm_message_result){RTM_DENY, NULL, 0};
}

bool rtm_channels_is_member(struct rtm_core *core, const void *handle, const struct rtm_topic *t)
{
    (void)core;
    (void)handle;
    (void)t;
    return false;
}

bool rtm_channels_read_ok(struct rtm_core *core, const struct rtm_client *client, const char *topic,
                          const struct rtm_topic *t, const void *payload, size_t len, bool retain,
                          int64_t now)
{
    (void)core, (void)client, (void)topic, (void)t, (void)payload, (void)len, (void)retain,
        (void)now;
    return false;
}

void rtm_channels_session_down(struct rtm_core *core, struct rtm_session *session, int64_t now)
{
    (void)core, (void)session, (void)now;
}

void rtm_channels_timer(struct rtm_core *core, struct rtm_timer *timer, int64_t now)
{
    (void)core, (void)timer, (void)now;
}

void rtm_channels_stats(const struct rtm_core *core, size_t *channels, size_t *memberships)
{
    (void)core;
    *channels = 0;
    *memberships = 0;
}
