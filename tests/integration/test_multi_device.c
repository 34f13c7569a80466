/*
 * One uid, several sessions (phone, tablet, web): every session of the callee
 * rings, one answers, the others learn the outcome; the caller's sessions all
 * follow the call, and any of them may cancel it.
 */
#include <string.h>

#include "harness.h"

static struct broker *start(void)
{
    static const char *const opts[] = {"invite_timeout 20", "ring_timeout 20", "caller_grace 5",
                                       NULL};
    struct broker_opts o = {.plugin_opts = opts};
    return broker_start(&o);
}

static void test_every_callee_device_rings_one_answers(void)
{
    struct broker *b = start();
    struct client *alice = client_open_inbox(b, "alice", NULL);
    struct client *phone = client_open_inbox(b, "bob-phone", "bob");
    struct client *tablet = client_open_inbox(b, "bob-tablet", "bob");
    const char *id = rt_uniq("md");
    rt_send(alice, inbox("bob"),
            rt_fmt("{\"type\":\"invite\",\"id\":\"%s\",\"channel\":\"room-1\"}", id));
    cJSON *p = EXPECT_EVENT(phone, "bob", "invite", id);
    cJSON *t = EXPECT_EVENT(tablet, "bob", "invite", id);
    CHECK_STAMP(p, "invite", id, "alice", "bob", "alice");
    CHECK_STAMP(t, "invite", id, "alice", "bob", "alice");
    EXPECT_STR(t, "channel", "room-1");
    EXPECT_INT(t, "expires_at", GET_INT(p, "expires_at"));

    /* The phone rings; the tablet answers. */
    rt_send(phone, inbox("alice"), rt_fmt("{\"type\":\"ringing\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(alice, "alice", "ringing", id);
    rt_send(tablet, inbox("alice"),
            rt_fmt("{\"type\":\"accept\",\"id\":\"%s\",\"response\":\"tablet\"}", id));
    cJSON *a = EXPECT_EVENT(alice, "alice", "accept", id);
    cJSON *ap = EXPECT_EVENT(phone, "bob", "accept", id);
    cJSON *at = EXPECT_EVENT(tablet, "bob", "accept", id);
    CHECK_STAMP(a, "accept", id, "alice", "bob", "bob");
    CHECK_STAMP(ap, "accept", id, "alice", "bob", "bob");
    CHECK_STAMP(at, "accept", id, "alice", "bob", "bob");
    EXPECT_STR(ap, "response", "tablet");

    /* The phone, late, sends the same answer: a re-send by bob, delivered
     * again to both inboxes as the first (PROTOCOL.md 3), no error. */
    rt_send(phone, inbox("alice"), rt_fmt("{\"type\":\"accept\",\"id\":\"%s\"}", id));
    EXPECT_INT(EXPECT_EVENT(alice, "alice", "accept", id), "ts", GET_INT(a, "ts"));
    EXPECT_EVENT(phone, "bob", "accept", id);
    EXPECT_EVENT(tablet, "bob", "accept", id);

    /* The phone, late, refuses: the call has ended. Only it hears so. */
    rt_send(phone, inbox("alice"), rt_fmt("{\"type\":\"refuse\",\"id\":\"%s\"}", id));
    EXPECT_ERROR(phone, "bob", "invalid_state", id, "refuse");

    /* Sentinel on every inbox: alice places and cancels another call. */
    const char *id2 = rt_uniq("md");
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id2));
    EXPECT_EVENT(phone, "bob", "invite", id2);
    EXPECT_EVENT(tablet, "bob", "invite", id2);
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"cancel\",\"id\":\"%s\"}", id2));
    EXPECT_EVENT(alice, "alice", "cancel", id2);
    EXPECT_EVENT(phone, "bob", "cancel", id2);
    EXPECT_EVENT(tablet, "bob", "cancel", id2);
    EXPECT_NOTHING_ELSE(alice, NULL);
    EXPECT_NOTHING_ELSE(phone, NULL);
    EXPECT_NOTHING_ELSE(tablet, NULL);
    client_free(alice);
    client_free(phone);
    client_free(tablet);
    broker_free(b);
}

