/*
 * Scale check of the core alone (no broker): N callers each invite a
 * different callee twice, then every invitation times out. Prints time per
 * invitation, heap bytes per pending invitation (glibc mallinfo2 plus the
 * slabs of the core's record pool) with and
 * without the callee's record, which the first invitation creates, the cost
 * of a tick when nothing is due, and how long expiring all of them takes,
 * tick by tick as the plugin would. Exits non-zero if any invitation was
 * lost, so CTest can run it as a functional test with a large N; the
 * numbers are printed, never asserted.
 *
 * usage: core_scale [N]   (default 100000)
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rtm_core.h"

struct counter {
    size_t failures; /* failure events delivered to callers' inboxes */
};

static void count_publish(void *ud, const struct rtm_publish *msg)
{
    struct counter *c = ud;
    /* {"type":"failure" to rtm/u/caller... (the callee's copy is not counted) */
    if (msg->payload_len > 17 && msg->payload[9] == 'f' &&
        strncmp(msg->topic, "rtm/u/caller", 12) == 0)
        c->failures++;
}

static void drop_log(void *ud, enum rtm_log_level level, const char *line)
{
    (void)ud;
    (void)level;
    (void)line;
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* glibc's heap in use plus the slabs the core's pool mapped itself for its
 * records, which mallinfo2() does not see. */
static size_t heap_in_use(const struct rtm_core *core)
{
    struct mallinfo2 mi = mallinfo2();
    struct rtm_core_stats st = {0};
    if (core)
        rtm_core_stats(core, &st);
    return mi.uordblks + mi.hblkhd + st.pool_bytes;
}

/* Every caller online, as callers are: one session each. */
static void connect_callers(struct rtm_core *core, size_t n, int64_t now)
{
    char caller[32];
    for (size_t i = 0; i < n; i++) {
        snprintf(caller, sizeof(caller), "caller%zu", i);
        struct rtm_client client = {(void *)(i + 1), caller, caller};
        rtm_core_connect(core, &client, now);
    }
    rtm_core_tick(core, now);
}

/* Caller i invites callee i, with the invitation id `{prefix}-{i}`. */
static int invite_all(struct rtm_core *core, size_t n, const char *prefix, int64_t now)
{
    char topic[64], payload[96], caller[32];
    for (size_t i = 0; i < n; i++) {
        snprintf(caller, sizeof(caller), "caller%zu", i);
        snprintf(topic, sizeof(topic), "rtm/u/callee%zu/call", i);
        int len =
            snprintf(payload, sizeof(payload),
                     "{\"type\":\"invite\",\"id\":\"%s-%zu\",\"channel\":\"room\"}", prefix, i);
        struct rtm_client client = {(void *)(i + 1), caller, caller};
        struct rtm_message_result res =
            rtm_core_message(core, &client, topic, payload, (size_t)len, false, now);
        free(res.payload);
        if (res.verdict != RTM_REPLACE)
            return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    struct rtm_config cfg;
    rtm_config_defaults(&cfg);
    struct counter counter = {0};
    struct rtm_sink sink = {&counter, count_publish, drop_log};
    struct rtm_core *core = rtm_core_new(&cfg, &sink, NULL);
    int64_t now = 1700000000000;

    size_t heap_start = heap_in_use(core);
    connect_callers(core, n, now);
    size_t heap0 = heap_in_use(core);
    double t0 = seconds();
    if (!core || invite_all(core, n, "call", now) != 0) {
        fprintf(stderr, "core_scale: an invitation was refused\n");
        return 1;
    }
    double t1 = seconds();
    size_t heap1 = heap_in_use(core);
    /* A second invitation to each callee, whose record now exists: the
     * invitation's own cost. */
    if (invite_all(core, n, "again", now) != 0) {
        fprintf(stderr, "core_scale: a second invitation was refused\n");
        return 1;
    }
    size_t heap2 = heap_in_use(core);
    struct rtm_core_stats st;
    rtm_core_stats(core, &st);

    double t2 = seconds();
    rtm_core_tick(core, now + 1000); /* nothing due */
    double idle_tick = seconds() - t2;

    double t3 = seconds();
    int ticks = 0;
    struct rtm_core_stats after;
    for (int64_t t = now + cfg.invite_timeout_ms; ticks < 1000; t += 100, ticks++) {
        rtm_core_tick(core, t);
        rtm_core_stats(core, &after);
        if (after.calls_live == 0)
            break;
    }
    double expire = seconds() - t3;

    printf("invitations          %zu (two per caller, to the same callee)\n", 2 * n);
    printf("invite               %.2f us each\n", (t1 - t0) * 1e6 / (double)n);
    printf("heap per online user %.0f bytes (its session included)\n",
           (double)(heap0 - heap_start) / (double)n);
    printf("heap per invitation  %.0f bytes (its callee's new record included)\n",
           (double)(heap1 - heap0) / (double)n);
    printf("heap per invitation  %.0f bytes (to a callee already held)\n",
           (double)(heap2 - heap1) / (double)n);
    printf("idle tick            %.1f us with %zu timers armed\n", idle_tick * 1e6, st.timers);
    printf("expire all           %.3f s over %d ticks (%.2f us per invitation)\n", expire,
           ticks + 1, expire * 1e6 / (double)(2 * n));
    double t4 = seconds();
    rtm_core_free(core);
    printf("free                 %.3f s\n", seconds() - t4);
    rtm_config_free(&cfg);
    if (st.calls_live != 2 * n || after.calls_live != 0 || counter.failures != 2 * n) {
        fprintf(stderr, "core_scale: live %zu after create, %zu after expiry, %zu failures\n",
                st.calls_live, after.calls_live, counter.failures);
        return 1;
    }
    return 0;
}
