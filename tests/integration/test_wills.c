/*
 * Nothing under the prefix bypasses the plugin (SPEC 3): a Will, retained or
 * not, MQTT 3.1.1 or 5, sent at once or after a will delay, or on a session
 * takeover, never reaches a subscriber under the prefix and is never stored;
 * a retained message left under the prefix by a broker that ran without the
 * plugin is never delivered; a shared subscription gets only what the
 * plugin stamped.
 *
 * The Wills come from real clients: mosquitto_sub processes killed with
 * SIGKILL once the broker has logged them in, so the broker sees a socket
 * close with no DISCONNECT, as from a phone that lost its network.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "jpush_mock.h"

#define FORGED_INVITE                                                                              \
    "{\"type\":\"invite\",\"id\":\"x1\",\"caller\":\"alice\",\"callee\":\"bob\",\"by\":\"alice\"," \
    "\"channel\":\"evil\"}"
#define FORGED_DEVICE "{\"provider\":\"jpush\",\"platform\":\"android\",\"token\":\"tok-will\"}"

/* A real invite from alice to bob, seen by `bob`: everything the broker
 * delivered before it has arrived by then. */
static void sentinel_call(const struct broker *b, struct client *bob)
{
    struct client *alice = client_open_inbox(b, rt_uniq("alice"), "alice");
    const char *id = rt_uniq("sentinel");
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id));
    cJSON *ev = EXPECT_EVENT(bob, "bob", "invite", id);
    CHECK_STAMP(ev, "invite", id, "alice", "bob", "alice");
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"cancel\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(bob, "bob", "cancel", id);
    client_free(alice);
}

static struct broker *start_broker(void)
{
    static const char *const extra[] = {"persistence true", "persistence_location @DIR@/", NULL};
    struct broker_opts o = {.extra_lines = extra};
    return broker_start(&o);
}

/* mallory's Will rings bob "from alice": bob, listening, gets nothing; a
 * retained one is not stored either, so bob's next subscription gets
 * nothing; and a restart does not bring it back. */
static void forged_call_will(int protocol, bool retain, int delay_s)
{
    struct broker *b = start_broker();
    struct client_opts bo = {.client_id = "bob-sub", .username = "bob", .protocol = protocol};
    struct client *bob = client_open_v(b, &bo);
    CHECK_EQ_INT(client_subscribe(bob, inbox("bob"), 1), 1);
    struct rt_will w = {"mal", "mallory", protocol, inbox("bob"), FORGED_INVITE, retain, delay_s};
    pid_t pid = rt_will_client_start(b, &w);
    rt_will_client_kill(b, pid, &w);
    sentinel_call(b, bob);
    EXPECT_NOTHING_ELSE(bob, NULL);

    struct client_opts lo = {.client_id = "bob-late", .username = "bob", .protocol = protocol};
    struct client *late = client_open_v(b, &lo);
    CHECK_EQ_INT(client_subscribe(late, inbox("bob"), 1), 1);
    sentinel_call(b, late);
    EXPECT_NOTHING_ELSE(late, NULL);
    client_free(late);
    client_free(bob);

    broker_stop(b);
    broker_restart(b);
    struct client *again = client_open_v(b, &lo);
    CHECK_EQ_INT(client_subscribe(again, inbox("bob"), 1), 1);
    sentinel_call(b, again);
    EXPECT_NOTHING_ELSE(again, NULL);
    client_free(again);
    broker_free(b);
}

static void test_will_v311(void)
{
    forged_call_will(4, false, 0);
}

static void test_will_v311_retained(void)
{
    forged_call_will(4, true, 0);
}

static void test_will_v5(void)
{
    forged_call_will(5, false, 0);
}

static void test_will_v5_retained(void)
{
    forged_call_will(5, true, 0);
}

static void test_will_v5_delay(void)
{
    forged_call_will(5, false, 1);
}

static void test_will_v5_delay_retained(void)
{
    forged_call_will(5, true, 1);
}

/* A Will to one's own device topic would register a device without the
 * plugin's checks: it is refused, nothing is stored, and after a restart
 * bob's only device is the one he registered. */
