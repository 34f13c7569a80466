/*
 * User and channel attributes (SPEC 8.3, 8.4) through the real broker:
 * another user reads alice's attributes stamped, at once and at every
 * change; only alice (or an admin) writes them; the limits, the rate and
 * malformed writes are refused with an error naming the topic and PUBACK
 * 0x87; listing wildcards are refused; with the session lifetime they are
 * deleted when alice goes offline and never come back after a restart
 * (clean or kill -9), while persistent user attributes and channel
 * attributes come back, and their limits still count once the loader has
 * read them back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jpush_mock.h"

#define RC_NO_MATCHING_SUBSCRIBERS 0x10
#define RC_NOT_AUTHORIZED          0x87

static const char *const persistence[] = {"persistence true", "persistence_location @DIR@/",
                                          "autosave_interval 1", NULL};

static struct broker *start(const char *const *plugin_opts, bool persist)
{
    struct broker_opts o = {.plugin_opts = plugin_opts,
                            .extra_lines = persist ? persistence : NULL};
    return broker_start(&o);
}

static struct client *open_user(const struct broker *b, const char *uid)
{
    struct client *c = open5(b, uid, uid);
    CHECK_EQ_INT(client_subscribe(c, inbox(uid), 1), 1);
    return c;
}

static const char *user_attr(const char *uid, const char *key)
{
    return rt_fmt("rtm/u/%s/attr/%s", uid, key);
}

static const char *channel_attr(const char *ch, const char *key)
{
    return rt_fmt("rtm/c/%s/attr/%s", ch, key);
}

/* Accepted: PUBACK 0, or 0x10 when nobody subscribes (the broker stores
 * it all the same). */
static void set(struct client *c, const char *topic, const char *value)
{
    int rc = client_publish(c, topic, value, (int)strlen(value), 1, true);
    CHECKF(rc == 0 || rc == RC_NO_MATCHING_SUBSCRIBERS, "%s: setting %s: reason code 0x%02x",
           client_id(c), topic, (unsigned)rc);
}

static void delete (struct client *c, const char *topic)
{
    int rc = client_publish(c, topic, "", 0, 1, true);
    CHECKF(rc == 0 || rc == RC_NO_MATCHING_SUBSCRIBERS, "%s: deleting %s: reason code 0x%02x",
           client_id(c), topic, (unsigned)rc);
}

static void expect_refused(struct client *c, const char *topic, const char *value, int len,
                           bool retain, const char *code)
{
    int rc = client_publish(c, topic, value, len, 1, retain);
    CHECKF(rc == RC_NOT_AUTHORIZED, "%s on %s: reason code 0x%02x, expected 0x87", code, topic,
           (unsigned)rc);
    EXPECT_TOPIC_ERROR(c, client_id(c), code, topic);
}

/* The next message on `topic` is the stamp of `value` for `key` by `by`;
 * `retained` says whether it came from the retained store. */
static struct msg *expect_attr(struct client *c, const char *topic, const char *key,
                               const char *value, const char *by, bool retained)
{
    struct msg *m = client_wait_msg(c, topic, WAIT_MS);
    if (!m) {
        client_dump(c);
        FAIL("%s: no attribute on %s within %d ms", client_id(c), topic, WAIT_MS);
    }
    CHECKF(m->json, "%s: not JSON on %s: %s", client_id(c), topic, m->payload);
    EXPECT_KEYS(m->json, "key", "value", "by", "ts");
    EXPECT_STR(m->json, "key", key);
    EXPECT_STR(m->json, "value", value);
    EXPECT_STR(m->json, "by", by);
    long long ts = GET_INT(m->json, "ts");
    CHECKF(ts > now_wall_ms() - 60000 && ts <= now_wall_ms() + 1000, "ts %lld is not recent", ts);
    CHECKF(m->retain == retained, "%s: retain flag %d on %s", client_id(c), m->retain, topic);
    return m;
}

