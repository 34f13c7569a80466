/*
 * Messages (a feature, SPEC 8.1): the rules every peer and channel message
 * meets, and who reads peer messages. A message's payload is never parsed
 * or copied: a peer message costs about what a plain publish costs. Who may
 * send to a channel (its members) is the channels feature's rule; the
 * dispatcher asks it before this one.
 */
#ifndef RTM_MESSAGES_H
#define RTM_MESSAGES_H

#include "rtm_context.h"

/* WRITE check of {prefix}/u/{peer}/msg/{sender} or {prefix}/c/{ch}/msg/{sender}:
 * the topic proves the sender, so {sender} must be the publisher's uid. */
bool rtm_messages_sender_ok(const struct rtm_client *client, const struct rtm_topic *t);

/* A peer or channel message: refused (an error to the sending session)
 * when retained, larger than max_message, or over the sender's
 * message_rate; otherwise passed on untouched. */
struct rtm_message_result rtm_messages_message(struct rtm_core *core,
                                               const struct rtm_client *client, const char *topic,
                                               size_t len, bool retain, int64_t now);

/* May `client` read this peer message? Only the peer (or an admin), and
 * never a retained one (which the plugin never lets through: one left by a
 * broker without the plugin is erased). */
bool rtm_messages_read_ok(struct rtm_core *core, const struct rtm_client *client, const char *topic,
                          const struct rtm_topic *t, size_t len, bool retain);

#endif
