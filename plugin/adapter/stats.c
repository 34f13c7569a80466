/*
 * Operational statistics as JSON and as a log line (rtm_stats.h).
 */
#include <stdio.h>
#include <stdlib.h>

#include "rtm_message.h"
#include "rtm_stats.h"

/* Some thirty numbers of at most 20 digits and their names fit easily. */
#define JSON_MAX 2048

/* The heap's part of a report, or "" when it was not measured. */
static void heap_part(const struct rtm_stats *st, char *buf, size_t size, const char *fmt)
{
    buf[0] = '\0';
    if (st->has_heap)
        snprintf(buf, size, fmt, st->heap_bytes);
}

static const char *registry_of(const struct rtm_stats *st)
{
    return st->registry ? st->registry : "ready";
}

/* {"bad_request":n,...}: SPEC 8 publishes refused, by error code. */
static void refused_part(const struct rtm_core_stats *c, char *buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "{");
    for (int err = RTM_ERR_BAD_REQUEST; err <= RTM_ERR_LIMIT_EXCEEDED && n < size; err++)
        n += (size_t)snprintf(buf + n, size - n, "%s\"%s\":%llu", n > 1 ? "," : "",
                              rtm_err_code((enum rtm_err)err), (unsigned long long)c->refused[err]);
    if (n < size)
        snprintf(buf + n, size - n, "}");
}

char *rtm_stats_json(const struct rtm_stats *st, int64_t ts, size_t *len)
{
    const struct rtm_core_stats *c = &st->core;
    char *json = malloc(JSON_MAX);
    if (!json)
        return NULL;
    char heap[48];
    heap_part(st, heap, sizeof(heap), "\"heap_bytes\":%zu,");
    char refused[512];
    refused_part(c, refused, sizeof(refused));
    int n = snprintf(json, JSON_MAX,
                     "{\"users\":%zu,\"sessions\":%zu,\"calls_live\":%zu,\"calls_remembered\":%zu,"
                     "\"timers\":%zu,\"devices\":%zu,\"push_jobs\":%zu,\"push_calls\":%zu,"
                     "\"channels\":%zu,\"memberships\":%zu,\"attributes\":%zu,\"refused\":%s,"
                     "\"pool_bytes\":%zu,\"pool_records\":%zu,\"rss_bytes\":%zu,%s\"ticks\":%llu,"
                     "\"tick_avg_us\":%llu,"
                     "\"tick_max_us\":%llu,"
                     "\"timers_fired\":%llu,\"timer_late_p99_ms\":%lld,\"timer_late_max_ms\":%lld,"
                     "\"registry\":\"%s\",\"registry_failures\":%u,\"ts\":%lld}",
                     c->users, c->sessions, c->calls_live, c->calls_remembered, c->timers,
                     c->devices, st->push_jobs, st->push_calls, c->channels, c->memberships,
                     c->attributes, refused, c->pool_bytes, c->pool_records, st->rss_bytes, heap,
                     (unsigned long long)st->ticks, (unsigned long long)st->tick_avg_us,
                     (unsigned long long)st->tick_max_us, (unsigned long long)st->timers.fired,
                     (long long)st->timers.late_p99_ms, (long long)st->timers.late_max_ms,
                     registry_of(st), st->registry_failures, (long long)ts);
    *len = n > 0 && n < JSON_MAX ? (size_t)n : 0;
    return json;
}

void rtm_stats_line(const struct rtm_stats *st, char *buf, size_t size)
{
    const struct rtm_core_stats *c = &st->core;
    char heap[48];
    heap_part(st, heap, sizeof(heap), ", heap %zu bytes");
    snprintf(buf, size,
             "rtm: stats: %zu users, %zu sessions, %zu live calls, %zu remembered, %zu timers, "
             "%zu devices, %zu push jobs, %zu pushed calls, %zu channels, %zu memberships, "
             "%zu attributes, pool %zu bytes in %zu records, "
             "rss %zu bytes%s; "
             "%llu ticks, "
             "avg %llu us, max %llu us; %llu timers fired, late p99 %lld ms, max %lld ms; "
             "registry %s, %u failure(s)",
             c->users, c->sessions, c->calls_live, c->calls_remembered, c->timers, c->devices,
             st->push_jobs, st->push_calls, c->channels, c->memberships, c->attributes,
             c->pool_bytes, c->pool_records, st->rss_bytes, heap, (unsigned long long)st->ticks,
             (unsigned long long)st->tick_avg_us, (unsigned long long)st->tick_max_us,
             (unsigned long long)st->timers.fired, (long long)st->timers.late_p99_ms,
             (long long)st->timers.late_max_ms, registry_of(st), st->registry_failures);
}
