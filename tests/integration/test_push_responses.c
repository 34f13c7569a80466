/*
 * What the plugin does with JPush's answers (SPEC 6.3), scripted on the mock:
 * 200 tells the caller `pushed` once; 5xx, network errors and 429 are retried
 * (Retry-After and X-Rate-Limit-Reset honoured) while the invitation is
 * pending, and no longer once it has ended; 400 with error 1011 removes every
 * registration of the request (retained message cleared); auth and parameter
 * errors are not retried and are logged as configuration errors. Every
 * outcome is logged in one line, and the master secret never is.
 *
 * "Not retried" is shown by a sentinel: after a bounded window, alice calls
 * carol (offline) and the mock's next request must be carol's push.
 */
#include <stdio.h>
#include <string.h>

#include "jpush_mock.h"

#define PUSH_WAIT_MS (5000 * rt_time_scale())

struct env {
    struct mock *m;
    struct broker *b;
    struct client *alice;
    int records;
};

static void register_devices(struct env *e)
{
    struct client *bob = open5(e->b, "bob-phone", "bob");
    device_register(bob, "bob", "d1", "android", "tok-b1");
    device_register(bob, "bob", "d2", "ios", "tok-b2");
    client_free(bob);
    wait_offline(e->alice, "bob");
    struct client *carol = open5(e->b, "carol-phone", "carol");
    device_register(carol, "carol", "c1", "android", "tok-c1");
    client_free(carol);
    wait_offline(e->alice, "carol");
}

static void start_broker(struct env *e, const char *const *plugin_opts)
{
    struct broker_opts o = {.plugin_opts = plugin_opts};
    e->b = broker_start(&o);
    e->records = 0;
    e->alice = open5(e->b, "alice", NULL);
    CHECK_EQ_INT(client_subscribe(e->alice, inbox("alice"), 1), 1);
    CHECK_EQ_INT(client_subscribe(e->alice, "rtm/presence/+", 1), 1);
    register_devices(e);
}

/* A broker pushing to a fresh mock (admin: ops); bob (d1, d2) and carol
 * (c1) are registered and offline. */
static void setup(struct env *e)
{
    static const char *const opts[] = {"invite_timeout 10", "admin_users ops", NULL};
    e->m = mock_start(NULL);
    start_broker(e, mock_plugin_opts(e->m, opts));
}

static void teardown(struct env *e)
{
    expect_secret_not_logged(e->b, mock_master_secret(e->m));
    client_free(e->alice);
    broker_free(e->b);
}

static const char *invite(struct env *e, const char *callee)
{
    const char *id = rt_uniq("call");
    rt_send(e->alice, inbox(callee), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id));
    return id;
}

/* Waits for the mock's request #n (1-based) and checks it is `kind` `id`. */
static const cJSON *expect_request_at(const char *file, int line, struct env *e, int n,
                                      const char *kind, const char *id)
{
    cJSON *list = mock_expect_at(file, line, e->m, n, PUSH_WAIT_MS);
    const cJSON *rec = cJSON_GetArrayItem(list, n - 1);
    if (strcmp(rec_kind(rec), kind) != 0 || strcmp(rec_call_id(rec), id) != 0) {
        mock_dump(e->m);
        rt_fail(file, line, "push request #%d is %s %s, expected %s %s", n, rec_kind(rec),
                rec_call_id(rec), kind, id);
    }
    if (n > e->records)
        e->records = n;
    return rec;
}
#define EXPECT_REQUEST(e, n, kind, id) expect_request_at(__FILE__, __LINE__, (e), (n), (kind), (id))

/* The sentinel: a call to carol whose push must be the next request. */
static cJSON *sentinel_at(const char *file, int line, struct env *e)
{
    const char *id = invite(e, "carol");
    int n = e->records + 1;
    cJSON *list = mock_expect_at(file, line, e->m, n, PUSH_WAIT_MS);
    const cJSON *rec = cJSON_GetArrayItem(list, n - 1);
    if (strcmp(rec_call_id(rec), id) != 0) {
        mock_dump(e->m);
        rt_fail(file, line,
                "push request #%d is %s %s, expected the sentinel call %s to carol: "
                "something was pushed (or retried) that should not have been",
                n, rec_kind(rec), rec_call_id(rec), id);
    }
    e->records = n;
    return list;
}
#define SENTINEL(e) sentinel_at(__FILE__, __LINE__, (e))

