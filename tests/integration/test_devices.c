/*
 * Registering devices (SPEC 6.1, PROTOCOL.md section 7): a retained
 * registration is stored in its normalized form; a non-retained, malformed or
 * foreign one is refused (nothing stored, MQTT 5 reason code >= 0x80, an
 * error with `device` to the sending session only); admins register and read
 * for anyone, nobody else reads another user's devices; an empty retained
 * payload unregisters; max_devices; a token belongs to one uid at a time.
 * "Nothing stored" is checked by a later subscriber that has received
 * everything the broker queued for it (client_flush()) and holds no such message.
 */
#include <string.h>

#include "jpush_mock.h"

#define ADMIN "ops"

static struct broker *start(const char *const *plugin_opts)
{
    struct broker_opts o = {.plugin_opts = plugin_opts};
    return broker_start(&o);
}

/* Subscribes `c` to the devices of uid and returns once every retained
 * registration has arrived. */
static void list_devices(struct client *c, const char *uid)
{
    int granted = client_subscribe(c, rt_fmt("rtm/u/%s/devices/+", uid), 1);
    CHECKF(granted == 1, "%s: subscribing to the devices of %s granted %d, expected 1",
           client_id(c), uid, granted);
    client_flush(c);
}

/* Consumes the stored registration of uid/device on `c`, checks it is
 * exactly the normalized payload and returns it. */
static void expect_stored_at(const char *file, int line, struct client *c, const char *uid,
                             const char *device, const char *platform, const char *token)
{
    struct msg *m = client_wait_fields(c, device_topic(uid, device), WAIT_MS, (char *)NULL);
    if (!m) {
        client_dump(c);
        rt_fail(file, line, "%s: no stored registration of device %s of %s", client_id(c), device,
                uid);
    }
    rt_expect_keys(file, line, m->json, "provider", "platform", "token", (char *)NULL);
    rt_expect_str(file, line, m->json, "provider", "jpush");
    rt_expect_str(file, line, m->json, "platform", platform);
    rt_expect_str(file, line, m->json, "token", token);
}
#define EXPECT_STORED(c, uid, dev, platform, token)                                                \
    expect_stored_at(__FILE__, __LINE__, (c), (uid), (dev), (platform), (token))

static void count_device_msg(const struct msg *m, void *ud)
{
    if (!m->consumed && strstr(m->topic, "/devices/"))
        ++*(int *)ud;
}

/* Fails when `c` holds a registration no check has consumed. */
static void expect_no_more_devices_at(const char *file, int line, struct client *c)
{
    int n = 0;
    client_foreach(c, NULL, count_device_msg, &n);
    if (n != 0) {
        client_dump(c);
        rt_fail(file, line, "%s: %d unexpected registration(s) (marked * above)", client_id(c), n);
    }
}
#define EXPECT_NO_MORE_DEVICES(c) expect_no_more_devices_at(__FILE__, __LINE__, (c))

/* The error a refused registration gets on the sender's inbox. */
static void expect_device_error_at(const char *file, int line, struct client *c, const char *uid,
                                   const char *device)
{
    cJSON *ev = client_wait_json(c, inbox(uid), WAIT_MS, "type", "error", (char *)NULL);
    if (!ev) {
        client_dump(c);
        rt_fail(file, line, "%s: no error for the refused registration of device %s on %s",
                client_id(c), device, inbox(uid));
    }
    rt_expect_keys(file, line, ev, "type", "code", "message", "device", "ts", (char *)NULL);
    rt_expect_str(file, line, ev, "code", "bad_request");
    rt_expect_str(file, line, ev, "device", device);
    rt_expect_ts_now(file, line, ev);
}
#define EXPECT_DEVICE_ERROR(c, uid, dev)                                                           \
    expect_device_error_at(__FILE__, __LINE__, (c), (uid), (dev))

