/*
 * User and channel attributes (SPEC 8.3, 8.4) through the core's public
 * API, as the adapter drives it (core_fixture.h): writes through
 * rtm_core_message (the broker's MESSAGE event), who may write and read
 * through rtm_core_acl, the read-back through rtm_core_load_attr.
 */
#include "core_fixture.h"
#include "rtm_message.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Admins of these tests: root (core_fixture.h) and ops. */
static const struct rtm_client ops = {&ops, "ops", "ops-console"};

#define ALICE_STATUS "rtm/u/alice/attr/status"
#define ROOM_NOTICE  "rtm/c/room1/attr/notice"

static int setup(void **state)
{
    core_setup(state);
    struct rtm_option opt = {"admin_users", "root,ops"};
    char err[256];
    return rtm_config_parse(&T.cfg, &opt, 1, err, sizeof(err));
}

static const char *user_topic(const char *uid, const char *key)
{
    static char buf[4][160];
    static unsigned next;
    char *b = buf[next++ % 4];
    snprintf(b, sizeof(buf[0]), "rtm/u/%s/attr/%s", uid, key);
    return b;
}

static const char *channel_topic(const char *ch, const char *key)
{
    static char buf[4][160];
    static unsigned next;
    char *b = buf[next++ % 4];
    snprintf(b, sizeof(buf[0]), "rtm/c/%s/attr/%s", ch, key);
    return b;
}

/* A retained write of `len` bytes of `value`. */
static enum rtm_verdict put_n(const struct rtm_client *c, const char *topic, const char *value,
                              size_t len)
{
    rec_clear();
    return send_raw(c, topic, value, len, true);
}

static enum rtm_verdict put(const struct rtm_client *c, const char *topic, const char *value)
{
    return put_n(c, topic, value, strlen(value));
}

/* The write is let through stamped {"key","value","by","ts"} at T.now, and
 * nothing else is published. Returns the stamped payload (T.out). */
static const char *expect_set_n(const struct rtm_client *c, const char *topic, const char *key,
                                const char *value, size_t len, const char *by)
{
    enum rtm_verdict v = put_n(c, topic, value, len);
    if (v != RTM_REPLACE && T.rec.npubs)
        print_error("refused: %s\n", T.rec.pubs[0].payload);
    assert_int_equal(v, RTM_REPLACE);
    assert_keys(T.out_json, "key", "value", "by", "ts", NULL);
    assert_string_equal(jstr(T.out_json, "key"), key);
    const cJSON *val = cJSON_GetObjectItemCaseSensitive(T.out_json, "value");
    assert_true(cJSON_IsString(val));
    assert_int_equal(strlen(val->valuestring), len);
    assert_memory_equal(val->valuestring, value, len);
    assert_string_equal(jstr(T.out_json, "by"), by);
    assert_int_equal(jnum(T.out_json, "ts"), T.now);
    expect_quiet();
    return T.out;
}

static const char *expect_set(const struct rtm_client *c, const char *topic, const char *key,
                              const char *value, const char *by)
{
    return expect_set_n(c, topic, key, value, strlen(value), by);
}

static uint64_t refused_total(void)
{
    struct rtm_core_stats s = stats();
    uint64_t n = 0;
    for (size_t i = 0; i < sizeof(s.refused) / sizeof(s.refused[0]); i++)
        n += s.refused[i];
    return n;
}

/* The publish is refused: RTM_DENY and exactly one publish, an error with
 * `code` naming `topic`, to the sender's inbox for its session only. */
static void expect_refused_n(const struct rtm_client *c, const char *topic, const char *value,
                             size_t len, bool retain, const char *code)
{
    rec_clear();
    uint64_t before = refused_total();
    assert_int_equal(send_raw(c, topic, value, len, retain), RTM_DENY);
    expect_topic_error(c, topic, code);
    assert_int_equal(refused_total(), before + 1);
    rec_clear();
}

static void expect_refused(const struct rtm_client *c, const char *topic, const char *value,
                           const char *code)
{
    expect_refused_n(c, topic, value, strlen(value), true, code);
}

