/*
 * Every error code of PROTOCOL.md section 3: each goes only to the session
 * that made the refused request, on its own inbox, with code, id and request;
 * and the refused request is forwarded to no one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static struct broker *start_with(const char *const *extra_opts)
{
    const char *opts[16] = {"invite_timeout 20", "ring_timeout 20", "caller_grace 5",
                            "max_invite_timeout 30"};
    size_t n = 4;
    for (const char *const *o = extra_opts; o && *o && n < 15; o++)
        opts[n++] = *o;
    opts[n] = NULL;
    struct broker_opts bo = {.plugin_opts = opts};
    return broker_start(&bo);
}

static void send_invite(struct client *from, const char *to, const char *id)
{
    rt_send(from, inbox(to), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id));
}

/* A live call alice -> bob that both have seen. */
static void live_call(struct client *alice, struct client *bob, const char *id)
{
    send_invite(alice, "bob", id);
    EXPECT_EVENT(bob, "bob", "invite", id);
}

/* Sentinel for "nothing was forwarded": a fresh call alice -> bob, canceled,
 * so both inboxes get one more event after everything sent before. */
static void sentinel(struct client *alice, struct client *bob)
{
    const char *id = rt_uniq("sentinel");
    live_call(alice, bob, id);
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"cancel\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(alice, "alice", "cancel", id);
    EXPECT_EVENT(bob, "bob", "cancel", id);
}

static char *repeat(char ch, size_t n)
{
    char *s = malloc(n + 1);
    CHECK(s != NULL);
    memset(s, ch, n);
    s[n] = '\0';
    return s;
}

struct bad {
    const char *what;
    const char *payload;
    int len; /* -1: strlen */
    bool retain;
    const char *id;      /* expected error id; NULL: absent */
    const char *request; /* expected error request; NULL: absent */
};

/* Mismatches in the error's id/request are collected, so that one run
 * reports every payload the plugin answers wrongly. */
static char mismatches[8192];

static void note_field(const struct bad *bad, const cJSON *err, const char *key,
                       const char *expected)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(err, key);
    bool ok;
    if (!expected)
        ok = it == NULL;
    else if (strcmp(expected, "*") == 0)
        ok = true;
    else
        ok = cJSON_IsString(it) && strcmp(it->valuestring, expected) == 0;
    if (ok)
        return;
    char *text = cJSON_PrintUnformatted(err);
    size_t used = strlen(mismatches);
    snprintf(mismatches + used, sizeof(mismatches) - used, "\n  %s: expected \"%s\" %s%s%s, got %s",
             bad->what, key, expected ? "= \"" : "absent", expected ? expected : "",
             expected ? "\"" : "", text ? text : "?");
    free(text);
}

static void send_bad(struct client *alice, const struct bad *bad)
{
    int len = bad->len >= 0 ? bad->len : (int)strlen(bad->payload);
    int rc = client_publish(alice, inbox("bob"), bad->payload, len, 1, bad->retain);
    CHECKF(rc >= 0, "%s: no PUBACK", bad->what);
    fprintf(stderr, "  bad_request: %s\n", bad->what);
    cJSON *err = EXPECT_ERROR(alice, "alice", "bad_request", "*", "*");
    note_field(bad, err, "id", bad->id);
    note_field(bad, err, "request", bad->request);
}