/* The next message on `topic` is a delete: an empty payload. */
static void expect_deleted(struct client *c, const char *topic)
{
    struct msg *m = client_wait_msg(c, topic, WAIT_MS);
    if (!m) {
        client_dump(c);
        FAIL("%s: no delete on %s within %d ms", client_id(c), topic, WAIT_MS);
    }
    CHECKF(m->len == 0, "%s: expected an empty message on %s, got %s", client_id(c), topic,
           m->payload);
}

static void expect_nothing(struct client *c)
{
    client_flush(c);
    EXPECT_NOTHING_ELSE(c, NULL);
}

/* --- reading and writing ------------------------------------------------------- */

static void test_others_read(void)
{
    static const char *const opts[] = {"admin_users ops", NULL};
    struct broker *b = start(opts, false);
    struct client *alice = open_user(b, "alice");
    struct client *bob = open_user(b, "bob");
    set(alice, user_attr("alice", "status"), "busy \"in a call\"\n\xe2\x98\x8e");

    /* Subscribing gives the current values at once, then every change. */
    CHECK_EQ_INT(client_subscribe(bob, "rtm/u/alice/attr/+", 1), 1);
    expect_attr(bob, user_attr("alice", "status"), "status", "busy \"in a call\"\n\xe2\x98\x8e",
                "alice", true);
    set(alice, user_attr("alice", "status"), "free");
    expect_attr(bob, user_attr("alice", "status"), "status", "free", "alice", false);
    set(alice, user_attr("alice", "mood"), "fine");
    expect_attr(bob, user_attr("alice", "mood"), "mood", "fine", "alice", false);

    /* A stamp a client sends is only a value. */
    const char *forged = "{\"key\":\"status\",\"value\":\"x\",\"by\":\"carol\",\"ts\":1}";
    set(alice, user_attr("alice", "status"), forged);
    expect_attr(bob, user_attr("alice", "status"), "status", forged, "alice", false);

    /* An admin writes for alice; the stamp names the admin. */
    struct client *ops = open_user(b, "ops");
    set(ops, user_attr("alice", "role"), "moderator");
    expect_attr(bob, user_attr("alice", "role"), "role", "moderator", "ops", false);

    /* A delete reaches subscribers as an empty message. */
    delete (alice, user_attr("alice", "mood"));
    expect_deleted(bob, user_attr("alice", "mood"));

    /* A new subscriber gets exactly what is left. */
    struct client *carol = open_user(b, "carol");
    CHECK_EQ_INT(client_subscribe(carol, "rtm/u/alice/attr/#", 1), 1);
    expect_attr(carol, user_attr("alice", "status"), "status", forged, "alice", true);
    expect_attr(carol, user_attr("alice", "role"), "role", "moderator", "ops", true);
    expect_nothing(carol);
    expect_nothing(bob);
    client_free(carol);
    client_free(ops);
    client_free(alice);
    client_free(bob);
    broker_free(b);
}

