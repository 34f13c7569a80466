/*
 * Unit tests for plugin/adapter/guard.c: telling a client's Will from its PUBLISH by
 * the order of the broker's events (include/rtm_guard.h). Each test replays
 * the events Mosquitto 2.0/2.1 sends for one path a message can take.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "rtm_guard.h"

static struct {
    struct rtm_guard g;
    int wills;
    char topic[RTM_GUARD_TOPIC_MAX + 1];
    char client_id[RTM_GUARD_ID_MAX + 1];
    bool retain;
} T;

static void on_will(void *ud, const struct rtm_guard_will *w)
{
    assert_ptr_equal(ud, &T);
    T.wills++;
    strcpy(T.topic, w->topic);
    strcpy(T.client_id, w->client_id);
    T.retain = w->retain;
}

static int setup(void **state)
{
    (void)state;
    memset(&T, 0, sizeof(T));
    rtm_guard_init(&T.g, on_will, &T);
    return 0;
}

static int client_a, client_b; /* their addresses are the handles */
static const char inbox_bob[] = "rtm/u/bob/call";
static const char payload[] = "{\"type\":\"invite\",\"id\":\"c1\"}";
#define LEN ((uint32_t)(sizeof(payload) - 1))

/* A WRITE check the plugin allows, as a possible PUBLISH. */
static void allowed_write(const void *handle, const char *topic, bool retain)
{
    assert_int_equal(rtm_guard_write(&T.g, handle, false, topic, payload), RTM_GUARD_PUBLISH);
    rtm_guard_allowed(&T.g, handle, "client-a", topic, LEN, retain);
}

/* PUBLISH: WRITE, then its MESSAGE, then its fan-out: nothing is a Will. */
static void test_publish(void **state)
{
    (void)state;
    allowed_write(&client_a, inbox_bob, false);
    rtm_guard_message(&T.g, &client_a, inbox_bob);
    assert_true(rtm_guard_read(&T.g, inbox_bob, "stamped", LEN));
    assert_true(rtm_guard_read(&T.g, inbox_bob, "stamped", LEN));
    rtm_guard_event(&T.g);
    assert_int_equal(T.wills, 0);
    assert_false(rtm_guard_busy(&T.g));
}

/* A drop: DISCONNECT, then at once the Will's WRITE check. */
static void test_will_after_disconnect(void **state)
{
    (void)state;
    rtm_guard_disconnect(&T.g, &client_a);
    assert_true(rtm_guard_busy(&T.g));
    assert_int_equal(rtm_guard_write(&T.g, &client_a, false, inbox_bob, payload), RTM_GUARD_WILL);
    /* Another client's write after a disconnect is not that client's Will. */
    rtm_guard_disconnect(&T.g, &client_a);
    assert_int_equal(rtm_guard_write(&T.g, &client_b, false, inbox_bob, payload),
                     RTM_GUARD_PUBLISH);
    /* Nor is the disconnected client's write once another event came. */
    rtm_guard_disconnect(&T.g, &client_a);
    rtm_guard_event(&T.g);
    assert_int_equal(rtm_guard_write(&T.g, &client_a, false, inbox_bob, payload),
                     RTM_GUARD_PUBLISH);
    assert_int_equal(T.wills, 0);
}

/* A takeover: the adapter knows the connection's id was taken. */
static void test_will_on_takeover(void **state)
{
    (void)state;
    assert_int_equal(rtm_guard_write(&T.g, &client_a, true, inbox_bob, payload), RTM_GUARD_WILL);
}

/* A will delay ran out (or a session expired, or the broker stops): the
 * WRITE looked like a PUBLISH, but its fan-out came instead of a MESSAGE.
 * Every delivery of it is refused; it is reported once. */
static void test_late_will_fanned_out(void **state)
{
    (void)state;
    allowed_write(&client_a, inbox_bob, false);
    assert_int_equal(T.wills, 0);
    assert_false(rtm_guard_read(&T.g, inbox_bob, "copy", LEN));
    assert_int_equal(T.wills, 1);
    assert_string_equal(T.topic, inbox_bob);
    assert_string_equal(T.client_id, "client-a");
    assert_false(T.retain);
    assert_false(rtm_guard_read(&T.g, inbox_bob, "copy", LEN));
    assert_false(rtm_guard_read(&T.g, inbox_bob, "copy", LEN));
    assert_int_equal(T.wills, 1);
    /* The fan-out is over with the next other event. */
    rtm_guard_event(&T.g);
    assert_true(rtm_guard_read(&T.g, inbox_bob, "copy", LEN));
    assert_int_equal(T.wills, 1);
}