static void test_bad_request(void)
{
    struct broker *b = start_with(NULL);
    struct client *alice = client_open_inbox(b, "alice", NULL);
    struct client *bob = client_open_inbox(b, "bob", NULL);

    char *long_id = repeat('a', 65);
    char *long_content = repeat('c', 4097);
    char *long_channel = repeat('h', 65);
    char *pad = repeat('p', 8300);
    const struct bad bads[] = {
        {"not JSON", "hello", -1, false, NULL, NULL},
        {"empty payload", "", 0, false, NULL, NULL},
        {"truncated JSON", "{\"type\":\"invite\",\"id\":\"t1\"", -1, false, NULL, NULL},
        {"JSON array", "[\"invite\",\"x\"]", -1, false, NULL, NULL},
        {"JSON string", "\"invite\"", -1, false, NULL, NULL},
        {"JSON number", "42", -1, false, NULL, NULL},
        {"not UTF-8", "{\"type\":\"invite\",\"id\":\"u1\",\"content\":\"\xff\xfe\"}", -1, false,
         "*", "*"},
        {"missing id", "{\"type\":\"invite\"}", -1, false, NULL, "invite"},
        {"empty id", "{\"type\":\"invite\",\"id\":\"\"}", -1, false, NULL, "invite"},
        {"id with bad characters", "{\"type\":\"invite\",\"id\":\"a b/c!\"}", -1, false, NULL,
         "invite"},
        {"id with a dot", "{\"type\":\"invite\",\"id\":\"a.b\"}", -1, false, NULL, "invite"},
        {"id of 65 characters", rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", long_id), -1, false,
         NULL, "invite"},
        {"id not a string", "{\"type\":\"invite\",\"id\":17}", -1, false, NULL, "invite"},
        {"missing type", "{\"id\":\"mt1\"}", -1, false, "mt1", NULL},
        {"unknown type", "{\"type\":\"hug\",\"id\":\"ut1\"}", -1, false, "ut1", NULL},
        {"type failure (generated only)", "{\"type\":\"failure\",\"id\":\"ut2\"}", -1, false, "ut2",
         NULL},
        {"type not a string", "{\"type\":1,\"id\":\"ut3\"}", -1, false, "ut3", NULL},
        {"content of 4097 bytes",
         rt_fmt("{\"type\":\"invite\",\"id\":\"lc1\",\"content\":\"%s\"}", long_content), -1, false,
         "lc1", "invite"},
        {"content not a string", "{\"type\":\"invite\",\"id\":\"ct1\",\"content\":{}}", -1, false,
         "ct1", "invite"},
        {"channel of 65 bytes",
         rt_fmt("{\"type\":\"invite\",\"id\":\"ch1\",\"channel\":\"%s\"}", long_channel), -1, false,
         "ch1", "invite"},
        {"timeout 0", "{\"type\":\"invite\",\"id\":\"to1\",\"timeout\":0}", -1, false, "to1",
         "invite"},
        {"timeout above max_invite_timeout", "{\"type\":\"invite\",\"id\":\"to2\",\"timeout\":31}",
         -1, false, "to2", "invite"},
        {"timeout negative", "{\"type\":\"invite\",\"id\":\"to3\",\"timeout\":-5}", -1, false,
         "to3", "invite"},
        {"timeout not an integer", "{\"type\":\"invite\",\"id\":\"to4\",\"timeout\":2.5}", -1,
         false, "to4", "invite"},
        {"timeout as a string", "{\"type\":\"invite\",\"id\":\"to5\",\"timeout\":\"10\"}", -1,
         false, "to5", "invite"},
        {"retained invite", "{\"type\":\"invite\",\"id\":\"rt1\"}", -1, true, "rt1", "invite"},
        /* Valid fields, but over max_payload (8192) with an ignored field: the
         * plugin may refuse it before reading id and type. */
        {"payload over max_payload",
         rt_fmt("{\"type\":\"invite\",\"id\":\"big1\",\"pad\":\"%s\"}", pad), -1, false, "*", "*"},
    };
    for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++)
        send_bad(alice, &bads[i]);
    /* A too long response on a live call is refused and changes nothing:
     * the call can still be accepted. */
    const char *id = rt_uniq("resp");
    live_call(alice, bob, id);
    rt_send(bob, inbox("alice"),
            rt_fmt("{\"type\":\"accept\",\"id\":\"%s\",\"response\":\"%s\"}", id, long_content));
    EXPECT_ERROR(bob, "bob", "bad_request", id, "accept");
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"accept\",\"id\":\"%s\",\"response\":7}", id));
    EXPECT_ERROR(bob, "bob", "bad_request", id, "accept");
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"accept\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(alice, "alice", "accept", id);
    EXPECT_EVENT(bob, "bob", "accept", id);

    sentinel(alice, bob);
    EXPECT_NOTHING_ELSE(bob, NULL);
    EXPECT_NOTHING_ELSE(alice, NULL);
    /* The refused retained invite was not stored: a new subscriber to bob's
     * inbox gets no retained message before the next event. */
    struct client *bob2 = client_open_inbox(b, "bob-2", "bob");
    sentinel(alice, bob2);
    EXPECT_NOTHING_ELSE(bob2, NULL);
    CHECKF(mismatches[0] == '\0',
           "errors without the request's valid id/type (PROTOCOL.md 3: \"id is the request's id "
           "when it had a valid one, request its type when it had a valid one\"):%s",
           mismatches);

    free(long_id);
    free(long_content);
    free(long_channel);
    free(pad);
    client_free(alice);
    client_free(bob);
    client_free(bob2);
    broker_free(b);
}

