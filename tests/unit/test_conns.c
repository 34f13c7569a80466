/*
 * Unit tests for plugin/adapter/conns.c: who holds each client id, and messages for
 * one connection that must never reach a newer connection with the same id
 * (include/rtm_conns.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "rtm_conns.h"

#define MAX_SENT 16

static struct {
    struct rtm_conns *c;
    size_t nsent;
    struct {
        char client_id[64];
        char topic[64];
        char payload[64];
        const void *handle;
    } sent[MAX_SENT];
} T;

static int old_phone, new_phone, tablet; /* their addresses are the handles */

static int setup(void **state)
{
    (void)state;
    memset(&T, 0, sizeof(T));
    T.c = rtm_conns_new(NULL);
    assert_non_null(T.c);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rtm_conns_free(T.c);
    return 0;
}

static void record(void *ud, const char *client_id, const struct rtm_publish *m)
{
    assert_ptr_equal(ud, &T);
    assert_true(T.nsent < MAX_SENT);
    snprintf(T.sent[T.nsent].client_id, 64, "%s", client_id);
    snprintf(T.sent[T.nsent].topic, 64, "%s", m->topic);
    snprintf(T.sent[T.nsent].payload, 64, "%.*s", (int)m->payload_len, m->payload);
    T.sent[T.nsent].handle = m->handle;
    T.nsent++;
}

static void post(const void *handle, const char *client_id, const char *payload)
{
    struct rtm_publish m = {handle, "rtm/u/bob/call", payload, strlen(payload), 1, false};
    assert_int_equal(rtm_conns_post(T.c, client_id, &m), 0);
}

static size_t flush(void)
{
    return rtm_conns_flush(T.c, record, &T);
}

static void test_login_and_logout(void **state)
{
    (void)state;
    assert_int_equal(rtm_conns_login(T.c, &old_phone, "bob-phone"), 0);
    assert_int_equal(rtm_conns_login(T.c, &tablet, "bob-tablet"), 0);
    assert_int_equal(rtm_conns_count(T.c), 2);
    assert_false(rtm_conns_superseded(T.c, &old_phone, "bob-phone"));
    assert_false(rtm_conns_superseded(T.c, &tablet, "bob-tablet"));
    /* Logging in again with the same id changes nothing. */
    assert_int_equal(rtm_conns_login(T.c, &old_phone, "bob-phone"), 0);
    assert_int_equal(rtm_conns_count(T.c), 2);
    rtm_conns_logout(T.c, &old_phone);
    rtm_conns_logout(T.c, &old_phone);
    assert_int_equal(rtm_conns_count(T.c), 1);
    rtm_conns_logout(T.c, &tablet);
    assert_int_equal(rtm_conns_count(T.c), 0);
    assert_false(rtm_conns_superseded(T.c, &tablet, "bob-tablet"));
    assert_false(rtm_conns_superseded(T.c, &tablet, NULL));
}

/* A takeover: the new connection logs in before the old one is reported
 * gone. The old one is superseded; its logout leaves the new one holding. */
static void test_takeover(void **state)
{
    (void)state;
    rtm_conns_login(T.c, &old_phone, "bob-phone");
    rtm_conns_login(T.c, &new_phone, "bob-phone");
    assert_true(rtm_conns_superseded(T.c, &old_phone, "bob-phone"));
    assert_false(rtm_conns_superseded(T.c, &new_phone, "bob-phone"));
    assert_int_equal(rtm_conns_count(T.c), 1);
    rtm_conns_logout(T.c, &old_phone);
    assert_int_equal(rtm_conns_count(T.c), 1);
    assert_true(rtm_conns_superseded(T.c, &old_phone, "bob-phone"));
    rtm_conns_logout(T.c, &new_phone);
    assert_int_equal(rtm_conns_count(T.c), 0);
}

/* A message for the old connection, held when the new one takes the id
 * over, is dropped; the new connection's own message goes out. */
static void test_held_message_never_reaches_the_new_holder(void **state)
{
    (void)state;
    rtm_conns_login(T.c, &old_phone, "bob-phone");
    post(&old_phone, "bob-phone", "error for the old phone");
    rtm_conns_login(T.c, &new_phone, "bob-phone");
    post(&new_phone, "bob-phone", "invite for the new phone");
    assert_int_equal(rtm_conns_held(T.c), 2);
    assert_int_equal(flush(), 1);
    assert_int_equal(T.nsent, 1);
    assert_string_equal(T.sent[0].payload, "invite for the new phone");
    assert_string_equal(T.sent[0].client_id, "bob-phone");
    assert_ptr_equal(T.sent[0].handle, &new_phone);
    assert_int_equal(rtm_conns_held(T.c), 0);
    assert_int_equal(flush(), 0);
    assert_int_equal(T.nsent, 1);
}

