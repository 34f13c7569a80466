/*
 * The functional core of mosquitto-rtm: presence, call invitations and their
 * timers. It never calls Mosquitto and never reads a clock. The adapter
 * (plugin/adapter/plugin.c) passes `now_ms` (milliseconds since the epoch, derived
 * from a monotonic clock) into every call and carries out what the core
 * emits through the sink: publish this, log that. The unit tests drive the
 * same functions with a fake clock and a recording sink.
 */
#ifndef RTM_CORE_H
#define RTM_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rtm_config.h"
#include "rtm_hash.h"

enum rtm_log_level {
    RTM_LOG_DEBUG,
    RTM_LOG_INFO,
    RTM_LOG_NOTICE,
    RTM_LOG_WARNING,
    RTM_LOG_ERR,
};

/* One message the core wants published. Every pointer is valid only for the
 * duration of the sink call: the sink copies what it keeps.
 *
 * `handle` (a struct rtm_client.handle) aims the message at that client's
 * session alone; the adapter resolves it to the client id then. The core
 * names a client only while the broker is inside one of that client's
 * events (its publish, ACL check or connect) or while it tracks the client's
 * session, which it drops at the client's DISCONNECT, so the handle still
 * points at a live client. A client may have no id by then (the broker
 * clears it when a later auth source refuses the connection): the adapter
 * must then drop the message, never send it to every subscriber. */
struct rtm_publish {
    const void *handle; /* NULL: to every subscriber; else to that client's session only */
    const char *topic;
    const char *payload;
    size_t payload_len;
    int qos;
    bool retain;
};

struct rtm_sink {
    void *ud;
    void (*publish)(void *ud, const struct rtm_publish *msg);
    void (*log)(void *ud, enum rtm_log_level level, const char *line);
};

/* Who is speaking, as the adapter read it off the connection. `handle` is
 * the broker's client pointer: sessions are keyed by it, never by client id,
 * because a takeover authenticates the new connection before the old one
 * disconnects. `uid` is the identity chosen by rtm_identity_uid(). */
struct rtm_client {
    const void *handle;
    const char *uid;
    const char *client_id; /* for log lines; the core keeps no copy */
};

enum rtm_access {
    RTM_ACCESS_READ,
    RTM_ACCESS_WRITE,
    RTM_ACCESS_SUBSCRIBE,
    RTM_ACCESS_UNSUBSCRIBE,
};

enum rtm_acl {
    RTM_ACL_ALLOW,
    RTM_ACL_DENY,
    RTM_ACL_DEFER,
};

enum rtm_verdict {
    RTM_PASS,    /* not ours or unchanged: let the broker deliver it as sent */
    RTM_REPLACE, /* deliver with `payload` (stamped) instead of what was sent */
    RTM_DENY,    /* drop it; the sender has been told why */
};

/* Result of rtm_core_message(). `payload` is malloc'd and owned by the
 * caller when verdict is RTM_REPLACE, NULL otherwise. */
struct rtm_message_result {
    enum rtm_verdict verdict;
    char *payload;
    size_t payload_len;
};

struct rtm_core_stats {
    size_t users;            /* uids the core holds state for */
    size_t sessions;         /* tracked connections, confirmed or not */
    size_t calls_live;       /* pending or ringing invitations */
    size_t calls_remembered; /* ended invitations kept to answer late messages */
    size_t timers;           /* armed timers */
    size_t devices;          /* device registrations */
    size_t pool_bytes;       /* memory mapped for users, sessions and calls (rtm_pool.h) */
    size_t pool_records;     /* records allocated from it and not yet freed */
    size_t channels;         /* channels with members */
    size_t memberships;      /* (session, channel) pairs */
    size_t attributes;       /* user and channel attributes held */
    uint64_t refused[16];    /* SPEC 8 publishes refused, by enum rtm_err */
};

/* The push seam: what the core asks a push provider (JPush, later others)
 * to do. The core decides when; the provider decides how. */
enum rtm_push_kind {
    RTM_PUSH_CALL_INVITE, /* the callee has no live session: wake its devices */
    RTM_PUSH_CALL_CANCEL, /* a pushed invitation ended: stop ringing */
};

/* Why a call_cancel is sent (its extras.reason): an answer from one of the
 * callee's devices, or the name of the unanswered ending. */
#define RTM_CANCEL_ANSWERED_ELSEWHERE "answered_elsewhere"

struct rtm_push {
    enum rtm_push_kind kind;
    const char *call_id;
    const char *caller;
    const char *callee;
    const char *channel; /* "" when the invite had none */
    int64_t expires_at;  /* the invitation's ringing deadline, ms */
    const char *why;     /* for the log line: "callee offline", ... */
    /* call_cancel: RTM_CANCEL_ANSWERED_ELSEWHERE, "canceled", or the failure's
     * reason ("no_response", ...); NULL for call_invite. */
    const char *reason;
    int64_t now_ms; /* when the core decided to push */
};

typedef void (*rtm_push_fn)(void *ud, const struct rtm_push *push);

/* The auth seam: what the plugin answers for a connecting client. */
enum rtm_login_verdict {
    RTM_LOGIN_ACCEPT, /* accepted here; later sources are not asked */
    RTM_LOGIN_DEFER,  /* another source decides */
    RTM_LOGIN_REFUSE, /* refused: "not authorized" */
};

struct rtm_core;

/* Returns NULL when out of memory. `cfg` and `sink` must outlive the core,
 * and `cfg` must not change while it lives (calls derive deadlines from it).
 * `hash_key` is the secret key for the tables indexed by client-chosen
 * strings (uids, ids, tokens): the adapter draws it at random; NULL means all
 * zero, for tests and benchmarks. */
