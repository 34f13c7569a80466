/*
 * Unit tests for plugin/lib/topic.c: uid, id, channel and key syntax, and
 * topic classification under the prefix. test_topic_filter.c tests the
 * subscription rules.
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

static bool uid_ok(const char *s)
{
    return rtm_uid_valid(s, strlen(s));
}

static bool id_ok(const char *s)
{
    return rtm_id_valid(s, strlen(s));
}

static void test_uid_valid(void **state)
{
    (void)state;
    char buf[80];

    assert_false(uid_ok(""));
    assert_true(uid_ok("a"));
    assert_true(uid_ok("Z"));
    assert_true(uid_ok("0"));
    assert_true(uid_ok("bob"));
    assert_true(uid_ok("Alice_01"));
    assert_true(uid_ok("."));
    assert_true(uid_ok("@"));
    assert_true(uid_ok("-"));
    assert_true(uid_ok("_"));
    assert_true(uid_ok("alice.smith@example-corp.com"));

    memset(buf, 'u', 64);
    buf[64] = '\0';
    assert_true(uid_ok(buf));
    buf[64] = 'u';
    buf[65] = '\0';
    assert_false(uid_ok(buf));

    static const char *const bad[] = {
        "a b", "a/b",  "a+b", "a#b", "+",  "#", "a$",   "a:b",
        "a,b", "a\tb", "é",   "a\"", "a*", "/", "a\\b", "a'b",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (uid_ok(bad[i]))
            print_error("uid \"%s\" accepted\n", bad[i]);
        assert_false(uid_ok(bad[i]));
    }
    /* Length-based: an embedded NUL is a bad character, and bytes past `len`
     * do not count. */
    assert_false(rtm_uid_valid("a\0b", 3));
    assert_true(rtm_uid_valid("bob/call", 3));
    assert_false(rtm_uid_valid("bob", 0));
}

static void test_id_valid(void **state)
{
    (void)state;
    char buf[80];

    assert_false(id_ok(""));
    assert_true(id_ok("a"));
    assert_true(id_ok("c-7f3a"));
    assert_true(id_ok("A_b-9"));
    assert_true(id_ok("550e8400-e29b-41d4-a716-446655440000"));
    assert_false(id_ok("."));
    assert_false(id_ok("@"));
    assert_false(id_ok("a.b"));
    assert_false(id_ok("a@b"));
    assert_false(id_ok("a b"));
    assert_false(id_ok("a/b"));
    assert_false(id_ok("a+"));
    assert_false(id_ok("#"));
    assert_false(id_ok("é"));

    memset(buf, 'i', 64);
    buf[64] = '\0';
    assert_true(id_ok(buf));
    buf[64] = 'i';
    buf[65] = '\0';
    assert_false(id_ok(buf));
    assert_false(rtm_id_valid("a\0b", 3));
    assert_true(rtm_id_valid("abc.def", 3));
}

static bool channel_ok(const char *s)
{
    return rtm_channel_valid(s, strlen(s));
}

static bool key_ok(const char *s)
{
    return rtm_attr_key_valid(s, strlen(s));
}

/* A string of `n` copies of `c`, in `buf` (of at least n + 1 bytes). */
static const char *repeat(char *buf, char c, size_t n)
{
    memset(buf, c, n);
    buf[n] = '\0';
    return buf;
}

static void test_channel_valid(void **state)
{
    (void)state;
    char buf[80];
    static const char *const good[] = {"a", "Z", "0", ".", "@", "-", "_", "room1", "a.b@c-d_E9"};
    static const char *const bad[] = {"",  "a b", "a/b", "a+b", "a#b", "+",    "#",   "a$",
                                      "é", "a:b", "a,b", "a*",  "/",   "a\tb", "a\\b"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(channel_ok(good[i]));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (channel_ok(bad[i]))
            print_error("channel \"%s\" accepted\n", bad[i]);
        assert_false(channel_ok(bad[i]));
    }
    assert_int_equal(RTM_CHANNEL_ID_MAX, 64);
    assert_true(channel_ok(repeat(buf, 'c', 64)));
    assert_false(channel_ok(repeat(buf, 'c', 65)));
    assert_false(rtm_channel_valid("a\0b", 3));
    assert_true(rtm_channel_valid("room/join", 4));
    assert_false(rtm_channel_valid("room", 0));
    assert_false(rtm_channel_valid(NULL, 3));
}