/* Held messages go out in order, copied (the poster's buffers may go). */
static void test_flush_in_order(void **state)
{
    (void)state;
    rtm_conns_login(T.c, &old_phone, "bob-phone");
    rtm_conns_login(T.c, &tablet, "bob-tablet");
    char text[32];
    for (int i = 0; i < 5; i++) {
        snprintf(text, sizeof(text), "m%d", i);
        post(i % 2 ? &tablet : &old_phone, i % 2 ? "bob-tablet" : "bob-phone", text);
        memset(text, 'x', sizeof(text) - 1);
    }
    assert_int_equal(flush(), 0);
    assert_int_equal(T.nsent, 5);
    for (int i = 0; i < 5; i++) {
        snprintf(text, sizeof(text), "m%d", i);
        assert_string_equal(T.sent[i].payload, text);
        assert_string_equal(T.sent[i].client_id, i % 2 ? "bob-tablet" : "bob-phone");
        assert_string_equal(T.sent[i].topic, "rtm/u/bob/call");
    }
}

/* A later auth source refused a connection that claimed a live one's id:
 * the refused one is reported gone (by handle; the broker may have cleared
 * its id), and the live one's messages still go out. */
static void test_refused_login_does_not_steal(void **state)
{
    (void)state;
    rtm_conns_login(T.c, &old_phone, "bob-phone");
    post(&old_phone, "bob-phone", "before");
    rtm_conns_login(T.c, &new_phone, "bob-phone");
    rtm_conns_logout(T.c, &new_phone);
    assert_false(rtm_conns_superseded(T.c, &old_phone, "bob-phone"));
    post(&old_phone, "bob-phone", "after");
    assert_int_equal(flush(), 0);
    assert_int_equal(T.nsent, 2);
    /* Its message made the live one the holder again. */
    rtm_conns_login(T.c, &new_phone, "bob-phone");
    post(&old_phone, "bob-phone", "taken");
    assert_int_equal(flush(), 1);
}

/* A connection that never logged in through the plugin holds its id from
 * its first message on. */
static void test_unknown_connection_holds_from_first_message(void **state)
{
    (void)state;
    post(&tablet, "cert-client", "error");
    assert_int_equal(rtm_conns_count(T.c), 1);
    assert_true(rtm_conns_superseded(T.c, &new_phone, "cert-client"));
    rtm_conns_logout(T.c, &tablet);
    assert_int_equal(rtm_conns_count(T.c), 0);
    assert_int_equal(flush(), 0);
    assert_int_equal(T.nsent, 1);
}

/* One connection, a new client id (it authenticated again): it holds the
 * new id only. */
static void test_same_connection_new_id(void **state)
{
    (void)state;
    rtm_conns_login(T.c, &old_phone, "first");
    rtm_conns_login(T.c, &old_phone, "second");
    assert_int_equal(rtm_conns_count(T.c), 1);
    assert_true(rtm_conns_superseded(T.c, &tablet, "second"));
    assert_false(rtm_conns_superseded(T.c, &tablet, "first"));
}

/* Many connections: the tables grow and every one is found. */
static void test_many(void **state)
{
    (void)state;
    static char handles[5000];
    char id[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof(id), "client-%d", i);
        assert_int_equal(rtm_conns_login(T.c, &handles[i], id), 0);
    }
    assert_int_equal(rtm_conns_count(T.c), 5000);
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof(id), "client-%d", i);
        assert_false(rtm_conns_superseded(T.c, &handles[i], id));
        assert_true(rtm_conns_superseded(T.c, &handles[(i + 1) % 5000], id));
    }
    for (int i = 0; i < 5000; i += 2)
        rtm_conns_logout(T.c, &handles[i]);
    assert_int_equal(rtm_conns_count(T.c), 2500);
}

int main(void)
{
#define T_(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T_(test_login_and_logout),
        T_(test_takeover),
        T_(test_held_message_never_reaches_the_new_holder),
        T_(test_flush_in_order),
        T_(test_refused_login_does_not_steal),
        T_(test_unknown_connection_holds_from_first_message),
        T_(test_same_connection_new_id),
        T_(test_many),
    };
#undef T_
    return cmocka_run_group_tests(tests, NULL, NULL);
}
