/*
 * Unit tests for plugin/lib/topic.c: the subscription rules of PROTOCOL.md
 * section 2 and SPEC 3 (who may subscribe to which filter), and which filters
 * cover a user's call inbox. test_topic.c tests topic syntax and parsing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "rtm_topic.h"

#define P   "rtm"
#define PL  3
#define AP  "app/rtm"
#define APL 7

/* A string of `n` copies of `c`, in `buf` (of at least n + 1 bytes). */
static const char *repeat(char *buf, char c, size_t n)
{
    memset(buf, c, n);
    buf[n] = '\0';
    return buf;
}

static void expect_filter(const char *prefix, size_t plen, const char *filter, const char *uid,
                          bool admin, bool allowed)
{
    bool got = rtm_topic_filter_allowed(prefix, plen, filter, uid, admin);
    if (got != allowed)
        print_error("filter \"%s\" for %s%s: %s, expected %s\n", filter, uid ? uid : "no uid",
                    admin ? " (admin)" : "", got ? "allowed" : "refused",
                    allowed ? "allowed" : "refused");
    assert_int_equal(got, allowed);
}

/* Subscriptions of bob, who is not an admin, under the prefix "rtm". */
static const struct {
    const char *filter;
    bool allowed;
} bob_filters[] = {
    /* Presence is everybody's. */
    {"rtm/presence/+", true},
    {"rtm/presence/#", true},
    {"rtm/presence/bob", true},
    {"rtm/presence/alice", true},
    {"rtm/presence/a b", false},
    {"rtm/presence/bob/x", false},
    /* bob's own call inbox and devices. */
    {"rtm/u/bob/call", true},
    {"rtm/u/bob/+", true},
    {"rtm/u/bob/#", true},
    {"rtm/u/bob/devices/+", true},
    {"rtm/u/bob/devices/#", true},
    {"rtm/u/bob/devices/phone-1", true},
    {"rtm/u/bob/devices/ph.one", false},
    {"rtm/u/bob/+/phone-1", true},
    {"rtm/u/bob/other", false},
    {"rtm/u/bob/call/#", false},
    /* bob's own messages and attributes. */
    {"rtm/u/bob/msg/alice", true},
    {"rtm/u/bob/msg/+", true},
    {"rtm/u/bob/msg/#", true},
    {"rtm/u/bob/msg/a b", false},
    {"rtm/u/bob/msg", false},
    {"rtm/u/bob/msg/alice/x", false},
    {"rtm/u/bob/attr/status", true},
    {"rtm/u/bob/attr/+", true},
    {"rtm/u/bob/attr/#", true},
    {"rtm/u/bob/attr/a@b", false},
    {"rtm/u/bob/attr", false},
    {"rtm/u/bob/+/a.b", true}, /* msg/a.b and attr/a.b */
    {"rtm/u/bob/+/a@b", true}, /* msg/a@b */
    {"rtm/u/bob/+/+", true},
    {"rtm/u/bob/+/#", true},
    {"rtm/u/bob/+/a b", false},
    /* Another user: only the attributes. */
    {"rtm/u/alice/attr/status", true},
    {"rtm/u/alice/attr/+", true},
    {"rtm/u/alice/attr/#", true},
    {"rtm/u/alice/attr/a@b", false},
    {"rtm/u/alice/attr", false},
    {"rtm/u/alice/attr/k/x", false},
    {"rtm/u/alice/call", false},
    {"rtm/u/alice/#", false},
    {"rtm/u/alice/+", false},
    {"rtm/u/alice/+/status", false},
    {"rtm/u/alice/+/+", false},
    {"rtm/u/alice/msg/bob", false},
    {"rtm/u/alice/msg/+", false},
    {"rtm/u/alice/devices/+", false},
    {"rtm/u/alice/devices/phone", false},
    /* One channel. */
    {"rtm/c/room1/count", true},
    {"rtm/c/room1/events", true},
    {"rtm/c/room1/msg/alice", true},
    {"rtm/c/room1/msg/+", true},
    {"rtm/c/room1/msg/#", true},
    {"rtm/c/room1/attr/notice", true},
    {"rtm/c/room1/attr/+", true},
    {"rtm/c/room1/attr/#", true},
    {"rtm/c/room1/+", true},
    {"rtm/c/room1/#", true},
    {"rtm/c/room1/+/alice", true},
    {"rtm/c/room1/+/+", true},
    {"rtm/c/room1/+/#", true},
    {"rtm/c/a.b@c-d_e/count", true},
    {"rtm/c/room1/join", false},
    {"rtm/c/room1/leave", false},
    {"rtm/c/room1/members", false},
    {"rtm/c/room1/join/#", false},
    {"rtm/c/room1/count/#", false},
    {"rtm/c/room1", false},
    {"rtm/c/room1/other", false},
    {"rtm/c/room1/msg", false},
    {"rtm/c/room1/msg/a b", false},
    {"rtm/c/room1/msg/alice/x", false},
    {"rtm/c/room1/attr/a@b", false},
    {"rtm/c/room1/attr/k/#", false},
    {"rtm/c/room1/+/a b", false},
    {"rtm/c/r m/count", false},
    {"rtm/c//count", false},
    /* Lists of users or channels, and everything else. */
    {"rtm/#", false},
    {"rtm/+", false},
    {"rtm/+/#", false},
    {"rtm/+/bob/call", false},
    {"rtm/+/bob/#", false},
    {"rtm/+/room1/count", false},
    {"rtm/u/#", false},
    {"rtm/u/+", false},
    {"rtm/u/+/#", false},
    {"rtm/u/+/call", false},
    {"rtm/u/+/devices/#", false},
    {"rtm/u/+/devices/+", false},
    {"rtm/u/+/attr/+", false},
    {"rtm/u/+/attr/status", false},
    {"rtm/u/+/msg/bob", false},
    {"rtm/u/#/attr/status", false},
    {"rtm/c", false},
    {"rtm/c/#", false},
    {"rtm/c/+", false},
    {"rtm/c/+/#", false},
    {"rtm/c/+/count", false},
    {"rtm/c/+/events", false},
    {"rtm/c/+/msg/+", false},
    {"rtm/c/+/attr/+", false},
    {"rtm/c/#/count", false},
    {"rtm/foo", false},
    {"rtm/foo/#", false},
    {"rtm", false}};