static size_t attributes(void)
{
    return stats().attributes;
}

static enum rtm_acl read_msg(const struct rtm_client *c, const char *topic, const char *payload,
                             bool retain)
{
    rec_clear();
    return read_check(c, topic, payload, retain);
}

/* A payload as the plugin stamps it. */
static const char *stamp(const char *key, const char *value, const char *by, int64_t ts)
{
    static char buf[4][512];
    static unsigned next;
    char *b = buf[next++ % 4];
    snprintf(b, sizeof(buf[0]), "{\"key\":\"%s\",\"value\":\"%s\",\"by\":\"%s\",\"ts\":%lld}", key,
             value, by, (long long)ts);
    return b;
}

static bool load(const char *topic, const char *payload)
{
    rec_clear();
    return rtm_core_load_attr(T.core, topic, payload, strlen(payload));
}

static bool logged(const char *needle)
{
    for (size_t i = 0; i < T.rec.nlogs; i++) {
        if (strstr(T.rec.logs[i].text, needle))
            return true;
    }
    return false;
}

/* ================================================================================
 * writes
 * ================================================================================ */

static void test_stamp(void **state)
{
    (void)state;
    boot();
    online(&alice);
    const char *out = expect_set(&alice, ALICE_STATUS, "status", "busy", "alice");
    char want[128];
    snprintf(want, sizeof(want),
             "{\"key\":\"status\",\"value\":\"busy\",\"by\":\"alice\",\"ts\":%lld}",
             (long long)T.now);
    assert_string_equal(out, want);
    assert_int_equal(attributes(), 1);
    /* A client's own JSON is only a value: it is stamped as a string. */
    T.now += 10;
    expect_set(&alice, ALICE_STATUS, "status", "{\"by\":\"bob\",\"ts\":1}", "alice");
    assert_int_equal(attributes(), 1);
}

static void test_escaping(void **state)
{
    (void)state;
    boot();
    online(&alice);
    static const char value[] = "say \"hi\"\nback\\slash\ttab \x01 caf\xc3\xa9 \xe4\xb8\xad "
                                "\xf0\x9f\x99\x82";
    const char *out = expect_set(&alice, user_topic("alice", "motto"), "motto", value, "alice");
    /* Escaped, not raw: one line of JSON whatever the value holds. */
    assert_null(strchr(out, '\n'));
    assert_null(strchr(out, '\t'));
    assert_non_null(strstr(out, "\\\"hi\\\""));
    assert_non_null(strstr(out, "\\n"));
    assert_non_null(strstr(out, "\\\\slash"));
    /* UTF-8 is kept as it is. */
    assert_non_null(strstr(out, "caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x99\x82"));
}

static void test_delete(void **state)
{
    (void)state;
    boot();
    online(&alice);
    expect_set(&alice, ALICE_STATUS, "status", "busy", "alice");
    expect_set(&alice, user_topic("alice", "mood"), "mood", "ok", "alice");
    assert_int_equal(attributes(), 2);
    /* The empty retained message passes, so the broker deletes what it
     * stored, and subscribers see the delete. */
    assert_int_equal(put(&alice, ALICE_STATUS, ""), RTM_PASS);
    expect_quiet();
    assert_int_equal(attributes(), 1);
    /* Deleting a key nobody set is fine too. */
    assert_int_equal(put(&alice, user_topic("alice", "nothing"), ""), RTM_PASS);
    expect_quiet();
    assert_int_equal(put(&alice, user_topic("alice", "mood"), ""), RTM_PASS);
    assert_int_equal(attributes(), 0);
    /* A deleted key can be set again. */
    expect_set(&alice, ALICE_STATUS, "status", "back", "alice");
    assert_int_equal(attributes(), 1);
}

