/*
 * The Will guard: tells a client's PUBLISH under the prefix from its Will.
 *
 * Mosquitto (2.0 and 2.1) runs the same ACL WRITE check for both, but only a
 * PUBLISH goes on to the MESSAGE event, where the plugin validates and
 * stamps it; a Will is queued, and stored when retained, straight after its
 * check. So the adapter reports the broker's events in order and the guard
 * decides:
 *
 * - A WRITE check from the client whose DISCONNECT was the event just before
 *   is a Will: the broker sends a Will right after reporting the disconnect.
 * - A WRITE check from a connection whose client id a newer connection has
 *   logged in with is a Will: a takeover sends the old connection's Will
 *   before it reports the old connection's disconnect (the adapter tells the
 *   guard, `superseded`).
 * - Any other WRITE check the plugin allows must be followed, as the very
 *   next event, by the MESSAGE of the same client and topic. When another
 *   event comes first, it was a Will that could not be told apart in advance
 *   (a will delay ran out, a session expired, the broker is shutting down):
 *   the READ checks that deliver it are refused, and if it was retained the
 *   adapter is told to erase it.
 *
 * The guard never touches a client: handles are compared, never followed,
 * and the client id it reports was copied when the check was made. Pure:
 * no Mosquitto calls, no clock.
 */
#ifndef RTM_GUARD_H
#define RTM_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rtm_config.h"

/* Long enough for every topic under the prefix that the plugin allows a
 * client to write: prefix/u/{uid}/devices/{device}. */
#define RTM_GUARD_TOPIC_MAX (RTM_PREFIX_MAX + RTM_UID_MAX + RTM_ID_MAX + 24)
#define RTM_GUARD_ID_MAX    64 /* of a client id, for the log line; longer ones are cut */

/* A Will found only after the fact. */
struct rtm_guard_will {
    const char *topic;
    const char *client_id; /* as far as it was copied */
    bool retain;           /* it was stored: erase it */
};

typedef void (*rtm_guard_will_fn)(void *ud, const struct rtm_guard_will *will);

struct rtm_guard {
    rtm_guard_will_fn on_will;
    void *ud;
    const void *gone; /* the client of the DISCONNECT just reported */
    enum { RTM_GUARD_IDLE, RTM_GUARD_OPEN, RTM_GUARD_FOUND } state;
    /* OPEN: an allowed WRITE awaiting its MESSAGE; FOUND: a Will found after
     * the fact, whose delivery checks are still coming. */
    const void *handle;
    uint32_t len;
    bool retain;
    char topic[RTM_GUARD_TOPIC_MAX + 1];
    char client_id[RTM_GUARD_ID_MAX + 1];
    /* The last READ check's topic and payload: Mosquitto's
     * check_retain_source follows it with a WRITE check of the same stored
     * message, for its original publisher, and no MESSAGE. */
    const void *read_topic;
    const void *read_payload;
};

/* `on_will` is called for each Will found after the fact. */
void rtm_guard_init(struct rtm_guard *g, rtm_guard_will_fn on_will, void *ud);

/* A client disconnected (its Will, if any, may be the next event). */
void rtm_guard_disconnect(struct rtm_guard *g, const void *handle);

enum rtm_guard_write {
    RTM_GUARD_PUBLISH, /* may be a PUBLISH: if allowed, call rtm_guard_allowed() */
    RTM_GUARD_WILL,    /* a Will: refuse it */
    RTM_GUARD_SOURCE,  /* the broker's check of a retained message's publisher */
};

/* A WRITE check under the prefix, before it is decided. `superseded`: a
 * newer connection has logged in with this connection's client id. The
 * topic and payload pointers are the event's own: they are compared with
 * the last READ check's, never followed. */
enum rtm_guard_write rtm_guard_write(struct rtm_guard *g, const void *handle, bool superseded,
                                     const char *topic, const void *payload);

/* The plugin allowed a WRITE check that rtm_guard_write() called a possible
 * PUBLISH: it now awaits its MESSAGE. */
void rtm_guard_allowed(struct rtm_guard *g, const void *handle, const char *client_id,
                       const char *topic, uint32_t len, bool retain);

/* A MESSAGE event under the prefix. */
void rtm_guard_message(struct rtm_guard *g, const void *handle, const char *topic);

/* A READ check under the prefix: false when it would deliver a Will. */
bool rtm_guard_read(struct rtm_guard *g, const char *topic, const void *payload, uint32_t len);

/* Any other event: an authentication, a subscription, a TICK, or a check
 * outside the prefix (the hot path may skip the call while
 * rtm_guard_busy() is false). */
void rtm_guard_event(struct rtm_guard *g);

/* True while an event would change anything. */
static inline bool rtm_guard_busy(const struct rtm_guard *g)
{
    return g->state != RTM_GUARD_IDLE || g->gone != NULL;
}

#endif