static void expect_log_at(const char *file, int line, struct env *e, const char *what,
                          const char *a, const char *b, const char *c)
{
    if (!broker_wait_log_line(e->b, 0, WAIT_MS, a, b, c, (char *)NULL))
        rt_fail(file, line, "no broker log line with \"%s\"%s%s%s%s (%s)", a, b ? ", \"" : "",
                b ? b : "", b ? "\"" : "", c ? rt_fmt(", \"%s\"", c) : "", what);
}
#define EXPECT_LOG(e, what, ...) expect_log_at(__FILE__, __LINE__, (e), (what), __VA_ARGS__)

/* Exactly `n` pushed events for `id` reached alice, counted after a flush
 * that follows every outcome already logged. */
static void expect_pushed_events(struct env *e, const char *id, int n)
{
    client_flush(e->alice);
    int got = client_count(e->alice, inbox("alice"), "type", "pushed", "id", id, (char *)NULL);
    if (got != n) {
        client_dump(e->alice);
        FAIL("alice got %d pushed event(s) for %s, expected %d", got, id, n);
    }
}

static void test_ok_pushed_event(void)
{
    struct env e;
    setup(&e);
    const char *id = invite(&e, "bob");
    const cJSON *rec = EXPECT_REQUEST(&e, 1, "call_invite", id);
    CHECK_PUSH(e.m, rec, "call_invite", id, "tok-b1", "tok-b2");
    cJSON *ev = EXPECT_EVENT(e.alice, "alice", "pushed", id);
    EXPECT_KEYS(ev, "type", "id", "caller", "callee", "by", "ts", "devices");
    CHECK_STAMP(ev, "pushed", id, "alice", "bob", "server");
    EXPECT_INT(ev, "devices", 2);
    EXPECT_LOG(&e, "the push succeeded", id, "2 device(s) ok", NULL);
    /* The call_cancel push succeeding tells the caller nothing more. */
    rt_send(e.alice, inbox("bob"), rt_fmt("{\"type\":\"cancel\",\"id\":\"%s\"}", id));
    EXPECT_REQUEST(&e, 2, "call_cancel", id);
    EXPECT_LOG(&e, "the cancel push succeeded", "call_cancel", id, "ok");
    expect_pushed_events(&e, id, 1);
    teardown(&e);
}

static void test_retry_server_errors(void)
{
    struct env e;
    setup(&e);
    mock_behaviour(e.m, "[{\"status\":500,\"times\":1},"
                        "{\"status\":502,\"body\":\"<html>Bad Gateway</html>\",\"times\":1}]");
    const char *id = invite(&e, "bob");
    EXPECT_REQUEST(&e, 1, "call_invite", id);
    EXPECT_REQUEST(&e, 2, "call_invite", id);
    const cJSON *rec = EXPECT_REQUEST(&e, 3, "call_invite", id);
    CHECK_PUSH(e.m, rec, "call_invite", id, "tok-b1", "tok-b2");
    cJSON *ev = EXPECT_EVENT(e.alice, "alice", "pushed", id);
    EXPECT_INT(ev, "devices", 2);
    EXPECT_LOG(&e, "the 500 and its retry", id, "HTTP 500", "retry 1");
    EXPECT_LOG(&e, "the 502 and its retry", id, "HTTP 502", "retry 2");
    EXPECT_LOG(&e, "the push finally succeeded", id, "2 device(s) ok", NULL);
    expect_pushed_events(&e, id, 1);
    cJSON *all = SENTINEL(&e);
    CHECK_EQ_INT(rec_count(all, "call_invite", id), 3);
    teardown(&e);
}

/* A connection closed without an answer is a network error. The first two
 * requests each go out on a fresh connection (the broker's first, then one
 * after a closed one), so libcurl cannot quietly re-send them itself. */