static void test_refusals(void **state)
{
    (void)state;
    boot();
    online(&alice);
    expect_refused_n(&alice, ALICE_STATUS, "busy", 4, false, "bad_request");
    expect_refused_n(&alice, ALICE_STATUS, "", 0, false, "bad_request");
    expect_refused(&alice, ALICE_STATUS, "bad \xc3\x28 utf8", "bad_request");
    expect_refused(&alice, ALICE_STATUS, "surrogate \xed\xa0\x80", "bad_request");
    expect_refused(&alice, ALICE_STATUS, "cut \xe4\xb8", "bad_request");
    expect_refused_n(&alice, ALICE_STATUS, "nul\0inside", 10, true, "bad_request");
    assert_int_equal(attributes(), 0);
    assert_int_equal(stats().refused[RTM_ERR_BAD_REQUEST], 6);
}

/* ================================================================================
 * limits and rate
 * ================================================================================ */

static void test_key_limit(void **state)
{
    (void)state;
    T.cfg.attr_rate = 1000;
    boot();
    online(&alice);
    char key[16];
    for (int i = 0; i < 32; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        expect_set(&alice, user_topic("alice", key), key, "v", "alice");
    }
    expect_refused(&alice, user_topic("alice", "k32"), "v", "limit_exceeded");
    assert_int_equal(attributes(), 32);
    assert_int_equal(stats().refused[RTM_ERR_LIMIT_EXCEEDED], 1);
    /* Replacing one of the 32 is no new key. */
    expect_set(&alice, user_topic("alice", "k7"), "k7", "new", "alice");
    /* Once one goes, a new one fits again. */
    assert_int_equal(put(&alice, user_topic("alice", "k0"), ""), RTM_PASS);
    expect_set(&alice, user_topic("alice", "k32"), "k32", "v", "alice");
    /* Every owner has its own limit. */
    online(&bob);
    expect_set(&bob, user_topic("bob", "k0"), "k0", "v", "bob");
    assert_int_equal(attributes(), 33);
}

static char *filled(size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, 'x', n);
    s[n] = '\0';
    return s;
}

static void test_byte_limit(void **state)
{
    (void)state;
    T.cfg.attr_rate = 1000;
    boot();
    online(&alice);
    char *big = filled(8193);
    /* One value alone over 8192 bytes. */
    expect_refused_n(&alice, user_topic("alice", "a"), big, 8193, true, "limit_exceeded");
    /* 8000 + 192 = 8192: exactly the limit. */
    expect_set_n(&alice, user_topic("alice", "a"), "a", big, 8000, "alice");
    expect_set_n(&alice, user_topic("alice", "b"), "b", big, 192, "alice");
    expect_refused_n(&alice, user_topic("alice", "c"), "x", 1, true, "limit_exceeded");
    /* Replacing counts the new size instead of the old: 8100 + 92 fits. */
    expect_set_n(&alice, user_topic("alice", "b"), "b", big, 92, "alice");
    expect_set_n(&alice, user_topic("alice", "a"), "a", big, 8100, "alice");
    /* ... but 8101 + 92 does not, and the refusal changes nothing: a is
     * still 8100 bytes, so 8100 + 92 still fits exactly. */
    expect_refused_n(&alice, user_topic("alice", "a"), big, 8101, true, "limit_exceeded");
    expect_refused_n(&alice, user_topic("alice", "b"), big, 93, true, "limit_exceeded");
    expect_set_n(&alice, user_topic("alice", "b"), "b", big, 92, "alice");
    assert_int_equal(attributes(), 2);
    free(big);
}

static void test_configured_limits(void **state)
{
    (void)state;
    T.cfg.max_attr_keys = 2;
    T.cfg.max_attr_bytes = 10;
    boot();
    online(&alice);
    expect_set(&alice, user_topic("alice", "a"), "a", "12345", "alice");
    expect_set(&alice, user_topic("alice", "b"), "b", "12345", "alice");
    expect_refused(&alice, user_topic("alice", "c"), "1", "limit_exceeded");
    expect_refused(&alice, user_topic("alice", "a"), "123456", "limit_exceeded");
    expect_set(&alice, user_topic("alice", "a"), "a", "1234", "alice");
}

/* max_attributes bounds what the broker holds in all, whoever writes:
 * channel attributes outlive their members. */
