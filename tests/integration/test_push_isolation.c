/*
 * Push requests never touch the broker's event loop (SPEC 6.4): while the
 * mock JPush holds push requests unanswered, MQTT traffic flows at full
 * speed, and the broker stops promptly (and, in the sanitizer build, without
 * a leak) with requests in flight. More pushes than the worker has
 * connections (16) wait their turn, count against push_queue_max, and are
 * dropped when their call ended meanwhile. Also: HTTPS with plugin_opt_jpush_ca_file
 * works and fails, logged, without it; with no jpush_app_key pushes are only
 * logged (dry run).
 */
#include <stdio.h>
#include <string.h>

#include "jpush_mock.h"

#define PUSH_WAIT_MS (5000 * rt_time_scale())
#define ROUND_TRIPS  50
/* Widened under valgrind only, where every round trip is slower. */
#define MAX_RTT_MS rt_slack_ms(500)

struct env {
    struct mock *m;
    struct broker *b;
    struct client *alice;
};

/* A broker with `plugin_opts` (pointing at e->m); bob (d1, d2) and carol
 * (c1) registered and offline; alice connected. */
static void setup(struct env *e, const char *const *plugin_opts)
{
    struct broker_opts o = {.plugin_opts = plugin_opts};
    e->b = broker_start(&o);
    /* Pushes decided before the registry is read back wait for it, and
     * then go out all at once: the cases here count on the order in which
     * they are decided. */
    CHECKF(broker_wait_log(e->b, 0, "device registry read back", WAIT_MS),
           "the registry loader did not finish");
    e->alice = open5(e->b, "alice", NULL);
    CHECK_EQ_INT(client_subscribe(e->alice, inbox("alice"), 1), 1);
    CHECK_EQ_INT(client_subscribe(e->alice, "rtm/presence/+", 1), 1);
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

static const char *invite(struct env *e, const char *callee)
{
    const char *id = rt_uniq("call");
    rt_send(e->alice, inbox(callee), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id));
    return id;
}

static void teardown(struct env *e)
{
    expect_secret_not_logged(e->b, mock_master_secret(e->m));
    client_free(e->alice);
    broker_free(e->b);
}

static void test_never_block(void)
{
    struct env e = {0};
    e.m = mock_start(NULL);
    static const char *const opts[] = {"push_timeout_ms 10000", NULL};
    setup(&e, mock_plugin_opts(e.m, opts));
    mock_behaviour(e.m, "{\"hang\":true}"); /* every push from now on */
    int64_t hung_at = now_mono_ms();
    invite(&e, "bob");
    invite(&e, "carol");
    MOCK_EXPECT(e.m, 2, PUSH_WAIT_MS);

    struct client *ping = client_open(e.b, "pinger", NULL);
    struct client *pong = client_open(e.b, "ponger", NULL);
    CHECK_EQ_INT(client_subscribe(ping, "it/pong", 1), 1);
    CHECK_EQ_INT(client_subscribe(pong, "it/ping", 1), 1);
    int64_t worst = 0, total = 0;
    int worst_at = -1, pending = 2;
    for (int i = 0; i < ROUND_TRIPS; i++) {
        if (i % 10 == 5) { /* more pushes start, and hang, meanwhile */
            invite(&e, "bob");
            pending++;
        }
        const char *n = rt_fmt("%d", i);
        int64_t t = now_mono_ms();
        CHECK_EQ_INT(client_publish_str(ping, "it/ping", n, 0), 0);
        struct msg *m = client_wait_msg(pong, "it/ping", 2000);
        CHECKF(m && strcmp(m->payload, n) == 0, "ping %d did not arrive within 2 s", i);
        CHECK_EQ_INT(client_publish_str(pong, "it/pong", n, 0), 0);
        m = client_wait_msg(ping, "it/pong", 2000);
        CHECKF(m && strcmp(m->payload, n) == 0, "pong %d did not arrive within 2 s", i);
        int64_t rtt = now_mono_ms() - t;
        total += rtt;
        if (rtt > worst) {
            worst = rtt;
            worst_at = i;
        }
    }
    int64_t took = now_mono_ms() - hung_at;
    /* All that time the pushes were still hanging: none had an outcome. */
    MOCK_EXPECT(e.m, pending, PUSH_WAIT_MS);
    CHECKF(took < 9000 && broker_log_lines(e.b, 0, "no HTTP response", (char *)NULL) == 0 &&
               broker_log_lines(e.b, 0, "device(s) ok", (char *)NULL) == 0,
           "the pushes did not stay pending during the %lld ms of ping-pong", (long long)took);
    printf("ping-pong with %d hanging pushes: %d round trips, worst %lld ms (#%d), mean %.1f ms\n",
           pending, ROUND_TRIPS, (long long)worst, worst_at, (double)total / ROUND_TRIPS);
    CHECKF(worst < MAX_RTT_MS,
           "with %d push requests hanging, round trip #%d took %lld ms (mean %.1f ms over %d); "
           "expected every one under %d ms (SPEC 6.4)",
           pending, worst_at, (long long)worst, (double)total / ROUND_TRIPS, ROUND_TRIPS,
           MAX_RTT_MS);
    client_free(ping);
    client_free(pong);
    teardown(&e);
}