static void test_filter_rules(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bob_filters) / sizeof(bob_filters[0]); i++)
        expect_filter(P, PL, bob_filters[i].filter, "bob", false, bob_filters[i].allowed);
}

/* The longest channel id and key in a filter fit; one more does not. */
static void test_filter_lengths(void **state)
{
    (void)state;
    char id64[80], id65[80], key32[40], key33[40], filter[256];
    snprintf(filter, sizeof(filter), "rtm/c/%s/count", repeat(id64, 'x', 64));
    expect_filter(P, PL, filter, "bob", false, true);
    snprintf(filter, sizeof(filter), "rtm/c/%s/#", repeat(id65, 'x', 65));
    expect_filter(P, PL, filter, "bob", false, false);
    snprintf(filter, sizeof(filter), "rtm/u/alice/attr/%s", repeat(key32, 'k', 32));
    expect_filter(P, PL, filter, "bob", false, true);
    snprintf(filter, sizeof(filter), "rtm/c/room1/attr/%s", repeat(key33, 'k', 33));
    expect_filter(P, PL, filter, "bob", false, false);
    /* Under '+' a 33-character leaf is still a sender; 65 is nothing. */
    snprintf(filter, sizeof(filter), "rtm/c/room1/+/%s", key33);
    expect_filter(P, PL, filter, "bob", false, true);
    snprintf(filter, sizeof(filter), "rtm/u/bob/+/%s", id65);
    expect_filter(P, PL, filter, "bob", false, false);
}

