/*
 * Registrations survive restarts (SPEC 6.1): the retained messages are the
 * registry's only store, Mosquitto's persistence keeps them, and the plugin
 * reads them back at start-up through the broker's own listener, which it
 * finds by itself: no plugin_opt_registry_listener, the broker on the
 * harness's random port. After a clean restart, and after kill -9 once an
 * autosave has completed, a call to an offline user pushes exactly the
 * devices registered before, and the broker logs how many it read back.
 * test_registry_loader covers other listeners, early invites and decoys.
 */
#include <string.h>

#include "jpush_mock.h"

static struct broker *start(struct mock *m)
{
    static const char *const extra[] = {"persistence true", "persistence_location @DIR@/",
                                        "autosave_interval 1", NULL};
    struct broker_opts o = {.plugin_opts = mock_plugin_opts(m, NULL), .extra_lines = extra};
    return broker_start(&o);
}

/* bob: two devices (a third registered and unregistered again); carol: one
 * (one of hers taken over by bob). Five devices in all were registered, three
 * remain. */
static void populate(struct broker *b)
{
    struct client *bob = open5(b, "bob-phone", "bob");
    struct client *carol = open5(b, "carol-phone", "carol");
    device_register(carol, "carol", "c1", "hmos", "tok-c1");
    device_register(carol, "carol", "c2", "android", "tok-moved");
    device_register(bob, "bob", "d1", "android", "tok-p1");
    device_register(bob, "bob", "d2", "ios", "tok-moved");
    device_register(bob, "bob", "d3", "ios", "tok-p3");
    device_unregister(bob, "bob", "d3");
    client_free(bob);
    client_free(carol);
}

/* After the restart: the loader line, then calls to offline bob and carol
 * push exactly their devices. */
static void check_after_restart(struct broker *b, struct mock *m, long mark)
{
    if (!broker_wait_log(b, mark, "device registry read back from the retained store: 3 device(s)",
                         5000)) {
        if (broker_wait_log(b, mark, "device registry read back", 0))
            FAIL("the loader read back a different number of devices than the 3 registered");
        FAIL("no \"device registry read back from the retained store\" line within 5 s");
    }
    struct client *alice = open5(b, "alice", NULL);
    CHECK_EQ_INT(client_subscribe(alice, inbox("alice"), 1), 1);
    const char *id = rt_uniq("after-restart");
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id));
    cJSON *list = MOCK_EXPECT(m, 1, 5000);
    CHECK_PUSH(m, cJSON_GetArrayItem(list, 0), "call_invite", id, "tok-p1", "tok-moved");
    cJSON *ev = EXPECT_EVENT(alice, "alice", "pushed", id);
    EXPECT_INT(ev, "devices", 2);

    const char *id2 = rt_uniq("after-restart");
    rt_send(alice, inbox("carol"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id2));
    list = MOCK_EXPECT(m, 2, 5000);
    CHECK_PUSH(m, cJSON_GetArrayItem(list, 1), "call_invite", id2, "tok-c1");
    ev = EXPECT_EVENT(alice, "alice", "pushed", id2);
    EXPECT_INT(ev, "devices", 1);
    client_free(alice);
}

static void test_clean_restart(void)
{
    struct mock *m = mock_start(NULL);
    struct broker *b = start(m);
    populate(b);
    broker_stop(b);
    long mark = broker_log_mark(b);
    broker_restart(b);
    check_after_restart(b, m, mark);
    broker_free(b);
}

static void test_kill9_restart(void)
{
    struct mock *m = mock_start(NULL);
    struct broker *b = start(m);
    populate(b);
    /* Saves run on the broker thread, one after another: once a second
     * autosave has begun after the registrations were acknowledged, the
     * first, which began after them too, has completed. */
    long saving = broker_log_mark(b);
    int64_t deadline = now_mono_ms() + 6000;
    while (broker_log_lines(b, saving, "Saving in-memory database", (char *)NULL) < 2) {
        CHECKF(now_mono_ms() < deadline, "no two autosaves within 6 s (autosave_interval 1)");
        rt_wait_ms(20);
    }
    broker_kill9(b);
    long mark = broker_log_mark(b);
    broker_restart(b);
    check_after_restart(b, m, mark);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct test_case cases[] = {
        {"clean_restart", test_clean_restart},
        {"kill9_restart", test_kill9_restart},
    };
    return run_tests(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
