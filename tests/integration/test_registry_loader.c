/*
 * The registry read-back needs no configuration (SPEC 6.1): with the
 * default plugin_opt_registry_listener (auto) the plugin finds the broker's
 * own listeners, whatever they are (a TLS one first, IPv6 only), and reads
 * the registrations back after a restart; an invite sent at once after the
 * restart waits for the read-back and is pushed; an address that is not
 * this broker (a decoy broker) is detected, logged as an error, counted in
 * the stats and retried, and nothing is subscribed there; and a loader
 * whose connect() hangs on a black-holed address does not hold up the
 * broker's shutdown. test_devices_restart covers clean and kill -9 restarts with the
 * defaults on the harness's random port.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "jpush_mock.h"

#define RTM_STATS_TOPIC_IT "$SYS/broker/rtm/stats"

static const char *const persistence[] = {"persistence true", "persistence_location @DIR@/", NULL};

/* bob registers one device, then the broker restarts cleanly. */
static void register_and_restart(struct broker *b, const char *token)
{
    struct client *bob = open5(b, "bob-phone", "bob");
    device_register(bob, "bob", "phone", "android", token);
    client_free(bob);
    broker_stop(b);
}

/* alice invites offline bob: one push to `token`, and `pushed` for alice. */
static void expect_invite_pushed(struct broker *b, struct mock *m, const char *token)
{
    struct client *alice = open5(b, "alice", NULL);
    CHECK_EQ_INT(client_subscribe(alice, inbox("alice"), 1), 1);
    const char *id = rt_uniq("loader");
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id));
    cJSON *list = MOCK_EXPECT(m, 1, WAIT_MS);
    CHECK_PUSH(m, cJSON_GetArrayItem(list, 0), "call_invite", id, token);
    EXPECT_INT(EXPECT_EVENT(alice, "alice", "pushed", id), "devices", 1);
    client_free(alice);
}

/* Listeners as given, defaults otherwise: register, restart, push. */
static void survive_restart(const char *const *listeners, const char *host, struct mock *m,
                            const char *via)
{
    struct broker_opts o = {.plugin_opts = mock_plugin_opts(m, NULL),
                            .extra_lines = persistence,
                            .listeners = listeners,
                            .host = host};
    struct broker *b = broker_start(&o);
    register_and_restart(b, "tok-restart");
    long mark = broker_log_mark(b);
    broker_restart(b);
    CHECKF(broker_wait_log_line(b, mark, WAIT_MS, "device registry read back", "1 device(s)",
                                rt_fmt("through %s", rt_fmt(via, b->port)), (char *)NULL),
           "no read-back of 1 device through %s", rt_fmt(via, b->port));
    expect_invite_pushed(b, m, "tok-restart");
    broker_free(b);
}

/* A TLS listener first: it gives no MQTT answer, the plain one after it is
 * used. The TLS listener uses the mock's throwaway certificate. */
static void test_tls_listener_first(void)
{
    struct mock *m = mock_start(&(struct mock_opts){.tls = true});
    const char *ca = mock_ca_file(m);
    const char *dir = rt_fmt("%.*s", (int)(strrchr(ca, '/') - ca), ca);
    const char *const listeners[] = {
        "listener @PORT2@ 127.0.0.1", rt_fmt("certfile %s/server.pem", dir),
        rt_fmt("keyfile %s/server.key", dir), "listener @PORT@ 127.0.0.1", NULL};
    survive_restart(listeners, NULL, m, "127.0.0.1:%d (tried first: 127.0.0.1:");
}

static void test_ipv6_only(void)
{
    struct mock *m = mock_start(NULL);
    const char *const listeners[] = {"listener @PORT@ ::1", NULL};
    survive_restart(listeners, "::1", m, "[::1]:%d");
}

/* An invite published as soon as the restarted broker accepts connections
 * (well before the loader can have read anything) is pushed once the
 * registry is read, exactly once. */
static void test_invite_at_once_after_restart(void)
{
    struct mock *m = mock_start(NULL);
    struct broker_opts o = {.plugin_opts = mock_plugin_opts(m, NULL), .extra_lines = persistence};
    struct broker *b = broker_start(&o);
    register_and_restart(b, "tok-early");
    long mark = broker_log_mark(b);
    broker_restart(b);
    int64_t up = now_mono_ms();
    struct client *alice = open5(b, "alice", NULL);
    const char *id = rt_uniq("early");
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id));
    int64_t sent_after = now_mono_ms() - up;
    printf("invite sent %lld ms after the broker accepted connections\n", (long long)sent_after);
    CHECKF(sent_after < rt_slack_ms(100), "the invite took %lld ms, not within 100 ms",
           (long long)sent_after);
    cJSON *list = MOCK_EXPECT(m, 1, WAIT_MS);
    CHECK_PUSH(m, cJSON_GetArrayItem(list, 0), "call_invite", id, "tok-early");
    CHECK(broker_log_contains(b, mark, "device registry read back"));
    rt_wait_ms(QUIET_MS);
    CHECK_EQ_INT(cJSON_GetArraySize(mock_requests(m)), 1);
    client_free(alice);
    broker_free(b);
}

/* registry_listener names another broker (a decoy, here one with the
 * plugin and a registration of its own): the loader logs in there, sees
 * that this broker never saw the login, says so, subscribes nothing there,
 * and retries; the stats show it; a push waits instead of going nowhere. */
