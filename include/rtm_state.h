/*
 * The core's state and the functions its modules share. Only core modules
 * include this; the adapter sees rtm_core.h alone.
 *
 * Ownership: the core owns users, sessions and calls. A user lives while a
 * session, a call (live or remembered) or a timer needs it (`refs`), and is
 * freed by rtm_user_release() when the last of them lets go.
 */
#ifndef RTM_STATE_H
#define RTM_STATE_H

#include <stdarg.h>

#include "rtm_core.h"
#include "rtm_hash.h"
#include "rtm_heap.h"
#include "rtm_hlist.h"
#include "rtm_message.h"
#include "rtm_pool.h"
#include "rtm_registry.h"
#include "rtm_topic.h"
#include "rtm_vec.h"

enum rtm_timer_kind {
    RTM_TIMER_CALL,         /* struct rtm_call.timer */
    RTM_TIMER_CALLER_GRACE, /* struct rtm_user_ext.timer: caller_grace */
    RTM_TIMER_USER_LINGER,  /* struct rtm_user_ext.timer: until its rate buckets refill */
};

/* A rate limit of `rate` actions a minute with a burst of `rate`, kept as
 * one number (the generic cell rate algorithm, the token bucket's twin):
 * the theoretical arrival time of the next action. The bucket is full once
 * the clock has passed it. */
struct rtm_bucket {
    int64_t tat_us; /* 0: full and never drawn from */
};

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

struct rtm_user;

/* What only some users need, allocated on first need and freed once none
 * of it is in use: the timer, armed while the user is offline with live
 * calls (caller_grace) or while nothing refers to it but its rate buckets
 * are still refilling (the linger, so that reconnecting never resets a rate
 * limit), and the device-registration bucket, drawn from only by the rare
 * registration. A user that is online, calls and is called never has one. */
struct rtm_user_ext {
    struct rtm_timer timer;
    struct rtm_user *user;           /* the owner: a fired timer knows only itself */
    struct rtm_bucket registrations; /* device_rate */
};

/* Every online user, every callee and every caller has one: keep it small
 * (a 96-byte record with a uid of up to 25 characters). */
struct rtm_user {
    struct rtm_hnode node;     /* core->users, keyed by uid */
    struct rtm_user_ext *ext;  /* NULL while none of it is needed */
    struct rtm_hlist calls_in; /* live calls received: struct rtm_call.in_link */
    /* Live calls placed: struct rtm_call.out_link. Kept here, not in ext,
     * with the invite bucket and busy: every caller needs them for as long
     * as it has a live call, and an ext costs a 32-byte record. */
    struct rtm_hlist calls_out;
    struct rtm_bucket invites; /* invite_rate */
    uint32_t refs;             /* sessions + calls naming this user */
    uint32_t confirmed;        /* confirmed sessions */
    uint32_t unconfirmed;      /* sessions a later auth source may still refuse */
    uint32_t busy;             /* live calls placed */
    /* What subscribers were last shown. A user without a record is shown
     * offline (or was never seen, which reads the same), so a new record
     * starts offline and only a change is published. */
    uint32_t shown_sessions;
    bool shown_online;
    bool dirty; /* queued in core->dirty: presence may need publishing */
    char uid[];
};

/* A tracked connection. Its client id is not kept: the client handle names
 * the session to the adapter, which asks the broker for the id when it
 * publishes (rtm_publish.handle). Nothing walks a user's sessions, so they
 * are in no list: the counts in struct rtm_user are all the user needs. */
struct rtm_session {
    struct rtm_hnode node; /* core->sessions, keyed by client handle */
    const void *handle;
    struct rtm_user *user;
    bool confirmed;
};

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

/* Lateness of fired timers in 1 ms buckets; the last one holds everything
 * from RTM_LATE_BUCKETS - 1 ms on (late_max says how far). */
#define RTM_LATE_BUCKETS 1001
struct rtm_late_hist {
    uint64_t fired;
    int64_t max_ms;
    uint32_t count[RTM_LATE_BUCKETS];
};

struct rtm_core {
    const struct rtm_config *cfg;
    const struct rtm_sink *sink;
    struct rtm_hash_key hash_key;
    struct rtm_hash users;
    struct rtm_hash sessions;
    struct rtm_hash calls;
    struct rtm_heap timers;
    struct rtm_vec dirty;       /* users whose presence may have changed */
    struct rtm_vec unconfirmed; /* handles of sessions to confirm at the next tick */
    size_t calls_live;
    struct rtm_registry *registry;
    rtm_push_fn push;
    void *push_ud;
    struct rtm_late_hist late;
    struct rtm_pool pool; /* users, their extensions, sessions and calls */
};

