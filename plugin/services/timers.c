/*
 * Timers (rtm_timers.h): the heap, the bounded run per tick, and the
 * lateness histogram behind rtm_core_timer_report().
 */
#include <string.h>

#include "rtm_outbox.h"
#include "rtm_timers.h"

/* Timers run per tick at most; the rest wait for the next tick (~100 ms). */
#define TIMERS_PER_TICK 20000

bool rtm_timer_arm(struct rtm_core *core, struct rtm_timer *t, int64_t due, const char *what)
{
    if (rtm_heap_arm(&core->timers, t, due) == 0)
        return true;
    rtm_out_log(core, RTM_LOG_ERR, "rtm: out of memory arming the timer of %s", what);
    return false;
}

void rtm_timer_disarm(struct rtm_core *core, struct rtm_timer *t)
{
    rtm_heap_disarm(&core->timers, t);
}

static void record_lateness(struct rtm_late_hist *h, int64_t late)
{
    h->fired++;
    if (late > h->max_ms)
        h->max_ms = late;
    h->count[late < RTM_LATE_BUCKETS - 1 ? late : RTM_LATE_BUCKETS - 1]++;
}

void rtm_timers_run(struct rtm_core *core, int64_t now)
{
    struct rtm_timer *t;
    for (int budget = TIMERS_PER_TICK; budget > 0; budget--) {
        if (!(t = rtm_heap_pop_due(&core->timers, now)))
            return;
        record_lateness(&core->late, now - t->due);
        core->hooks->timer(core, t, now);
    }
}

void rtm_core_timer_report(struct rtm_core *core, struct rtm_timer_report *out)
{
    struct rtm_late_hist *h = &core->late;
    out->fired = h->fired;
    out->late_max_ms = h->max_ms;
    out->late_p99_ms = 0;
    uint64_t want = h->fired - h->fired / 100, seen = 0; /* the 99th percentile's rank */
    for (int64_t ms = 0; h->fired > 0 && ms < RTM_LATE_BUCKETS; ms++) {
        seen += h->count[ms];
        if (seen >= want) {
            out->late_p99_ms = ms < RTM_LATE_BUCKETS - 1 ? ms : h->max_ms;
            break;
        }
    }
    memset(h, 0, sizeof(*h));
}

int64_t rtm_core_next_due(const struct rtm_core *core, int64_t now_ms)
{
    const struct rtm_timer *t = rtm_heap_peek(&core->timers);
    if (!t)
        return -1;
    return t->due > now_ms ? t->due - now_ms : 0;
}