static void test_filter_admins_and_prefixes(void **state)
{
    (void)state;
    /* Admins may read everything under the prefix. */
    static const char *const admin_ok[] = {
        "rtm/#",          "rtm/u/+/call",      "rtm/u/+/devices/#",     "rtm/u/alice/call",
        "rtm/u/+/attr/+", "rtm/u/alice/msg/+", "rtm/c/+/count",         "rtm/c/#",
        "rtm/c/r/join",   "rtm/presence/+",    "rtm/u/alice/devices/+",
    };
    for (size_t i = 0; i < sizeof(admin_ok) / sizeof(admin_ok[0]); i++)
        expect_filter(P, PL, admin_ok[i], "ops", true, true);

    /* Without a valid uid, nothing. */
    expect_filter(P, PL, "rtm/c/room1/count", "b b", false, false);
    expect_filter(P, PL, "rtm/u/alice/attr/+", NULL, false, false);
    expect_filter(P, PL, "rtm/presence/+", "", false, false);

    /* The same under a multi-level prefix. */
    expect_filter(AP, APL, "app/rtm/u/bob/call", "bob", false, true);
    expect_filter(AP, APL, "app/rtm/u/bob/#", "bob", false, true);
    expect_filter(AP, APL, "app/rtm/presence/+", "bob", false, true);
    expect_filter(AP, APL, "app/rtm/u/alice/attr/+", "bob", false, true);
    expect_filter(AP, APL, "app/rtm/c/room1/#", "bob", false, true);
    expect_filter(AP, APL, "app/rtm/c/room1/join", "bob", false, false);
    expect_filter(AP, APL, "app/rtm/c/+/count", "bob", false, false);
    expect_filter(AP, APL, "app/rtm/#", "bob", false, false);
    expect_filter(AP, APL, "app/rtm/u/+/call", "bob", false, false);
    expect_filter(AP, APL, "app/rtm/u/alice/call", "bob", false, false);
    expect_filter(AP, APL, "rtm/c/room1/count", "bob", false, false);
    expect_filter(AP, APL, "app/rtm/#", "ops", true, true);
}

static void expect_covers(const char *prefix, size_t plen, const char *filter, const char *uid,
                          bool covers)
{
    bool got = rtm_topic_filter_covers_inbox(prefix, plen, filter, uid);
    if (got != covers)
        print_error("filter \"%s\" covers %s's inbox: %d, expected %d\n", filter, uid, got, covers);
    assert_int_equal(got, covers);
}

static void test_covers_inbox(void **state)
{
    (void)state;
    expect_covers(P, PL, "rtm/u/bob/call", "bob", true);
    expect_covers(P, PL, "rtm/u/bob/#", "bob", true);
    expect_covers(P, PL, "rtm/u/bob/+", "bob", true);
    expect_covers(P, PL, "rtm/u/+/call", "bob", true);
    expect_covers(P, PL, "rtm/u/+/+", "bob", true);
    expect_covers(P, PL, "rtm/u/#", "bob", true);
    expect_covers(P, PL, "rtm/+/bob/call", "bob", true);
    expect_covers(P, PL, "rtm/#", "bob", true);
    /* "a/#" also matches "a" itself (MQTT 3.1.1 section 4.7.1.2). */
    expect_covers(P, PL, "rtm/u/bob/call/#", "bob", true);

    expect_covers(P, PL, "rtm/u/alice/call", "bob", false);
    expect_covers(P, PL, "rtm/u/bobby/call", "bob", false);
    expect_covers(P, PL, "rtm/u/bo/call", "bob", false);
    expect_covers(P, PL, "rtm/u/alice/#", "bob", false);
    expect_covers(P, PL, "rtm/u/bob/devices/#", "bob", false);
    expect_covers(P, PL, "rtm/u/bob/call/x", "bob", false);
    expect_covers(P, PL, "rtm/u/bob/call/+", "bob", false);
    expect_covers(P, PL, "rtm/u/+/devices/+", "bob", false);
    expect_covers(P, PL, "rtm/presence/#", "bob", false);
    expect_covers(P, PL, "rtm/presence/bob", "bob", false);
    expect_covers(P, PL, "rtm/+", "bob", false);

    expect_covers(AP, APL, "app/rtm/u/bob/call", "bob", true);
    expect_covers(AP, APL, "app/rtm/#", "bob", true);
    expect_covers(AP, APL, "app/rtm/u/+/call", "bob", true);
    expect_covers(AP, APL, "app/rtm/u/alice/call", "bob", false);
}
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filter_rules),
        cmocka_unit_test(test_filter_lengths),
        cmocka_unit_test(test_filter_admins_and_prefixes),
        cmocka_unit_test(test_covers_inbox),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