/* --- core.c: emitting ------------------------------------------------- */
void rtm_core_log(struct rtm_core *core, enum rtm_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Publishes `payload` at QoS 1, not retained, to `uid`'s inbox: to every
 * subscriber, or only to the session of client `handle` when it is not NULL
 * (see struct rtm_publish for when a handle may be named). */
void rtm_core_to_inbox(struct rtm_core *core, const char *uid, const void *handle,
                       const char *payload, size_t len);
/* Erases the retained message on `topic` by publishing an empty retained
 * one, and logs why: for what the plugin did not write under its prefix and
 * must never deliver (left by a broker that ran without the plugin). */
void rtm_core_erase(struct rtm_core *core, const char *topic, const char *why);
/* Formats `{prefix}/{a}/{b}...` into buf; returns buf, or NULL if too long. */
char *rtm_core_topic(const struct rtm_core *core, char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* --- users.c ------------------------------------------------------------ */
struct rtm_user *rtm_user_find(struct rtm_core *core, const char *uid);
/* Finds or creates; takes a reference. NULL when out of memory. */
struct rtm_user *rtm_user_acquire(struct rtm_core *core, const char *uid);
/* Drops a reference; frees the user when nothing needs it any more. */
void rtm_user_release(struct rtm_core *core, struct rtm_user *user);
/* Frees the user if nothing refers to it and no presence update is due. */
void rtm_user_gc(struct rtm_core *core, struct rtm_user *user);
/* True while the user has a confirmed or unconfirmed session. */
bool rtm_user_live(const struct rtm_user *user);
/* Draws one action from `bucket` (the user's invites or registrations),
 * refilled at `rate` per minute; false when it is empty. */
bool rtm_user_take(struct rtm_bucket *bucket, uint32_t rate, int64_t now);
/* Draws one registration from the user's device_rate bucket; false when it
 * is empty. */
bool rtm_user_take_registration(struct rtm_core *core, struct rtm_user *user, int64_t now);
/* The user's timer (struct rtm_user_ext): armed, arming it as `kind` for
 * `due` (false, and nothing armed, when out of memory), disarming it. */
bool rtm_user_timer_armed(const struct rtm_user *user);
bool rtm_user_arm(struct rtm_core *core, struct rtm_user *user, enum rtm_timer_kind kind,
                  int64_t due);
void rtm_user_disarm(struct rtm_core *core, struct rtm_user *user);
/* The user whose timer `timer` is. */
struct rtm_user *rtm_user_of_timer(struct rtm_timer *timer);
/* The linger timer fired: the user's buckets are full again. */
void rtm_user_linger_done(struct rtm_core *core, struct rtm_user *user);
void rtm_users_free_all(struct rtm_core *core);

/* --- presence.c ---------------------------------------------------------- */
void rtm_presence_connect(struct rtm_core *core, const struct rtm_client *client, int64_t now);
bool rtm_presence_has_session(struct rtm_core *core, const void *handle);
void rtm_presence_disconnect(struct rtm_core *core, const void *handle, int64_t now);
/* Confirms the session of `handle` if it is unconfirmed (it has published or
 * subscribed, so authentication has accepted it). True when it was confirmed
 * just now, which also delivered its pending invitations. */
bool rtm_presence_confirm_handle(struct rtm_core *core, const void *handle, int64_t now);
/* Confirms every unconfirmed session and publishes presence changes. */
void rtm_presence_tick(struct rtm_core *core, int64_t now);
/* Called for READ of a presence message: false when it claims online for a
 * user who is not (a corrected offline message is published), or when the
 * plugin did not write it (a retained one is replaced or erased). */
bool rtm_presence_read_ok(struct rtm_core *core, const char *uid, const void *payload, size_t len,
                          bool retain, int64_t now);
void rtm_presence_free_all(struct rtm_core *core);

/* --- devices.c ------------------------------------------------------------ */
/* A publish to {prefix}/u/{uid}/devices/{device}: register, update or (empty
 * payload) unregister. */
struct rtm_message_result rtm_devices_message(struct rtm_core *core,
                                              const struct rtm_client *client,
                                              const struct rtm_topic *topic, const void *payload,
                                              size_t len, bool retain, int64_t now);

/* --- invite.c ------------------------------------------------------------ */
/* Applies a validated request from `sender` published to `peer`'s inbox.
 * On RTM_OK, `*out`/`*out_len` is the stamped message to deliver in place of
 * the original (malloc'd). On an error, `*why` explains it. */
enum rtm_err rtm_invite_request(struct rtm_core *core, const char *sender, const char *peer,
                                const struct rtm_request *req, int64_t now, char **out,
                                size_t *out_len, char *why, size_t why_len);
void rtm_invite_timer(struct rtm_core *core, struct rtm_call *call, int64_t now);
/* The caller_grace of `user` ran out: fail every live call it placed. */
void rtm_invite_caller_gone(struct rtm_core *core, struct rtm_user *user, int64_t now);
/* The session of client `handle`, a session of `user`, became confirmed:
 * mark the user's incoming calls as seen and deliver each pending invite to
 * that session alone. */
void rtm_invite_session_up(struct rtm_core *core, struct rtm_user *user, const void *handle,
                           int64_t now);
/* The user's live-session count went to zero or back above it. */
void rtm_invite_user_offline(struct rtm_core *core, struct rtm_user *user, int64_t now);
void rtm_invite_user_online(struct rtm_core *core, struct rtm_user *user);
/* Re-delivers every pending invite to the session of client `handle` (it
 * subscribed to its inbox). */
void rtm_invite_redeliver(struct rtm_core *core, struct rtm_user *user, const void *handle,
                          int64_t now);
/* Is invitation `id` of `caller` pending or ringing? */
bool rtm_invite_pending(const struct rtm_core *core, const char *caller, const char *id);
void rtm_invite_free_all(struct rtm_core *core);

#endif