static void test_attr_key_valid(void **state)
{
    (void)state;
    char buf[80];
    static const char *const good[] = {"a", "Z", "0", ".", "-", "_", "status", "avatar.url-2_X"};
    static const char *const bad[] = {"",  "@",   "a@b", "a b", "a/b", "+",  "#",   "a+",
                                      "é", "a:b", "a$",  "a*",  "/",   "\t", "a\"b"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(key_ok(good[i]));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (key_ok(bad[i]))
            print_error("key \"%s\" accepted\n", bad[i]);
        assert_false(key_ok(bad[i]));
    }
    assert_int_equal(RTM_ATTR_KEY_MAX, 32);
    assert_true(key_ok(repeat(buf, 'k', 32)));
    assert_false(key_ok(repeat(buf, 'k', 33)));
    assert_false(rtm_attr_key_valid("a\0b", 3));
    assert_true(rtm_attr_key_valid("key/x", 3));
    assert_false(rtm_attr_key_valid(NULL, 1));
}

static void test_under_prefix(void **state)
{
    (void)state;
    /* The bare prefix is left to other_topics (issue 13); "rtm/" is not. */
    assert_false(rtm_topic_under_prefix(P, PL, "rtm"));
    assert_true(rtm_topic_under_prefix(P, PL, "rtm/"));
    assert_true(rtm_topic_under_prefix(P, PL, "rtm/#"));
    assert_true(rtm_topic_under_prefix(P, PL, "rtm/+"));
    assert_false(rtm_topic_under_prefix(P, PL, "rtm#"));
    assert_false(rtm_topic_under_prefix(P, PL, "#"));
    assert_false(rtm_topic_under_prefix(P, PL, "+/#"));
    assert_true(rtm_topic_under_prefix(P, PL, "rtm/u/bob/call"));
    assert_false(rtm_topic_under_prefix(P, PL, "rtmx"));
    assert_false(rtm_topic_under_prefix(P, PL, "rtmx/u/bob/call"));
    assert_false(rtm_topic_under_prefix(P, PL, "rt"));
    assert_false(rtm_topic_under_prefix(P, PL, ""));
    assert_false(rtm_topic_under_prefix(P, PL, "RTM/u/bob/call"));
    assert_false(rtm_topic_under_prefix(P, PL, "/rtm/u/bob/call"));
    assert_false(rtm_topic_under_prefix(P, PL, "x/rtm/u/bob/call"));

    assert_false(rtm_topic_under_prefix(AP, APL, "app/rtm"));
    assert_true(rtm_topic_under_prefix(AP, APL, "app/rtm/"));
    assert_true(rtm_topic_under_prefix(AP, APL, "app/rtm/u/bob/call"));
    assert_false(rtm_topic_under_prefix(AP, APL, "app"));
    assert_false(rtm_topic_under_prefix(AP, APL, "app/"));
    assert_false(rtm_topic_under_prefix(AP, APL, "app/rtmx/u/bob/call"));
    assert_false(rtm_topic_under_prefix(AP, APL, "rtm/u/bob/call"));
}

static void expect_kind(const char *prefix, size_t plen, const char *topic,
                        enum rtm_topic_kind kind)
{
    struct rtm_topic t;
    memset(&t, 0, sizeof(t));
    enum rtm_topic_kind got = rtm_topic_parse(prefix, plen, topic, &t);
    if (got != kind)
        print_error("topic \"%s\" (prefix \"%s\"): kind %d, expected %d\n", topic, prefix, got,
                    kind);
    assert_int_equal(got, kind);
    assert_int_equal(t.kind, kind);
}

static void expect_call(const char *prefix, size_t plen, const char *topic, const char *uid)
{
    struct rtm_topic t;
    memset(&t, 0, sizeof(t));
    assert_int_equal(rtm_topic_parse(prefix, plen, topic, &t), RTM_TOPIC_CALL);
    assert_int_equal(t.kind, RTM_TOPIC_CALL);
    assert_int_equal(t.uid_len, strlen(uid));
    assert_memory_equal(t.uid, uid, t.uid_len);
    /* Points into the topic. */
    assert_true(t.uid >= topic && t.uid + t.uid_len <= topic + strlen(topic));
}

