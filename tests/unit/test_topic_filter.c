/*
 * Unit tests for plugin/lib/topic.c: the subscription rules of PROTOCOL.md
 * section 2 (who may subscribe to which filter), and which filters cover a
 * user's call inbox. test_topic.c tests topic syntax and parsing.
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

static void expect_filter(const char *prefix, size_t plen, const char *filter, const char *uid,
                          bool admin, bool allowed)
{
    bool got = rtm_topic_filter_allowed(prefix, plen, filter, uid, admin);
    if (got != allowed)
        print_error("filter \"%s\" for %s%s: %s, expected %s\n", filter, uid,
                    admin ? " (admin)" : "", got ? "allowed" : "refused",
                    allowed ? "allowed" : "refused");
    assert_int_equal(got, allowed);
}

static void test_filter_rules(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "rtm/u/bob/call",      "rtm/u/bob/devices/+",
        "rtm/u/bob/devices/#", "rtm/u/bob/devices/phone-1",
        "rtm/u/bob/#",         "rtm/presence/+",
        "rtm/presence/#",      "rtm/presence/bob",
        "rtm/presence/alice",
    };
    static const char *const refused[] = {
        "rtm/#",
        "rtm/+/#",
        "rtm/+/bob/call",
        "rtm/+/bob/#",
        "rtm/u/#",
        "rtm/u/+/call",
        "rtm/u/+/#",
        "rtm/u/+/devices/#",
        "rtm/u/+/devices/+",
        "rtm/u/alice/call",
        "rtm/u/alice/#",
        "rtm/u/alice/devices/+",
        "rtm/u/alice/devices/phone",
        "rtm/u/bob/other",
        "rtm/foo",
        "rtm/foo/#",
        "rtm",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        expect_filter(P, PL, ok[i], "bob", false, true);
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        expect_filter(P, PL, refused[i], "bob", false, false);

    /* Admins may read everything under the prefix. */
    expect_filter(P, PL, "rtm/#", "ops", true, true);
    expect_filter(P, PL, "rtm/u/+/call", "ops", true, true);
    expect_filter(P, PL, "rtm/u/+/devices/#", "ops", true, true);
    expect_filter(P, PL, "rtm/u/alice/call", "ops", true, true);
    expect_filter(P, PL, "rtm/u/alice/devices/+", "ops", true, true);
    expect_filter(P, PL, "rtm/presence/+", "ops", true, true);

    /* The same under a multi-level prefix. */
    expect_filter(AP, APL, "app/rtm/u/bob/call", "bob", false, true);
    expect_filter(AP, APL, "app/rtm/u/bob/#", "bob", false, true);
    expect_filter(AP, APL, "app/rtm/presence/+", "bob", false, true);
    expect_filter(AP, APL, "app/rtm/#", "bob", false, false);
    expect_filter(AP, APL, "app/rtm/u/+/call", "bob", false, false);
    expect_filter(AP, APL, "app/rtm/u/alice/call", "bob", false, false);
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
        cmocka_unit_test(test_covers_inbox),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
