/*
 * The JPush request (SPEC 6.3), exactly as the mock JPush recorded it:
 * POST /v3/push, Basic auth, Content-Type application/json, platform "all",
 * audience.registration_id = the callee's tokens, android and ios
 * notifications from the push_title/push_alert templates, extras for the app,
 * and options: time_to_live (whole seconds left, at least 1),
 * apns_production, apns_collapse_id = the call id, plus
 * plugin_opt_jpush_options merged in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jpush_mock.h"

#define PUSH_WAIT_MS (5000 * rt_time_scale())

struct env {
    struct mock *m;
    struct broker *b;
    struct client *alice;
};

static void setup(struct env *e, const char *const *opts)
{
    e->m = mock_start(NULL);
    struct broker_opts o = {.plugin_opts = mock_plugin_opts(e->m, opts)};
    e->b = broker_start(&o);
    e->alice = open5(e->b, "alice", NULL);
    CHECK_EQ_INT(client_subscribe(e->alice, inbox("alice"), 1), 1);
    CHECK_EQ_INT(client_subscribe(e->alice, "rtm/presence/bob", 1), 1);
    struct client *bob = open5(e->b, "bob-phone", "bob");
    device_register(bob, "bob", "d1", "android", "tok-a");
    device_register(bob, "bob", "d2", "ios", "tok-i");
    client_free(bob);
    wait_offline(e->alice, "bob");
}

static void teardown(struct env *e)
{
    expect_secret_not_logged(e->b, mock_master_secret(e->m));
    client_free(e->alice);
    broker_free(e->b);
}

static const cJSON *obj(const cJSON *parent, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(parent, key);
    if (!cJSON_IsObject(it)) {
        char *text = cJSON_PrintUnformatted(parent);
        const char *shown = rt_fmt("%.2000s", text ? text : "(null)");
        free(text);
        FAIL("expected an object \"%s\" in %s", key, shown);
    }
    return it;
}

/* The extras every notification of the call carries; a call_cancel also
 * says why (SPEC 6.2): `reason`, NULL for a call_invite. */
static void check_extras(const cJSON *extras, const char *kind, const char *id, const char *channel,
                         long long expires_at, const char *reason)
{
    if (reason) {
        EXPECT_KEYS(extras, "rtm", "id", "caller", "channel", "expires_at", "reason");
        EXPECT_STR(extras, "reason", reason);
    } else {
        EXPECT_KEYS(extras, "rtm", "id", "caller", "channel", "expires_at");
    }
    EXPECT_STR(extras, "rtm", kind);
    EXPECT_STR(extras, "id", id);
    EXPECT_STR(extras, "caller", "alice");
    EXPECT_STR(extras, "channel", channel);
    EXPECT_INT(extras, "expires_at", expires_at);
}

/* Checks the notification; both platforms carry the same extras. */
static void check_notification(const cJSON *body, const char *kind, const char *id,
                               const char *channel, long long expires_at, const char *reason,
                               const char *alert, const char *title)
{
    const cJSON *n = obj(body, "notification");
    EXPECT_KEYS(n, "android", "ios");
    const cJSON *android = obj(n, "android");
    const cJSON *ios = obj(n, "ios");
    check_extras(obj(android, "extras"), kind, id, channel, expires_at, reason);
    check_extras(obj(ios, "extras"), kind, id, channel, expires_at, reason);
    if (!alert)
        return;
    EXPECT_KEYS(android, "alert", "title", "priority", "category", "extras");
    EXPECT_STR(android, "alert", alert);
    EXPECT_STR(android, "title", title);
    EXPECT_INT(android, "priority", 2);
    EXPECT_STR(android, "category", "call");
    EXPECT_KEYS(ios, "alert", "sound", "extras");
    EXPECT_STR(ios, "alert", alert);
    const cJSON *sound = cJSON_GetObjectItemCaseSensitive(ios, "sound");
    CHECKF(cJSON_IsString(sound) && sound->valuestring[0],
           "notification.ios.sound: expected a sound name");
}

/* options.time_to_live in [lo, hi]. */
static long long check_ttl(const cJSON *options, long long lo, long long hi)
{
    long long ttl = GET_INT(options, "time_to_live");
    CHECKF(ttl >= lo && ttl <= hi, "options.time_to_live %lld, expected %lld..%lld", ttl, lo, hi);
    return ttl;
}

/* The pending invite bob receives when he connects: its expires_at. */
static long long bob_expires_at(struct env *e, const char *id, struct client **bob)
{
    *bob = open5(e->b, "bob-phone", "bob");
    CHECK_EQ_INT(client_subscribe(*bob, inbox("bob"), 1), 1);
    cJSON *inv = EXPECT_EVENT(*bob, "bob", "invite", id);
    return GET_INT(inv, "expires_at");
}