static void test_parse_call(void **state)
{
    (void)state;
    expect_call(P, PL, "rtm/u/bob/call", "bob");
    expect_call(P, PL, "rtm/u/a/call", "a");
    expect_call(P, PL, "rtm/u/alice.smith@example.com/call", "alice.smith@example.com");
    expect_call(AP, APL, "app/rtm/u/bob/call", "bob");

    char topic[128], uid[80];
    memset(uid, 'x', 64);
    uid[64] = '\0';
    snprintf(topic, sizeof(topic), "rtm/u/%s/call", uid);
    expect_call(P, PL, topic, uid);
    uid[64] = 'x';
    uid[65] = '\0';
    snprintf(topic, sizeof(topic), "rtm/u/%s/call", uid);
    expect_kind(P, PL, topic, RTM_TOPIC_INVALID);
}

static void test_parse_presence(void **state)
{
    (void)state;
    struct rtm_topic t;
    memset(&t, 0, sizeof(t));
    assert_int_equal(rtm_topic_parse(P, PL, "rtm/presence/bob", &t), RTM_TOPIC_PRESENCE);
    assert_int_equal(t.uid_len, 3);
    assert_memory_equal(t.uid, "bob", 3);

    memset(&t, 0, sizeof(t));
    assert_int_equal(rtm_topic_parse(AP, APL, "app/rtm/presence/a.b@c", &t), RTM_TOPIC_PRESENCE);
    assert_int_equal(t.uid_len, 5);
    assert_memory_equal(t.uid, "a.b@c", 5);
}

static void test_parse_device(void **state)
{
    (void)state;
    struct rtm_topic t;
    memset(&t, 0, sizeof(t));
    assert_int_equal(rtm_topic_parse(P, PL, "rtm/u/bob/devices/phone-1", &t), RTM_TOPIC_DEVICE);
    assert_int_equal(t.uid_len, 3);
    assert_memory_equal(t.uid, "bob", 3);
    assert_int_equal(t.device_len, 7);
    assert_memory_equal(t.device, "phone-1", 7);

    memset(&t, 0, sizeof(t));
    assert_int_equal(rtm_topic_parse(AP, APL, "app/rtm/u/b.o@b/devices/D_2", &t), RTM_TOPIC_DEVICE);
    assert_int_equal(t.uid_len, 5);
    assert_memory_equal(t.uid, "b.o@b", 5);
    assert_int_equal(t.device_len, 3);
    assert_memory_equal(t.device, "D_2", 3);

    /* Device ids do not allow '.' or '@'. */
    expect_kind(P, PL, "rtm/u/bob/devices/ph.one", RTM_TOPIC_INVALID);
    expect_kind(P, PL, "rtm/u/bob/devices/ph@one", RTM_TOPIC_INVALID);
}

/* A devices topic of a valid uid with a malformed device id is invalid, but
 * keeps the uid and the raw device id (the rest of the topic), so the owner
 * can be told which id was wrong. */
static void expect_bad_device(const char *prefix, size_t plen, const char *topic, const char *uid,
                              const char *device)
{
    struct rtm_topic t;
    if (rtm_topic_parse(prefix, plen, topic, &t) != RTM_TOPIC_INVALID)
        fail_msg("%s: expected RTM_TOPIC_INVALID", topic);
    if (!t.uid || t.uid_len != strlen(uid) || memcmp(t.uid, uid, t.uid_len) != 0)
        fail_msg("%s: expected uid %s", topic, uid);
    if (!t.device || t.device_len != strlen(device) || memcmp(t.device, device, t.device_len) != 0)
        fail_msg("%s: expected device \"%s\"", topic, device);
}