static void test_max_payload_option(void)
{
    static const char *const opts[] = {"max_payload 1024", NULL};
    struct broker *b = start_with(opts);
    struct client *alice = client_open_inbox(b, "alice", NULL);
    struct client *bob = client_open_inbox(b, "bob", NULL);
    /* content of 2000 bytes is within its own limit (4096) but the message is
     * over max_payload. */
    char *content = repeat('x', 2000);
    size_t len = 2100;
    char *p = malloc(len);
    CHECK(p != NULL);
    snprintf(p, len, "{\"type\":\"invite\",\"id\":\"mp1\",\"content\":\"%s\"}", content);
    CHECK(client_publish_str(alice, inbox("bob"), p, 1) >= 0);
    EXPECT_ERROR(alice, "alice", "bad_request", "*", "*");
    /* Just under the limit is fine. */
    snprintf(p, len, "{\"type\":\"invite\",\"id\":\"mp2\",\"content\":\"%.900s\"}", content);
    CHECK(client_publish_str(alice, inbox("bob"), p, 1) >= 0);
    CHECK_STAMP(EXPECT_EVENT(bob, "bob", "invite", "mp2"), "invite", "mp2", "alice", "bob",
                "alice");
    sentinel(alice, bob);
    EXPECT_NOTHING_ELSE(bob, NULL);
    EXPECT_NOTHING_ELSE(alice, NULL);
    free(content);
    free(p);
    client_free(alice);
    client_free(bob);
    broker_free(b);
}

static void test_unknown_invitation(void)
{
    struct broker *b = start_with(NULL);
    struct client *alice = client_open_inbox(b, "alice", NULL);
    struct client *bob = client_open_inbox(b, "bob", NULL);
    static const char *const types[] = {"ringing", "accept", "refuse"};
    for (size_t i = 0; i < 3; i++) {
        const char *id = rt_uniq("nope");
        rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"%s\",\"id\":\"%s\"}", types[i], id));
        EXPECT_ERROR(bob, "bob", "unknown_invitation", id, types[i]);
    }
    const char *id = rt_uniq("nope");
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"cancel\",\"id\":\"%s\"}", id));
    EXPECT_ERROR(alice, "alice", "unknown_invitation", id, "cancel");
    sentinel(alice, bob);
    EXPECT_NOTHING_ELSE(bob, NULL);
    EXPECT_NOTHING_ELSE(alice, NULL);
    client_free(alice);
    client_free(bob);
    broker_free(b);
}

static void test_not_party(void)
{
    struct broker *b = start_with(NULL);
    struct client *alice = client_open_inbox(b, "alice", NULL);
    struct client *bob = client_open_inbox(b, "bob", NULL);
    const char *id = rt_uniq("np");
    live_call(alice, bob, id);

    /* The caller may not answer its own call. */
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"accept\",\"id\":\"%s\"}", id));
    EXPECT_ERROR(alice, "alice", "not_party", id, "accept");
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"ringing\",\"id\":\"%s\"}", id));
    EXPECT_ERROR(alice, "alice", "not_party", id, "ringing");
    /* The callee may not cancel. */
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"cancel\",\"id\":\"%s\"}", id));
    EXPECT_ERROR(bob, "bob", "not_party", id, "cancel");

    /* Nothing changed: the callee can still accept, and that accept is the
     * first thing anyone sees of the call after the invite. */
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"accept\",\"id\":\"%s\"}", id));
    CHECK_STAMP(EXPECT_EVENT(alice, "alice", "accept", id), "accept", id, "alice", "bob", "bob");
    EXPECT_EVENT(bob, "bob", "accept", id);
    EXPECT_NOTHING_ELSE(alice, NULL);
    EXPECT_NOTHING_ELSE(bob, NULL);
    client_free(alice);
    client_free(bob);
    broker_free(b);
}