static void test_global_limit(void **state)
{
    (void)state;
    T.cfg.max_attributes = 2;
    boot();
    online(&alice);
    online(&root);
    expect_set(&alice, user_topic("alice", "a"), "a", "1", "alice");
    expect_set(&root, "rtm/c/room1/attr/notice", "notice", "hello", "root");
    expect_refused(&alice, user_topic("alice", "b"), "1", "limit_exceeded");
    expect_refused(&root, "rtm/c/room2/attr/notice", "1", "limit_exceeded");
    /* Replacing a key adds none; deleting one makes room. */
    expect_set(&alice, user_topic("alice", "a"), "a", "2", "alice");
    assert_int_equal(put(&root, "rtm/c/room1/attr/notice", ""), RTM_PASS);
    expect_set(&alice, user_topic("alice", "b"), "b", "1", "alice");
    assert_int_equal(attributes(), 2);
}

static void test_rate(void **state)
{
    (void)state;
    boot();
    online(&alice);
    /* attr_rate 10 per 5 s, bursts of 10: writes and deletes both draw. */
    for (int i = 0; i < 9; i++) {
        expect_set(&alice, ALICE_STATUS, "status", "v", "alice");
        T.now += 10;
    }
    assert_int_equal(put(&alice, user_topic("alice", "gone"), ""), RTM_PASS);
    expect_refused(&alice, ALICE_STATUS, "v", "rate_limited");
    expect_refused_n(&alice, ALICE_STATUS, "", 0, true, "rate_limited");
    assert_int_equal(stats().refused[RTM_ERR_RATE_LIMITED], 2);
    /* One write refills every 500 ms: at 500 ms after the first, one. */
    T.now = T0 + 499;
    expect_refused(&alice, ALICE_STATUS, "v", "rate_limited");
    T.now = T0 + 500;
    expect_set(&alice, ALICE_STATUS, "status", "again", "alice");
    expect_refused(&alice, ALICE_STATUS, "v", "rate_limited");
    /* The bucket is the writer's: bob is not affected. */
    online(&bob);
    expect_set(&bob, user_topic("bob", "status"), "status", "v", "bob");
    /* Full again 5 s after it last ran dry. */
    T.now += 5000;
    for (int i = 0; i < 10; i++)
        expect_set(&alice, ALICE_STATUS, "status", "v", "alice");
    expect_refused(&alice, ALICE_STATUS, "v", "rate_limited");
}

/* ================================================================================
 * lifetimes
 * ================================================================================ */

static void test_session_lifetime(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&alice2);
    expect_set(&alice, ALICE_STATUS, "status", "busy", "alice");
    expect_set(&alice2, user_topic("alice", "mood"), "mood", "ok", "alice");
    online(&bob);
    expect_set(&bob, user_topic("bob", "status"), "status", "here", "bob");
    /* One of alice's sessions ends: she is still online. */
    disc(&alice);
    tick();
    assert_int_equal(count_on(ALICE_STATUS), 0);
    rec_clear();
    /* Her last: an empty retained message on each key, to everyone. */
    disc(&alice2);
    for (int i = 0; i < 2; i++) {
        const char *topic = i == 0 ? ALICE_STATUS : user_topic("alice", "mood");
        assert_int_equal(count_on(topic), 1);
        for (size_t k = 0; k < T.rec.npubs; k++) {
            const struct pub *p = &T.rec.pubs[k];
            if (strcmp(p->topic, topic) != 0)
                continue;
            assert_true(p->retain);
            assert_int_equal(p->payload_len, 0);
            assert_null(p->client_id);
            assert_int_equal(p->qos, 1);
        }
    }
    assert_int_equal(count_on(user_topic("bob", "status")), 0);
    assert_int_equal(attributes(), 1);
    /* Back online, alice starts with nothing. */
    tick();
    rec_clear();
    online(&alice);
    expect_set(&alice, user_topic("alice", "mood"), "mood", "new", "alice");
    assert_int_equal(attributes(), 2);
    offline(&alice);
    assert_int_equal(attributes(), 1);
}