static void test_parse_malformed_device(void **state)
{
    (void)state;
    char topic[128], id[80];
    expect_bad_device(P, PL, "rtm/u/bob/devices/a.b", "bob", "a.b");
    expect_bad_device(P, PL, "rtm/u/bob/devices/", "bob", "");
    expect_bad_device(P, PL, "rtm/u/bob/devices/a/b", "bob", "a/b");
    expect_bad_device(P, PL, "rtm/u/bob/devices/a/b/", "bob", "a/b/");
    expect_bad_device(AP, APL, "app/rtm/u/b.o@b/devices/x y", "b.o@b", "x y");
    memset(id, 'd', 65);
    id[65] = '\0';
    snprintf(topic, sizeof(topic), "rtm/u/bob/devices/%s", id);
    expect_bad_device(P, PL, topic, "bob", id);
    id[64] = '\0'; /* 64 is fine */
    snprintf(topic, sizeof(topic), "rtm/u/bob/devices/%s", id);
    expect_kind(P, PL, topic, RTM_TOPIC_DEVICE);
    /* Not a devices topic of a valid uid: nothing is kept. */
    static const char *const none[] = {"rtm/u/bob/devices", "rtm/u/b b/devices/a.b",
                                       "rtm/u//devices/x", "rtm/u/bob/device/a.b",
                                       "rtm/x/bob/devices/a"};
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
        struct rtm_topic t;
        assert_int_equal(rtm_topic_parse(P, PL, none[i], &t), RTM_TOPIC_INVALID);
        if (t.uid || t.device)
            fail_msg("%s: kept a uid or device", none[i]);
    }
}

static void test_parse_invalid(void **state)
{
    (void)state;
    static const char *const invalid[] = {
        "rtm/",
        "rtm/x",
        "rtm/u",
        "rtm/u/",
        "rtm/u/bob",
        "rtm/u/bob/",
        "rtm/u//call",
        "rtm/u/b b/call",
        "rtm/u/b+b/call",
        "rtm/u/bob/call/",
        "rtm/u/bob/call/x",
        "rtm/u/bob/calls",
        "rtm/u/bob/inbox",
        "rtm/u/bob/devices",
        "rtm/u/bob/devices/",
        "rtm/u/bob/devices/a/b",
        "rtm/presence",
        "rtm/presence/",
        "rtm/presence/bob/x",
        "rtm/presence/b b",
        "rtm/presence/a/b",
        "rtm//u/bob/call",
        "rtm/U/bob/call",
    };
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
        expect_kind(P, PL, invalid[i], RTM_TOPIC_INVALID);

    expect_kind(AP, APL, "app/rtm/", RTM_TOPIC_INVALID);
    expect_kind(AP, APL, "app/rtm/u/bob", RTM_TOPIC_INVALID);
    expect_kind(AP, APL, "app/rtm/rtm/u/bob/call", RTM_TOPIC_INVALID);
}

/* What rtm_topic_parse must say of `topic`: the kind, and each field (NULL:
 * must be NULL with length 0). */
struct parsed {
    const char *topic;
    enum rtm_topic_kind kind;
    const char *uid, *channel, *sender, *key;
};

static void expect_field(const char *topic, const char *name, const char *got, size_t len,
                         const char *want)
{
    if (!want) {
        if (got || len)
            fail_msg("%s: %s is set", topic, name);
        return;
    }
    if (!got || len != strlen(want) || memcmp(got, want, len) != 0)
        fail_msg("%s: %s is \"%.*s\", expected \"%s\"", topic, name, (int)len, got ? got : "",
                 want);
    if (got < topic || got + len > topic + strlen(topic))
        fail_msg("%s: %s does not point into the topic", topic, name);
}

static void expect_parsed(const char *prefix, size_t plen, const struct parsed *p)
{
    struct rtm_topic t;
    memset(&t, 0x5A, sizeof(t));
    enum rtm_topic_kind got = rtm_topic_parse(prefix, plen, p->topic, &t);
    if (got != p->kind || t.kind != p->kind)
        fail_msg("%s: kind %d, expected %d", p->topic, got, p->kind);
    expect_field(p->topic, "uid", t.uid, t.uid_len, p->uid);
    expect_field(p->topic, "channel", t.channel, t.channel_len, p->channel);
    expect_field(p->topic, "sender", t.sender, t.sender_len, p->sender);
    expect_field(p->topic, "key", t.key, t.key_len, p->key);
    expect_field(p->topic, "device", t.device, t.device_len, NULL);
}

