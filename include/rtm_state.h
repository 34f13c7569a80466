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
#include "rtm_list.h"
#include "rtm_message.h"
#include "rtm_registry.h"
#include "rtm_topic.h"
#include "rtm_vec.h"

enum rtm_timer_kind {
    RTM_TIMER_CALL,         /* struct rtm_call.timer */
    RTM_TIMER_CALLER_GRACE, /* struct rtm_user.timer: caller_grace */
    RTM_TIMER_USER_LINGER,  /* struct rtm_user.timer: until its rate buckets refill */
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

struct rtm_user {
    struct rtm_hnode node; /* core->users, keyed by uid */
    /* caller_grace while offline with live calls; or, once nothing refers
     * to the user, the linger until its buckets are full again, so that
     * reconnecting never resets a rate limit. */
    struct rtm_timer timer;
    struct rtm_list sessions;        /* struct rtm_session.by_user */
    struct rtm_list calls_out;       /* live calls placed: struct rtm_call.out_link */
    struct rtm_list calls_in;        /* live calls received: struct rtm_call.in_link */
    struct rtm_bucket invites;       /* invite_rate */
    struct rtm_bucket registrations; /* device_rate */
    uint32_t refs;                   /* sessions + calls naming this user */
    uint32_t confirmed;              /* confirmed sessions */
    uint32_t unconfirmed;            /* sessions a later auth source may still refuse */
    uint32_t busy;                   /* live calls placed */
    /* What subscribers were last shown. A user without a record is shown
     * offline (or was never seen, which reads the same), so a new record
     * starts offline and only a change is published. */
    uint32_t shown_sessions;
    bool shown_online;
    bool dirty; /* queued in core->dirty: presence may need publishing */
    char uid[];
};

struct rtm_session {
    struct rtm_hnode node;   /* core->sessions, keyed by client handle */
    struct rtm_list by_user; /* user->sessions */
    const void *handle;
    struct rtm_user *user;
    bool confirmed;
    char client_id[];
};

/* Who ended a call. Both parties are held by the call anyway. */
enum rtm_party {
    RTM_PARTY_SERVER, /* a timer, or still live */
    RTM_PARTY_CALLER,
    RTM_PARTY_CALLEE,
};

struct rtm_call {
    struct rtm_hnode node;    /* core->calls, keyed by id */
    struct rtm_timer timer;   /* next deadline: invite, ring, or forget */
    struct rtm_list out_link; /* caller->calls_out while live */
    struct rtm_list in_link;  /* callee->calls_in while live */
    struct rtm_user *caller;
    struct rtm_user *callee;
    char *content; /* NULL once ended */
    int64_t created_at;
    /* Milliseconds after created_at (every duration is at most a day):
     * ringing must come by invite_after (expires_at), an answer by
     * ring_after; ended_after once it ended. */
    uint32_t invite_after;
    uint32_t ring_after;
    uint32_t ended_after;
    /* Two bytes, so that the struct stays at 120 bytes before its id. */
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
};

/* --- core.c: emitting ------------------------------------------------- */
void rtm_core_log(struct rtm_core *core, enum rtm_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Publishes `payload` at QoS 1, not retained, to `uid`'s inbox: to every
 * subscriber, or only to `client_id` when it is not NULL. */
void rtm_core_to_inbox(struct rtm_core *core, const char *uid, const char *client_id,
                       const char *payload, size_t len);
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
/* Takes one invitation from the user's bucket; false when it is empty. */
/* Draws one action from `bucket` (the user's invites or registrations),
 * refilled at `rate` per minute; false when it is empty. */
bool rtm_user_take(struct rtm_bucket *bucket, uint32_t rate, int64_t now);
/* The linger timer fired: the user's buckets are full again. */
void rtm_user_linger_done(struct rtm_core *core, struct rtm_user *user);
void rtm_users_free_all(struct rtm_core *core);

/* --- presence.c ---------------------------------------------------------- */
void rtm_presence_connect(struct rtm_core *core, const struct rtm_client *client, int64_t now);
void rtm_presence_disconnect(struct rtm_core *core, const void *handle, int64_t now);
/* Confirms the session of `handle` if it is unconfirmed (it has published or
 * subscribed, so authentication has accepted it). True when it was confirmed
 * just now, which also delivered its pending invitations. */
bool rtm_presence_confirm_handle(struct rtm_core *core, const void *handle, int64_t now);
/* Confirms every unconfirmed session and publishes presence changes. */
void rtm_presence_tick(struct rtm_core *core, int64_t now);
/* Called for READ of a retained presence message: false (and a corrected
 * offline message published) when it claims online for a user who is not. */
bool rtm_presence_read_ok(struct rtm_core *core, const char *uid, const void *payload, size_t len,
                          int64_t now);
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
/* A session of `user` became confirmed: mark its incoming calls as seen and
 * deliver each pending invite to `client_id` alone. */
void rtm_invite_session_up(struct rtm_core *core, struct rtm_user *user, const char *client_id,
                           int64_t now);
/* The user's live-session count went to zero or back above it. */
void rtm_invite_user_offline(struct rtm_core *core, struct rtm_user *user, int64_t now);
void rtm_invite_user_online(struct rtm_core *core, struct rtm_user *user);
/* Re-delivers every pending invite to `client_id` (it subscribed to its inbox). */
void rtm_invite_redeliver(struct rtm_core *core, struct rtm_user *user, const char *client_id,
                          int64_t now);
bool rtm_invite_pending(const struct rtm_core *core, const char *id);
void rtm_invite_free_all(struct rtm_core *core);

#endif