static void test_refusals(void)
{
    static const char *const opts[] = {"admin_users ops", "max_attr_keys 2", "max_attr_bytes 16",
                                       NULL};
    struct broker *b = start(opts, false);
    struct client *alice = open_user(b, "alice");
    struct client *bob = open_user(b, "bob");
    struct client *mallory = open_user(b, "mallory");
    CHECK_EQ_INT(client_subscribe(bob, "rtm/u/alice/attr/+", 1), 1);

    /* Only alice (or an admin) writes alice's attributes. */
    expect_refused(mallory, user_attr("alice", "status"), "hacked", 6, true, "not_party");
    /* Retained only, UTF-8 only, no NUL. */
    expect_refused(alice, user_attr("alice", "status"), "busy", 4, false, "bad_request");
    expect_refused(alice, user_attr("alice", "status"), "bad \xc3\x28", 6, true, "bad_request");
    expect_refused(alice, user_attr("alice", "status"), "a\0b", 3, true, "bad_request");
    /* max_attr_keys 2, max_attr_bytes 16. */
    set(alice, user_attr("alice", "a"), "0123456789");
    set(alice, user_attr("alice", "b"), "012345");
    expect_refused(alice, user_attr("alice", "c"), "x", 1, true, "limit_exceeded");
    expect_refused(alice, user_attr("alice", "b"), "0123456", 7, true, "limit_exceeded");
    set(alice, user_attr("alice", "b"), "01234"); /* replacing counts its new size */
    expect_attr(bob, user_attr("alice", "a"), "a", "0123456789", "alice", false);
    expect_attr(bob, user_attr("alice", "b"), "b", "012345", "alice", false);
    expect_attr(bob, user_attr("alice", "b"), "b", "01234", "alice", false);
    expect_nothing(bob);

    /* Listing users' or channels' attributes is refused; one user's or one
     * channel's are fine. */
    const char *const refused[] = {"rtm/u/+/attr/+", "rtm/u/+/attr/#", "rtm/c/+/attr/#",
                                   "rtm/c/+/attr/notice"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        int granted = client_subscribe(mallory, refused[i], 1);
        CHECKF(granted >= 0x80, "mallory may subscribe to %s (granted 0x%02x)", refused[i],
               (unsigned)granted);
    }
    CHECK_EQ_INT(client_subscribe(mallory, "rtm/c/room1/attr/#", 1), 1);
    expect_nothing(mallory);
    expect_nothing(alice);
    client_free(alice);
    client_free(bob);
    client_free(mallory);
    broker_free(b);
}

static void test_rate(void)
{
    /* attr_rate 2: two writes, then one every 2.5 s. */
    static const char *const opts[] = {"attr_rate 2", NULL};
    struct broker *b = start(opts, false);
    struct client *alice = open_user(b, "alice");
    set(alice, user_attr("alice", "status"), "one");
    delete (alice, user_attr("alice", "other"));
    /* Deletes draw from the bucket too: this is the third write. */
    int64_t t0 = now_mono_ms();
    int rc = client_publish(alice, user_attr("alice", "status"), "three", 5, 1, true);
    if (now_mono_ms() - t0 < 2000) {
        CHECKF(rc == RC_NOT_AUTHORIZED, "third write: reason code 0x%02x", (unsigned)rc);
        EXPECT_TOPIC_ERROR(alice, "alice", "rate_limited", user_attr("alice", "status"));
    }
    expect_nothing(alice);
    client_free(alice);
    broker_free(b);
}

/* --- channel attributes ---------------------------------------------------------- */

static void test_channel(void)
{
    static const char *const opts[] = {"admin_users ops,app", NULL};
    struct broker *b = start(opts, false);
    struct client *ops = open_user(b, "ops");
    struct client *app = open_user(b, "app");
    struct client *bob = open_user(b, "bob");
    set(ops, channel_attr("room1", "notice"), "welcome");
    CHECK_EQ_INT(client_subscribe(bob, "rtm/c/room1/attr/+", 1), 1);
    expect_attr(bob, channel_attr("room1", "notice"), "notice", "welcome", "ops", true);
    /* `by` is the last writer. */
    set(app, channel_attr("room1", "notice"), "welcome!");
    expect_attr(bob, channel_attr("room1", "notice"), "notice", "welcome!", "app", false);
    /* bob is no member: refused. */
    expect_refused(bob, channel_attr("room1", "notice"), "mine", 4, true, "not_party");

    /* A member writes: bob joins and may. */
    CHECK(client_publish_str(bob, "rtm/c/room1/join", "", 1) >= 0);
    CHECKF(client_wait_json(bob, inbox("bob"), WAIT_MS, "type", "joined", (char *)NULL),
           "bob's join got no joined answer");
    set(bob, channel_attr("room1", "notice"), "bob was here");
    expect_attr(bob, channel_attr("room1", "notice"), "notice", "bob was here", "bob", false);
    expect_nothing(bob);
    client_free(ops);
    client_free(app);
    client_free(bob);
    broker_free(b);
}

/* --- lifetimes --------------------------------------------------------------------- */