/* `message` with the first `id` in it replaced by "<id>". */
static const char *shape_of(const char *message, const char *id)
{
    const char *at = strstr(message, id);
    return at ? rt_fmt("%.*s<id>%s", (int)(at - message), message, at + strlen(id)) : message;
}

/* carol sends every request a party could send about `id`, from alice to
 * bob, and gets unknown_invitation for each; returns the four messages. */
static void stranger_requests(struct client *carol, const char *id, const char *messages[4])
{
    static const char *const types[] = {"ringing", "accept", "refuse", "cancel"};
    for (size_t i = 0; i < 4; i++) {
        const char *to = i == 3 ? "bob" : "alice";
        rt_send(carol, inbox(to), rt_fmt("{\"type\":\"%s\",\"id\":\"%s\"}", types[i], id));
        cJSON *err = EXPECT_ERROR(carol, "carol", "unknown_invitation", id, types[i]);
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(err, "message");
        CHECK(cJSON_IsString(m));
        messages[i] = rt_fmt("%s", m->valuestring);
    }
}

/* A user who is no party of an invitation learns nothing about it: its
 * requests get unknown_invitation, with the same message as for an id that
 * nobody uses, and change nothing. */
static void test_stranger_sees_nothing(void)
{
    struct broker *b = start_with(NULL);
    struct client *alice = client_open_inbox(b, "alice", NULL);
    struct client *bob = client_open_inbox(b, "bob", NULL);
    struct client *carol = client_open_inbox(b, "carol", NULL);
    const char *live = rt_uniq("secret");
    live_call(alice, bob, live);
    const char *ended = rt_uniq("secret");
    live_call(alice, bob, ended);
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"cancel\",\"id\":\"%s\"}", ended));
    EXPECT_EVENT(alice, "alice", "cancel", ended);
    EXPECT_EVENT(bob, "bob", "cancel", ended);

    const char *none = rt_uniq("secret"); /* same length as the others */
    const char *m_live[4], *m_ended[4], *m_none[4];
    stranger_requests(carol, live, m_live);
    stranger_requests(carol, ended, m_ended);
    stranger_requests(carol, none, m_none);
    for (size_t i = 0; i < 4; i++) {
        /* The messages differ only by the id they name. */
        CHECKF(strcmp(shape_of(m_live[i], live), shape_of(m_none[i], none)) == 0 &&
                   strcmp(shape_of(m_ended[i], ended), shape_of(m_none[i], none)) == 0,
               "messages tell calls apart: \"%s\", \"%s\", \"%s\"", m_live[i], m_ended[i],
               m_none[i]);
    }

    /* Nothing changed: bob answers the live call, and that accept is the
     * first thing anyone sees of it after the invite. */
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"accept\",\"id\":\"%s\"}", live));
    CHECK_STAMP(EXPECT_EVENT(alice, "alice", "accept", live), "accept", live, "alice", "bob",
                "bob");
    EXPECT_EVENT(bob, "bob", "accept", live);
    /* carol: a sentinel on her own inbox (an error after everything else). */
    rt_send(carol, inbox("bob"), "not json");
    EXPECT_ERROR(carol, "carol", "bad_request", NULL, NULL);
    EXPECT_NOTHING_ELSE(alice, NULL);
    EXPECT_NOTHING_ELSE(bob, NULL);
    EXPECT_NOTHING_ELSE(carol, NULL);
    client_free(alice);
    client_free(bob);
    client_free(carol);
    broker_free(b);
}

/* An ended invitation holds its id for its own caller only: mallory invites
 * bob with call-1 and cancels; alice's call-1 to bob then works, and so
 * does one to carol while mallory's call-2 to bob is live. */