struct rtm_core *rtm_core_new(const struct rtm_config *cfg, const struct rtm_sink *sink,
                              const struct rtm_hash_key *hash_key);

/* The key the core was made with, for the other tables of the plugin. */
const struct rtm_hash_key *rtm_core_hash_key(const struct rtm_core *core);

/* Frees everything; publishes nothing. */
void rtm_core_free(struct rtm_core *core);

/* The uid a connection speaks as (SPEC 2): its username or client id as
 * cfg->identity says, or NULL when that is missing or not a valid uid. */
const char *rtm_identity_uid(const struct rtm_config *cfg, const char *username,
                             const char *client_id);

/* Installs the push provider; without one (fn NULL) nothing is pushed. */
void rtm_core_set_push(struct rtm_core *core, rtm_push_fn fn, void *ud);

/* Decides a connecting client's credentials as plugin_opt_auth says. `none`
 * accepts everyone, `defer` leaves it to another source, `token` accepts a
 * valid login token for the client's uid as password and refuses (and logs)
 * everything else. */
enum rtm_login_verdict rtm_core_authenticate(struct rtm_core *core, const struct rtm_client *client,
                                             const char *password, int64_t now_ms);

/* Decides a client the broker asks about again on a configuration reload
 * (Mosquitto 2.0 re-runs BASIC_AUTH for every client it holds, connected or
 * away with a persistent session). A client with a live session was decided
 * when it connected: it keeps its session whatever its token has done since
 * (ACCEPT, or DEFER with `defer`). Any other client is decided afresh as
 * rtm_core_authenticate() does. Either way no session is started or ended:
 * an away client must not be shown online. */
enum rtm_login_verdict rtm_core_reauthenticate(struct rtm_core *core,
                                               const struct rtm_client *client,
                                               const char *password, int64_t now_ms);

/* Does `handle` have a live (tracked) session? */
bool rtm_core_has_session(struct rtm_core *core, const void *handle);

/* A connection passed our authentication step. It is tracked as unconfirmed
 * until the next rtm_core_tick() (or its first publish or subscribe), because
 * a later authentication source may still refuse it. Clients without a valid
 * uid are not tracked. */
void rtm_core_connect(struct rtm_core *core, const struct rtm_client *client, int64_t now_ms);

/* The broker accepted the connection (Mosquitto 2.1's CONNECT event, after
 * every authentication source): it is tracked if it was not (a client
 * authenticated by TLS certificate or extended auth never passes our
 * authentication step) and confirmed at once. */
void rtm_core_connected(struct rtm_core *core, const struct rtm_client *client, int64_t now_ms);

/* A connection ended (clean, keepalive timeout, takeover, or refused). */
void rtm_core_disconnect(struct rtm_core *core, const void *handle, int64_t now_ms);

/* Once per broker loop iteration: confirms connections, publishes presence
 * changes, delivers pending invitations to new sessions, fires due timers. */
void rtm_core_tick(struct rtm_core *core, int64_t now_ms);

/* A client published `topic` (already known to be under the prefix). */
struct rtm_message_result rtm_core_message(struct rtm_core *core, const struct rtm_client *client,
                                           const char *topic, const void *payload,
                                           size_t payload_len, bool retain, int64_t now_ms);

/* Access check for a topic or subscription filter under the prefix.
 * `retain` is the message's retain flag (READ: a stored retained message, or
 * a retained publish being fanned out). A READ of something the plugin
 * never writes there (a retained call message, a malformed registration or
 * presence message left by a broker that ran without the plugin) is
 * refused, and such a retained message is erased. */
enum rtm_acl rtm_core_acl(struct rtm_core *core, const struct rtm_client *client,
                          enum rtm_access access, const char *topic, const void *payload,
                          size_t payload_len, bool retain, int64_t now_ms);

/* True when `topic` is under the configured prefix: the one comparison the
 * hot path makes before deciding a topic is not ours. */
bool rtm_core_owns_topic(const struct rtm_core *core, const char *topic);

/* Milliseconds until the earliest armed timer, or -1 when none is armed. */
int64_t rtm_core_next_due(const struct rtm_core *core, int64_t now_ms);

void rtm_core_stats(const struct rtm_core *core, struct rtm_core_stats *out);

/* How late timers ran (their tick's time minus their due time) since the
 * last report; taking the report starts a new interval. */
struct rtm_timer_report {
    uint64_t fired;
    int64_t late_p99_ms;
    int64_t late_max_ms;
};
void rtm_core_timer_report(struct rtm_core *core, struct rtm_timer_report *out);

/* The device registry the core keeps from registrations (rtm_registry.h). */
struct rtm_registry *rtm_core_registry(struct rtm_core *core);

/* Is invitation `id` of `caller` pending or ringing? (a push retry is
 * worth it) An invitation is named by its caller and its id together. */
bool rtm_core_call_pending(const struct rtm_core *core, const char *caller, const char *id);

/* A retained registration read back at start-up (the broker's persistence
 * is the registry's store). Returns false, and logs, when it is invalid. */
bool rtm_core_load_device(struct rtm_core *core, const char *topic, const void *payload,
                          size_t payload_len);

/* A retained user or channel attribute read back at start-up (the broker's
 * persistence is the attributes' store), so that the limits count it. True
 * when it is recorded. Anything else is not: a session-lifetime user
 * attribute (it never outlives a restart) or a payload the plugin did not
 * stamp is erased; a topic that is not an attribute's is logged. */
bool rtm_core_load_attr(struct rtm_core *core, const char *topic, const void *payload,
                        size_t payload_len);

#endif