static void test_session_offline(void)
{
    struct broker *b = start(NULL, false);
    struct client *alice = open_user(b, "alice");
    struct client *alice2 = open5(b, "alice-web", "alice");
    struct client *bob = open_user(b, "bob");
    CHECK_EQ_INT(client_subscribe(bob, "rtm/u/alice/attr/+", 1), 1);
    set(alice, user_attr("alice", "status"), "busy");
    set(alice2, user_attr("alice", "mood"), "ok");
    expect_attr(bob, user_attr("alice", "status"), "status", "busy", "alice", false);
    expect_attr(bob, user_attr("alice", "mood"), "mood", "ok", "alice", false);
    /* One of two sessions goes: nothing changes. */
    client_free(alice2);
    expect_nothing(bob);
    /* The last one: every key is deleted. */
    client_free(alice);
    expect_deleted(bob, user_attr("alice", "status"));
    expect_deleted(bob, user_attr("alice", "mood"));
    expect_nothing(bob);
    /* The retained store holds nothing more: a new subscriber gets none. */
    struct client *carol = open_user(b, "carol");
    CHECK_EQ_INT(client_subscribe(carol, "rtm/u/alice/attr/#", 1), 1);
    expect_nothing(carol);
    client_free(carol);
    client_free(bob);
    broker_free(b);
}

/* Two autosaves begun after the writes: the first, which began after them
 * too, has completed (test_devices_restart). */
static void await_autosave(struct broker *b)
{
    long saving = broker_log_mark(b);
    int64_t deadline = now_mono_ms() + 6000;
    while (broker_log_lines(b, saving, "Saving in-memory database", (char *)NULL) < 2) {
        CHECKF(now_mono_ms() < deadline, "no two autosaves within 6 s (autosave_interval 1)");
        rt_wait_ms(20);
    }
}

static void restart(struct broker *b, bool kill9, size_t attributes)
{
    if (kill9) {
        await_autosave(b);
        broker_kill9(b);
    } else {
        broker_stop(b);
    }
    long mark = broker_log_mark(b);
    broker_restart(b);
    const char *loaded = rt_fmt(", %zu attribute(s)", attributes);
    if (!broker_wait_log_line(b, mark, WAIT_MS, "device registry read back", loaded,
                              (char *)NULL)) {
        if (broker_wait_log(b, mark, "device registry read back", 0))
            FAIL("the loader read back another number of attributes than %zu", attributes);
        FAIL("no \"device registry read back\" line within %d ms", WAIT_MS);
    }
}

/* Session attributes of a user online when the broker went down: stored
 * by the broker, erased when read back, never delivered. */
static void session_restart(bool kill9)
{
    static const char *const opts[] = {"admin_users ops", NULL};
    struct broker *b = start(opts, true);
    struct client *alice = open_user(b, "alice");
    struct client *ops = open_user(b, "ops");
    set(alice, user_attr("alice", "status"), "busy");
    set(alice, user_attr("alice", "mood"), "ok");
    set(ops, channel_attr("room1", "notice"), "kept");
    long mark = broker_log_mark(b);
    restart(b, kill9, 1);
    /* The broker saves at a clean stop without telling plugins that its
     * clients go: both ways, the store held them and the loader erased. */
    CHECK_EQ_INT(broker_log_lines(b, mark, "erased the retained message on rtm/u/alice/attr/",
                                  "before the restart", (char *)NULL),
                 2);
    client_free(alice);
    client_free(ops);

    struct client *bob = open_user(b, "bob");
    CHECK_EQ_INT(client_subscribe(bob, "rtm/u/alice/attr/+", 1), 1);
    CHECK_EQ_INT(client_subscribe(bob, "rtm/c/room1/attr/+", 1), 1);
    expect_attr(bob, channel_attr("room1", "notice"), "notice", "kept", "ops", true);
    expect_nothing(bob);
    /* alice is back: she starts with no attributes. */
    alice = open_user(b, "alice");
    CHECK_EQ_INT(client_subscribe(alice, "rtm/u/alice/attr/#", 1), 1);
    expect_nothing(alice);
    client_free(alice);
    client_free(bob);
    broker_free(b);
}

static void test_session_clean_restart(void)
{
    session_restart(false);
}