static void device_will(int protocol, int delay_s)
{
    struct broker *b = start_broker();
    struct rt_will w = {"bob-will",    "bob", protocol, "rtm/u/bob/devices/d1",
                        FORGED_DEVICE, true,  delay_s};
    pid_t pid = rt_will_client_start(b, &w);
    rt_will_client_kill(b, pid, &w);

    struct client_opts bo = {.client_id = "bob-dev", .username = "bob", .protocol = 5};
    struct client *bob = client_open_v(b, &bo);
    CHECK_EQ_INT(client_subscribe(bob, "rtm/u/bob/devices/+", 1), 1);
    const char *reg = "{\"provider\":\"jpush\",\"platform\":\"ios\",\"token\":\"tok-real\"}";
    CHECK_EQ_INT(client_publish(bob, "rtm/u/bob/devices/d2", reg, (int)strlen(reg), 1, true), 0);
    struct msg *m = client_wait_msg(bob, "rtm/u/bob/devices/d2", WAIT_MS);
    CHECKF(m, "bob's own registration of d2 did not come back");
    EXPECT_NOTHING_ELSE(bob, NULL);
    client_free(bob);

    broker_stop(b);
    long mark = broker_log_mark(b);
    broker_restart(b);
    CHECKF(broker_wait_log(b, mark, "device registry read back from the retained store: 1 device",
                           WAIT_MS),
           "the registry read back after the restart is not bob's one device");
    bob = client_open_v(b, &bo);
    CHECK_EQ_INT(client_subscribe(bob, "rtm/u/bob/devices/+", 1), 1);
    m = client_wait_msg(bob, "rtm/u/bob/devices/d2", WAIT_MS);
    CHECKF(m && m->retain, "bob's retained registration of d2 is gone after the restart");
    client_flush(bob);
    EXPECT_NOTHING_ELSE(bob, NULL);
    client_free(bob);
    broker_free(b);
}

static void test_device_will_v311(void)
{
    device_will(4, 0);
}

static void test_device_will_v5_delay(void)
{
    device_will(5, 1);
}

/* Under the prefix, only the empty messages of erasures may arrive. */
static void expect_empty(const struct msg *m, void *ud)
{
    (void)ud;
    CHECKF(strncmp(m->topic, "rtm/", 4) != 0 || m->len == 0,
           "a stored message was delivered on %s: %s", m->topic, m->payload);
}

/* SPEC 8's topics: mallory's Will sends bob a peer message as mallory and
 * sets an attribute of hers, both of which a PUBLISH of hers may do, but a
 * Will under the prefix may not. Neither is delivered or stored, and
 * neither comes back after a restart. (A Will to a channel needs a member
 * session, which mosquitto_sub cannot make: the core refuses it as any
 * non-member's publish.) */
static void rtm_wills(int protocol, int delay_s)
{
    struct broker *b = start_broker();
    struct client_opts bo = {.client_id = "bob-sub", .username = "bob", .protocol = protocol};
    struct client *bob = client_open_v(b, &bo);
    CHECK_EQ_INT(client_subscribe(bob, inbox("bob"), 1), 1);
    CHECK_EQ_INT(client_subscribe(bob, "rtm/u/bob/msg/+", 1), 1);
    CHECK_EQ_INT(client_subscribe(bob, "rtm/u/mallory/attr/+", 1), 1);
    static const char *const topics[] = {"rtm/u/bob/msg/mallory", "rtm/u/mallory/attr/status"};
    for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
        struct rt_will w = {"mal", "mallory", protocol, topics[i], "from a will", true, delay_s};
        pid_t pid = rt_will_client_start(b, &w);
        rt_will_client_kill(b, pid, &w);
    }
    sentinel_call(b, bob);
    /* A delayed Will is found only once the broker has stored it: its
     * erasure reaches the attribute's subscribers as an empty message. */
    client_flush(bob);
    client_foreach(bob, "rtm/u/mallory/attr/status", expect_empty, NULL);
    client_consume_all(bob, "rtm/u/mallory/attr/status", (char *)NULL);
    EXPECT_NOTHING_ELSE(bob, NULL);
    client_free(bob);

    broker_stop(b);
    broker_restart(b);
    struct client_opts lo = {.client_id = "bob-late", .username = "bob", .protocol = protocol};
    struct client *late = client_open_v(b, &lo);
    CHECK_EQ_INT(client_subscribe(late, inbox("bob"), 1), 1);
    CHECK_EQ_INT(client_subscribe(late, "rtm/u/mallory/attr/+", 1), 1);
    sentinel_call(b, late);
    EXPECT_NOTHING_ELSE(late, NULL);
    client_free(late);
    broker_free(b);
}

static void test_rtm_wills_v311(void)
{
    rtm_wills(4, 0);
}