/* With no subscriber there is no fan-out: the next event finds it, and a
 * retained one is to be erased. */
static void test_late_will_retained_no_subscriber(void **state)
{
    (void)state;
    allowed_write(&client_a, "rtm/u/bob/devices/d1", true);
    rtm_guard_event(&T.g); /* e.g. the TICK */
    assert_int_equal(T.wills, 1);
    assert_string_equal(T.topic, "rtm/u/bob/devices/d1");
    assert_true(T.retain);
    /* The next Will found is reported on its own. */
    allowed_write(&client_b, inbox_bob, false);
    assert_int_equal(rtm_guard_write(&T.g, &client_b, false, inbox_bob, payload),
                     RTM_GUARD_PUBLISH); /* a WRITE check is an event too */
    assert_int_equal(T.wills, 2);
    assert_string_equal(T.topic, inbox_bob);
}

/* A MESSAGE of another client or topic does not confirm the pending WRITE. */
static void test_message_must_match(void **state)
{
    (void)state;
    allowed_write(&client_a, inbox_bob, false);
    rtm_guard_message(&T.g, &client_b, inbox_bob);
    assert_int_equal(T.wills, 1);
    allowed_write(&client_a, inbox_bob, false);
    rtm_guard_message(&T.g, &client_a, "rtm/u/carol/call");
    assert_int_equal(T.wills, 2);
}

/* Deliveries of another topic, or of another length, are not the Will's. */
static void test_read_of_other_message(void **state)
{
    (void)state;
    allowed_write(&client_a, inbox_bob, false);
    assert_true(rtm_guard_read(&T.g, "rtm/u/carol/call", "x", LEN));
    assert_int_equal(T.wills, 1); /* the read showed the write got no MESSAGE */
    allowed_write(&client_a, inbox_bob, false);
    assert_true(rtm_guard_read(&T.g, inbox_bob, "x", LEN + 1));
    assert_int_equal(T.wills, 2);
}

/* check_retain_source: a retained message's delivery (READ) is followed by
 * a WRITE check of the very same stored message for its publisher. It is
 * neither a Will nor a PUBLISH awaiting a MESSAGE. */
static void test_retain_source_check(void **state)
{
    (void)state;
    static const char stored_topic[] = "rtm/u/bob/devices/d1";
    static const char stored_payload[] = "{}";
    assert_true(rtm_guard_read(&T.g, stored_topic, stored_payload, 2));
    assert_int_equal(rtm_guard_write(&T.g, &client_a, true, stored_topic, stored_payload),
                     RTM_GUARD_SOURCE);
    /* The same text elsewhere is not the stored message. */
    char copy[sizeof(stored_topic)];
    memcpy(copy, stored_topic, sizeof(copy));
    assert_true(rtm_guard_read(&T.g, stored_topic, stored_payload, 2));
    assert_int_equal(rtm_guard_write(&T.g, &client_a, false, copy, stored_payload),
                     RTM_GUARD_PUBLISH);
    assert_int_equal(T.wills, 0);
}

/* A topic too long to keep is not tracked rather than tracked wrong. */
static void test_topic_too_long(void **state)
{
    (void)state;
    char topic[RTM_GUARD_TOPIC_MAX + 2];
    memset(topic, 'a', sizeof(topic) - 1);
    topic[sizeof(topic) - 1] = '\0';
    allowed_write(&client_a, topic, true);
    assert_false(rtm_guard_busy(&T.g));
    rtm_guard_event(&T.g);
    assert_int_equal(T.wills, 0);
}

/* A long client id is cut for the log line. */
static void test_long_client_id(void **state)
{
    (void)state;
    char id[200];
    memset(id, 'c', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    assert_int_equal(rtm_guard_write(&T.g, &client_a, false, inbox_bob, payload),
                     RTM_GUARD_PUBLISH);
    rtm_guard_allowed(&T.g, &client_a, id, inbox_bob, LEN, false);
    rtm_guard_event(&T.g);
    assert_int_equal(T.wills, 1);
    assert_int_equal(strlen(T.client_id), RTM_GUARD_ID_MAX);
}

int main(void)
{
#define T_(f) cmocka_unit_test_setup(f, setup)
    const struct CMUnitTest tests[] = {
        T_(test_publish),
        T_(test_will_after_disconnect),
        T_(test_will_on_takeover),
        T_(test_late_will_fanned_out),
        T_(test_late_will_retained_no_subscriber),
        T_(test_message_must_match),
        T_(test_read_of_other_message),
        T_(test_retain_source_check),
        T_(test_topic_too_long),
        T_(test_long_client_id),
    };
#undef T_
    return cmocka_run_group_tests(tests, NULL, NULL);
}
