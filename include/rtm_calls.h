/*
 * Calls (a feature): call invitations and their lifecycle (SPEC 4). It owns
 * struct rtm_call records, the calls table, the calls' timers and the
 * user fields marked "calls" (rtm_context.h). Only the dispatcher calls in.
 */
#ifndef RTM_CALLS_H
#define RTM_CALLS_H

#include "rtm_context.h"

enum rtm_call_state {
    RTM_CALL_PENDING,
    RTM_CALL_RINGING,
    RTM_CALL_ACCEPTED,
    RTM_CALL_REFUSED,
    RTM_CALL_CANCELED,
    RTM_CALL_FAILED,
};

/* Allocation size of a struct ending in a flexible array member with `n`
 * bytes in it: the array starts at its offset, not after the padding that
 * sizeof adds, and never less than sizeof (the pool rounds each record up
 * to 16 bytes, so a few bytes decide the size class). */
#define RTM_FLEX_SIZE(type, member, n)                                                             \
    (offsetof(type, member) + (n) > sizeof(type) ? offsetof(type, member) + (n) : sizeof(type))

/* Who ended a call. Both parties are held by the call anyway. */
enum rtm_party {
    RTM_PARTY_SERVER, /* a timer, or still live */
    RTM_PARTY_CALLER,
    RTM_PARTY_CALLEE,
};

/* One per invitation, live or remembered: 102 bytes before the id, so that
 * an id and a channel of up to 26 bytes together (their NULs included) keep
 * it in a 128-byte record. */
struct rtm_call {
    struct rtm_hnode node;          /* core->calls, keyed by caller uid and id */
    struct rtm_timer timer;         /* next deadline: invite, ring, or forget */
    struct rtm_hlist_node out_link; /* caller->calls_out while live */
    struct rtm_hlist_node in_link;  /* callee->calls_in while live */
    struct rtm_user *caller;
    struct rtm_user *callee;
    /* The content is only ever sent while the call is live (in invites),
     * the time it ended only once it has ended: they share the space. */
    union {
        char *content;        /* while live: NULL when it had none */
        uint32_t ended_after; /* once ended: ms after created_at */
    };
    int64_t created_at;
    /* Milliseconds after created_at (every duration is at most a day):
     * ringing must come by invite_after (expires_at). The answer must come
     * by max(ring_timeout, invite_after), which the configuration and this
     * give (invite.c, ring_deadline), so it is not stored. */
    uint32_t invite_after;
    uint16_t state : 3;       /* enum rtm_call_state */
    uint16_t reason : 3;      /* enum rtm_fail_reason when failed */
    uint16_t ended_by : 2;    /* enum rtm_party: who ended it */
    uint16_t callee_seen : 1; /* the callee had a live session while pending */
    uint16_t pushed : 1;      /* the callee's devices were asked to ring */
    uint16_t has_channel : 1; /* the channel follows the id's NUL */
    char id[];                /* 1-64 characters, then the channel (at most 64) if it has one */
};
_Static_assert(RTM_CALL_FAILED < 8 && RTM_FAIL_CALLER_OFFLINE < 8 && RTM_PARTY_CALLEE < 4,
               "struct rtm_call's bit-fields are too narrow");

/* A publish to a call inbox ({prefix}/u/{peer}/call): validated, applied,
 * and answered with the stamped message to deliver in its place, or
 * refused with an error to the sending session. */
struct rtm_message_result rtm_calls_message(struct rtm_core *core, const struct rtm_client *client,
                                            const struct rtm_topic *topic, const void *payload,
                                            size_t len, bool retain, int64_t now);
/* May a message on a call inbox be delivered? The plugin never retains a
 * call message (a retained one is erased), and an empty one is the fan-out
 * of erasing one. */
bool rtm_calls_read_ok(struct rtm_core *core, const char *topic, size_t len, bool retain);
/* A call's timer, or a user's caller_grace, fired. */
void rtm_calls_timer(struct rtm_core *core, struct rtm_call *call, int64_t now);
void rtm_calls_caller_gone(struct rtm_core *core, struct rtm_user *user, int64_t now);
/* Session events: a session of `user` was confirmed (mark its incoming
 * calls seen, deliver each pending invite to that session alone); the
 * user's first session came up; its last one went. */
void rtm_calls_session_up(struct rtm_core *core, struct rtm_user *user, const void *handle,
                          int64_t now);
void rtm_calls_user_online(struct rtm_core *core, struct rtm_user *user);
void rtm_calls_user_offline(struct rtm_core *core, struct rtm_user *user, int64_t now);
/* Re-delivers every pending invite to the session of client `handle` (it
 * subscribed to its inbox). */
void rtm_calls_redeliver(struct rtm_core *core, struct rtm_user *user, const void *handle,
                         int64_t now);
/* Is invitation `id` of `caller` pending or ringing? */
bool rtm_calls_pending(const struct rtm_core *core, const char *caller, const char *id);
void rtm_calls_free_all(struct rtm_core *core);

#endif