static void test_session_admin_writes(void **state)
{
    (void)state;
    boot();
    online(&root);
    /* An admin may write an online user's attributes; they go with the user. */
    online(&alice);
    expect_set(&root, ALICE_STATUS, "status", "set by the server", "root");
    assert_int_equal(write_check(&root, ALICE_STATUS, "x", true), RTM_ACL_ALLOW);
    /* With the session lifetime, an offline user has no attributes. */
    expect_refused(&root, user_topic("bob", "status"), "away", "invalid_state");
    assert_int_equal(put(&root, user_topic("bob", "status"), ""), RTM_PASS);
    assert_int_equal(attributes(), 1);
    disc(&alice);
    assert_int_equal(count_on(ALICE_STATUS), 1);
    assert_int_equal(attributes(), 0);
}

static void test_persistent_lifetime(void **state)
{
    (void)state;
    T.cfg.user_attr_lifetime = RTM_ATTR_PERSISTENT;
    boot();
    online(&alice);
    const char *kept = expect_set(&alice, ALICE_STATUS, "status", "busy", "alice");
    char *copy = strdup(kept);
    disc(&alice);
    tick();
    assert_int_equal(count_on(ALICE_STATUS), 0);
    assert_int_equal(attributes(), 1);
    /* Still readable, and an admin may write an offline user's. */
    online(&bob);
    assert_int_equal(read_msg(&bob, ALICE_STATUS, copy, true), RTM_ACL_ALLOW);
    expect_quiet();
    online(&root);
    expect_set(&root, user_topic("alice", "note"), "note", "vip", "root");
    assert_int_equal(attributes(), 2);
    free(copy);
}

/* ================================================================================
 * channel attributes
 * ================================================================================ */

static enum rtm_acl may_write(const struct rtm_client *c, const char *topic)
{
    rec_clear();
    return write_check(c, topic, "x", true);
}

static void test_channel_by_admins(void **state)
{
    (void)state;
    boot();
    online(&root);
    online(&ops);
    online(&carol);
    assert_int_equal(may_write(&root, ROOM_NOTICE), RTM_ACL_ALLOW);
    expect_quiet();
    expect_set(&root, ROOM_NOTICE, "notice", "welcome", "root");
    T.now += 1000;
    /* `by` is the last writer, `ts` its time. */
    expect_set(&ops, ROOM_NOTICE, "notice", "welcome!", "ops");
    assert_int_equal(attributes(), 1);
    /* carol is not a member: the dispatcher's WRITE check refuses her. */
    assert_int_equal(may_write(&carol, ROOM_NOTICE), RTM_ACL_DENY);
    assert_int_equal(T.rec.npubs, 1);
    assert_string_equal(jstr(T.rec.pubs[0].json, "code"), "not_party");
    assert_string_equal(jstr(T.rec.pubs[0].json, "topic"), ROOM_NOTICE);
    /* Channel attributes are not the writer's: nobody's going offline
     * touches them. */
    rec_clear();
    disc(&root);
    disc(&ops);
    tick();
    assert_int_equal(count_on(ROOM_NOTICE), 0);
    assert_int_equal(attributes(), 1);
}

static void test_channel_limits(void **state)
{
    (void)state;
    T.cfg.attr_rate = 1000;
    T.cfg.max_attr_keys = 3;
    boot();
    online(&root);
    for (int i = 0; i < 3; i++) {
        char key[8];
        snprintf(key, sizeof(key), "k%d", i);
        expect_set(&root, channel_topic("room1", key), key, "v", "root");
    }
    expect_refused(&root, channel_topic("room1", "k3"), "v", "limit_exceeded");
    /* Another channel, and a user of the same name, have their own. */
    expect_set(&root, channel_topic("room2", "k3"), "k3", "v", "root");
    online(&alice);
    expect_set(&root, user_topic("alice", "k3"), "k3", "v", "root");
    expect_refused(&root, channel_topic("room1", "k3"), "v", "limit_exceeded");
    assert_int_equal(put(&root, channel_topic("room1", "k1"), ""), RTM_PASS);
    expect_set(&root, channel_topic("room1", "k3"), "k3", "v", "root");
    assert_int_equal(attributes(), 5);
}

/* A member session writes its channel's attributes (the channels feature
 * decides who is a member; the dispatcher asks it). */
