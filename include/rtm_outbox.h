/*
 * The outbox (a service): everything the core sends out goes through here:
 * log lines, publishes (through the adapter's sink), pushes (through the
 * push provider), and the error events that tell one session why its
 * request was refused. Features never touch the sink themselves.
 */
#ifndef RTM_OUTBOX_H
#define RTM_OUTBOX_H

#include <stdarg.h>

#include "rtm_context.h"

void rtm_out_log(struct rtm_core *core, enum rtm_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Formats `{prefix}/{...}` into buf; returns buf, or NULL if too long. */
char *rtm_out_topic(const struct rtm_core *core, char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Publishes at QoS 1: to every subscriber, or to the session of client
 * `handle` alone (see struct rtm_publish for when a handle may be named). */
void rtm_out_publish(struct rtm_core *core, const void *handle, const char *topic,
                     const void *payload, size_t len, bool retain);

/* Publishes `payload`, not retained, to `uid`'s inbox. */
void rtm_out_inbox(struct rtm_core *core, const char *uid, const void *handle, const char *payload,
                   size_t len);

/* Erases the retained message on `topic` by publishing an empty retained
 * one, and logs why: for what the plugin did not write under its prefix and
 * must never deliver (left by a broker that ran without the plugin). */
void rtm_out_erase(struct rtm_core *core, const char *topic, const char *why);

/* True when a push provider is installed. */
bool rtm_out_can_push(const struct rtm_core *core);
void rtm_out_push(struct rtm_core *core, const struct rtm_push *push);

/* Tells the session that published to `topic` why it was refused, with an
 * error that names the topic (SPEC 8), and logs it. `why` is for people. */
void rtm_out_refuse_topic(struct rtm_core *core, const struct rtm_client *client, const char *topic,
                          enum rtm_err err, const char *why, int64_t now);

#endif
