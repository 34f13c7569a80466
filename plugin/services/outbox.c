/*
 * The outbox (rtm_outbox.h): the core's only way out, through the sink the
 * adapter gave it and the push provider it installed.
 */
#include <stdio.h>
#include <stdlib.h>

#include "rtm_outbox.h"

void rtm_out_log(struct rtm_core *core, enum rtm_log_level level, const char *fmt, ...)
{
    /* Debug lines come per invitation and per presence change; Mosquitto
     * shows them only with log_type debug, but cannot tell the plugin so:
     * unless asked for, they are not even formatted. */
    if (level == RTM_LOG_DEBUG && !core->cfg->debug_log)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    core->sink->log(core->sink->ud, level, line);
}

char *rtm_out_topic(const struct rtm_core *core, char *buf, size_t size, const char *fmt, ...)
{
    int n = snprintf(buf, size, "%s/", core->cfg->topic_prefix);
    if (n < 0 || (size_t)n >= size)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, size - (size_t)n, fmt, ap);
    va_end(ap);
    return m < 0 || (size_t)m >= size - (size_t)n ? NULL : buf;
}

void rtm_out_publish(struct rtm_core *core, const void *handle, const char *topic,
                     const void *payload, size_t len, bool retain)
{
    struct rtm_publish msg = {handle, topic, payload, len, 1, retain};
    core->sink->publish(core->sink->ud, &msg);
}

void rtm_out_inbox(struct rtm_core *core, const char *uid, const void *handle, const char *payload,
                   size_t len)
{
    char topic[RTM_PREFIX_MAX + RTM_UID_MAX + 16];
    if (rtm_out_topic(core, topic, sizeof(topic), "u/%s/call", uid))
        rtm_out_publish(core, handle, topic, payload, len, false);
}

void rtm_out_erase(struct rtm_core *core, const char *topic, const char *why)
{
    rtm_out_publish(core, NULL, topic, "", 0, true);
    rtm_out_log(core, RTM_LOG_NOTICE, "rtm: erased the retained message on %s: %s", topic, why);
}

bool rtm_out_can_push(const struct rtm_core *core)
{
    return core->push != NULL;
}

void rtm_out_push(struct rtm_core *core, const struct rtm_push *push)
{
    if (core->push)
        core->push(core->push_ud, push);
}

void rtm_out_refuse_topic(struct rtm_core *core, const struct rtm_client *client, const char *topic,
                          enum rtm_err err, const char *why, int64_t now)
{
    core->refused[err < RTM_ERR_KINDS ? err : RTM_OK]++;
    size_t len;
    char *json = rtm_topic_error_json(err, why, topic, now, &len);
    if (json)
        rtm_out_inbox(core, client->uid, client->handle, json, len);
    free(json);
    rtm_out_log(core, RTM_LOG_NOTICE, "rtm: refused publish to %s by %s (%s): %s: %s", topic,
                client->uid, client->client_id ? client->client_id : "", rtm_err_code(err), why);
}
