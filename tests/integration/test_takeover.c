/*
 * A message the plugin addresses to one connection (an `error`, a pending
 * invite) never reaches a newer connection that takes its client id over
 * before the broker delivers it. Mosquitto delivers such messages by client
 * id at the start of its next loop iteration; the plugin hands them over on
 * TICK, at the end of the iteration, only to connections that still hold
 * their id (plugin/adapter/conns.c).
 *
 * To put the old connection's request and the new connection's CONNECT in
 * one loop iteration, the new connection is accepted first, then the broker
 * is stopped (SIGSTOP, waited for) while both are written, and continued:
 * epoll then reports both sockets at once. The registry loader's own
 * connection is let finish first so that nothing else shares that window.
 */
#include <string.h>

#include "harness.h"

static void test_error_not_delivered_to_the_next_holder(void)
{
    struct broker *b = broker_start(NULL);
    CHECKF(broker_wait_log(b, 0, "device registry read back", WAIT_MS),
           "the registry loader did not finish");
    struct client *alice = client_open_inbox(b, "alice-sub", "alice");
    int rc = -1;
    struct raw *old = raw_connect(b->port, "bob-phone", "bob", NULL, 60, true, &rc);
    CHECK_EQ_INT(rc, 0);
    /* A pending invite: the new connection gets it when it is confirmed. */
    const char *id = rt_uniq("takeover");
    CHECK_EQ_INT(client_publish_str(alice, inbox("bob"),
                                    rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id), 1),
                 0);

    long mark = broker_log_mark(b);
    struct raw *fresh = raw_open(b->port);
    CHECKF(broker_wait_log(b, mark,
                           rt_fmt("New connection from 127.0.0.1:%d ", raw_local_port(fresh)),
                           WAIT_MS),
           "the broker did not accept the new connection");
    broker_freeze(b);
    raw_publish0(old, inbox("alice"), "not json"); /* refused: an error for bob-phone */
    raw_send_connect(fresh, "bob-phone", "bob", NULL, 60, true);
    broker_thaw(b);
    CHECK_EQ_INT(raw_connack(fresh, WAIT_MS), 0);
    CHECKF(broker_wait_log_line(b, mark, WAIT_MS, "rtm: refused request from bob", (char *)NULL),
           "the old connection's request was not refused before the takeover");

    /* The first message the new connection gets is its pending invite, not
     * the old connection's error. */
    const char *topic = NULL;
    const char *payload = raw_next_publish(fresh, &topic, WAIT_MS);
    CHECKF(payload, "the new connection got no pending invite");
    CHECKF(strstr(payload, "\"type\":\"invite\"") && strstr(payload, id),
           "the new connection got %s on %s, not its pending invite", payload, topic);
    CHECK(broker_log_contains(b, mark, "for connections taken over before delivery"));
    raw_drop(fresh);
    raw_drop(old);
    client_free(alice);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct test_case cases[] = {
        {"error_not_delivered_to_the_next_holder", test_error_not_delivered_to_the_next_holder},
    };
    return run_tests(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
