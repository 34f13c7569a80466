/*
 * Attributes (rtm_attrs.h). PLACEHOLDER until the attributes feature lands:
 * every write is refused and nothing is read.
 */
#include "rtm_attrs.h"
#include "rtm_outbox.h"

int rtm_attrs_init(struct rtm_core *core)
{
    (void)core;
    return 0;
}

void rtm_attrs_free_all(struct rtm_core *core)
{
    (void)core;
}

struct rtm_message_result rtm_attrs_message(struct rtm_core *core, const struct rtm_client *client,
                                            const char *topic, const struct rtm_topic *t,
                                            const void *payload, size_t len, bool retain,
                                            int64_t now)
{
    (void)t, (void)payload, (void)len, (void)retain;
    rtm_out_refuse_topic(core, client, topic, RTM_ERR_BAD_REQUEST, "attributes are not built yet",
                         now);
    return (struct rtm_message_result){RTM_DENY, NULL, 0};
}

bool rtm_attrs_read_ok(struct rtm_core *core, const struct rtm_client *client, const char *topic,
                       const struct rtm_topic *t, const void *payload, size_t len, bool retain,
                       int64_t now)
{
    (void)core, (void)client, (void)topic, (void)t, (void)payload, (void)len, (void)retain,
        (void)now;
    return false;
}

void rtm_attrs_user_offline(struct rtm_core *core, struct rtm_user *user, int64_t now)
{
    (void)core, (void)user, (void)now;
}

void rtm_attrs_stats(const struct rtm_core *core, size_t *attributes)
{
    (void)core;
    *attributes = 0;
}