static void test_rtm_wills_v5_delay(void)
{
    rtm_wills(5, 1);
}

/* A second connection with mallory's client id takes the first one over:
 * Mosquitto sends the first one's Will before it reports its disconnect. */
static void test_will_on_takeover(void)
{
    struct broker *b = start_broker();
    struct client *bob = client_open_inbox(b, "bob-sub", "bob");
    struct rt_will w = {"mal", "mallory", 4, inbox("bob"), FORGED_INVITE, false, 0};
    pid_t pid = rt_will_client_start(b, &w);
    long mark = broker_log_mark(b);
    struct client_opts mo = {.client_id = "mal", .username = "mallory"};
    struct client *second = client_new(b, &mo);
    CHECK_EQ_INT(client_connect(second), 0);
    CHECKF(broker_wait_log_line(b, mark, WAIT_MS, "rtm: refused the Will of client", "mal",
                                (char *)NULL),
           "no refusal of the taken-over connection's Will was logged");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    sentinel_call(b, bob);
    EXPECT_NOTHING_ELSE(bob, NULL);
    client_free(second);
    client_free(bob);
    broker_free(b);
}

/* A shared subscription to one's inbox gets the plugin's stamped messages,
 * and no Will. */
static void test_shared_subscription(void)
{
    struct broker *b = start_broker();
    struct client_opts bo = {.client_id = "bob-share", .username = "bob", .protocol = 5};
    struct client *bob = client_open_v(b, &bo);
    CHECK_EQ_INT(client_subscribe(bob, "$share/g/rtm/u/bob/call", 1), 1);
    struct rt_will w = {"mal", "mallory", 5, inbox("bob"), FORGED_INVITE, false, 0};
    pid_t pid = rt_will_client_start(b, &w);
    rt_will_client_kill(b, pid, &w);
    sentinel_call(b, bob);
    EXPECT_NOTHING_ELSE(bob, NULL);
    client_free(bob);
    broker_free(b);
}

/* --- retained messages stored without the plugin --------------------------- */

struct plain_broker {
    pid_t pid;
    struct broker view; /* port, for the harness's clients */
};

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECKF(f, "cannot write %s: %s", path, strerror(errno));
    fputs(text, f);
    CHECK(fclose(f) == 0);
}

static bool tcp_accepts(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

/* Before the plugin's broker first starts: a broker without the plugin, on
 * the same persistence file, stores junk under the prefix and saves it. */
static void store_without_plugin(const struct broker *b, void *ud)
{
    (void)ud;
    struct plain_broker pb = {0};
    int port = rt_free_port();
    const char *conf = broker_dir_file(b, "plain.conf");
    write_text(conf, rt_fmt("listener %d 127.0.0.1\nallow_anonymous true\npersistence true\n"
                            "persistence_location %s/\nlog_dest stderr\nlog_type all\n%s",
                            port, b->dir, geteuid() == 0 ? "user root\n" : ""));
    static char *const envp[] = {NULL};
    char *argv[] = {"mosquitto", "-c", (char *)conf, NULL};
    pb.pid = rt_spawn_logged(rt_broker_bin(), argv, envp, broker_dir_file(b, "plain.log"));
    pb.view.port = port;
    int64_t deadline = now_mono_ms() + WAIT_MS;
    while (!tcp_accepts(port)) {
        CHECKF(now_mono_ms() < deadline, "the broker without the plugin did not start");
        rt_wait_ms(20);
    }
    struct client_opts o = {.client_id = "junk", .protocol = 5};
    struct client *c = client_new(&pb.view, &o);
    CHECK_EQ_INT(client_connect(c), 0);
    static const char *const junk[][2] = {
        {"rtm/u/bob/call", FORGED_INVITE},
        {"rtm/u/bob/devices/d9", "not a registration"},
        {"rtm/presence/bob", "{\"uid\":\"bob\",\"online\":true,\"sessions\":1,\"ts\":1}"},
        {"rtm/presence/carol", "junk"},
        {"rtm/u/bob/msg/alice", "a retained message"},
        {"rtm/u/alice/attr/status", "not stamped"},
        {"rtm/c/room1/count", "{\"channel\":\"room1\",\"count\":5,\"ts\":1}"},
        {"rtm/c/room1/attr/notice", "not stamped"},
    };
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        int rc = client_publish(c, junk[i][0], junk[i][1], (int)strlen(junk[i][1]), 1, true);
        CHECKF(rc >= 0 && rc < 0x80, "the broker without the plugin refused %s: %d", junk[i][0],
               rc);
    }
    client_free(c);
    kill(pb.pid, SIGTERM);
    CHECK(waitpid(pb.pid, NULL, 0) == pb.pid);
}

