/*
 * Topic names and subscription filters under the prefix, and the rules of
 * who may publish or read what (PROTOCOL.md section 2). Pure string work.
 */
#ifndef RTM_TOPIC_H
#define RTM_TOPIC_H

#include <stdbool.h>
#include <stddef.h>

#define RTM_CHANNEL_ID_MAX 64
#define RTM_ATTR_KEY_MAX   32

enum rtm_topic_kind {
    RTM_TOPIC_OUTSIDE,    /* not under the prefix */
    RTM_TOPIC_CALL,       /* {prefix}/u/{uid}/call */
    RTM_TOPIC_PRESENCE,   /* {prefix}/presence/{uid} */
    RTM_TOPIC_DEVICE,     /* {prefix}/u/{uid}/devices/{device} */
    RTM_TOPIC_MSG,        /* {prefix}/u/{uid}/msg/{sender} */
    RTM_TOPIC_USER_ATTR,  /* {prefix}/u/{uid}/attr/{key} */
    RTM_TOPIC_CH_JOIN,    /* {prefix}/c/{ch}/join */
    RTM_TOPIC_CH_LEAVE,   /* {prefix}/c/{ch}/leave */
    RTM_TOPIC_CH_MEMBERS, /* {prefix}/c/{ch}/members */
    RTM_TOPIC_CH_MSG,     /* {prefix}/c/{ch}/msg/{sender} */
    RTM_TOPIC_CH_EVENTS,  /* {prefix}/c/{ch}/events */
    RTM_TOPIC_CH_COUNT,   /* {prefix}/c/{ch}/count */
    RTM_TOPIC_CH_ATTR,    /* {prefix}/c/{ch}/attr/{key} */
    RTM_TOPIC_INVALID,    /* under the prefix, but not one of the above */
};

/* Every pointer points into the parsed topic and is not NUL-terminated; a
 * field the kind does not have is NULL with length 0. */
struct rtm_topic {
    enum rtm_topic_kind kind;
    const char *uid; /* the u/ kinds: a valid uid */
    size_t uid_len;
    /* Set for RTM_TOPIC_DEVICE, and also for an RTM_TOPIC_INVALID topic of
     * the shape {prefix}/u/{valid uid}/devices/{rest}: then uid is set too,
     * and device is the rest of the topic, a malformed device id (empty,
     * too long, a character outside A-Z a-z 0-9 _ -, or a '/'). */
    const char *device;
    size_t device_len;
    const char *channel; /* the c/ kinds: a valid channel id */
    size_t channel_len;
    const char *sender; /* RTM_TOPIC_MSG and RTM_TOPIC_CH_MSG: a valid uid */
    size_t sender_len;
    const char *key; /* RTM_TOPIC_USER_ATTR and RTM_TOPIC_CH_ATTR: a valid key */
    size_t key_len;
};

/* 1-64 of A-Z a-z 0-9 _ . @ - */
bool rtm_uid_valid(const char *s, size_t len);

/* 1-64 of A-Z a-z 0-9 _ - (invitation ids and device ids) */
bool rtm_id_valid(const char *s, size_t len);

/* 1-RTM_CHANNEL_ID_MAX of A-Z a-z 0-9 _ . @ - (the characters of a uid) */
bool rtm_channel_valid(const char *s, size_t len);

/* 1-RTM_ATTR_KEY_MAX of A-Z a-z 0-9 _ . - (user and channel attribute keys) */
bool rtm_attr_key_valid(const char *s, size_t len);

/* True when `topic` (or a filter) starts with prefix + '/' ("rtm/" included).
 * The bare prefix ("rtm") is not under it: like every other topic outside,
 * it is left to plugin_opt_other_topics. A filter that matches it and topics
 * under the prefix ("rtm/#") is under it. */
bool rtm_topic_under_prefix(const char *prefix, size_t prefix_len, const char *topic);

/* Classifies a concrete topic. A level that is not a valid uid, device id,
 * channel id or key where one is due makes the topic RTM_TOPIC_INVALID, with
 * every field NULL (except for a malformed device id: see struct
 * rtm_topic). */
enum rtm_topic_kind rtm_topic_parse(const char *prefix, size_t prefix_len, const char *topic,
                                    struct rtm_topic *out);

/* May `uid` subscribe to `filter` (under the prefix)? Admins may subscribe
 * to anything. Anyone else needs a valid uid, and a filter that matches at
 * least one valid topic, whose every match `uid` may read (SPEC 3), and that
 * has no wildcard where a uid or a channel id goes (so it lists no users or
 * channels). Channel topics that only members receive are allowed here: the
 * READ check delivers them to members only. */
bool rtm_topic_filter_allowed(const char *prefix, size_t prefix_len, const char *filter,
                              const char *uid, bool admin);

/* Does `filter` match `uid`'s call inbox? (to deliver pending invitations
 * when a session subscribes) */
bool rtm_topic_filter_covers_inbox(const char *prefix, size_t prefix_len, const char *filter,
                                   const char *uid);

#endif