static void test_shutdown_in_flight(void)
{
    struct env e = {0};
    e.m = mock_start(NULL);
    static const char *const opts[] = {"push_timeout_ms 10000", NULL};
    setup(&e, mock_plugin_opts(e.m, opts));
    mock_behaviour(e.m, "{\"hang\":true}");
    invite(&e, "bob");
    invite(&e, "carol");
    MOCK_EXPECT(e.m, 2, PUSH_WAIT_MS);
    client_free(e.alice);
    e.alice = NULL;
    /* broker_stop checks a clean exit and no sanitizer report (leaks
     * included) in the log. */
    int64_t t = now_mono_ms();
    broker_stop(e.b);
    int64_t took = now_mono_ms() - t;
    CHECKF(took < 5000, "the broker took %lld ms to stop with 2 push requests in flight",
           (long long)took);
    expect_secret_not_logged(e.b, mock_master_secret(e.m));
    broker_free(e.b);
}

static void test_https(void)
{
    struct mock_opts mo = {.tls = true};
    struct env e = {0};
    e.m = mock_start(&mo);
    setup(&e, mock_plugin_opts(e.m, NULL));
    CHECK(strncmp(mock_url(e.m), "https://", 8) == 0);
    const char *id = invite(&e, "bob");
    cJSON *list = MOCK_EXPECT(e.m, 1, PUSH_WAIT_MS);
    CHECK_PUSH(e.m, cJSON_GetArrayItem(list, 0), "call_invite", id, "tok-b1", "tok-b2");
    cJSON *ev = EXPECT_EVENT(e.alice, "alice", "pushed", id);
    EXPECT_INT(ev, "devices", 2);
    teardown(&e);
}

/* The mock's certificate is signed by a CA nobody trusts without
 * jpush_ca_file: the TLS handshake fails, the failure is logged, nothing
 * reaches the mock, the caller is not told `pushed`. */
static void test_https_untrusted(void)
{
    struct mock_opts mo = {.tls = true};
    struct env e = {0};
    e.m = mock_start(&mo);
    setup(&e, mock_plugin_opts_no_ca(e.m, NULL));
    const char *id = invite(&e, "bob");
    /* One line: the outcome, libcurl's reason and the retry. */
    CHECKF(broker_wait_log_line(e.b, 0, PUSH_WAIT_MS, id, "no HTTP response", "certificate",
                                "retry 1", (char *)NULL),
           "no \"... no HTTP response: ... certificate ... retry 1\" line for an untrusted HTTPS "
           "endpoint");
    CHECK_EQ_INT(cJSON_GetArraySize(mock_requests(e.m)), 0);
    client_flush(e.alice);
    CHECK_EQ_INT(client_count(e.alice, inbox("alice"), "type", "pushed", (char *)NULL), 0);
    teardown(&e);
}