static void test_decoy_detected(void)
{
    struct mock *m = mock_start(NULL);
    const char *const decoy_opts[] = {"registry_listener none", NULL};
    struct broker *decoy = broker_start(&(struct broker_opts){.plugin_opts = decoy_opts});
    struct client *d = open5(decoy, "bob-decoy", "bob");
    device_register(d, "bob", "phone", "android", "tok-decoy");
    client_free(d);
    long decoy_mark = broker_log_mark(decoy);

    const char *const extra[] = {rt_fmt("registry_listener 127.0.0.1:%d", decoy->port),
                                 "stats_interval 1", NULL};
    struct broker *b =
        broker_start(&(struct broker_opts){.plugin_opts = mock_plugin_opts(m, extra)});
    const char *addr = rt_fmt("127.0.0.1:%d", decoy->port);
    CHECKF(broker_wait_log_line(b, 0, WAIT_MS, "device registry NOT read back", "attempt 1",
                                rt_fmt("%s: is not this broker", addr), (char *)NULL),
           "no error naming %s as not this broker", addr);
    CHECKF(broker_wait_log_line(b, 0, WAIT_MS, "device registry NOT read back", "attempt 2",
                                (char *)NULL),
           "the failed read-back was not retried");
    CHECK(!broker_log_contains(b, 0, "device registry read back from"));
    CHECK(!broker_log_contains(decoy, decoy_mark, "Received SUBSCRIBE"));

    struct client *ops = open5(b, "ops", NULL);
    CHECK_EQ_INT(client_subscribe(ops, RTM_STATS_TOPIC_IT, 0), 0);
    cJSON *st =
        client_wait_json(ops, RTM_STATS_TOPIC_IT, WAIT_MS, "registry", "failed", (char *)NULL);
    CHECKF(st, "no stats with \"registry\":\"failed\"");
    CHECK(GET_INT(st, "registry_failures") >= 1);

    /* bob registers here; his invite push waits for the registry. */
    struct client *bob = open5(b, "bob-phone", "bob");
    device_register(bob, "bob", "phone", "android", "tok-real");
    client_free(bob);
    struct client *alice = open5(b, "alice", NULL);
    const char *id = rt_uniq("decoy");
    long mark = broker_log_mark(b);
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id));
    CHECK(broker_wait_log_line(b, mark, WAIT_MS, id, "waiting for the device registry",
                               (char *)NULL));
    rt_wait_ms(QUIET_MS);
    CHECK_EQ_INT(cJSON_GetArraySize(mock_requests(m)), 0);
    CHECK(!broker_log_contains(b, 0, "no registered device"));
    client_free(alice);
    client_free(ops);
    broker_free(b);
    broker_free(decoy);
}

/* A listening socket whose accept queue is full: the kernel drops every
 * further SYN, so a connect() to it hangs (a black-holed address, on
 * loopback). `filler` holds the connections that fill it. */
static int black_hole(int *port, int filler[2])
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    CHECKF(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 0) == 0 &&
               getsockname(fd, (struct sockaddr *)&sa, &len) == 0,
           "black hole: %s", strerror(errno));
    *port = ntohs(sa.sin_port);
    for (int i = 0; i < 2; i++) {
        filler[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        CHECK(filler[i] >= 0);
        connect(filler[i], (struct sockaddr *)&sa, sizeof(sa));
    }
    return fd;
}

/* Sockets of this machine in SYN_SENT (st 02) to 127.0.0.1:port. */
static int syn_sent_to(int port)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    CHECK(f != NULL);
    char line[512];
    int n = 0;
    while (fgets(line, sizeof(line), f)) {
        unsigned rport, st;
        if (sscanf(line, " %*d: %*x:%*x %*x:%x %x", &rport, &st) == 2 && (int)rport == port &&
            st == 0x02)
            n++;
    }
    fclose(f);
    return n;
}

/* The loader's connect() hangs on a black-holed address: stopping the
 * broker still takes well under a second. */
static void test_stop_while_loader_connects(void)
{
    int port, filler[2];
    int lfd = black_hole(&port, filler);
    const char *const opts[] = {rt_fmt("registry_listener 127.0.0.1:%d", port), NULL};
    struct broker *b = broker_start(&(struct broker_opts){.plugin_opts = opts});
    int64_t deadline = now_mono_ms() + WAIT_MS;
    while (syn_sent_to(port) < 2) { /* one of the fillers, and the loader */
        CHECKF(now_mono_ms() < deadline, "the loader never tried to connect to the black hole");
        rt_wait_ms(10);
    }
    int64_t t0 = now_mono_ms();
    broker_stop(b);
    int64_t took = now_mono_ms() - t0;
    printf("the broker stopped %lld ms after SIGTERM\n", (long long)took);
    CHECKF(took < rt_slack_ms(1000), "the broker took %lld ms to stop", (long long)took);
    close(filler[0]);
    close(filler[1]);
    close(lfd);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct test_case cases[] = {
        {"tls_listener_first", test_tls_listener_first},
        {"ipv6_only", test_ipv6_only},
        {"invite_at_once_after_restart", test_invite_at_once_after_restart},
        {"decoy_detected", test_decoy_detected},
        {"stop_while_loader_connects", test_stop_while_loader_connects},
    };
    return run_tests(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