static void test_ids_not_squatted(void)
{
    struct broker *b = start_with(NULL);
    struct client *alice = client_open_inbox(b, "alice", NULL);
    struct client *bob = client_open_inbox(b, "bob", NULL);
    struct client *mallory = client_open_inbox(b, "mallory", NULL);
    const char *id = rt_uniq("call");
    send_invite(mallory, "bob", id);
    EXPECT_EVENT(bob, "bob", "invite", id);
    rt_send(mallory, inbox("bob"), rt_fmt("{\"type\":\"cancel\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(mallory, "mallory", "cancel", id);
    EXPECT_EVENT(bob, "bob", "cancel", id);

    send_invite(alice, "bob", id);
    CHECK_STAMP(EXPECT_EVENT(bob, "bob", "invite", id), "invite", id, "alice", "bob", "alice");
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"accept\",\"id\":\"%s\"}", id));
    CHECK_STAMP(EXPECT_EVENT(alice, "alice", "accept", id), "accept", id, "alice", "bob", "bob");
    EXPECT_EVENT(bob, "bob", "accept", id);

    /* A live squat blocks nobody either; each call keeps to its parties. */
    const char *id2 = rt_uniq("call");
    send_invite(mallory, "bob", id2);
    EXPECT_EVENT(bob, "bob", "invite", id2);
    send_invite(alice, "bob", id2);
    CHECK_STAMP(EXPECT_EVENT(bob, "bob", "invite", id2), "invite", id2, "alice", "bob", "alice");
    rt_send(bob, inbox("mallory"), rt_fmt("{\"type\":\"refuse\",\"id\":\"%s\"}", id2));
    CHECK_STAMP(EXPECT_EVENT(mallory, "mallory", "refuse", id2), "refuse", id2, "mallory", "bob",
                "bob");
    EXPECT_EVENT(bob, "bob", "refuse", id2);
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"cancel\",\"id\":\"%s\"}", id2));
    CHECK_STAMP(EXPECT_EVENT(alice, "alice", "cancel", id2), "cancel", id2, "alice", "bob",
                "alice");
    EXPECT_EVENT(bob, "bob", "cancel", id2);

    sentinel(alice, bob);
    EXPECT_NOTHING_ELSE(bob, NULL);
    EXPECT_NOTHING_ELSE(alice, NULL);
    EXPECT_NOTHING_ELSE(mallory, NULL);
    client_free(alice);
    client_free(bob);
    client_free(mallory);
    broker_free(b);
}

static void test_invalid_state(void)
{
    struct broker *b = start_with(NULL);
    struct client *alice = client_open_inbox(b, "alice", NULL);
    struct client *bob = client_open_inbox(b, "bob", NULL);

    /* Answering a canceled call. */
    const char *id = rt_uniq("is");
    live_call(alice, bob, id);
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"cancel\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(alice, "alice", "cancel", id);
    EXPECT_EVENT(bob, "bob", "cancel", id);
    static const char *const answers[] = {"accept", "ringing", "refuse"};
    for (size_t i = 0; i < 3; i++) {
        rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"%s\",\"id\":\"%s\"}", answers[i], id));
        EXPECT_ERROR(bob, "bob", "invalid_state", id, answers[i]);
    }
    /* The same caller re-using the id of an ended invitation. */
    send_invite(alice, "bob", id);
    EXPECT_ERROR(alice, "alice", "invalid_state", id, "invite");

    /* Canceling an accepted call; refusing it afterwards. */
    const char *id2 = rt_uniq("is");
    live_call(alice, bob, id2);
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"accept\",\"id\":\"%s\"}", id2));
    EXPECT_EVENT(alice, "alice", "accept", id2);
    EXPECT_EVENT(bob, "bob", "accept", id2);
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"cancel\",\"id\":\"%s\"}", id2));
    EXPECT_ERROR(alice, "alice", "invalid_state", id2, "cancel");
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"refuse\",\"id\":\"%s\"}", id2));
    EXPECT_ERROR(bob, "bob", "invalid_state", id2, "refuse");

    sentinel(alice, bob);
    EXPECT_NOTHING_ELSE(bob, NULL);
    EXPECT_NOTHING_ELSE(alice, NULL);
    client_free(alice);
    client_free(bob);
    broker_free(b);
}