static void test_retry_network_error(void)
{
    struct env e;
    setup(&e);
    mock_behaviour(e.m, "{\"drop\":true,\"times\":2}");
    const char *id = invite(&e, "bob");
    EXPECT_REQUEST(&e, 1, "call_invite", id);
    EXPECT_REQUEST(&e, 2, "call_invite", id);
    EXPECT_REQUEST(&e, 3, "call_invite", id);
    EXPECT_EVENT(e.alice, "alice", "pushed", id);
    CHECK_EQ_INT(broker_log_lines(e.b, 0, id, "no HTTP response", (char *)NULL), 2);
    EXPECT_LOG(&e, "the network error's retry", id, "retry 2", NULL);
    expect_pushed_events(&e, id, 1);
    cJSON *all = SENTINEL(&e);
    CHECK_EQ_INT(rec_count(all, "call_invite", id), 3);
    teardown(&e);
}

/* A request the provider never answers ends at push_timeout_ms, not
 * later (the HTTP worker runs curl's timers), and is retried like any
 * other network error. */
#define TIMEOUT_MS 1500
#define STR_(x)    #x
#define STR(x)     STR_(x)
static void test_request_timeout(void)
{
    static const char *const opts[] = {"invite_timeout 10", "admin_users ops",
                                       "push_timeout_ms " STR(TIMEOUT_MS), NULL};
    struct env e;
    e.m = mock_start(NULL);
    start_broker(&e, mock_plugin_opts(e.m, opts));
    mock_behaviour(e.m, "{\"hang\":true,\"times\":1}");
    int64_t before = now_mono_ms();
    const char *id = invite(&e, "bob");
    EXPECT_REQUEST(&e, 1, "call_invite", id);
    EXPECT_LOG(&e, "the timeout", id, "timed out", "retry 1");
    int64_t waited = now_mono_ms() - before;
    /* The request started after `before`, so it cannot have failed sooner.
     * A worker that ignored curl's timer would fail it on its next
     * once-a-second wakeup instead: 2 s or more. The slack (the broker's
     * TICK, the log) may grow under valgrind (measured: 1.7 s), not 5x. */
    int slack_ms = rt_time_scale() > 1 ? 600 : 350;
    printf("a request never answered failed %lld ms after the invite (push_timeout_ms %d)\n",
           (long long)waited, TIMEOUT_MS);
    CHECKF(waited >= TIMEOUT_MS && waited <= TIMEOUT_MS + slack_ms,
           "the hanging request failed %lld ms after the invite, expected %d..%d ms "
           "(push_timeout_ms)",
           (long long)waited, TIMEOUT_MS, TIMEOUT_MS + slack_ms);
    EXPECT_REQUEST(&e, 2, "call_invite", id);
    EXPECT_EVENT(e.alice, "alice", "pushed", id);
    expect_pushed_events(&e, id, 1);
    teardown(&e);
}
#undef TIMEOUT_MS

/* The retry comes no earlier than the header says. */
static void check_gap(cJSON *list, int a, int b, long long min_ms, long long max_ms)
{
    long long gap = rec_elapsed_ms(cJSON_GetArrayItem(list, b - 1)) -
                    rec_elapsed_ms(cJSON_GetArrayItem(list, a - 1));
    CHECKF(gap >= min_ms && gap <= max_ms,
           "request #%d came %lld ms after #%d, expected %lld..%lld ms", b, gap, a, min_ms, max_ms);
}

static void test_retry_after(void)
{
    struct env e;
    setup(&e);
    mock_behaviour(e.m, "[{\"status\":429,\"headers\":{\"Retry-After\":\"1\"},\"times\":1},"
                        "{\"status\":429,\"headers\":{\"X-Rate-Limit-Reset\":\"2\","
                        "\"X-Rate-Limit-Remaining\":\"0\",\"X-Rate-Limit-Quota\":\"600\"},"
                        "\"times\":1}]");
    const char *id = invite(&e, "bob");
    EXPECT_REQUEST(&e, 1, "call_invite", id);
    EXPECT_REQUEST(&e, 2, "call_invite", id);
    EXPECT_REQUEST(&e, 3, "call_invite", id);
    cJSON *list = mock_requests(e.m);
    /* The mock's elapsed_ms is whole ms at arrival: allow 2 ms of rounding;
     * how late the retry may be is widened under valgrind (rt_slack_ms). */
    check_gap(list, 1, 2, 1000 - 2, 1000 + rt_slack_ms(800));
    check_gap(list, 2, 3, 2000 - 2, 2000 + rt_slack_ms(800));
    EXPECT_LOG(&e, "the rate limit", id, "HTTP 429", "retry 1");
    EXPECT_EVENT(e.alice, "alice", "pushed", id);
    expect_pushed_events(&e, id, 1);
    teardown(&e);
}