static void test_parse_rtm_kinds(void **state)
{
    (void)state;
    static const struct parsed cases[] = {
        {"rtm/u/bob/msg/alice", RTM_TOPIC_MSG, "bob", NULL, "alice", NULL},
        {"rtm/u/a.b@c/msg/d-e_f", RTM_TOPIC_MSG, "a.b@c", NULL, "d-e_f", NULL},
        {"rtm/u/bob/msg/bob", RTM_TOPIC_MSG, "bob", NULL, "bob", NULL},
        {"rtm/u/bob/attr/status", RTM_TOPIC_USER_ATTR, "bob", NULL, NULL, "status"},
        {"rtm/u/bob/attr/a.b-c_D", RTM_TOPIC_USER_ATTR, "bob", NULL, NULL, "a.b-c_D"},
        {"rtm/c/room1/join", RTM_TOPIC_CH_JOIN, NULL, "room1", NULL, NULL},
        {"rtm/c/room1/leave", RTM_TOPIC_CH_LEAVE, NULL, "room1", NULL, NULL},
        {"rtm/c/room1/members", RTM_TOPIC_CH_MEMBERS, NULL, "room1", NULL, NULL},
        {"rtm/c/room1/events", RTM_TOPIC_CH_EVENTS, NULL, "room1", NULL, NULL},
        {"rtm/c/room1/count", RTM_TOPIC_CH_COUNT, NULL, "room1", NULL, NULL},
        {"rtm/c/room1/msg/alice", RTM_TOPIC_CH_MSG, NULL, "room1", "alice", NULL},
        {"rtm/c/room1/attr/notice", RTM_TOPIC_CH_ATTR, NULL, "room1", NULL, "notice"},
        {"rtm/c/a.b@c/msg/x@y", RTM_TOPIC_CH_MSG, NULL, "a.b@c", "x@y", NULL},
        /* Words of the table are ids like any other. */
        {"rtm/c/join/join", RTM_TOPIC_CH_JOIN, NULL, "join", NULL, NULL},
        {"rtm/u/msg/msg/msg", RTM_TOPIC_MSG, "msg", NULL, "msg", NULL},
        {"rtm/c/c/attr/attr", RTM_TOPIC_CH_ATTR, NULL, "c", NULL, "attr"},
        /* The existing kinds keep what they set. */
        {"rtm/u/bob/call", RTM_TOPIC_CALL, "bob", NULL, NULL, NULL},
        {"rtm/presence/bob", RTM_TOPIC_PRESENCE, "bob", NULL, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_parsed(P, PL, &cases[i]);
    const struct parsed app = {"app/rtm/c/r/msg/s", RTM_TOPIC_CH_MSG, NULL, "r", "s", NULL};
    expect_parsed(AP, APL, &app);
}

/* The longest channel id, sender and key fit; one more character does not. */
static void test_parse_rtm_lengths(void **state)
{
    (void)state;
    char id64[80], id65[80], key32[40], key33[40], topic[256];
    repeat(id64, 'x', 64);
    repeat(id65, 'x', 65);
    repeat(key32, 'k', 32);
    repeat(key33, 'k', 33);
    struct parsed p = {topic, RTM_TOPIC_CH_COUNT, NULL, id64, NULL, NULL};
    snprintf(topic, sizeof(topic), "rtm/c/%s/count", id64);
    expect_parsed(P, PL, &p);
    snprintf(topic, sizeof(topic), "rtm/c/%s/count", id65);
    expect_parsed(P, PL, &(struct parsed){topic, RTM_TOPIC_INVALID, NULL, NULL, NULL, NULL});
    snprintf(topic, sizeof(topic), "rtm/u/bob/msg/%s", id64);
    expect_parsed(P, PL, &(struct parsed){topic, RTM_TOPIC_MSG, "bob", NULL, id64, NULL});
    snprintf(topic, sizeof(topic), "rtm/c/room/msg/%s", id65);
    expect_parsed(P, PL, &(struct parsed){topic, RTM_TOPIC_INVALID, NULL, NULL, NULL, NULL});
    snprintf(topic, sizeof(topic), "rtm/c/room/attr/%s", key32);
    expect_parsed(P, PL, &(struct parsed){topic, RTM_TOPIC_CH_ATTR, NULL, "room", NULL, key32});
    snprintf(topic, sizeof(topic), "rtm/u/bob/attr/%s", key33);
    expect_parsed(P, PL, &(struct parsed){topic, RTM_TOPIC_INVALID, NULL, NULL, NULL, NULL});
}

/* Under the prefix but none of the new shapes: invalid, nothing set. */
static void test_parse_rtm_invalid(void **state)
{
    (void)state;
    static const char *const invalid[] = {
        "rtm/u/bob/msg",
        "rtm/u/bob/msg/",
        "rtm/u/bob/msg/a b",
        "rtm/u/bob/msg/a+b",
        "rtm/u/bob/msg/a/b",
        "rtm/u/bob/msg/alice/",
        "rtm/u/b b/msg/alice",
        "rtm/u/bob/attr",
        "rtm/u/bob/attr/",
        "rtm/u/bob/attr/a@b",
        "rtm/u/bob/attr/k/x",
        "rtm/u//attr/k",
        "rtm/u/bob/Attr/k",
        "rtm/u/bob/join",
        "rtm/c",
        "rtm/c/",
        "rtm/c/room",
        "rtm/c/room/",
        "rtm/c//join",
        "rtm/c/r m/join",
        "rtm/c/r+m/count",
        "rtm/c/room/joins",
        "rtm/c/room/JOIN",
        "rtm/c/room/join/",
        "rtm/c/room/join/x",
        "rtm/c/room/count/x",
        "rtm/c/room/call",
        "rtm/c/room/msg",
        "rtm/c/room/msg/",
        "rtm/c/room/msg/a b",
        "rtm/c/room/msg/a/b",
        "rtm/c/room/attr/a@b",
        "rtm/c/room/attr/k/",
        "rtm/c/room/devices/d",
        "rtm/c/room/presence/b",
        "rtm/C/room/join",
        "rtm/ch/room/join",
        "rtm/presence/bob/msg",
        "rtm/u/bob/call/msg/a",
    };
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        const struct parsed p = {invalid[i], RTM_TOPIC_INVALID, NULL, NULL, NULL, NULL};
        expect_parsed(P, PL, &p);
    }
}

static void test_parse_outside(void **state)
{
    (void)state;
    static const char *const outside[] = {
        "",
        "rtmx",
        "rtmx/u/bob/call",
        "other/u/bob/call",
        "u/bob/call",
        "/rtm/u/bob/call",
        "RTM/u/bob/call",
        "$SYS/broker/uptime",
        "#",
        "rt",
        "rtm", /* the bare prefix: other_topics decides it (issue 13) */
    };
    for (size_t i = 0; i < sizeof(outside) / sizeof(outside[0]); i++)
        expect_kind(P, PL, outside[i], RTM_TOPIC_OUTSIDE);
    expect_kind(AP, APL, "app/rtm", RTM_TOPIC_OUTSIDE);

    expect_kind(AP, APL, "rtm/u/bob/call", RTM_TOPIC_OUTSIDE);
    expect_kind(AP, APL, "app/rtmx/u/bob/call", RTM_TOPIC_OUTSIDE);
    expect_kind(AP, APL, "app", RTM_TOPIC_OUTSIDE);
    expect_kind(AP, APL, "app/u/bob/call", RTM_TOPIC_OUTSIDE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uid_valid),
        cmocka_unit_test(test_id_valid),
        cmocka_unit_test(test_channel_valid),
        cmocka_unit_test(test_attr_key_valid),
        cmocka_unit_test(test_under_prefix),
        cmocka_unit_test(test_parse_call),
        cmocka_unit_test(test_parse_presence),
        cmocka_unit_test(test_parse_device),
        cmocka_unit_test(test_parse_malformed_device),
        cmocka_unit_test(test_parse_invalid),
        cmocka_unit_test(test_parse_rtm_kinds),
        cmocka_unit_test(test_parse_rtm_lengths),
        cmocka_unit_test(test_parse_rtm_invalid),
        cmocka_unit_test(test_parse_outside),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