static void test_channel_by_members(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    online(&root);
    expect_set(&root, ROOM_NOTICE, "notice", "from the server", "root");
    rec_clear();
    send_raw(&alice, "rtm/c/room1/join", "", 0, false);
    assert_int_equal(count_type("joined"), 1);
    assert_int_equal(may_write(&alice, ROOM_NOTICE), RTM_ACL_ALLOW);
    T.now += 5;
    expect_set(&alice, ROOM_NOTICE, "notice", "meet at 5", "alice");
    /* bob is not a member; alice's other session is not either. */
    assert_int_equal(may_write(&bob, ROOM_NOTICE), RTM_ACL_DENY);
    assert_int_equal(may_write(&alice2, ROOM_NOTICE), RTM_ACL_DENY);
    /* Leaving ends the right to write, not the attribute. */
    rec_clear();
    send_raw(&alice, "rtm/c/room1/leave", "", 0, false);
    assert_int_equal(may_write(&alice, ROOM_NOTICE), RTM_ACL_DENY);
    assert_int_equal(attributes(), 1);
}

/* ================================================================================
 * reads
 * ================================================================================ */

static void test_read(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    char *current = strdup(expect_set(&alice, ALICE_STATUS, "status", "busy", "alice"));
    /* Any valid user reads the current value, retained or not. */
    assert_int_equal(read_msg(&bob, ALICE_STATUS, current, true), RTM_ACL_ALLOW);
    assert_int_equal(read_msg(&bob, ALICE_STATUS, current, false), RTM_ACL_ALLOW);
    assert_int_equal(read_msg(&alice, ALICE_STATUS, current, true), RTM_ACL_ALLOW);
    expect_quiet();
    assert_int_equal(read_check(&anon, ALICE_STATUS, current, true), RTM_ACL_DENY);
    /* A delete's fan-out. */
    assert_int_equal(read_msg(&bob, ALICE_STATUS, "", false), RTM_ACL_ALLOW);
    assert_int_equal(read_msg(&bob, ALICE_STATUS, "", true), RTM_ACL_ALLOW);
    expect_quiet();
    /* Not the plugin's stamp (left by a broker without the plugin): erased
     * when retained, refused either way. */
    assert_int_equal(read_msg(&bob, ALICE_STATUS, "busy", true), RTM_ACL_DENY);
    expect_erased(ALICE_STATUS);
    assert_int_equal(read_msg(&bob, ALICE_STATUS, "busy", false), RTM_ACL_DENY);
    expect_quiet();
    /* A stamp for another key. */
    assert_int_equal(read_msg(&bob, ALICE_STATUS, stamp("mood", "busy", "alice", T.now), true),
                     RTM_ACL_DENY);
    expect_erased(ALICE_STATUS);
    /* A stamp that is not the value held now (another ts): stale. */
    assert_int_equal(
        read_msg(&bob, ALICE_STATUS, stamp("status", "busy", "alice", T.now - 1), true),
        RTM_ACL_DENY);
    expect_erased(ALICE_STATUS);
    /* Once alice is offline, her last value is stale too. */
    offline(&alice);
    assert_int_equal(read_msg(&bob, ALICE_STATUS, current, true), RTM_ACL_DENY);
    expect_erased(ALICE_STATUS);
    assert_int_equal(read_msg(&bob, ALICE_STATUS, current, false), RTM_ACL_DENY);
    expect_quiet();
    free(current);
}

static void test_read_persistent(void **state)
{
    (void)state;
    T.cfg.user_attr_lifetime = RTM_ATTR_PERSISTENT;
    boot();
    online(&bob);
    /* Persistent user and channel attributes: any stamp of the plugin's
     * for that key is the store's current value. */
    assert_int_equal(
        read_msg(&bob, ALICE_STATUS, stamp("status", "busy", "alice", T0 - 86400000), true),
        RTM_ACL_ALLOW);
    assert_int_equal(read_msg(&bob, ROOM_NOTICE, stamp("notice", "hi", "root", T0 - 1), true),
                     RTM_ACL_ALLOW);
    expect_quiet();
    assert_int_equal(read_msg(&bob, ROOM_NOTICE, stamp("status", "hi", "root", T0), true),
                     RTM_ACL_DENY);
    expect_erased(ROOM_NOTICE);
    assert_int_equal(read_msg(&bob, ROOM_NOTICE, "{\"key\":\"notice\",\"value\":1}", true),
                     RTM_ACL_DENY);
    expect_erased(ROOM_NOTICE);
}