/* Publishes (QoS 1) and checks the MQTT 5 reason code is a refusal. */
static void publish_refused_at(const char *file, int line, struct client *c, const char *topic,
                               const char *payload, bool retain, const char *what)
{
    int rc = client_publish(c, topic, payload, (int)strlen(payload), 1, retain);
    if (rc < 0x80)
        rt_fail(file, line, "%s (%s to %s): reason code 0x%02x, expected >= 0x80 (refused)", what,
                payload, topic, (unsigned)rc);
}
#define PUBLISH_REFUSED(c, topic, payload, retain, what)                                           \
    publish_refused_at(__FILE__, __LINE__, (c), (topic), (payload), (retain), (what))

static struct client *open5_inbox(const struct broker *b, const char *id, const char *user)
{
    struct client *c = open5(b, id, user);
    CHECK_EQ_INT(client_subscribe(c, inbox(user ? user : id), 1), 1);
    return c;
}

static void test_stored_normalized(void)
{
    struct broker *b = start(NULL);
    struct client *bob = open5(b, "bob-phone", "bob");
    /* Extra fields are not stored; the stored copy is the normalized one. */
    const char *payload = "{\"token\":\"1a0018970a0f4cd7b5e\",\"platform\":\"android\","
                          "\"provider\":\"jpush\",\"extra\":{\"x\":1},\"note\":\"hi\"}";
    int rc =
        client_publish(bob, device_topic("bob", "phone-1"), payload, (int)strlen(payload), 1, true);
    CHECKF(rc == 0 || rc == 0x10, "registration: reason code 0x%02x, expected success",
           (unsigned)rc);
    device_register(bob, "bob", "tablet_2", "ios", "0c1:a.B-z_9");
    device_register(bob, "bob", "watch", "hmos", "hm-token-3");

    /* A later subscriber (another session of bob) gets all three, retained. */
    struct client *later = open5(b, "bob-web", "bob");
    list_devices(later, "bob");
    struct msg *m = client_wait_fields(later, device_topic("bob", "phone-1"), 0, (char *)NULL);
    CHECK(m != NULL);
    CHECKF(m->retain, "the stored registration was not delivered as retained");
    CHECKF(strcmp(m->payload, "{\"provider\":\"jpush\",\"platform\":\"android\",\"token\":"
                              "\"1a0018970a0f4cd7b5e\"}") == 0,
           "stored payload %s, expected exactly the normalized registration", m->payload);
    EXPECT_STORED(later, "bob", "tablet_2", "ios", "0c1:a.B-z_9");
    EXPECT_STORED(later, "bob", "watch", "hmos", "hm-token-3");
    EXPECT_NOTHING_ELSE(later, NULL);
    /* The registering session got no error. */
    client_flush(bob);
    EXPECT_NOTHING_ELSE(bob, NULL);
    client_free(later);
    client_free(bob);
    broker_free(b);
}