static void test_duplicate_id(void)
{
    struct broker *b = start_with(NULL);
    struct client *alice = client_open_inbox(b, "alice", NULL);
    struct client *bob = client_open_inbox(b, "bob", NULL);
    struct client *carol = client_open_inbox(b, "carol", NULL);
    struct client *dave = client_open_inbox(b, "dave", NULL);
    const char *id = rt_uniq("dup");
    live_call(alice, bob, id);
    /* The same caller re-using its live id for another callee. */
    send_invite(alice, "carol", id);
    EXPECT_ERROR(alice, "alice", "duplicate_id", id, "invite");
    send_invite(alice, "dave", id);
    EXPECT_ERROR(alice, "alice", "duplicate_id", id, "invite");
    /* Still remembered after it ended. */
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"cancel\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(alice, "alice", "cancel", id);
    EXPECT_EVENT(bob, "bob", "cancel", id);
    send_invite(alice, "dave", id);
    EXPECT_ERROR(alice, "alice", "duplicate_id", id, "invite");

    sentinel(alice, bob);
    /* carol's and dave's sentinel: carol calls dave with a fresh id. */
    const char *id2 = rt_uniq("dave");
    send_invite(carol, "dave", id2);
    CHECK_STAMP(EXPECT_EVENT(dave, "dave", "invite", id2), "invite", id2, "carol", "dave", "carol");
    EXPECT_NOTHING_ELSE(bob, NULL);
    EXPECT_NOTHING_ELSE(dave, NULL);
    EXPECT_NOTHING_ELSE(alice, NULL);
    EXPECT_NOTHING_ELSE(carol, NULL);
    client_free(alice);
    client_free(bob);
    client_free(carol);
    client_free(dave);
    broker_free(b);
}

static void test_self_call(void)
{
    struct broker *b = start_with(NULL);
    struct client *alice = client_open_inbox(b, "alice-phone", "alice");
    struct client *bob = client_open_inbox(b, "bob", NULL);
    const char *id = rt_uniq("self");
    send_invite(alice, "alice", id);
    EXPECT_ERROR(alice, "alice", "self_call", id, "invite");
    /* The refused invite never reached alice's own inbox; the id stays free. */
    sentinel(alice, bob);
    EXPECT_NOTHING_ELSE(alice, NULL);
    live_call(alice, bob, id);
    EXPECT_NOTHING_ELSE(bob, NULL);
    client_free(alice);
    client_free(bob);
    broker_free(b);
}

static void test_rate_limited(void)
{
    static const char *const opts[] = {"invite_rate 3", "busy_limit 100", NULL};
    struct broker *b = start_with(opts);
    struct client *alice = client_open_inbox(b, "alice", NULL);
    struct client *bob = client_open_inbox(b, "bob", NULL);
    struct client *carol = client_open_inbox(b, "carol", NULL);
    const char *ids[3];
    for (int i = 0; i < 3; i++) {
        ids[i] = rt_uniq("rate");
        live_call(alice, bob, ids[i]);
    }
    const char *over = rt_uniq("rate");
    send_invite(alice, "bob", over);
    EXPECT_ERROR(alice, "alice", "rate_limited", over, "invite");
    /* The limit is per caller: carol may still call. */
    const char *cid = rt_uniq("carol");
    send_invite(carol, "bob", cid);
    CHECK_STAMP(EXPECT_EVENT(bob, "bob", "invite", cid), "invite", cid, "carol", "bob", "carol");
    /* Sentinel: alice ends one of her calls; both inboxes see it. */
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"cancel\",\"id\":\"%s\"}", ids[0]));
    EXPECT_EVENT(alice, "alice", "cancel", ids[0]);
    EXPECT_EVENT(bob, "bob", "cancel", ids[0]);
    EXPECT_NOTHING_ELSE(bob, NULL);
    EXPECT_NOTHING_ELSE(alice, NULL);
    client_free(alice);
    client_free(bob);
    client_free(carol);
    broker_free(b);
}