/* ================================================================================
 * read-back
 * ================================================================================ */

static void test_load_persistent(void **state)
{
    (void)state;
    T.cfg.user_attr_lifetime = RTM_ATTR_PERSISTENT;
    T.cfg.max_attr_keys = 2;
    boot();
    assert_true(load(ALICE_STATUS, stamp("status", "busy", "alice", T0 - 5000)));
    assert_true(load(user_topic("alice", "mood"), stamp("mood", "ok", "root", T0 - 4000)));
    expect_quiet();
    assert_true(load(ROOM_NOTICE, stamp("notice", "hello", "bob", T0 - 3000)));
    assert_int_equal(attributes(), 3);
    /* Loaded keys count: alice is at max_attr_keys. */
    online(&alice);
    expect_refused(&alice, user_topic("alice", "new"), "v", "limit_exceeded");
    expect_set(&alice, ALICE_STATUS, "status", "back", "alice");
    /* A stored value older than what was written since the start is no
     * news. */
    assert_true(load(ALICE_STATUS, stamp("status", "busy", "alice", T0 - 5000)));
    assert_int_equal(attributes(), 3);
    /* The stored set may exceed the limits (they were lowered): all of it
     * is counted. */
    assert_true(load(user_topic("alice", "extra"), stamp("extra", "x", "alice", T0 - 1)));
    assert_int_equal(attributes(), 4);
    assert_int_equal(put(&alice, user_topic("alice", "mood"), ""), RTM_PASS);
    expect_refused(&alice, user_topic("alice", "new"), "v", "limit_exceeded");
    assert_int_equal(put(&alice, user_topic("alice", "extra"), ""), RTM_PASS);
    expect_set(&alice, user_topic("alice", "new"), "new", "v", "alice");
}

static void test_load_bytes(void **state)
{
    (void)state;
    T.cfg.user_attr_lifetime = RTM_ATTR_PERSISTENT;
    T.cfg.max_attr_bytes = 10;
    boot();
    /* A value's length is the unescaped one: a " b and an é are 5 bytes. */
    assert_true(load(ROOM_NOTICE, "{\"key\":\"notice\",\"value\":\"a\\\"b\\u00e9\",\"by\":\"bob\","
                                  "\"ts\":1}"));
    online(&root);
    expect_refused(&root, channel_topic("room1", "x"), "123456", "limit_exceeded");
    /* A newer stored value replaces it: 3 bytes now. */
    assert_true(load(ROOM_NOTICE, stamp("notice", "abc", "bob", 2)));
    expect_set(&root, channel_topic("room1", "x"), "x", "1234567", "root");
    /* An older one does not: 3 + 7 still fit. */
    assert_true(load(ROOM_NOTICE, stamp("notice", "abcde", "bob", 1)));
    expect_set(&root, channel_topic("room1", "x"), "x", "1234567", "root");
    expect_refused(&root, channel_topic("room1", "x"), "12345678", "limit_exceeded");
    assert_int_equal(attributes(), 2);
}

static void test_load_session(void **state)
{
    (void)state;
    boot();
    /* Session attributes never outlive a restart: erased, not loaded. */
    assert_false(load(ALICE_STATUS, stamp("status", "busy", "alice", T0 - 5000)));
    expect_erased(ALICE_STATUS);
    assert_int_equal(attributes(), 0);
    /* Channel attributes persist, whatever the user lifetime. */
    assert_true(load(ROOM_NOTICE, stamp("notice", "hi", "root", T0 - 5000)));
    expect_quiet();
    /* A key alice wrote since the start is hers: the store holds (or is
     * about to hold) that value, whatever the loader saw before. */
    online(&alice);
    char *current = strdup(expect_set(&alice, ALICE_STATUS, "status", "new", "alice"));
    assert_true(load(ALICE_STATUS, stamp("status", "old", "alice", T0 - 5000)));
    expect_quiet();
    assert_true(load(ALICE_STATUS, current));
    expect_quiet();
    assert_int_equal(attributes(), 2);
    free(current);
}