static void test_refused_malformed(void)
{
    struct broker *b = start(NULL);
    struct client *phone = open5_inbox(b, "bob-phone", "bob");
    struct client *tablet = open5_inbox(b, "bob-tablet", "bob");
    list_devices(tablet, "bob");
    const char *ok = device_json("android", "tok-1");
    struct {
        const char *device;
        const char *payload;
        bool retain;
    } cases[] = {
        {"not-retained", ok, false},
        {"not-json", "{\"provider\":\"jpush\",", true},
        {"not-object", "[\"jpush\",\"android\",\"tok\"]", true},
        {"fcm", "{\"provider\":\"fcm\",\"platform\":\"android\",\"token\":\"tok-2\"}", true},
        {"no-provider", "{\"platform\":\"android\",\"token\":\"tok-3\"}", true},
        {"windows", "{\"provider\":\"jpush\",\"platform\":\"windows\",\"token\":\"tok-4\"}", true},
        {"no-platform", "{\"provider\":\"jpush\",\"token\":\"tok-5\"}", true},
        {"empty-token", "{\"provider\":\"jpush\",\"platform\":\"ios\",\"token\":\"\"}", true},
        {"space-token", "{\"provider\":\"jpush\",\"platform\":\"ios\",\"token\":\"a b\"}", true},
        {"quote-token", "{\"provider\":\"jpush\",\"platform\":\"ios\",\"token\":\"a\\\"b\"}", true},
        {"number-token", "{\"provider\":\"jpush\",\"platform\":\"ios\",\"token\":12345}", true},
        {"no-token", "{\"provider\":\"jpush\",\"platform\":\"ios\"}", true},
        {"long-token",
         rt_fmt("{\"provider\":\"jpush\",\"platform\":\"ios\",\"token\":\"%0257d\"}", 0), true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        PUBLISH_REFUSED(phone, device_topic("bob", cases[i].device), cases[i].payload,
                        cases[i].retain, cases[i].device);
        EXPECT_DEVICE_ERROR(phone, "bob", cases[i].device);
    }
    /* The longest valid token (256) is accepted: the limit is exact. */
    const char *tok256 = rt_fmt("%0256d", 7);
    device_register(phone, "bob", "long-ok", "ios", tok256);

    /* The refusals were forwarded to nobody: the tablet, subscribed to bob's
     * devices and inbox, saw only the accepted registration, and no error. */
    client_flush(tablet);
    EXPECT_STORED(tablet, "bob", "long-ok", "ios", tok256);
    EXPECT_NOTHING_ELSE(tablet, NULL);
    /* Nothing refused was stored. */
    struct client *later = open5(b, "bob-web", "bob");
    list_devices(later, "bob");
    EXPECT_STORED(later, "bob", "long-ok", "ios", tok256);
    EXPECT_NOTHING_ELSE(later, NULL);
    client_flush(phone);
    EXPECT_NOTHING_ELSE(phone, NULL);
    client_free(later);
    client_free(tablet);
    client_free(phone);
    broker_free(b);
}

/* Registering for another uid is refused like a malformed registration. */
static void test_refused_other_uid(void)
{
    static const char *const opts[] = {"admin_users " ADMIN, NULL};
    struct broker *b = start(opts);
    struct client *phone = open5_inbox(b, "bob-phone", "bob");
    struct client *tablet = open5_inbox(b, "bob-tablet", "bob");
    struct client *carol = open5_inbox(b, "carol", NULL);
    list_devices(carol, "carol");

    PUBLISH_REFUSED(phone, device_topic("carol", "stolen"), device_json("android", "tok-b"), true,
                    "bob registering a device of carol");
    /* Nothing forwarded to carol, nothing stored under carol. */
    client_flush(carol);
    EXPECT_NOTHING_ELSE(carol, NULL);
    struct client *admin = open5(b, "ops-1", ADMIN);
    list_devices(admin, "carol");
    EXPECT_NOTHING_ELSE(admin, NULL);
    /* The sending session is told, and only it. */
    EXPECT_DEVICE_ERROR(phone, "bob", "stolen");
    client_flush(tablet);
    EXPECT_NOTHING_ELSE(tablet, NULL);
    client_free(admin);
    client_free(carol);
    client_free(tablet);
    client_free(phone);
    broker_free(b);
}

/* Issue 13: bob's own devices topic with a malformed device id (a dot, 65
 * characters, empty) is a bad registration, not someone else's topic: MQTT 5
 * refusal, bad_request naming the id, for bob and for an admin. Anyone else
 * still gets not_party there. Nothing is stored or forwarded. */
static void test_refused_malformed_device_id(void)
{
    static const char *const opts[] = {"admin_users " ADMIN, NULL};
    struct broker *b = start(opts);
    struct client *phone = open5_inbox(b, "bob-phone", "bob");
    struct client *tablet = open5_inbox(b, "bob-tablet", "bob");
    struct client *ops = open5_inbox(b, "ops-1", ADMIN);
    struct client *alice = open5_inbox(b, "alice", NULL);
    list_devices(tablet, "bob");
    char long_id[66];
    memset(long_id, 'd', 65);
    long_id[65] = '\0';
    const char *const ids[] = {"a.b", long_id, ""};
    /* The error names at most 64 bytes of the id. */
    const char *const named[] = {"a.b", long_id + 1, ""};
    const char *reg = device_json("android", "tok-malformed");
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        const char *topic = device_topic("bob", ids[i]);
        PUBLISH_REFUSED(phone, topic, reg, true, "bob, a malformed device id");
        EXPECT_DEVICE_ERROR(phone, "bob", named[i]);
        PUBLISH_REFUSED(ops, topic, reg, true, "an admin, a malformed device id");
        EXPECT_DEVICE_ERROR(ops, ADMIN, named[i]);
        PUBLISH_REFUSED(alice, topic, reg, true, "alice, bob's malformed device id");
        EXPECT_ERROR(alice, "alice", "not_party", NULL, NULL);
    }
    /* Nothing reached bob's other session, nothing was stored. */
    client_flush(tablet);
    EXPECT_NOTHING_ELSE(tablet, NULL);
    struct client *later = open5(b, "bob-web", "bob");
    list_devices(later, "bob");
    CHECK_EQ_INT(client_subscribe(later, "rtm/u/bob/devices/#", 1), 1);
    client_flush(later);
    EXPECT_NOTHING_ELSE(later, NULL);
    client_free(later);
    client_free(alice);
    client_free(ops);
    client_free(tablet);
    client_free(phone);
    broker_free(b);
}