static void test_retained_from_before(void)
{
    static const char *const extra[] = {"persistence true", "persistence_location @DIR@/", NULL};
    struct broker_opts o = {.extra_lines = extra, .prepare = store_without_plugin};
    struct broker *b = broker_start(&o);
    struct client *bob = client_open_v(
        b, &(struct client_opts){.client_id = "bob-sub", .username = "bob", .protocol = 5});
    CHECK_EQ_INT(client_subscribe(bob, "rtm/u/bob/#", 1), 1);
    struct client *watch = client_open_v(b, &(struct client_opts){.client_id = "w", .protocol = 5});
    CHECK_EQ_INT(client_subscribe(watch, "rtm/presence/carol", 1), 1);
    CHECK_EQ_INT(client_subscribe(watch, "rtm/presence/bob", 1), 1);
    sentinel_call(b, bob);
    /* bob's own presence, published as he connected, is the only one; the
     * junk on carol's topic is erased. */
    struct msg *p =
        client_wait_fields(watch, "rtm/presence/bob", WAIT_MS, "online", "true", (char *)NULL);
    CHECKF(p, "bob's presence did not come");
    client_consume_all(watch, "rtm/presence/bob", "uid", "bob", (char *)NULL);
    client_flush(watch);
    EXPECT_NOTHING_ELSE(watch, NULL);
    /* The junk registration is erased: bob sees d9 unregistered. */
    struct msg *gone = client_wait_msg(bob, "rtm/u/bob/devices/d9", WAIT_MS);
    CHECKF(gone && gone->len == 0, "bob did not see the junk on d9 erased");
    client_flush(bob);
    EXPECT_NOTHING_ELSE(bob, NULL);
    CHECK(broker_log_contains(b, 0, "rtm: erased the retained message on rtm/presence/carol"));
    CHECK(broker_log_contains(b, 0, "rtm: erased the retained message on rtm/u/bob/call"));
    CHECK(broker_log_contains(b, 0, "rtm: erased the retained message on rtm/u/bob/devices/d9"));
    /* SPEC 8: none of what a broker without the plugin stored is shown:
     * not a retained peer message, not an attribute the plugin did not
     * stamp, not a member count of a channel nobody has joined. */
    CHECK(broker_log_contains(b, 0, "rtm: erased the retained message on rtm/u/bob/msg/alice"));
    struct client *eve = client_open_v(
        b, &(struct client_opts){.client_id = "eve", .username = "eve", .protocol = 5});
    CHECK_EQ_INT(client_subscribe(eve, "rtm/u/alice/attr/+", 1), 1);
    CHECK_EQ_INT(client_subscribe(eve, "rtm/c/room1/count", 1), 1);
    CHECK_EQ_INT(client_subscribe(eve, "rtm/c/room1/attr/+", 1), 1);
    CHECK(broker_wait_log(b, 0, "rtm: erased the retained message on rtm/c/room1/count", WAIT_MS));
    CHECK(broker_wait_log(b, 0, "rtm: erased the retained message on rtm/u/alice/attr/status",
                          WAIT_MS));
    CHECK(broker_wait_log(b, 0, "rtm: erased the retained message on rtm/c/room1/attr/notice",
                          WAIT_MS));
    sentinel_call(b, bob);
    /* What eve may see are the erasures' own empty messages, nothing else. */
    client_flush(eve);
    client_foreach(eve, NULL, expect_empty, NULL);
    client_free(eve);
    client_free(watch);
    client_free(bob);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct test_case cases[] = {
        {"will_v311", test_will_v311},
        {"will_v311_retained", test_will_v311_retained},
        {"will_v5", test_will_v5},
        {"will_v5_retained", test_will_v5_retained},
        {"will_v5_delay", test_will_v5_delay},
        {"will_v5_delay_retained", test_will_v5_delay_retained},
        {"device_will_v311", test_device_will_v311},
        {"device_will_v5_delay", test_device_will_v5_delay},
        {"will_on_takeover", test_will_on_takeover},
        {"rtm_wills_v311", test_rtm_wills_v311},
        {"rtm_wills_v5_delay", test_rtm_wills_v5_delay},
        {"shared_subscription", test_shared_subscription},
        {"retained_from_before", test_retained_from_before},
    };
    return run_tests(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
