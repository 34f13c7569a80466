/*
 * Users and sessions (a service). A user record lives while something needs
 * it (rtm_context.h); a session is one tracked connection of a user, keyed
 * by the broker's client handle, because on a takeover the new connection
 * authenticates before the old one disconnects.
 *
 * A session starts unconfirmed, because an authentication source after ours
 * may still refuse it; the broker then reports the disconnect in the same
 * loop iteration. The next tick (or the session's first publish or
 * subscribe) confirms whatever is left. Confirming and ending a session
 * raise the session events of struct rtm_session_hooks.
 */
#ifndef RTM_USERS_H
#define RTM_USERS_H

#include "rtm_context.h"

enum rtm_timer_kind;

/* --- users ------------------------------------------------------------- */
struct rtm_user *rtm_user_find(struct rtm_core *core, const char *uid);
/* Finds or creates; takes a reference. NULL when out of memory. */
struct rtm_user *rtm_user_acquire(struct rtm_core *core, const char *uid);
/* Drops a reference; frees the user when nothing needs it any more. */
void rtm_user_release(struct rtm_core *core, struct rtm_user *user);
/* Frees the user if nothing refers to it and no presence update is due. */
void rtm_user_gc(struct rtm_core *core, struct rtm_user *user);
/* True while the user has a confirmed or unconfirmed session. */
bool rtm_user_live(const struct rtm_user *user);
/* The per-uid rate limits kept in the user's extension. */
enum rtm_user_limit {
    RTM_LIMIT_REGISTRATIONS, /* device_rate per minute */
    RTM_LIMIT_MESSAGES,      /* message_rate per second: peer and channel messages */
    RTM_LIMIT_ATTRS,         /* attr_rate per 5 seconds: attribute writes */
    RTM_LIMIT_JOINS,         /* join_rate per second: channel joins */
};
/* Draws one action from the user's bucket for `limit`; false when it is
 * empty. A bucket that cannot be allocated is not enforced (logged). */
bool rtm_user_take(struct rtm_core *core, struct rtm_user *user, enum rtm_user_limit limit,
                   int64_t now);
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

/* --- sessions ---------------------------------------------------------- */
struct rtm_session *rtm_session_find(struct rtm_core *core, const void *handle);
/* Tracks a new, unconfirmed session of client->uid (a handle that
 * authenticates again ends its old session first). Clients without a uid
 * are not tracked. */
void rtm_session_open(struct rtm_core *core, const struct rtm_client *client, int64_t now);
/* Confirms the session of `handle` if it is unconfirmed. True when it was
 * confirmed just now (the `up` event has run). */
bool rtm_session_confirm(struct rtm_core *core, const void *handle, int64_t now);
/* Ends the session of `handle`, if tracked (the `down` event runs first). */
void rtm_session_close(struct rtm_core *core, const void *handle, int64_t now);
/* Confirms every session still unconfirmed since the last tick. */
void rtm_sessions_confirm_queued(struct rtm_core *core, int64_t now);
void rtm_sessions_free_all(struct rtm_core *core);

#endif