static void test_every_caller_device_follows(void)
{
    struct broker *b = start();
    struct client *phone = client_open_inbox(b, "alice-phone", "alice");
    struct client *web = client_open_inbox(b, "alice-web", "alice");
    struct client *bob = client_open_inbox(b, "bob", NULL);
    const char *id = rt_uniq("cd");
    rt_send(phone, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(bob, "bob", "invite", id);
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"ringing\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(phone, "alice", "ringing", id);
    EXPECT_EVENT(web, "alice", "ringing", id);
    rt_send(bob, inbox("alice"),
            rt_fmt("{\"type\":\"refuse\",\"id\":\"%s\",\"response\":\"later\"}", id));
    CHECK_STAMP(EXPECT_EVENT(phone, "alice", "refuse", id), "refuse", id, "alice", "bob", "bob");
    cJSON *w = EXPECT_EVENT(web, "alice", "refuse", id);
    CHECK_STAMP(w, "refuse", id, "alice", "bob", "bob");
    EXPECT_STR(w, "response", "later");
    EXPECT_EVENT(bob, "bob", "refuse", id);

    /* The caller is the uid, not the session: another session may cancel. */
    const char *id2 = rt_uniq("cd");
    rt_send(phone, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id2));
    EXPECT_EVENT(bob, "bob", "invite", id2);
    rt_send(web, inbox("bob"), rt_fmt("{\"type\":\"cancel\",\"id\":\"%s\"}", id2));
    CHECK_STAMP(EXPECT_EVENT(bob, "bob", "cancel", id2), "cancel", id2, "alice", "bob", "alice");
    EXPECT_EVENT(phone, "alice", "cancel", id2);
    EXPECT_EVENT(web, "alice", "cancel", id2);
    EXPECT_NOTHING_ELSE(phone, NULL);
    EXPECT_NOTHING_ELSE(web, NULL);
    EXPECT_NOTHING_ELSE(bob, NULL);
    client_free(phone);
    client_free(web);
    client_free(bob);
    broker_free(b);
}

/* One of the callee's devices leaving does not end the call; the caller keeps
 * it while another of its sessions is connected. */
static void test_devices_come_and_go(void)
{
    struct broker *b = start();
    struct client *phone = client_open_inbox(b, "alice-phone", "alice");
    struct client *web = client_open_inbox(b, "alice-web", "alice");
    struct client *bob1 = client_open_inbox(b, "bob-1", "bob");
    struct client *bob2 = client_open_inbox(b, "bob-2", "bob");
    const char *id = rt_uniq("cg");
    rt_send(phone, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(bob1, "bob", "invite", id);
    EXPECT_EVENT(bob2, "bob", "invite", id);
    client_free(bob1);
    client_free(phone);
    /* caller_grace is 5 s: a failure now would mean the caller was counted
     * offline with alice-web still connected. Let the grace pass. */
    cJSON *f = client_wait_json(bob2, inbox("bob"), 6000, "type", "failure", (char *)NULL);
    CHECKF(f == NULL, "the call failed while the caller still had a session");
    rt_send(bob2, inbox("alice"), rt_fmt("{\"type\":\"accept\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(web, "alice", "accept", id);
    EXPECT_EVENT(bob2, "bob", "accept", id);
    EXPECT_NOTHING_ELSE(web, NULL);
    EXPECT_NOTHING_ELSE(bob2, NULL);
    client_free(web);
    client_free(bob2);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct test_case cases[] = {
        {"every_callee_device_rings_one_answers", test_every_callee_device_rings_one_answers},
        {"every_caller_device_follows", test_every_caller_device_follows},
        {"devices_come_and_go", test_devices_come_and_go},
    };
    return run_tests(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