static void test_admin_and_read_rules(void)
{
    static const char *const opts[] = {"admin_users " ADMIN, NULL};
    struct broker *b = start(opts);
    struct client *ops = open5(b, "ops-server", ADMIN);
    /* An admin registers for a uid that has never connected. */
    device_register(ops, "dave", "d1", "android", "tok-dave-1");

    struct client *dave = open5(b, "dave", NULL);
    list_devices(dave, "dave");
    EXPECT_STORED(dave, "dave", "d1", "android", "tok-dave-1");
    EXPECT_NOTHING_ELSE(dave, NULL);
    device_register(dave, "dave", "d2", "ios", "tok-dave-2");
    /* The admin reads anyone's devices, with a wildcard over users too. */
    struct client *ops2 = open5(b, "ops-reader", ADMIN);
    int granted = client_subscribe(ops2, "rtm/u/+/devices/+", 1);
    CHECKF(granted == 1, "admin subscribing to rtm/u/+/devices/+: granted %d", granted);
    client_flush(ops2);
    EXPECT_STORED(ops2, "dave", "d1", "android", "tok-dave-1");
    EXPECT_STORED(ops2, "dave", "d2", "ios", "tok-dave-2");
    EXPECT_NOTHING_ELSE(ops2, NULL);

    /* carol may neither subscribe to nor read dave's devices. */
    struct client *carol = open5(b, "carol", NULL);
    static const char *const refused[] = {"rtm/u/dave/devices/+",
                                          "rtm/u/dave/devices/d1",
                                          "rtm/u/dave/devices/#",
                                          "rtm/u/+/devices/#",
                                          "rtm/u/+/devices/+",
                                          "rtm/u/dave/#",
                                          "rtm/#",
                                          "rtm/u/#"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        int rc = client_subscribe(carol, refused[i], 1);
        CHECKF(rc >= 0x80, "carol subscribing to %s: SUBACK 0x%02x, expected a refusal (>= 0x80)",
               refused[i], (unsigned)rc);
    }
    /* '#' is outside the prefix, so it may be granted, but it must never
     * carry dave's registrations, stored or live. */
    int any = client_subscribe(carol, "#", 1);
    CHECKF(any == 1 || any >= 0x80, "carol subscribing to #: SUBACK %d", any);
    client_flush(carol);
    device_register(ops, "dave", "d1", "android", "tok-dave-1b");
    device_register(dave, "dave", "d3", "hmos", "tok-dave-3");
    EXPECT_STORED(ops2, "dave", "d1", "android", "tok-dave-1b");
    EXPECT_STORED(ops2, "dave", "d3", "hmos", "tok-dave-3");
    client_flush(carol);
    for (int i = 1; i <= 3; i++) {
        int n = client_count(carol, device_topic("dave", rt_fmt("d%d", i)), (char *)NULL);
        if (n != 0) {
            client_dump(carol);
            FAIL("carol received %d message(s) on %s through '#'", n,
                 device_topic("dave", rt_fmt("d%d", i)));
        }
    }
    client_free(carol);
    client_free(ops2);
    client_free(dave);
    client_free(ops);
    broker_free(b);
}

