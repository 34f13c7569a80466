/*
 * Operational statistics: what the plugin holds, published every
 * plugin_opt_stats_interval seconds as one log line and as a retained JSON
 * message on $SYS/broker/rtm/stats, so operators (and the hostile-input
 * test) can watch state and memory return to their baseline. Pure.
 */
#ifndef RTM_STATS_H
#define RTM_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "rtm_core.h"

#define RTM_STATS_TOPIC "$SYS/broker/rtm/stats"

struct rtm_stats {
    struct rtm_core_stats core;
    size_t push_jobs;           /* push requests in flight or waiting to be retried */
    size_t push_calls;          /* pushed calls remembered for call_cancel */
    const char *registry;       /* read-back: "loading", "ready" or "failed" (NULL: "ready") */
    unsigned registry_failures; /* read-back rounds that failed */
    size_t rss_bytes;           /* the broker process's resident memory */
    bool has_heap;              /* plugin_opt_stats_heap: heap_bytes was measured */
    size_t heap_bytes;          /* the whole broker process's heap in use */
    /* Since the previous report: */
    uint64_t ticks;
    uint64_t tick_avg_us;
    uint64_t tick_max_us;
    struct rtm_timer_report timers;
};

/* {"users":..,"sessions":..,"calls_live":..,"calls_remembered":..,
 *  "timers":..,"devices":..,"push_jobs":..,"push_calls":..,
 *  "pool_bytes":..,"rss_bytes":..,["heap_bytes":..,]"ticks":..,"tick_avg_us":..,"tick_max_us":..,
 *  "timers_fired":..,"timer_late_p99_ms":..,"timer_late_max_ms":..,
 *  "registry":"loading"|"ready"|"failed","registry_failures":..,"ts":..}:
 *  malloc'd, or NULL when out of memory. */
char *rtm_stats_json(const struct rtm_stats *st, int64_t ts, size_t *len);

/* The same as one log line into `buf`. */
void rtm_stats_line(const struct rtm_stats *st, char *buf, size_t size);

#endif