static void test_configured_request(void)
{
    static const char *const opts[] = {
        "push_title Call from {caller}", "push_alert {caller} calls you in {channel}",
        "apns_production true",
        "jpush_options {\"third_party_channel\":{\"xiaomi\":{\"distribution\":\"ospush\"}},"
        "\"classification\":1}",
        NULL};
    struct env e;
    setup(&e, opts);
    int64_t t0 = now_wall_ms();
    const char *id = rt_uniq("c-7f3a");
    rt_send(e.alice, inbox("bob"),
            rt_fmt("{\"type\":\"invite\",\"id\":\"%s\",\"channel\":\"room-42\",\"timeout\":20,"
                   "\"content\":\"{\\\"video\\\":true}\"}",
                   id));
    cJSON *list = MOCK_EXPECT(e.m, 1, PUSH_WAIT_MS);
    const cJSON *rec = cJSON_GetArrayItem(list, 0);
    CHECK_PUSH(e.m, rec, "call_invite", id, "tok-a", "tok-i");
    struct client *bob;
    long long expires_at = bob_expires_at(&e, id, &bob);
    CHECKF(expires_at >= t0 + 20000 && expires_at <= now_wall_ms() + 20000,
           "the invite's expires_at %lld is not invite time + 20 s", expires_at);

    const cJSON *body = rec_body(rec);
    EXPECT_KEYS(body, "platform", "audience", "notification", "options");
    EXPECT_KEYS(obj(body, "audience"), "registration_id");
    check_notification(body, "call_invite", id, "room-42", expires_at, NULL,
                       "alice calls you in room-42", "Call from alice");
    const cJSON *options = obj(body, "options");
    EXPECT_KEYS(options, "time_to_live", "apns_production", "apns_collapse_id",
                "third_party_channel", "classification");
    check_ttl(options, 19, 20);
    EXPECT_BOOL(options, "apns_production", true);
    EXPECT_STR(options, "apns_collapse_id", id);
    EXPECT_INT(options, "classification", 1);
    const cJSON *xiaomi = obj(obj(options, "third_party_channel"), "xiaomi");
    EXPECT_KEYS(xiaomi, "distribution");
    EXPECT_STR(xiaomi, "distribution", "ospush");

    /* The caller cancels: call_cancel to the same devices, replacing the
     * invite's notification on iOS (same apns_collapse_id). */
    rt_send(e.alice, inbox("bob"), rt_fmt("{\"type\":\"cancel\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(bob, "bob", "cancel", id);
    list = MOCK_EXPECT(e.m, 2, PUSH_WAIT_MS);
    rec = cJSON_GetArrayItem(list, 1);
    CHECK_PUSH(e.m, rec, "call_cancel", id, "tok-a", "tok-i");
    body = rec_body(rec);
    EXPECT_KEYS(body, "platform", "audience", "notification", "options");
    check_notification(body, "call_cancel", id, "room-42", expires_at, "canceled", NULL, NULL);
    options = obj(body, "options");
    check_ttl(options, 1, 20);
    EXPECT_BOOL(options, "apns_production", true);
    EXPECT_STR(options, "apns_collapse_id", id);
    EXPECT_STR(obj(obj(options, "third_party_channel"), "xiaomi"), "distribution", "ospush");
    client_free(bob);
    teardown(&e);
}

/* Default templates and apns_production; time_to_live counts down to the
 * invitation's deadline and is at least 1 once it has passed. */
static void test_defaults_and_ttl(void)
{
    static const char *const opts[] = {"push_fallback_ms 500", NULL};
    struct env e;
    setup(&e, opts);
    /* bob is online (so the push is the fallback, 500 ms in) and silent. */
    struct client *bob = open5(e.b, "bob-phone", "bob");
    CHECK_EQ_INT(client_subscribe(bob, inbox("bob"), 1), 1);
    const char *id = rt_uniq("c-dflt");
    rt_send(e.alice, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\",\"timeout\":3}", id));
    cJSON *inv = EXPECT_EVENT(bob, "bob", "invite", id);
    long long expires_at = GET_INT(inv, "expires_at");
    cJSON *list = MOCK_EXPECT(e.m, 1, PUSH_WAIT_MS);
    const cJSON *rec = cJSON_GetArrayItem(list, 0);
    CHECK_PUSH(e.m, rec, "call_invite", id, "tok-a", "tok-i");
    const cJSON *body = rec_body(rec);
    check_notification(body, "call_invite", id, "", expires_at, NULL, "alice is calling",
                       "Incoming call");
    const cJSON *options = obj(body, "options");
    EXPECT_KEYS(options, "time_to_live", "apns_production", "apns_collapse_id");
    EXPECT_BOOL(options, "apns_production", false);
    EXPECT_STR(options, "apns_collapse_id", id);
    /* Pushed at ~0.5-0.7 s of 3 s: 2.3-2.5 s were left. */
    long long left_ms = expires_at - rec_time_ms(rec);
    long long ttl = check_ttl(options, 2, 3);
    /* The request takes a while to reach the mock after time_to_live was
     * set: longer under valgrind (rt_slack_ms). */
    CHECKF(ttl * 1000 >= left_ms - 1000 && ttl * 1000 <= left_ms + rt_slack_ms(1000),
           "time_to_live %lld s, but %lld ms were left until expires_at", ttl, left_ms);

    /* No ringing: no_response at 3 s, then call_cancel with the deadline
     * passed: time_to_live 1. */
    cJSON *f = EXPECT_TIMER_EVENT(e.alice, "alice", "failure", id);
    EXPECT_STR(f, "reason", "no_response");
    list = MOCK_EXPECT(e.m, 2, PUSH_WAIT_MS);
    rec = cJSON_GetArrayItem(list, 1);
    CHECK_PUSH(e.m, rec, "call_cancel", id, "tok-a", "tok-i");
    options = obj(rec_body(rec), "options");
    EXPECT_INT(options, "time_to_live", 1);
    EXPECT_STR(options, "apns_collapse_id", id);
    client_free(bob);
    teardown(&e);
}

/* plugin_opt_jpush_options is merged into options, but time_to_live and
 * apns_collapse_id stay the call's (SPEC 6.3: a call push dies with the
 * call; a cancel replaces its invite). */
static void test_options_merge(void)
{
    static const char *const opts[] = {
        "jpush_options {\"time_to_live\":86400,\"apns_collapse_id\":\"x\",\"big_push_duration\":"
        "0}",
        NULL};
    struct env e;
    setup(&e, opts);
    const char *id = rt_uniq("c-merge");
    rt_send(e.alice, inbox("bob"),
            rt_fmt("{\"type\":\"invite\",\"id\":\"%s\",\"timeout\":10}", id));
    cJSON *list = MOCK_EXPECT(e.m, 1, PUSH_WAIT_MS);
    const cJSON *rec = cJSON_GetArrayItem(list, 0);
    CHECK_PUSH(e.m, rec, "call_invite", id, "tok-a", "tok-i");
    const cJSON *options = obj(rec_body(rec), "options");
    EXPECT_KEYS(options, "time_to_live", "apns_production", "apns_collapse_id",
                "big_push_duration");
    check_ttl(options, 9, 10);
    EXPECT_STR(options, "apns_collapse_id", id);
    EXPECT_INT(options, "big_push_duration", 0);
    teardown(&e);
}

/* plugin_opt_jpush_master_secret_file: the secret is the file's first
 * line, and it is what the Basic auth carries. */
static void test_secret_from_file(void)
{
    struct env e;
    e.m = mock_start(NULL);
    const char *tmp = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char path[300];
    snprintf(path, sizeof(path), "%s/rtm-secret-XXXXXX", tmp);
    int fd = mkstemp(path);
    CHECKF(fd >= 0, "mkstemp %s failed", path);
    const char *line = rt_fmt("%s\n", mock_master_secret(e.m));
    CHECK(write(fd, line, strlen(line)) == (ssize_t)strlen(line));
    close(fd);
    const char *const opts[] = {rt_fmt("jpush_endpoint %s", mock_url(e.m)),
                                rt_fmt("jpush_app_key %s", mock_app_key(e.m)),
                                rt_fmt("jpush_master_secret_file %s", path), NULL};
    struct broker_opts o = {.plugin_opts = opts};
    e.b = broker_start(&o);
    unlink(path);
    e.alice = open5(e.b, "alice", NULL);
    CHECK_EQ_INT(client_subscribe(e.alice, inbox("alice"), 1), 1);
    struct client *bob = open5(e.b, "bob-phone", "bob");
    device_register(bob, "bob", "d1", "android", "tok-a");
    client_free(bob);
    CHECK_EQ_INT(client_subscribe(e.alice, "rtm/presence/bob", 1), 1);
    wait_offline(e.alice, "bob");
    const char *id = rt_uniq("c-file");
    rt_send(e.alice, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id));
    cJSON *list = MOCK_EXPECT(e.m, 1, PUSH_WAIT_MS);
    CHECK_PUSH(e.m, cJSON_GetArrayItem(list, 0), "call_invite", id, "tok-a");
    EXPECT_EVENT(e.alice, "alice", "pushed", id);
    teardown(&e);
}

int main(int argc, char **argv)
{
    static const struct test_case cases[] = {
        {"configured_request", test_configured_request},
        {"defaults_and_ttl", test_defaults_and_ttl},
        {"options_merge", test_options_merge},
        {"secret_from_file", test_secret_from_file},
    };
    return run_tests(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
