/*
 * The core's context: one struct (struct rtm_core) that every function of
 * the core takes first, and the records the services below the features
 * own (users and their sessions). Included by services and features; the
 * adapter sees rtm_core.h alone.
 *
 * The layers, each calling only the ones below it:
 *   core/dispatch.c  routes each broker event to one feature;
 *   features/        calls, presence, devices, messages, channels,
 *                    attributes: none calls another;
 *   services/        users and sessions, timers, limits, the outbox;
 *   lib/             pure helpers (hash, heap, pool, JSON, topics).
 * What a feature needs to hear from the others (a session ended, a user
 * went offline) comes as a session event from the sessions service, which
 * the dispatcher fans out to every feature.
 *
 * Ownership: the users service owns users and sessions. A user lives while
 * a session, a call (live or remembered) or a timer needs it (`refs`), and
 * is freed by rtm_user_release() when the last of them lets go.
 */
#ifndef RTM_CONTEXT_H
#define RTM_CONTEXT_H

#include "rtm_core.h"
#include "rtm_hash.h"
#include "rtm_heap.h"
#include "rtm_hlist.h"
#include "rtm_limits.h"
#include "rtm_message.h"
#include "rtm_pool.h"
#include "rtm_registry.h"
#include "rtm_topic.h"
#include "rtm_vec.h"

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
 * limit), and the buckets of the rarer actions (device registrations, peer
 * and channel messages, attribute writes). A user that is online, calls and
 * is called never has one. */
struct rtm_user_ext {
    struct rtm_timer timer;
    struct rtm_user *user;        /* the owner: a fired timer knows only itself */
    struct rtm_bucket buckets[4]; /* by enum rtm_user_limit */
};

/* Every online user, every callee and every caller has one: keep it small
 * (a 96-byte record with a uid of up to 25 characters). The users service
 * owns the record, its references and its session counts; the fields marked
 * with a feature's name are that feature's alone, kept here because every
 * user needs them and a separate record would cost more than they do. */
struct rtm_user {
    struct rtm_hnode node;     /* core->users, keyed by uid */
    struct rtm_user_ext *ext;  /* NULL while none of it is needed */
    struct rtm_hlist calls_in; /* calls: live calls received: struct rtm_call.in_link */
    /* calls: live calls placed, struct rtm_call.out_link. Kept here, not in ext,
     * with the invite bucket and busy: every caller needs them for as long
     * as it has a live call, and an ext costs a 32-byte record. */
    struct rtm_hlist calls_out;
    struct rtm_bucket invites; /* calls: invite_rate */
    uint32_t refs;             /* sessions + calls naming this user */
    uint32_t confirmed;        /* confirmed sessions */
    uint32_t unconfirmed;      /* sessions a later auth source may still refuse */
    uint32_t busy;             /* calls: live calls placed */
    /* presence: what subscribers were last shown. A user without a record is shown
     * offline (or was never seen, which reads the same), so a new record
     * starts offline and only a change is published. */
    uint32_t shown_sessions;
    bool shown_online;
    bool dirty; /* presence: queued in core->dirty; pins the record until the tick */
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
    void *channels; /* channels: this session's memberships, NULL while none */
    bool confirmed;
};

/* Lateness of fired timers in 1 ms buckets; the last one holds everything
 * from RTM_LATE_BUCKETS - 1 ms on (late_max says how far). */
#define RTM_LATE_BUCKETS 1001
struct rtm_late_hist {
    uint64_t fired;
    int64_t max_ms;
    uint32_t count[RTM_LATE_BUCKETS];
};

/* How many error codes there are (enum rtm_err). */
#define RTM_ERR_KINDS (RTM_ERR_LIMIT_EXCEEDED + 1)
_Static_assert(RTM_ERR_KINDS <= sizeof(((struct rtm_core_stats *)0)->refused) / sizeof(uint64_t),
               "struct rtm_core_stats.refused is too short");

struct rtm_session;

/* Session events, which the dispatcher fans out to the features (struct
 * rtm_core.hooks). `up`: the session was confirmed (the broker accepted it);
 * `first` says it is the user's first confirmed session. `down`: the
 * session ended (it was confirmed or not, `was_confirmed`), called before
 * the record is freed; `last` says the user has no live session left. The
 * handle still names the client in `up`, and never again after `down`. */
struct rtm_session_hooks {
    void (*up)(struct rtm_core *core, struct rtm_session *session, bool first, int64_t now);
    void (*down)(struct rtm_core *core, struct rtm_session *session, bool was_confirmed, bool last,
                 int64_t now);
    /* A timer fired (struct rtm_timer.kind says whose). */
    void (*timer)(struct rtm_core *core, struct rtm_timer *timer, int64_t now);
};

/* The last topic the dispatcher parsed, and what it parsed to (offsets into
 * the copy, so that a hit can point into the caller's own string). One
 * publish is parsed for its WRITE check, its MESSAGE and every READ of its
 * fan-out, all the same string: a channel message to 1,000 members is
 * parsed once, not 1,001 times. */
#define RTM_TOPIC_CACHE_MAX 256
struct rtm_topic_cache {
    size_t len; /* 0: empty */
    char topic[RTM_TOPIC_CACHE_MAX];
    struct rtm_topic parsed; /* its pointers point into `topic` */
};

struct rtm_core {
    const struct rtm_config *cfg;
    const struct rtm_session_hooks *hooks;
    /* services */
    const struct rtm_sink *sink; /* outbox */
    rtm_push_fn push;            /* outbox */
    void *push_ud;
    struct rtm_hash_key hash_key;
    struct rtm_hash users;           /* users */
    struct rtm_hash sessions;        /* users: sessions by client handle */
    struct rtm_vec unconfirmed;      /* users: handles of sessions to confirm at the next tick */
    struct rtm_heap timers;          /* timers */
    struct rtm_late_hist late;       /* timers */
    struct rtm_pool pool;            /* users, their extensions, sessions, calls */
    struct rtm_registry *registry;   /* the device registry: devices writes, the pusher reads */
    uint64_t refused[RTM_ERR_KINDS]; /* outbox: SPEC 8 refusals by error code */
    struct rtm_topic_cache parsed;   /* dispatch: the last topic parsed */
    /* features */
    struct rtm_hash calls;         /* calls */
    size_t calls_live;             /* calls */
    struct rtm_vec dirty;          /* presence: users whose presence may have changed */
    struct rtm_channels *channels; /* channels */
    struct rtm_attrs *attrs;       /* attributes */
};

#endif