static void test_max_devices(void)
{
    static const char *const opts[] = {"max_devices 2", NULL};
    struct broker *b = start(opts);
    struct client *bob = open5_inbox(b, "bob-phone", "bob");
    device_register(bob, "bob", "d1", "android", "tok-m1");
    device_register(bob, "bob", "d2", "ios", "tok-m2");
    PUBLISH_REFUSED(bob, device_topic("bob", "d3"), device_json("android", "tok-m3"), true,
                    "a third device with max_devices 2");
    EXPECT_DEVICE_ERROR(bob, "bob", "d3");
    /* At the limit, re-registering an existing device id is an update. */
    device_register(bob, "bob", "d2", "android", "tok-m2b");
    struct client *later = open5(b, "bob-web", "bob");
    list_devices(later, "bob");
    EXPECT_STORED(later, "bob", "d1", "android", "tok-m1");
    EXPECT_STORED(later, "bob", "d2", "android", "tok-m2b");
    EXPECT_NOTHING_ELSE(later, NULL);
    /* Unregistering one makes room again. */
    device_unregister(bob, "bob", "d1");
    device_register(bob, "bob", "d3", "hmos", "tok-m3");
    struct client *last = open5(b, "bob-desk", "bob");
    list_devices(last, "bob");
    EXPECT_STORED(last, "bob", "d2", "android", "tok-m2b");
    EXPECT_STORED(last, "bob", "d3", "hmos", "tok-m3");
    EXPECT_NOTHING_ELSE(last, NULL);
    client_flush(bob);
    EXPECT_NOTHING_ELSE(bob, NULL);
    client_free(last);
    client_free(later);
    client_free(bob);
    broker_free(b);
}

/* alice (subscribed to bob's presence) invites bob, who is offline, and
 * the mock's next request must be the push of that call. */
static const cJSON *call_offline(struct client *alice, struct mock *m, int nth, const char *callee)
{
    const char *id = rt_uniq("call");
    rt_send(alice, inbox(callee), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id));
    cJSON *list = MOCK_EXPECT(m, nth, 5000);
    const cJSON *rec = cJSON_GetArrayItem(list, nth - 1);
    if (strcmp(rec_call_id(rec), id) != 0) {
        mock_dump(m);
        FAIL("push request #%d is not the push of call %s", nth, id);
    }
    return rec;
}

