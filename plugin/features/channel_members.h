/*
 * The channels feature's records (private to plugin/features/channels.c
 * and channel_members.c): the channel table, each channel's members, and
 * each session's memberships. No rule of SPEC 8.2 lives here, only the
 * bookkeeping that keeps the two sides of a membership consistent; the
 * feature decides what a join or a leave publishes.
 *
 * A membership is a (session, channel) pair, recorded on both sides:
 *   - the session holds an array of channel pointers (struct
 *     rtm_session.channels), at most max_channels long, so "is this session
 *     a member of that channel" is one hash lookup and a short pointer scan;
 *   - the channel holds its member uids sorted by uid (strcmp order), each
 *     with how many of that uid's sessions are members: the joined answer
 *     is its first 512 entries, and a uid is found by binary search.
 * A member entry names the user record without taking a reference of its
 * own: it exists only while one of the user's sessions is a member, and a
 * session holds a reference on its user until after its `down` event,
 * which leaves every channel first.
 */
#ifndef RTM_CHANNEL_MEMBERS_H
#define RTM_CHANNEL_MEMBERS_H

#include "rtm_context.h"

/* One member uid of a channel: 16 bytes. */
struct rtm_channel_member {
    struct rtm_user *user;
    uint32_t sessions; /* of this uid's sessions, how many are members (>= 1) */
};

/* A channel: 61 bytes and its name, a record of 80 bytes for names of up
 * to 15 characters (the pool rounds to 16). It lives while it has members
 * and while its count timer has something to do (channels.c). */
struct rtm_channel {
    struct rtm_hnode node;              /* struct rtm_channels.table, keyed by name */
    struct rtm_timer timer;             /* RTM_TIMER_CHANNEL: the coalesced count */
    struct rtm_channel_member *members; /* `count` of `cap`, sorted by uid; NULL when cap 0 */
    int64_t shown_at;                   /* when the count topic was last published (ms) */
    uint32_t count;                     /* member uids */
    uint32_t cap;
    uint32_t shown; /* the count last published; 0: none retained (never, or erased) */
    uint8_t name_len;
    char name[]; /* NUL-terminated */
};

struct rtm_channels {
    struct rtm_hash table;    /* every channel record, by name (SipHash, the core's key) */
    struct rtm_channel *last; /* the last one looked up by name (a READ fan-out asks often) */
    size_t live;              /* channels with members */
    size_t memberships;       /* (session, channel) pairs */
};

/* 0, or -1 when out of memory. */
int rtm_chan_init(struct rtm_core *core);
/* Frees every channel and every session's memberships, publishing nothing.
 * Called before the sessions are freed, after the timer heap is gone. */
void rtm_chan_free_all(struct rtm_core *core);

/* The channel named by the `len` bytes at `name` (not NUL-terminated), or
 * NULL. No allocation. */
struct rtm_channel *rtm_chan_find(struct rtm_core *core, const char *name, size_t len);
/* A new, empty channel record in the table; NULL when out of memory.
 * `len` is at most RTM_CHANNEL_ID_MAX. */
struct rtm_channel *rtm_chan_new(struct rtm_core *core, const char *name, size_t len);
/* Unlinks and frees an empty channel (no members), disarming its timer. */
void rtm_chan_free(struct rtm_core *core, struct rtm_channel *ch);

/* Is `session` a member of `ch`? O(channels of the session). */
bool rtm_chan_has(const struct rtm_session *session, const struct rtm_channel *ch);
/* How many channels `session` is in. */
size_t rtm_chan_joined(const struct rtm_session *session);
/* One channel `session` is in, or NULL when none: for leaving them all. */
struct rtm_channel *rtm_chan_any(const struct rtm_session *session);

/* Makes `session`, which is not a member yet, a member of `ch`. `*first`
 * says whether its uid became a member (ch->count grew). 0, or -1 when out
 * of memory (then nothing changed). */
int rtm_chan_enter(struct rtm_core *core, struct rtm_session *session, struct rtm_channel *ch,
                   bool *first);
/* Ends the membership of `session`, which is a member, in `ch`. True when
 * its uid stopped being a member (ch->count shrank). Never frees `ch`. */
bool rtm_chan_exit(struct rtm_core *core, struct rtm_session *session, struct rtm_channel *ch);

/* Fills `out` with the uids of the first `max` members in uid order;
 * returns how many. */
size_t rtm_chan_list(const struct rtm_channel *ch, const char **out, size_t max);

#endif