static void test_load_refused(void **state)
{
    (void)state;
    T.cfg.user_attr_lifetime = RTM_ATTR_PERSISTENT;
    boot();
    /* Not the plugin's stamp: erased. */
    assert_false(load(ROOM_NOTICE, "hello"));
    expect_erased(ROOM_NOTICE);
    assert_false(load(ROOM_NOTICE, stamp("other", "hi", "root", 1)));
    expect_erased(ROOM_NOTICE);
    /* Not an attribute topic: logged, nothing erased. */
    assert_false(load("rtm/u/alice/devices/phone", stamp("phone", "x", "alice", 1)));
    expect_quiet();
    assert_true(logged("stored attribute rtm/u/alice/devices/phone not loaded"));
    assert_false(load("rtm/c/room1/attr/a@b", stamp("a@b", "x", "alice", 1)));
    expect_quiet();
    /* Nothing to load from an empty payload (the broker stores none). */
    assert_false(rtm_core_load_attr(T.core, ROOM_NOTICE, "", 0));
    expect_quiet();
    assert_int_equal(attributes(), 0);
}

/* ================================================================================
 * stats and memory
 * ================================================================================ */

static void test_stats_and_memory(void **state)
{
    (void)state;
    T.cfg.user_attr_lifetime = RTM_ATTR_PERSISTENT;
    boot();
    size_t pool0 = stats().pool_bytes;
    /* 20000 channels of one attribute each (ids of 6-7 characters): the
     * owner and the key record. */
    enum { N = 20000 };
    for (int i = 0; i < N; i++) {
        char ch[16];
        snprintf(ch, sizeof(ch), "ch%d", i);
        assert_true(load(channel_topic(ch, "notice"), stamp("notice", "hello", "root", T0)));
    }
    struct rtm_core_stats s = stats();
    assert_int_equal(s.attributes, N);
    size_t per = (s.pool_bytes - pool0) / N;
    print_message("pool bytes per one-key channel: %zu\n", per);
    assert_true(per <= 96);
    /* 32 keys of one user: the key records, the owner shared. */
    size_t pool1 = s.pool_bytes;
    for (int u = 0; u < 500; u++) {
        char uid[16];
        snprintf(uid, sizeof(uid), "user%d", u);
        for (int k = 0; k < 32; k++) {
            char key[16];
            snprintf(key, sizeof(key), "key%d", k);
            assert_true(load(user_topic(uid, key), stamp(key, "v", uid, T0)));
        }
    }
    s = stats();
    per = (s.pool_bytes - pool1) / (500 * 32);
    print_message("pool bytes per key of a 32-key user: %zu\n", per);
    assert_true(per <= 48);
    assert_int_equal(s.attributes, N + 500 * 32);
    /* Owners without keys are freed: the pool has only the other records.
     * (root's first write allocates its rate bucket.) */
    online(&root);
    assert_int_equal(put(&root, channel_topic("none", "k"), ""), RTM_PASS);
    size_t records = stats().pool_records;
    assert_int_equal(put(&root, channel_topic("ch0", "notice"), ""), RTM_PASS);
    assert_int_equal(stats().pool_records, records - 2);
    assert_int_equal(stats().attributes, N + 500 * 32 - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stamp, setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_escaping, setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_delete, setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_key_limit, setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_byte_limit, setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_configured_limits, setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_global_limit, setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_rate, setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_session_lifetime, setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_session_admin_writes, setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_persistent_lifetime, setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_channel_by_admins, setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_channel_limits, setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_channel_by_members, setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_read, setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_read_persistent, setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_load_persistent, setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_load_bytes, setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_load_session, setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_load_refused, setup, core_teardown),
        cmocka_unit_test_setup_teardown(test_stats_and_memory, setup, core_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