static void test_session_kill9_restart(void)
{
    session_restart(true);
}

/* Persistent user attributes and channel attributes come back as they
 * were, and count against the limits once read back. */
static void persistent_restart(bool kill9)
{
    static const char *const opts[] = {"admin_users ops", "user_attr_lifetime persistent",
                                       "max_attr_keys 3", "attr_rate 100", NULL};
    struct broker *b = start(opts, true);
    struct client *alice = open_user(b, "alice");
    struct client *ops = open_user(b, "ops");
    struct client *bob = open_user(b, "bob");
    CHECK_EQ_INT(client_subscribe(bob, "rtm/u/alice/attr/+", 1), 1);
    CHECK_EQ_INT(client_subscribe(bob, "rtm/c/room1/attr/+", 1), 1);
    const char *keys[] = {"k1", "k2", "k3"};
    char *before[6];
    for (int i = 0; i < 3; i++) {
        set(alice, user_attr("alice", keys[i]), rt_fmt("value %d", i));
        before[i] = strdup(expect_attr(bob, user_attr("alice", keys[i]), keys[i],
                                       rt_fmt("value %d", i), "alice", false)
                               ->payload);
        set(ops, channel_attr("room1", keys[i]), rt_fmt("notice %d", i));
        before[3 + i] = strdup(expect_attr(bob, channel_attr("room1", keys[i]), keys[i],
                                           rt_fmt("notice %d", i), "ops", false)
                                   ->payload);
    }
    /* alice goes offline: her attributes stay. */
    client_free(alice);
    expect_nothing(bob);
    client_free(bob);
    client_free(ops);
    restart(b, kill9, 6);

    /* The same stamps as before, from the retained store. */
    bob = open_user(b, "bob");
    CHECK_EQ_INT(client_subscribe(bob, "rtm/u/alice/attr/+", 1), 1);
    CHECK_EQ_INT(client_subscribe(bob, "rtm/c/room1/attr/+", 1), 1);
    for (int i = 0; i < 6; i++) {
        const char *topic =
            i < 3 ? user_attr("alice", keys[i]) : channel_attr("room1", keys[i - 3]);
        struct msg *m = client_wait_msg(bob, topic, WAIT_MS);
        CHECKF(m && m->retain && strcmp(m->payload, before[i]) == 0,
               "%s after the restart: %s, expected %s", topic, m ? m->payload : "nothing",
               before[i]);
        free(before[i]);
    }
    expect_nothing(bob);

    /* The read-back counts: both owners are at max_attr_keys. */
    alice = open_user(b, "alice");
    ops = open_user(b, "ops");
    expect_refused(alice, user_attr("alice", "k4"), "v", 1, true, "limit_exceeded");
    expect_refused(ops, channel_attr("room1", "k4"), "v", 1, true, "limit_exceeded");
    set(alice, user_attr("alice", "k1"), "replaced");
    expect_attr(bob, user_attr("alice", "k1"), "k1", "replaced", "alice", false);
    delete (ops, channel_attr("room1", "k2"));
    expect_deleted(bob, channel_attr("room1", "k2"));
    set(ops, channel_attr("room1", "k4"), "fits again");
    expect_attr(bob, channel_attr("room1", "k4"), "k4", "fits again", "ops", false);
    expect_nothing(bob);
    client_free(alice);
    client_free(ops);
    client_free(bob);
    broker_free(b);
}

static void test_persistent_clean_restart(void)
{
    persistent_restart(false);
}

static void test_persistent_kill9_restart(void)
{
    persistent_restart(true);
}

int main(int argc, char **argv)
{
    static const struct test_case cases[] = {
        {"others_read", test_others_read},
        {"refusals", test_refusals},
        {"rate", test_rate},
        {"channel", test_channel},
        {"session_offline", test_session_offline},
        {"session_clean_restart", test_session_clean_restart},
        {"session_kill9_restart", test_session_kill9_restart},
        {"persistent_clean_restart", test_persistent_clean_restart},
        {"persistent_kill9_restart", test_persistent_kill9_restart},
    };
    return run_tests(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
