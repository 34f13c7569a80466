/*
 * Device registrations (PROTOCOL.md, devices): a retained publish to
 * {prefix}/u/{uid}/devices/{device} registers or updates a push target, an
 * empty one unregisters it. The retained message is the store; the registry
 * is the index the pusher reads. A registration is validated, then
 * forwarded in a normalized form, so the store only ever holds what the
 * plugin accepted. The ACL check has already made sure the publisher is
 * {uid} or an admin.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtm_devices.h"
#include "rtm_outbox.h"
#include "rtm_users.h"

static void copy_level(char *dst, size_t size, const char *s, size_t len)
{
    len = len < size - 1 ? len : size - 1;
    memcpy(dst, s, len);
    dst[len] = '\0';
}

/* Tells the one session that sent a refused registration why. */
static struct rtm_message_result refuse_with(struct rtm_core *core, const struct rtm_client *client,
                                             enum rtm_err err, const char *uid, const char *device,
                                             const char *why, int64_t now)
{
    struct rtm_message_result res = {RTM_DENY, NULL, 0};
    size_t len;
    char *json = rtm_device_error_json(err, why, device, now, &len);
    if (json)
        rtm_out_inbox(core, client->uid, client->handle, json, len);
    free(json);
    rtm_out_log(core, RTM_LOG_NOTICE, "rtm: refused registration of device %s of %s by %s: %s",
                device, uid, client->uid, why);
    return res;
}

static struct rtm_message_result refuse(struct rtm_core *core, const struct rtm_client *client,
                                        const char *uid, const char *device, const char *why,
                                        int64_t now)
{
    return refuse_with(core, client, RTM_ERR_BAD_REQUEST, uid, device, why, now);
}

/* Every valid write (registration or removal) draws from the writer's
 * bucket: each one rewrites the broker's retained store. */
static bool within_rate(struct rtm_core *core, const struct rtm_client *client, int64_t now)
{
    struct rtm_user *user = rtm_user_find(core, client->uid);
    return !user || rtm_user_take(core, user, RTM_LIMIT_REGISTRATIONS, now);
}

static struct rtm_message_result rate_limited(struct rtm_core *core,
                                              const struct rtm_client *client, const char *uid,
                                              const char *device, int64_t now)
{
    return refuse_with(core, client, RTM_ERR_RATE_LIMITED, uid, device,
                       "more than device_rate registrations in a minute", now);
}

/* Clears the retained registration a moved token left behind. */
static void clear_moved(struct rtm_core *core, const struct rtm_device_ref *from, const char *uid)
{
    char topic[RTM_PREFIX_MAX + RTM_UID_MAX + RTM_ID_MAX + 24];
    if (!rtm_out_topic(core, topic, sizeof(topic), "u/%s/devices/%s", from->uid, from->device))
        return;
    rtm_out_publish(core, NULL, topic, "", 0, true);
    rtm_out_log(core, RTM_LOG_INFO, "rtm: device %s of %s unregistered: its token moved to %s",
                from->device, from->uid, uid);
}

static char *normalized(const struct rtm_registration *r, size_t *len)
{
    size_t size = sizeof(r->token) + 96;
    char *json = malloc(size);
    if (!json)
        return NULL;
    /* provider, platform and token are restricted to characters that need
     * no JSON escaping (rtm_registration_parse). */
    int n = snprintf(json, size, "{\"provider\":\"%s\",\"platform\":\"%s\",\"token\":\"%s\"}",
                     r->provider, rtm_platform_name(r->platform), r->token);
    *len = (size_t)n;
    return json;
}

struct rtm_message_result rtm_devices_message(struct rtm_core *core,
                                              const struct rtm_client *client,
                                              const struct rtm_topic *topic, const void *payload,
                                              size_t len, bool retain, int64_t now)
{
    struct rtm_message_result res = {RTM_PASS, NULL, 0};
    char uid[RTM_UID_MAX + 1], device[RTM_ID_MAX + 1];
    copy_level(uid, sizeof(uid), topic->uid, topic->uid_len);
    copy_level(device, sizeof(device), topic->device, topic->device_len);
    if (!retain)
        return refuse(core, client, uid, device, "device registrations must be retained", now);
    if (len == 0) {
        if (!within_rate(core, client, now))
            return rate_limited(core, client, uid, device, now);
        rtm_registry_remove(core->registry, uid, device);
        rtm_out_log(core, RTM_LOG_INFO, "rtm: device %s of %s unregistered", device, uid);
        return res;
    }
    struct rtm_registration reg;
    const char *why = NULL;
    if (!rtm_registration_parse(payload, len, &reg, &why))
        return refuse(core, client, uid, device, why, now);
    if (!within_rate(core, client, now))
        return rate_limited(core, client, uid, device, now);
    struct rtm_device_ref from;
    bool moved = false;
    switch (rtm_registry_set(core->registry, uid, device, &reg, &from, &moved)) {
    case RTM_REG_OK:
        break;
    case RTM_REG_TOO_MANY:
        return refuse(core, client, uid, device, "too many devices (max_devices)", now);
    default:
        return refuse(core, client, uid, device, "server out of memory", now);
    }
    if (moved && (strcmp(from.uid, uid) != 0 || strcmp(from.device, device) != 0))
        clear_moved(core, &from, uid);
    rtm_out_log(core, RTM_LOG_INFO, "rtm: device %s of %s registered (%s, %s)", device, uid,
                reg.provider, rtm_platform_name(reg.platform));
    res.payload = normalized(&reg, &res.payload_len);
    res.verdict = res.payload ? RTM_REPLACE : RTM_PASS;
    return res;
}

bool rtm_core_load_device(struct rtm_core *core, const char *topic, const void *payload,
                          size_t payload_len)
{
    struct rtm_topic t;
    struct rtm_registration reg;
    const char *why = "not a device topic";
    if (rtm_topic_parse(core->cfg->topic_prefix, core->cfg->prefix_len, topic, &t) ==
            RTM_TOPIC_DEVICE &&
        rtm_registration_parse(payload, payload_len, &reg, &why)) {
        char uid[RTM_UID_MAX + 1], device[RTM_ID_MAX + 1];
        copy_level(uid, sizeof(uid), t.uid, t.uid_len);
        copy_level(device, sizeof(device), t.device, t.device_len);
        struct rtm_device_ref from;
        bool moved = false;
        if (rtm_registry_set(core->registry, uid, device, &reg, &from, &moved) == RTM_REG_OK)
            return true;
        why = "more than max_devices devices, or out of memory";
    }
    rtm_out_log(core, RTM_LOG_WARNING, "rtm: stored registration %s not loaded: %s", topic, why);
    return false;
}

bool rtm_devices_read_ok(struct rtm_core *core, const char *topic, const void *payload, size_t len,
                         bool retain)
{
    struct rtm_registration reg;
    const char *why = NULL;
    if (len == 0 || rtm_registration_parse(payload, len, &reg, &why))
        return true;
    if (retain)
        rtm_out_erase(core, topic, why);
    return false;
}