static void test_unregister(void)
{
    struct mock *m = mock_start(NULL);
    struct broker_opts o = {.plugin_opts = mock_plugin_opts(m, NULL)};
    struct broker *b = broker_start(&o);
    struct client *alice = open5_inbox(b, "alice", NULL);
    CHECK_EQ_INT(client_subscribe(alice, "rtm/presence/bob", 1), 1);
    struct client *bob = open5(b, "bob-phone", "bob");
    device_register(bob, "bob", "d1", "android", "tok-u1");
    device_register(bob, "bob", "d2", "ios", "tok-u2");
    client_free(bob);
    wait_offline(alice, "bob");
    const cJSON *rec = call_offline(alice, m, 1, "bob");
    CHECK_PUSH(m, rec, "call_invite", rec_call_id(rec), "tok-u1", "tok-u2");

    /* bob logs out on d1: an empty retained payload (from an MQTT 3.1.1
     * client this time). */
    struct client *bob2 = client_open(b, "bob-phone", "bob");
    CHECK_EQ_INT(client_publish(bob2, device_topic("bob", "d1"), "", 0, 1, true), 0);
    client_free(bob2);
    wait_offline(alice, "bob");
    rec = call_offline(alice, m, 2, "bob");
    CHECK_PUSH(m, rec, "call_invite", rec_call_id(rec), "tok-u2");
    /* And it is gone from the store. */
    struct client *later = open5(b, "bob-web", "bob");
    list_devices(later, "bob");
    EXPECT_STORED(later, "bob", "d2", "ios", "tok-u2");
    EXPECT_NO_MORE_DEVICES(later);
    client_free(later);
    client_free(alice);
    broker_free(b);
}

static void test_token_moves(void)
{
    struct mock *m = mock_start(NULL);
    struct broker_opts o = {.plugin_opts = mock_plugin_opts(m, NULL)};
    struct broker *b = broker_start(&o);
    struct client *alice = open5_inbox(b, "alice", NULL);
    CHECK_EQ_INT(client_subscribe(alice, "rtm/presence/+", 1), 1);
    struct client *bob = open5(b, "bob-phone", "bob");
    device_register(bob, "bob", "b1", "android", "tok-shared");
    device_register(bob, "bob", "b2", "ios", "tok-bob");
    list_devices(bob, "bob");
    CHECK(client_consume_all(bob, NULL, (char *)NULL) == 2);

    /* The shared phone logs in as carol. */
    struct client *carol = open5(b, "carol-phone", "carol");
    device_register(carol, "carol", "c1", "android", "tok-shared");
    /* bob's registration of it is cleared: its subscriber sees the empty
     * retained message that deletes it. */
    struct msg *gone = client_wait_msg(bob, device_topic("bob", "b1"), WAIT_MS);
    if (!gone) {
        client_dump(bob);
        FAIL("bob's subscriber saw no clearing of rtm/u/bob/devices/b1 after carol took its "
             "token");
    }
    CHECKF(gone->len == 0, "rtm/u/bob/devices/b1 got \"%s\", expected an empty payload",
           gone->payload);
    client_free(bob);
    client_free(carol);
    wait_offline(alice, "bob");
    wait_offline(alice, "carol");

    /* Calls: bob's push no longer reaches the shared phone; carol's does. */
    const cJSON *rec = call_offline(alice, m, 1, "bob");
    CHECK_PUSH(m, rec, "call_invite", rec_call_id(rec), "tok-bob");
    rec = call_offline(alice, m, 2, "carol");
    CHECK_PUSH(m, rec, "call_invite", rec_call_id(rec), "tok-shared");
    /* A new subscriber to bob's devices sees only b2; carol's has c1. */
    struct client *later = open5(b, "bob-web", "bob");
    list_devices(later, "bob");
    EXPECT_STORED(later, "bob", "b2", "ios", "tok-bob");
    EXPECT_NO_MORE_DEVICES(later);
    struct client *carol2 = open5(b, "carol-web", "carol");
    list_devices(carol2, "carol");
    EXPECT_STORED(carol2, "carol", "c1", "android", "tok-shared");
    EXPECT_NO_MORE_DEVICES(carol2);
    client_free(carol2);
    client_free(later);
    client_free(alice);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct test_case cases[] = {
        {"stored_normalized", test_stored_normalized},
        {"refused_malformed", test_refused_malformed},
        {"refused_other_uid", test_refused_other_uid},
        {"refused_malformed_device_id", test_refused_malformed_device_id},
        {"admin_and_read_rules", test_admin_and_read_rules},
        {"max_devices", test_max_devices},
        {"unregister", test_unregister},
        {"token_moves", test_token_moves},
    };
    return run_tests(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
