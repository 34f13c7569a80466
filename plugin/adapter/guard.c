/*
 * The Will guard (see rtm_guard.h): a small state machine over the order of
 * the broker's events. It holds one pending WRITE at most, because the
 * broker runs one event at a time and a PUBLISH's MESSAGE follows its WRITE
 * check with no other event between.
 */
#include <string.h>

#include "rtm_guard.h"

void rtm_guard_init(struct rtm_guard *g, rtm_guard_will_fn on_will, void *ud)
{
    memset(g, 0, sizeof(*g));
    g->on_will = on_will;
    g->ud = ud;
}

/* The pending WRITE got no MESSAGE: it was a Will. Reported once; its
 * delivery checks may still follow. */
static void found_will(struct rtm_guard *g)
{
    g->state = RTM_GUARD_FOUND;
    struct rtm_guard_will will = {g->topic, g->client_id, g->retain};
    g->on_will(g->ud, &will);
}

void rtm_guard_event(struct rtm_guard *g)
{
    if (g->state == RTM_GUARD_OPEN)
        found_will(g);
    g->state = RTM_GUARD_IDLE;
    g->gone = NULL;
    g->read_topic = NULL;
    g->read_payload = NULL;
}

void rtm_guard_disconnect(struct rtm_guard *g, const void *handle)
{
    rtm_guard_event(g);
    g->gone = handle;
}

enum rtm_guard_write rtm_guard_write(struct rtm_guard *g, const void *handle, bool superseded,
                                     const char *topic, const void *payload)
{
    bool source = g->read_topic == topic && g->read_payload == payload && topic != NULL;
    bool gone = handle != NULL && handle == g->gone;
    rtm_guard_event(g);
    if (source)
        return RTM_GUARD_SOURCE;
    return gone || superseded ? RTM_GUARD_WILL : RTM_GUARD_PUBLISH;
}

/* Copies at most size - 1 bytes and terminates; false when `s` was cut. */
static bool copy_cut(char *dst, size_t size, const char *s)
{
    size_t len = s ? strlen(s) : 0;
    bool whole = len < size;
    if (!whole)
        len = size - 1;
    memcpy(dst, s ? s : "", len);
    dst[len] = '\0';
    return whole;
}

void rtm_guard_allowed(struct rtm_guard *g, const void *handle, const char *client_id,
                       const char *topic, uint32_t len, bool retain)
{
    rtm_guard_event(g);
    /* A topic the plugin allows always fits; one that did not could not be
     * compared or erased, so it is not tracked rather than tracked wrong. */
    if (!copy_cut(g->topic, sizeof(g->topic), topic))
        return;
    copy_cut(g->client_id, sizeof(g->client_id), client_id);
    g->handle = handle;
    g->len = len;
    g->retain = retain;
    g->state = RTM_GUARD_OPEN;
}

void rtm_guard_message(struct rtm_guard *g, const void *handle, const char *topic)
{
    if (g->state == RTM_GUARD_OPEN && g->handle == handle && strcmp(g->topic, topic) == 0)
        g->state = RTM_GUARD_IDLE; /* a PUBLISH after all */
    rtm_guard_event(g);
}

bool rtm_guard_read(struct rtm_guard *g, const char *topic, const void *payload, uint32_t len)
{
    bool deliver = true;
    if (g->state != RTM_GUARD_IDLE && g->len == len && strcmp(g->topic, topic) == 0) {
        if (g->state == RTM_GUARD_OPEN)
            found_will(g);
        deliver = false;
        g->gone = NULL;
    } else {
        rtm_guard_event(g);
    }
    g->read_topic = topic;
    g->read_payload = payload;
    return deliver;
}
