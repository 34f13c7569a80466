/*
 * Attributes (a feature, SPEC 8.3 and 8.4): user attributes
 * ({prefix}/u/{uid}/attr/{key}) and channel attributes
 * ({prefix}/c/{ch}/attr/{key}), retained and stamped. The broker's retained
 * store holds the values; this feature holds, per user and per channel,
 * which keys exist and how many bytes they use, to enforce the limits, and
 * deletes a user's attributes when the user goes offline (user_attr_lifetime
 * session). Who may write a channel's attributes (its members) is the
 * channels feature's rule; the dispatcher asks it first. What the broker
 * stored before a start-up is read back through rtm_core_load_attr()
 * (rtm_core.h), implemented here.
 */
#ifndef RTM_ATTRS_H
#define RTM_ATTRS_H

#include "rtm_context.h"

struct rtm_attrs;

/* 0, or -1 when out of memory. */
int rtm_attrs_init(struct rtm_core *core);
void rtm_attrs_free_all(struct rtm_core *core);

/* A write (retained value) or delete (empty retained payload) of an
 * attribute: RTM_REPLACE with the stamped value, RTM_PASS for a delete, or
 * RTM_DENY with an error to the session. Checks, in order: retained
 * (bad_request); a delete, which only draws from the writer's rate; the
 * value UTF-8 without NUL (bad_request); the writer's attr_rate
 * (rate_limited); with the session lifetime, the user online
 * (invalid_state); the owner's max_attr_keys and max_attr_bytes
 * (limit_exceeded). */
struct rtm_message_result rtm_attrs_message(struct rtm_core *core, const struct rtm_client *client,
                                            const char *topic, const struct rtm_topic *t,
                                            const void *payload, size_t len, bool retain,
                                            int64_t now);

/* May this attribute message be delivered? The empty message of a delete,
 * or the plugin's stamp for this key; with the session lifetime, a user's
 * attribute only while this process holds that key with that ts. Anything
 * else retained is erased. */
bool rtm_attrs_read_ok(struct rtm_core *core, const struct rtm_client *client, const char *topic,
                       const struct rtm_topic *t, const void *payload, size_t len, bool retain,
                       int64_t now);

/* Session event: the user's last session ended. With the session
 * lifetime, each of its attributes is deleted (an empty retained message)
 * and forgotten. */
void rtm_attrs_user_offline(struct rtm_core *core, struct rtm_user *user, int64_t now);

/* Attributes held, of users and channels. */
void rtm_attrs_stats(const struct rtm_core *core, size_t *attributes);

#endif