static void test_dry_run(void)
{
    struct env e = {0};
    e.m = mock_start(NULL);
    const char *const opts[] = {rt_fmt("jpush_endpoint %s", mock_url(e.m)), NULL};
    setup(&e, opts);
    CHECK(broker_log_contains(e.b, 0, "push: dry run"));
    const char *id = invite(&e, "bob");
    CHECKF(broker_wait_log_line(e.b, 0, WAIT_MS, "push (dry run)", "call_invite", id, "bob", "d1",
                                "d2", "callee offline", (char *)NULL),
           "no \"push (dry run)\" line naming call %s, bob's devices d1 and d2 and the reason", id);
    rt_send(e.alice, inbox("bob"), rt_fmt("{\"type\":\"cancel\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(e.alice, "alice", "cancel", id);
    CHECK(broker_wait_log_line(e.b, 0, WAIT_MS, "push (dry run)", "call_cancel", id, (char *)NULL));
    CHECK_EQ_INT(broker_log_lines(e.b, 0, "push (dry run)", "call_invite", id, (char *)NULL), 1);
    client_flush(e.alice);
    CHECK_EQ_INT(client_count(e.alice, inbox("alice"), "type", "pushed", (char *)NULL), 0);
    CHECK_EQ_INT(cJSON_GetArraySize(mock_requests(e.m)), 0);
    client_free(e.alice);
    broker_free(e.b);
}

/* More pushes than the worker's connections: at most RTM_HTTP_CONNECTIONS
 * (16) requests reach the mock at once, the rest wait (in the worker, then
 * in the plugin) and go out as answers come back; an invitation canceled
 * while its push waited is dropped, logged, and never pushed. */
#define DEFER_CALLS    40
#define DEFER_CANCELED 4
#define CONNECTIONS    16

static void test_more_pushes_than_connections(void)
{
    struct env e = {0};
    e.m = mock_start(NULL);
    static const char *const opts[] = {"push_timeout_ms 30000", "busy_limit 100",
                                       "invite_rate 1000", NULL};
    setup(&e, mock_plugin_opts(e.m, opts));
    int delay_ms = 1500 * rt_time_scale();
    mock_behaviour(e.m, rt_fmt("{\"delay_ms\":%d}", delay_ms));
    const char *ids[DEFER_CALLS];
    for (int i = 0; i < DEFER_CALLS; i++)
        ids[i] = invite(&e, "bob");
    /* The last ones wait in the plugin (32 are ahead of them) until the
     * first answers come back, 1.5 s from now. */
    long log_from = broker_log_mark(e.b);
    for (int i = DEFER_CALLS - DEFER_CANCELED; i < DEFER_CALLS; i++) {
        rt_send(e.alice, inbox("bob"), rt_fmt("{\"type\":\"cancel\",\"id\":\"%s\"}", ids[i]));
        EXPECT_EVENT(e.alice, "alice", "cancel", ids[i]);
    }
    int pushed = DEFER_CALLS - DEFER_CANCELED;
    cJSON *list = MOCK_EXPECT(e.m, pushed, PUSH_WAIT_MS + 4 * delay_ms);
    for (int i = 0; i < DEFER_CALLS - DEFER_CANCELED; i++)
        CHECKF(rec_count(list, "call_invite", ids[i]) == 1, "call %s: %d invite pushes, not 1",
               ids[i], rec_count(list, "call_invite", ids[i]));
    for (int i = DEFER_CALLS - DEFER_CANCELED; i < DEFER_CALLS; i++) {
        CHECK(broker_wait_log_line(e.b, log_from, WAIT_MS, "push call_invite", ids[i],
                                   "ended before it was sent; dropped", (char *)NULL));
        CHECKF(rec_count(list, NULL, ids[i]) == 0, "canceled call %s was pushed", ids[i]);
    }
    /* The 17th request reached the mock only once the first had its answer. */
    long long first = rec_elapsed_ms(cJSON_GetArrayItem(list, 0));
    long long next = rec_elapsed_ms(cJSON_GetArrayItem(list, CONNECTIONS));
    CHECKF(next - first >= delay_ms - 100,
           "request %d came %lld ms after the first: more than %d connections at once",
           CONNECTIONS + 1, next - first, CONNECTIONS);
    for (int i = 0; i < pushed; i++)
        EXPECT_EVENT(e.alice, "alice", "pushed", rec_call_id(cJSON_GetArrayItem(list, i)));
    CHECK_EQ_INT(cJSON_GetArraySize(mock_requests(e.m)), pushed);
    teardown(&e);
}

/* push_queue_max bounds the worker's requests and the pushes waiting for
 * it together: with 34, of 40 pushes to a slow mock 32 go to the worker,
 * 2 wait, and 6 are dropped, each with a log line. */
#define BOUND_QUEUE 34

static void test_queue_bound_counts_waiting(void)
{
    struct env e = {0};
    e.m = mock_start(NULL);
    const char *const opts[] = {"push_timeout_ms 30000", "busy_limit 100", "invite_rate 1000",
                                rt_fmt("push_queue_max %d", BOUND_QUEUE), NULL};
    setup(&e, mock_plugin_opts(e.m, opts));
    int delay_ms = 1000 * rt_time_scale();
    mock_behaviour(e.m, rt_fmt("{\"delay_ms\":%d}", delay_ms));
    long log_from = broker_log_mark(e.b);
    const char *last = NULL;
    for (int i = 0; i < DEFER_CALLS; i++)
        last = invite(&e, "bob");
    int dropped = DEFER_CALLS - BOUND_QUEUE;
    CHECK(broker_wait_log_line(e.b, log_from, WAIT_MS, last, "dropped: the push queue is full",
                               (char *)NULL));
    cJSON *list = MOCK_EXPECT(e.m, BOUND_QUEUE, PUSH_WAIT_MS + 4 * delay_ms);
    for (int i = 0; i < BOUND_QUEUE; i++)
        EXPECT_EVENT(e.alice, "alice", "pushed", rec_call_id(cJSON_GetArrayItem(list, i)));
    CHECK_EQ_INT(cJSON_GetArraySize(mock_requests(e.m)), BOUND_QUEUE);
    CHECK_EQ_INT(broker_log_lines(e.b, log_from, "dropped: the push queue is full", (char *)NULL),
                 dropped);
    teardown(&e);
}

int main(int argc, char **argv)
{
    static const struct test_case cases[] = {
        {"never_block", test_never_block},
        {"shutdown_in_flight", test_shutdown_in_flight},
        {"https", test_https},
        {"https_untrusted", test_https_untrusted},
        {"dry_run", test_dry_run},
        {"more_pushes_than_connections", test_more_pushes_than_connections},
        {"queue_bound_counts_waiting", test_queue_bound_counts_waiting},
    };
    return run_tests(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
