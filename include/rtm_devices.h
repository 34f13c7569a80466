/*
 * Devices (a feature, SPEC 6.1): registrations of push targets as retained
 * {prefix}/u/{uid}/devices/{device} messages, indexed in the device registry
 * (a service the pusher reads).
 */
#ifndef RTM_DEVICES_H
#define RTM_DEVICES_H

#include "rtm_context.h"

/* A publish to {prefix}/u/{uid}/devices/{device}: register, update or
 * (empty payload) unregister. The ACL check has enforced ownership. */
struct rtm_message_result rtm_devices_message(struct rtm_core *core,
                                              const struct rtm_client *client,
                                              const struct rtm_topic *topic, const void *payload,
                                              size_t len, bool retain, int64_t now);
/* May a message on a device topic be delivered? A registration as the
 * plugin stores it, or the empty message that unregisters one; anything
 * else retained is erased. */
bool rtm_devices_read_ok(struct rtm_core *core, const char *topic, const void *payload, size_t len,
                         bool retain);

#endif