static void test_cancel_during_backoff(void)
{
    struct env e;
    setup(&e);
    mock_behaviour(e.m, "{\"status\":429,\"headers\":{\"Retry-After\":\"2\"},\"times\":1}");
    const char *id = invite(&e, "bob");
    const cJSON *first = EXPECT_REQUEST(&e, 1, "call_invite", id);
    long long first_ms = rec_elapsed_ms(first);
    int64_t first_mono = now_mono_ms();
    EXPECT_LOG(&e, "the retry is scheduled", id, "retry 1 in", NULL);
    rt_send(e.alice, inbox("bob"), rt_fmt("{\"type\":\"cancel\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(e.alice, "alice", "cancel", id);
    /* Past the retry's due time (2 s after the answer, + 200 ms timer
     * precision, + margin), no further call_invite may have gone out. */
    int64_t left = first_mono + 2000 + 700 - now_mono_ms();
    if (left > 0)
        rt_wait_ms((int)left);
    cJSON *all = mock_requests(e.m);
    const cJSON *rec;
    int invites = 0;
    cJSON_ArrayForEach(rec, all)
    {
        if (strcmp(rec_kind(rec), "call_invite") == 0 && strcmp(rec_call_id(rec), id) == 0) {
            invites++;
            CHECKF(invites == 1,
                   "call_invite %s was sent again %lld ms after the first, after the call was "
                   "canceled (SPEC 6.3: retried only while the invitation is pending)",
                   id, rec_elapsed_ms(rec) - first_ms);
        }
    }
    e.records = cJSON_GetArraySize(all);
    SENTINEL(&e);
    expect_pushed_events(&e, id, 0);
    teardown(&e);
}

static void test_retries_stop_at_deadline(void)
{
    struct env e;
    setup(&e);
    mock_behaviour(e.m, "{\"status\":503}"); /* every answer, from now on */
    const char *id = rt_uniq("call");
    rt_send(e.alice, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\",\"timeout\":2}", id));
    EXPECT_REQUEST(&e, 1, "call_invite", id);
    cJSON *f = EXPECT_TIMER_EVENT(e.alice, "alice", "failure", id);
    EXPECT_STR(f, "reason", "peer_offline");
    EXPECT_LOG(&e, "the last attempt", id, "giving up", NULL);
    cJSON *all = mock_requests(e.m);
    int before = rec_count(all, "call_invite", id);
    /* None was sent after the call failed (a request already on its way
     * then may arrive a few ms later). */
    long long failed_at = GET_INT(f, "ts");
    const cJSON *rec;
    cJSON_ArrayForEach(rec, all)
    {
        if (strcmp(rec_call_id(rec), id) == 0)
            CHECKF(rec_time_ms(rec) <= failed_at + rt_slack_ms(50),
                   "call_invite %s was sent %lld ms after the call failed (SPEC 6.3: retried "
                   "only while the invitation is pending)",
                   id, rec_time_ms(rec) - failed_at);
    }
    /* Longest backoff the plugin might still have had pending: none may
     * follow. The sentinel (answered 503 too) is recorded all the same. */
    rt_wait_ms(1000);
    e.records = cJSON_GetArraySize(mock_requests(e.m));
    all = SENTINEL(&e);
    CHECK_EQ_INT(rec_count(all, "call_invite", id), before);
    expect_pushed_events(&e, id, 0);
    teardown(&e);
}

static void test_invalid_tokens(void)
{
    struct env e;
    setup(&e);
    struct client *ops = open5(e.b, "ops-1", "ops");
    CHECK_EQ_INT(client_subscribe(ops, "rtm/u/bob/devices/+", 1), 1);
    client_flush(ops);
    CHECK_EQ_INT(client_consume_all(ops, NULL, (char *)NULL), 2);
    mock_behaviour(e.m, "{\"status\":400,\"times\":1}"); /* error 1011 */
    const char *id = invite(&e, "bob");
    EXPECT_REQUEST(&e, 1, "call_invite", id);
    /* Both registrations are removed: their retained messages cleared. */
    for (int i = 1; i <= 2; i++) {
        const char *topic = device_topic("bob", rt_fmt("d%d", i));
        struct msg *gone = client_wait_msg(ops, topic, WAIT_MS);
        if (!gone) {
            client_dump(ops);
            FAIL("JPush answered 1011, but %s was not cleared", topic);
        }
        CHECKF(gone->len == 0, "%s got \"%s\", expected an empty payload", topic, gone->payload);
        EXPECT_LOG(&e, "the removal", rt_fmt("removed device d%d of bob", i), NULL, NULL);
    }
    /* Nothing stored for bob any more; a new call pushes nothing. */
    struct client *ops2 = open5(e.b, "ops-2", "ops");
    CHECK_EQ_INT(client_subscribe(ops2, "rtm/u/bob/devices/+", 1), 1);
    client_flush(ops2);
    CHECK_EQ_INT(client_count(ops2, NULL, "provider", "jpush", (char *)NULL), 0);
    const char *id2 = invite(&e, "bob");
    EXPECT_LOG(&e, "the call without devices", id2, "no registered device", NULL);
    SENTINEL(&e);
    expect_pushed_events(&e, id, 0);
    client_free(ops2);
    client_free(ops);
    teardown(&e);
}

/* 400/1003: a bad parameter, a configuration error, never retried. */
static void test_bad_parameter_not_retried(void)
{
    struct env e;
    setup(&e);
    mock_behaviour(e.m, "{\"status\":400,\"body\":{\"error\":{\"code\":1003,\"message\":"
                        "\"parameter value is invalid\"}},\"times\":1}");
    const char *id = invite(&e, "bob");
    EXPECT_REQUEST(&e, 1, "call_invite", id);
    EXPECT_LOG(&e, "the configuration error", id, "1003", NULL);
    rt_wait_ms(1000); /* longer than the first retry's backoff could be */
    SENTINEL(&e);
    expect_pushed_events(&e, id, 0);
    teardown(&e);
}

/* Wrong credentials: 401/1004, a configuration error, never retried, and
 * neither secret in the log. */
static void test_auth_error_not_retried(void)
{
    static const struct mock_opts mo = {.master_secret = "the-MOCK-side-secret-51"};
    struct env e;
    e.m = mock_start(&mo);
    const char *const opts[] = {rt_fmt("jpush_endpoint %s", mock_url(e.m)),
                                "jpush_app_key " MOCK_APP_KEY,
                                "jpush_master_secret " MOCK_MASTER_SECRET, NULL};
    start_broker(&e, opts);
    const char *id = invite(&e, "bob");
    const cJSON *rec = EXPECT_REQUEST(&e, 1, "call_invite", id);
    const cJSON *answer = cJSON_GetObjectItemCaseSensitive(rec, "answer");
    EXPECT_INT(answer, "status", 401);
    EXPECT_LOG(&e, "the authentication error", id, "1004", "jpush_app_key");
    rt_wait_ms(1000); /* longer than the first retry's backoff could be */
    SENTINEL(&e);     /* refused (401) too, but recorded */
    expect_pushed_events(&e, id, 0);
    expect_secret_not_logged(e.b, MOCK_MASTER_SECRET);
    expect_secret_not_logged(e.b, "the-MOCK-side-secret-51");
    client_free(e.alice);
    broker_free(e.b);
}

int main(int argc, char **argv)
{
    static const struct test_case cases[] = {
        {"ok_pushed_event", test_ok_pushed_event},
        {"retry_server_errors", test_retry_server_errors},
        {"retry_network_error", test_retry_network_error},
        {"retry_after", test_retry_after},
        {"request_timeout", test_request_timeout},
        {"cancel_during_backoff", test_cancel_during_backoff},
        {"retries_stop_at_deadline", test_retries_stop_at_deadline},
        {"invalid_tokens", test_invalid_tokens},
        {"bad_parameter_not_retried", test_bad_parameter_not_retried},
        {"auth_error_not_retried", test_auth_error_not_retried},
    };
    return run_tests(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
