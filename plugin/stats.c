/*
 * Operational statistics as JSON and as a log line (rtm_stats.h).
 */
#include <stdio.h>
#include <stdlib.h>

#include "rtm_stats.h"

/* Ten numbers of at most 20 digits and their names fit easily. */
#define JSON_MAX 512

char *rtm_stats_json(const struct rtm_stats *st, int64_t ts, size_t *len)
{
    const struct rtm_core_stats *c = &st->core;
    char *json = malloc(JSON_MAX);
    if (!json)
        return NULL;
    int n = snprintf(json, JSON_MAX,
                     "{\"users\":%zu,\"sessions\":%zu,\"calls_live\":%zu,"
                     "\"calls_remembered\":%zu,\"timers\":%zu,\"devices\":%zu,"
                     "\"push_jobs\":%zu,\"push_calls\":%zu,\"heap_bytes\":%zu,\"ts\":%lld}",
                     c->users, c->sessions, c->calls_live, c->calls_remembered, c->timers,
                     c->devices, st->push_jobs, st->push_calls, st->heap_bytes, (long long)ts);
    *len = n > 0 && n < JSON_MAX ? (size_t)n : 0;
    return json;
}

void rtm_stats_line(const struct rtm_stats *st, char *buf, size_t size)
{
    const struct rtm_core_stats *c = &st->core;
    snprintf(buf, size,
             "rtm: stats: %zu users, %zu sessions, %zu live calls, %zu remembered, %zu timers, "
             "%zu devices, %zu push jobs, %zu pushed calls, heap %zu bytes",
             c->users, c->sessions, c->calls_live, c->calls_remembered, c->timers, c->devices,
             st->push_jobs, st->push_calls, st->heap_bytes);
}
