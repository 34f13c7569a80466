/*
 * The statistics the plugin reports: every number in the JSON and in the
 * log line, under the names PROTOCOL.md documents.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "rtm_message.h"
#include "rtm_stats.h"

static const struct rtm_stats sample = {
    .core = {.users = 1,
             .sessions = 2,
             .calls_live = 3,
             .calls_remembered = 4,
             .timers = 5,
             .devices = 6,
             .pool_bytes = 16,
             .pool_records = 17,
             .channels = 19,
             .memberships = 20,
             .attributes = 21,
             .refused = {[RTM_ERR_BAD_REQUEST] = 22, [RTM_ERR_LIMIT_EXCEEDED] = 23}},
    .push_jobs = 7,
    .push_calls = 8,
    .rss_bytes = 15,
    .has_heap = true,
    .heap_bytes = (size_t)1 << 40,
    .ticks = 9,
    .tick_avg_us = 10,
    .tick_max_us = 11,
    .timers = {.fired = 12, .late_p99_ms = 13, .late_max_ms = 14},
    .registry = "failed",
    .registry_failures = 18,
};

static void test_json(void **state)
{
    (void)state;
    size_t len = 0;
    char *json = rtm_stats_json(&sample, 1764100000123, &len);
    assert_non_null(json);
    assert_int_equal(len, strlen(json));
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    static const char *const names[] = {"users",
                                        "sessions",
                                        "calls_live",
                                        "calls_remembered",
                                        "timers",
                                        "devices",
                                        "push_jobs",
                                        "push_calls",
                                        "ticks",
                                        "tick_avg_us",
                                        "tick_max_us",
                                        "timers_fired",
                                        "timer_late_p99_ms",
                                        "timer_late_max_ms",
                                        "rss_bytes",
                                        "pool_bytes",
                                        "pool_records",
                                        "registry_failures",
                                        "channels",
                                        "memberships",
                                        "attributes"};
    for (int i = 0; i < 21; i++) {
        const cJSON *item = cJSON_GetObjectItem(o, names[i]);
        if (!item)
            fail_msg("no %s in %s", names[i], json);
        assert_int_equal(item->valuedouble, i + 1);
    }
    assert_true(cJSON_GetObjectItem(o, "heap_bytes")->valuedouble == 1099511627776.0);
    assert_true(cJSON_GetObjectItem(o, "ts")->valuedouble == 1764100000123.0);
    assert_string_equal(cJSON_GetObjectItem(o, "registry")->valuestring, "failed");
    /* SPEC 8.5: refusals by reason, every code named, zero included. */
    const cJSON *refused = cJSON_GetObjectItem(o, "refused");
    assert_true(cJSON_IsObject(refused));
    assert_int_equal(cJSON_GetArraySize(refused), RTM_ERR_LIMIT_EXCEEDED);
    assert_true(cJSON_GetObjectItem(refused, "bad_request")->valuedouble == 22.0);
    assert_true(cJSON_GetObjectItem(refused, "limit_exceeded")->valuedouble == 23.0);
    assert_true(cJSON_GetObjectItem(refused, "rate_limited")->valuedouble == 0.0);
    assert_int_equal(cJSON_GetArraySize(o), 25);
    cJSON_Delete(o);
    free(json);
}

/* Without plugin_opt_stats_heap the heap is not walked, and not reported. */
static void test_no_heap(void **state)
{
    (void)state;
    struct rtm_stats st = sample;
    st.has_heap = false;
    size_t len = 0;
    char *json = rtm_stats_json(&st, 1, &len);
    assert_non_null(json);
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    assert_null(cJSON_GetObjectItem(o, "heap_bytes"));
    assert_true(cJSON_GetObjectItem(o, "rss_bytes")->valuedouble == 15.0);
    cJSON_Delete(o);
    free(json);
    char line[512];
    rtm_stats_line(&st, line, sizeof(line));
    assert_null(strstr(line, "heap"));
    assert_non_null(strstr(line, "rss 15 bytes;"));
}

static void test_line(void **state)
{
    (void)state;
    char line[512];
    rtm_stats_line(&sample, line, sizeof(line));
    assert_string_equal(line,
                        "rtm: stats: 1 users, 2 sessions, 3 live calls, 4 remembered, "
                        "5 timers, 6 devices, 7 push jobs, 8 pushed calls, "
                        "19 channels, 20 memberships, 21 attributes, "
                        "pool 16 bytes in 17 records, rss 15 bytes, heap 1099511627776 bytes; "
                        "9 ticks, avg 10 us, "
                        "max 11 us; "
                        "12 timers fired, late p99 13 ms, max 14 ms; "
                        "registry failed, 18 failure(s)");
}

/* A report made without the registry's state (NULL) says "ready". */
static void test_registry_default(void **state)
{
    (void)state;
    struct rtm_stats st = sample;
    st.registry = NULL;
    st.registry_failures = 0;
    size_t len = 0;
    char *json = rtm_stats_json(&st, 1, &len);
    assert_non_null(json);
    assert_non_null(strstr(json, "\"registry\":\"ready\",\"registry_failures\":0,"));
    free(json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_line),
        cmocka_unit_test(test_no_heap),
        cmocka_unit_test(test_registry_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
