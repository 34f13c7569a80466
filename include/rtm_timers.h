/*
 * Timers (a service): one min-heap (rtm_heap.h) for every timer of the
 * core. A timer is embedded in the record it belongs to; its kind says
 * whose it is, and the dispatcher routes a fired timer to that feature
 * (struct rtm_session_hooks.timer). How late timers ran is kept for the
 * statistics.
 */
#ifndef RTM_TIMERS_H
#define RTM_TIMERS_H

#include "rtm_context.h"

enum rtm_timer_kind {
    RTM_TIMER_CALL,         /* calls: struct rtm_call.timer */
    RTM_TIMER_CALLER_GRACE, /* calls: struct rtm_user_ext.timer, caller_grace */
    RTM_TIMER_USER_LINGER,  /* users: struct rtm_user_ext.timer, until its rate buckets refill */
    RTM_TIMER_CHANNEL,      /* channels: a channel's count, coalesced to once a second */
};

/* Arms (or re-arms) `t` for `due`; false, logged, when out of memory. */
bool rtm_timer_arm(struct rtm_core *core, struct rtm_timer *t, int64_t due, const char *what);
void rtm_timer_disarm(struct rtm_core *core, struct rtm_timer *t);

/* Fires the timers due at `now`, at most a bounded number per call: the
 * rest wait for the next tick, so a burst of expiries never holds the
 * broker loop for long. */
void rtm_timers_run(struct rtm_core *core, int64_t now);

#endif