static void test_busy_limit(void)
{
    static const char *const opts[] = {"busy_limit 2", "invite_rate 100", NULL};
    struct broker *b = start_with(opts);
    struct client *alice = client_open_inbox(b, "alice", NULL);
    struct client *bob = client_open_inbox(b, "bob", NULL);
    struct client *carol = client_open_inbox(b, "carol", NULL);
    const char *id1 = rt_uniq("busy");
    const char *id2 = rt_uniq("busy");
    live_call(alice, bob, id1);
    live_call(alice, bob, id2);
    const char *id3 = rt_uniq("busy");
    send_invite(alice, "carol", id3);
    EXPECT_ERROR(alice, "alice", "busy_limit", id3, "invite");
    /* Ending one call frees a place. */
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"cancel\",\"id\":\"%s\"}", id1));
    EXPECT_EVENT(alice, "alice", "cancel", id1);
    EXPECT_EVENT(bob, "bob", "cancel", id1);
    const char *id4 = rt_uniq("busy");
    send_invite(alice, "carol", id4);
    CHECK_STAMP(EXPECT_EVENT(carol, "carol", "invite", id4), "invite", id4, "alice", "carol",
                "alice");
    /* An answered call frees a place too. */
    rt_send(carol, inbox("alice"), rt_fmt("{\"type\":\"accept\",\"id\":\"%s\"}", id4));
    EXPECT_EVENT(alice, "alice", "accept", id4);
    EXPECT_EVENT(carol, "carol", "accept", id4);
    const char *id5 = rt_uniq("busy");
    send_invite(alice, "carol", id5);
    EXPECT_EVENT(carol, "carol", "invite", id5);
    /* Full again. */
    const char *id6 = rt_uniq("busy");
    send_invite(alice, "carol", id6);
    EXPECT_ERROR(alice, "alice", "busy_limit", id6, "invite");
    rt_send(alice, inbox("carol"), rt_fmt("{\"type\":\"cancel\",\"id\":\"%s\"}", id5));
    EXPECT_EVENT(alice, "alice", "cancel", id5);
    EXPECT_EVENT(carol, "carol", "cancel", id5);
    EXPECT_NOTHING_ELSE(carol, NULL);
    EXPECT_NOTHING_ELSE(alice, NULL);
    EXPECT_NOTHING_ELSE(bob, NULL);
    client_free(alice);
    client_free(bob);
    client_free(carol);
    broker_free(b);
}

/* The error goes to the session that made the request, not to the sender's
 * other sessions, though they are subscribed to the same inbox. */
static void test_error_only_to_offending_session(void)
{
    struct broker *b = start_with(NULL);
    struct client *alice1 = client_open_inbox(b, "alice-1", "alice");
    struct client *alice2 = client_open_inbox(b, "alice-2", "alice");
    struct client *bob = client_open_inbox(b, "bob", NULL);
    rt_send(alice1, inbox("bob"), "not json");
    EXPECT_ERROR(alice1, "alice", "bad_request", NULL, NULL);
    const char *id = rt_uniq("self");
    send_invite(alice1, "alice", id);
    EXPECT_ERROR(alice1, "alice", "self_call", id, "invite");
    const char *id2 = rt_uniq("nope");
    rt_send(alice1, inbox("bob"), rt_fmt("{\"type\":\"cancel\",\"id\":\"%s\"}", id2));
    EXPECT_ERROR(alice1, "alice", "unknown_invitation", id2, "cancel");

    /* Sentinel: alice1 places and cancels a call; the cancel reaches alice2
     * after anything sent to alice's inbox before it. */
    const char *sid = rt_uniq("sentinel");
    send_invite(alice1, "bob", sid);
    EXPECT_EVENT(bob, "bob", "invite", sid);
    rt_send(alice1, inbox("bob"), rt_fmt("{\"type\":\"cancel\",\"id\":\"%s\"}", sid));
    EXPECT_EVENT(alice1, "alice", "cancel", sid);
    EXPECT_EVENT(alice2, "alice", "cancel", sid);
    EXPECT_EVENT(bob, "bob", "cancel", sid);
    EXPECT_NOTHING_ELSE(alice2, NULL);
    EXPECT_NOTHING_ELSE(alice1, NULL);
    EXPECT_NOTHING_ELSE(bob, NULL);
    client_free(alice1);
    client_free(alice2);
    client_free(bob);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct test_case cases[] = {
        {"bad_request", test_bad_request},
        {"max_payload_option", test_max_payload_option},
        {"unknown_invitation", test_unknown_invitation},
        {"not_party", test_not_party},
        {"stranger_sees_nothing", test_stranger_sees_nothing},
        {"ids_not_squatted", test_ids_not_squatted},
        {"invalid_state", test_invalid_state},
        {"duplicate_id", test_duplicate_id},
        {"self_call", test_self_call},
        {"rate_limited", test_rate_limited},
        {"busy_limit", test_busy_limit},
        {"error_only_to_offending_session", test_error_only_to_offending_session},
    };
    return run_tests(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
