/*
 * A property test of the whole core (core_fixture.h has the fixture):
 * thousands of random connects, disconnects, requests, clock advances and
 * ticks, checked after every step against a model of the protocol. Set
 * RTM_SEED to replay a run.
 */
#include "core_fixture.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ================================================================================
 * Property test
 * ================================================================================ */

#define P_UIDS    6
#define P_HANDLES 2
#define P_IDS     12
/* An invitation is named by its caller and its id: the model has one slot
 * for each pair, slot caller * P_IDS + id (p_slot). */
#define P_CALLS (P_UIDS * P_IDS)
#define P_STEPS 20000

enum { TY_INVITE, TY_RINGING, TY_ACCEPT, TY_REFUSE, TY_CANCEL, TY_FAILURE };
static const char *const ty_names[] = {"invite", "ringing", "accept",
                                       "refuse", "cancel",  "failure"};

enum { E_BAD, E_UNKNOWN, E_NOT_PARTY, E_STATE, E_DUP, E_SELF, E_RATE, E_BUSY, E_COUNT };
static const char *const err_names[] = {"bad_request",   "unknown_invitation", "not_party",
                                        "invalid_state", "duplicate_id",       "self_call",
                                        "rate_limited",  "busy_limit"};

enum { R_PEER_OFFLINE, R_NO_RESPONSE, R_EXPIRED, R_CALLER_OFFLINE, R_COUNT };
static const char *const reason_names[] = {"peer_offline", "no_response", "expired",
                                           "caller_offline"};

enum mstate { M_FREE, M_PENDING, M_RINGING, M_ENDED };

struct mcall {
    enum mstate st;
    unsigned gen; /* how many invitations have used this id */
    int caller, callee;
    int64_t created, invite_due, ring_due, forget_due;
    bool seen; /* the callee had a confirmed session while pending */
    char content[16], channel[16];
    int ending;   /* TY_* of the ending */
    int ended_by; /* uid index, -1: the server */
    int reason;   /* R_* when failed */
    int64_t ended_ts;
    int fail_pubs[2]; /* failure publishes in this step: to the caller, the callee */
};

struct muser {
    bool connected[P_HANDLES];
    bool confirmed[P_HANDLES];
    int64_t grace_due; /* -1: not armed */
    bool shown;        /* presence published */
    bool shown_online;
    int64_t shown_sessions;
};

static struct {
    uint64_t seed, rng;
    size_t step;
    char uid[P_UIDS][8];
    char cid[P_UIDS][P_HANDLES][16];
    char id[P_IDS][8];
    struct rtm_client cl[P_UIDS][P_HANDLES];
    struct muser u[P_UIDS];
    struct mcall c[P_CALLS];
    int deliveries[P_CALLS][P_UIDS][P_HANDLES]; /* invites due to each session in this step */
    /* what the run covered */
    size_t replaced[5], errors[E_COUNT], failures[R_COUNT], reused, resends, redelivered, presence;
    size_t unchanged; /* presence published though the last one said the same */
    char unchanged_example[256];
} M;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            print_error("seed %" PRIu64 ", step %zu, now T0+%" PRId64 ": ", M.seed, M.step,        \
                        T.now - T0);                                                               \
            print_error(__VA_ARGS__);                                                              \
            print_error("\n");                                                                     \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

static uint64_t rnd(void)
{
    uint64_t z = (M.rng += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static int rnd_below(int n)
{
    return (int)(rnd() % (uint64_t)n);
}

static int p_uid_index(const char *uid)
{
    for (int u = 0; u < P_UIDS; u++) {
        if (strcmp(M.uid[u], uid) == 0)
            return u;
    }
    return -1;
}

static int p_id_index(const char *id)
{
    for (int k = 0; k < P_IDS; k++) {
        if (strcmp(M.id[k], id) == 0)
            return k;
    }
    return -1;
}

static int p_slot(int caller, int k)
{
    return caller * P_IDS + k;
}

/* The id of slot `ck`. */
#define CID(ck) (M.id[(ck) % P_IDS])

/* The slot of the invitation an event names (its caller and id), or -1. */
static int p_event_slot(const cJSON *j)
{
    const cJSON *caller = cJSON_GetObjectItemCaseSensitive(j, "caller");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
    if (!cJSON_IsString(caller) || !cJSON_IsString(id))
        return -1;
    int u = p_uid_index(caller->valuestring), k = p_id_index(id->valuestring);
    return u >= 0 && k >= 0 ? p_slot(u, k) : -1;
}

static int p_handle_index(int u, const char *cid)
{
    for (int h = 0; h < P_HANDLES; h++) {
        if (cid && strcmp(M.cid[u][h], cid) == 0)
            return h;
    }
    return -1;
}

/* The uid whose inbox `topic` is, or -1. */
static int p_inbox_owner(const char *topic)
{
    for (int u = 0; u < P_UIDS; u++) {
        if (strcmp(inbox(M.uid[u]), topic) == 0)
            return u;
    }
    return -1;
}

static int p_connected(int u)
{
    int n = 0;
    for (int h = 0; h < P_HANDLES; h++)
        n += M.u[u].connected[h];
    return n;
}

static bool p_any_confirmed(int u)
{
    for (int h = 0; h < P_HANDLES; h++) {
        if (M.u[u].confirmed[h])
            return true;
    }
    return false;
}

static bool p_live(const struct mcall *c)
{
    return c->st == M_PENDING || c->st == M_RINGING;
}

static bool p_has_live_out(int u)
{
    for (int k = 0; k < P_IDS; k++) {
        if (p_live(&M.c[p_slot(u, k)]))
            return true;
    }
    return false;
}

static const char *p_str(const cJSON *o, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(it) ? it->valuestring : "(missing)";
}

static int64_t p_num(const cJSON *o, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(it) ? (int64_t)it->valuedouble : INT64_MIN;
}

/* A session is confirmed: grace is off, its live incoming calls are seen
 * and each is delivered to it. */
static void p_confirm(int u, int h)
{
    M.u[u].confirmed[h] = true;
    M.u[u].grace_due = -1;
    for (int ck = 0; ck < P_CALLS; ck++) {
        if (p_live(&M.c[ck]) && M.c[ck].callee == u) {
            M.c[ck].seen = true;
            M.deliveries[ck][u][h]++;
        }
    }
}

static void p_end(int ck, int ending, int by, int reason)
{
    struct mcall *c = &M.c[ck];
    c->st = M_ENDED;
    c->ending = ending;
    c->ended_by = by;
    c->reason = reason;
    c->ended_ts = T.now;
    c->forget_due = T.now + (RING_MS > REMEMBER_MS ? RING_MS : REMEMBER_MS);
    if (!p_has_live_out(c->caller))
        M.u[c->caller].grace_due = -1;
}

/* Fields every call event carries. */
static void p_check_event(const char *raw, const cJSON *j, int ck, const char *type, const char *by,
                          int64_t ts)
{
    const struct mcall *c = &M.c[ck];
    CHECK(j && strcmp(p_str(j, "type"), type) == 0 && strcmp(p_str(j, "id"), CID(ck)) == 0 &&
              strcmp(p_str(j, "caller"), M.uid[c->caller]) == 0 &&
              strcmp(p_str(j, "callee"), M.uid[c->callee]) == 0 &&
              strcmp(p_str(j, "by"), by) == 0 && p_num(j, "ts") == ts,
          "expected %s of %s (gen %u) %s -> %s by %s at T0+%" PRId64 ", got %s", type, CID(ck),
          c->gen, M.uid[c->caller], M.uid[c->callee], by, ts - T0, raw);
}

static void p_check_invite_fields(const char *raw, const cJSON *j, int ck)
{
    const struct mcall *c = &M.c[ck];
    p_check_event(raw, j, ck, "invite", M.uid[c->caller], c->created);
    CHECK(cJSON_GetArraySize(j) == 9 && p_num(j, "expires_at") == c->invite_due &&
              strcmp(p_str(j, "content"), c->content) == 0 &&
              strcmp(p_str(j, "channel"), c->channel) == 0,
          "invite fields: %s", raw);
}

/* An invite published by the core itself: a delivery to a confirmed session. */
static void p_delivery(const struct pub *p, int u)
{
    int ck = p_event_slot(p->json);
    int h = p_handle_index(u, p->client_id);
    CHECK(ck >= 0 && h >= 0, "invite delivered to an unknown session: %s %s", p->topic, p->payload);
    CHECK(p_live(&M.c[ck]) && M.c[ck].callee == u,
          "invite of %s delivered, but it is not live for %s: %s", CID(ck), M.uid[u], p->payload);
    CHECK(M.deliveries[ck][u][h] > 0, "invite of %s delivered to %s unasked (or twice)", CID(ck),
          p->client_id);
    M.deliveries[ck][u][h]--;
    p_check_invite_fields(p->payload, p->json, ck);
    M.redelivered++;
}

static void p_deliveries_done(void)
{
    for (int ck = 0; ck < P_CALLS; ck++) {
        for (int u = 0; u < P_UIDS; u++) {
            for (int h = 0; h < P_HANDLES; h++) {
                CHECK(M.deliveries[ck][u][h] == 0, "invite %s was not delivered to %s", CID(ck),
                      M.cid[u][h]);
            }
        }
    }
}

/* A failure published to inbox `u`. */
static void p_failure(const struct pub *p, int u)
{
    int ck = p_event_slot(p->json);
    CHECK(ck >= 0, "failure of an unknown invitation: %s", p->payload);
    struct mcall *c = &M.c[ck];
    CHECK(!p->client_id && p->qos == 1 && !p->retain, "failure not to every subscriber: %s",
          p->payload);
    int r = -1;
    for (int i = 0; i < R_COUNT; i++) {
        if (strcmp(p_str(p->json, "reason"), reason_names[i]) == 0)
            r = i;
    }
    CHECK(r >= 0, "failure without a known reason: %s", p->payload);
    if (p_live(c)) {
        bool due = false;
        switch (r) {
        case R_PEER_OFFLINE:
        case R_NO_RESPONSE:
            due = c->st == M_PENDING && c->invite_due <= T.now && c->seen == (r == R_NO_RESPONSE);
            break;
        case R_EXPIRED:
            due = c->st == M_RINGING && c->ring_due <= T.now;
            break;
        case R_CALLER_OFFLINE:
            due = p_connected(c->caller) == 0 && M.u[c->caller].grace_due >= 0 &&
                  M.u[c->caller].grace_due <= T.now;
            break;
        }
        CHECK(due,
              "%s of %s (%s, created T0+%" PRId64 ", invite due T0+%" PRId64
              ", ring due T0+%" PRId64 ", seen %d, caller sessions %d, grace due %" PRId64
              ") is not due",
              reason_names[r], CID(ck), c->st == M_PENDING ? "pending" : "ringing", c->created - T0,
              c->invite_due - T0, c->ring_due - T0, c->seen, p_connected(c->caller),
              M.u[c->caller].grace_due);
        p_end(ck, TY_FAILURE, -1, r);
        M.failures[r]++;
    }
    CHECK(c->st == M_ENDED && c->ending == TY_FAILURE && c->reason == r && c->ended_ts == T.now,
          "a second, different ending of %s: %s", CID(ck), p->payload);
    p_check_event(p->payload, p->json, ck, "failure", "server", T.now);
    CHECK(cJSON_GetArraySize(p->json) == 7, "failure fields: %s", p->payload);
    CHECK(u == c->caller || u == c->callee, "failure of %s to a third inbox", CID(ck));
    c->fail_pubs[u == c->caller ? 0 : 1]++;
}

static void p_presence(const struct pub *p)
{
    int u = p_uid_index(p->topic + strlen("rtm/presence/"));
    CHECK(u >= 0 && p->retain && p->qos == 1 && !p->client_id, "bad presence publish %s %s",
          p->topic, p->payload);
    int n = p_connected(u);
    const cJSON *on = cJSON_GetObjectItemCaseSensitive(p->json, "online");
    CHECK(cJSON_IsBool(on) && cJSON_IsTrue(on) == (n > 0) &&
              strcmp(p_str(p->json, "uid"), M.uid[u]) == 0 && p_num(p->json, "ts") == T.now &&
              cJSON_GetArraySize(p->json) == (n > 0 ? 4 : 3) &&
              (n == 0 || p_num(p->json, "sessions") == n),
          "presence of %s with %d sessions: %s", M.uid[u], n, p->payload);
    struct muser *mu = &M.u[u];
    /* Checked at the end of the run, so that one known kind of failure does
     * not hide the others. */
    if (mu->shown && mu->shown_online == (n > 0) && (n == 0 || mu->shown_sessions == n) &&
        M.unchanged++ == 0)
        snprintf(M.unchanged_example, sizeof(M.unchanged_example),
                 "step %zu: %s on %s, as already shown", M.step, p->payload, p->topic);
    mu->shown = true;
    mu->shown_online = n > 0;
    mu->shown_sessions = n;
    M.presence++;
}

/* Counters that must agree with the model after every step. */
static void p_check_stats(bool after_tick)
{
    struct rtm_core_stats s = stats();
    size_t sessions = 0, live = 0, ended = 0, graces = 0, users = 0;
    int64_t due = INT64_MAX;
    for (int u = 0; u < P_UIDS; u++) {
        sessions += (size_t)p_connected(u);
        if (M.u[u].grace_due >= 0) {
            graces++;
            due = M.u[u].grace_due < due ? M.u[u].grace_due : due;
        }
        bool needed = p_connected(u) > 0;
        for (int ck = 0; ck < P_CALLS; ck++)
            needed |= M.c[ck].st != M_FREE && (M.c[ck].caller == u || M.c[ck].callee == u);
        users += needed;
    }
    for (int ck = 0; ck < P_CALLS; ck++) {
        const struct mcall *c = &M.c[ck];
        int64_t d = INT64_MAX;
        if (c->st == M_PENDING)
            d = c->invite_due;
        else if (c->st == M_RINGING)
            d = c->ring_due;
        else if (c->st == M_ENDED)
            d = c->forget_due;
        due = d < due ? d : due;
        live += p_live(c);
        ended += c->st == M_ENDED;
    }
    CHECK(s.sessions == sessions, "sessions %zu, expected %zu", s.sessions, sessions);
    CHECK(s.calls_live == live, "calls_live %zu, expected %zu", s.calls_live, live);
    CHECK(s.calls_remembered == ended, "calls_remembered %zu, expected %zu", s.calls_remembered,
          ended);
    CHECK(s.timers == live + ended + graces, "timers %zu, expected %zu calls + %zu graces",
          s.timers, live + ended, graces);
    int64_t next = rtm_core_next_due(T.core, T.now);
    int64_t expect = due == INT64_MAX ? -1 : due > T.now ? due - T.now : 0;
    CHECK(next == expect, "next_due %" PRId64 ", expected %" PRId64, next, expect);
    if (after_tick)
        CHECK(s.users == users, "users %zu, expected %zu", s.users, users);
}

static void p_tick(void)
{
    for (int u = 0; u < P_UIDS; u++) {
        for (int h = 0; h < P_HANDLES; h++) {
            if (M.u[u].connected[h] && !M.u[u].confirmed[h])
                p_confirm(u, h);
        }
    }
    for (int ck = 0; ck < P_CALLS; ck++)
        M.c[ck].fail_pubs[0] = M.c[ck].fail_pubs[1] = 0;
    rec_clear();
    tick();
    for (size_t i = 0; i < T.rec.npubs; i++) {
        const struct pub *p = &T.rec.pubs[i];
        CHECK(p->json, "not JSON: %s", p->payload);
        if (strncmp(p->topic, "rtm/presence/", 13) == 0) {
            p_presence(p);
            continue;
        }
        int u = p_inbox_owner(p->topic);
        CHECK(u >= 0, "publish to %s", p->topic);
        const char *type = p_str(p->json, "type");
        if (strcmp(type, "invite") == 0)
            p_delivery(p, u);
        else if (strcmp(type, "failure") == 0)
            p_failure(p, u);
        else
            CHECK(false, "unexpected publish in a tick: %s %s", p->topic, p->payload);
    }
    p_deliveries_done();
    for (int ck = 0; ck < P_CALLS; ck++) {
        struct mcall *c = &M.c[ck];
        CHECK(c->fail_pubs[0] == c->fail_pubs[1] && c->fail_pubs[0] <= 1,
              "failure of %s published %d times to the caller, %d to the callee", CID(ck),
              c->fail_pubs[0], c->fail_pubs[1]);
        if (c->st == M_ENDED && c->forget_due <= T.now)
            c->st = M_FREE;
        CHECK(!(c->st == M_PENDING && c->invite_due <= T.now),
              "%s still pending after its invite deadline", CID(ck));
        CHECK(!(c->st == M_RINGING && c->ring_due <= T.now),
              "%s still ringing after its ring deadline", CID(ck));
    }
    for (int u = 0; u < P_UIDS; u++) {
        struct muser *mu = &M.u[u];
        CHECK(mu->grace_due < 0 || mu->grace_due > T.now, "caller_grace of %s did not fire",
              M.uid[u]);
        int n = p_connected(u);
        CHECK(n > 0 ? mu->shown && mu->shown_online && mu->shown_sessions == n
                    : !mu->shown || !mu->shown_online,
              "presence of %s (%d sessions) not published", M.uid[u], n);
    }
    p_check_stats(true);
}

static void p_connect(int u, int h)
{
    M.u[u].connected[h] = true;
    M.u[u].confirmed[h] = false;
    rec_clear();
    conn(&M.cl[u][h]);
    CHECK(T.rec.npubs == 0, "connect published %s", T.rec.npubs ? T.rec.pubs[0].payload : "");
}

static void p_disconnect(int u, int h)
{
    M.u[u].connected[h] = false;
    M.u[u].confirmed[h] = false;
    if (p_connected(u) == 0 && p_has_live_out(u) && M.u[u].grace_due < 0)
        M.u[u].grace_due = T.now + GRACE_MS;
    rec_clear();
    disc(&M.cl[u][h]);
    CHECK(T.rec.npubs == 0, "disconnect published %s", T.rec.npubs ? T.rec.pubs[0].payload : "");
}

static bool p_pick_handle(int u, int *h)
{
    int n = p_connected(u);
    if (n == 0)
        return false;
    int pick = rnd_below(n);
    for (int i = 0; i < P_HANDLES; i++) {
        if (M.u[u].connected[i] && pick-- == 0) {
            *h = i;
            return true;
        }
    }
    return false;
}

static bool p_pick_any(int *u, int *h)
{
    int start = rnd_below(P_UIDS);
    for (int i = 0; i < P_UIDS; i++) {
        *u = (start + i) % P_UIDS;
        if (p_pick_handle(*u, h))
            return true;
    }
    return false;
}

/* The errors the protocol allows for request `type` of id `k` from `s` to
 * `t`'s inbox (any of them when several apply); 0 when it must be let
 * through. The sender and the inbox name the caller: `s` for invite and
 * cancel, `t` for the answers. */
static unsigned p_predict(int type, int k, int s, int t)
{
    if (type == TY_INVITE) {
        const struct mcall *c = &M.c[p_slot(s, k)];
        unsigned e = s == t ? 1u << E_SELF : 0;
        if (c->st != M_FREE && c->callee != t)
            e |= 1u << E_DUP;
        else if (c->st == M_ENDED)
            e |= 1u << E_STATE;
        return e;
    }
    if (s == t)
        return 1u << E_BAD; /* nobody calls itself: the wrong inbox */
    int caller = type == TY_CANCEL ? s : t, callee = type == TY_CANCEL ? t : s;
    const struct mcall *c = &M.c[p_slot(caller, k)];
    if (c->st != M_FREE && c->callee == callee)
        return c->st == M_ENDED && !(type == c->ending && s == c->ended_by) ? 1u << E_STATE : 0;
    if (c->st != M_FREE && type == TY_CANCEL)
        return 1u << E_BAD; /* the sender's own invitation, to another inbox */
    /* Not the sender's: not_party only when it holds the other role. */
    const struct mcall *swapped = &M.c[p_slot(callee, k)];
    return swapped->st != M_FREE && swapped->callee == caller ? 1u << E_NOT_PARTY : 1u << E_UNKNOWN;
}

/* The request was let through: check the stamped event, update the model. */
static void p_replaced(int type, int ck, int s, int t, int timeout, const char *content,
                       const char *channel, const char *response)
{
    struct mcall *c = &M.c[ck];
    const cJSON *j = T.out_json;
    M.replaced[type]++;
    switch (type) {
    case TY_INVITE:
        if (c->st == M_FREE) {
            M.reused += c->gen > 0;
            c->gen++;
            c->st = M_PENDING;
            c->caller = s;
            c->callee = t;
            c->created = T.now;
            c->invite_due = T.now + (timeout ? timeout * 1000 : INVITE_MS);
            c->ring_due = T.now + RING_MS > c->invite_due ? T.now + RING_MS : c->invite_due;
            c->seen = p_any_confirmed(t);
            snprintf(c->content, sizeof(c->content), "%s", content ? content : "");
            snprintf(c->channel, sizeof(c->channel), "%s", channel ? channel : "");
        } else {
            M.resends++;
        }
        p_check_invite_fields(T.out, j, ck);
        break;
    case TY_RINGING:
        if (c->st == M_PENDING)
            c->st = M_RINGING;
        p_check_event(T.out, j, ck, "ringing", M.uid[s], T.now);
        CHECK(cJSON_GetArraySize(j) == 6, "ringing fields: %s", T.out);
        break;
    default:
        if (p_live(c))
            p_end(ck, type, s, -1);
        else
            M.resends++;
        p_check_event(T.out, j, ck, ty_names[type], M.uid[s], c->ended_ts);
        CHECK(cJSON_GetArraySize(j) == (response ? 7 : 6) &&
                  (!response || strcmp(p_str(j, "response"), response) == 0),
              "%s fields: %s", ty_names[type], T.out);
        break;
    }
}

/* The first slot in use from `start` on (round), or `start` if none is. */
static int p_used_slot(int start)
{
    for (int i = 0; i < P_CALLS; i++) {
        int ck = (start + i) % P_CALLS;
        if (M.c[ck].st != M_FREE)
            return ck;
    }
    return start;
}

static void p_request(void)
{
    int type = rnd_below(5), ck = rnd_below(P_CALLS);
    if (type != TY_INVITE || rnd_below(2))
        ck = p_used_slot(ck); /* most slots are free: aim at the calls there are */
    int k = ck % P_IDS;
    const struct mcall *c = &M.c[ck];
    int s = -1, h = -1, t = -1;
    /* Mostly requests that make sense, so calls get somewhere; some from
     * the party that may not send them. */
    if (type != TY_INVITE && c->st != M_FREE && rnd_below(10) < 8) {
        bool wrong = rnd_below(8) == 0;
        int party = (type == TY_CANCEL) != wrong ? c->caller : c->callee;
        if (p_pick_handle(party, &h)) {
            s = party;
            t = party == c->caller ? c->callee : c->caller;
        }
    } else if (type == TY_INVITE && p_live(c) && rnd_below(10) < 3) {
        if (p_pick_handle(c->caller, &h)) {
            s = c->caller;
            t = c->callee;
        }
    }
    if (s < 0) {
        if (!p_pick_any(&s, &h))
            return;
        t = rnd_below(P_UIDS);
        if (type == TY_INVITE && t == s && rnd_below(10) < 8)
            t = (s + 1 + rnd_below(P_UIDS - 1)) % P_UIDS;
    }
    /* The slot the request names: its caller is the sender of an invite
     * or cancel, the inbox's owner for an answer. */
    ck = p_slot(type == TY_INVITE || type == TY_CANCEL ? s : t, k);
    c = &M.c[ck];

    char json[256];
    int timeout = 0;
    const char *content = NULL, *channel = NULL, *response = NULL;
    int n = snprintf(json, sizeof(json), "{\"type\":\"%s\",\"id\":\"%s\"", ty_names[type], M.id[k]);
    if (type == TY_INVITE) {
        if (rnd_below(3) == 0)
            timeout = 1 + rnd_below(6);
        if (rnd_below(3) == 0)
            content = rnd_below(2) ? "hello" : "{\\\"v\\\":1}";
        if (rnd_below(3) == 0)
            channel = rnd_below(2) ? "room-1" : "room-2";
        if (timeout)
            n += snprintf(json + n, sizeof(json) - (size_t)n, ",\"timeout\":%d", timeout);
        if (content)
            n += snprintf(json + n, sizeof(json) - (size_t)n, ",\"content\":\"%s\"", content);
        if (channel)
            n += snprintf(json + n, sizeof(json) - (size_t)n, ",\"channel\":\"%s\"", channel);
        if (content && content[0] == '{')
            content = "{\"v\":1}";
    }
    if ((type == TY_ACCEPT || type == TY_REFUSE) && rnd_below(2)) {
        response = rnd_below(2) ? "ok" : "busy";
        n += snprintf(json + n, sizeof(json) - (size_t)n, ",\"response\":\"%s\"", response);
    }
    if (rnd_below(4) == 0) /* forged and unknown fields are dropped */
        n += snprintf(json + n, sizeof(json) - (size_t)n,
                      ",\"caller\":\"x\",\"by\":\"server\",\"ts\":1,\"junk\":[1]");
    snprintf(json + n, sizeof(json) - (size_t)n, "}");

    unsigned allowed = p_predict(type, k, s, t);
    if (!M.u[s].confirmed[h])
        p_confirm(s, h); /* publishing confirms the session first */
    rec_clear();
    enum rtm_verdict v = send_to(&M.cl[s][h], M.uid[t], json);

    size_t errors = 0, copies = 0;
    for (size_t i = 0; i < T.rec.npubs; i++) {
        const struct pub *p = &T.rec.pubs[i];
        CHECK(p->json && strcmp(p->topic, inbox(M.uid[s])) == 0, "%s from %s published %s on %s",
              json, M.cid[s][h], p->payload, p->topic);
        const char *ptype = p_str(p->json, "type");
        if (strcmp(ptype, "invite") == 0) {
            p_delivery(p, s);
        } else if (strcmp(ptype, "error") == 0) {
            const char *code = p_str(p->json, "code");
            int e = -1;
            for (int i2 = 0; i2 < E_COUNT; i2++) {
                if (strcmp(code, err_names[i2]) == 0)
                    e = i2;
            }
            CHECK(e >= 0 && (allowed & (1u << e)), "%s from %s to %s (id state %d): got %s", json,
                  M.uid[s], M.uid[t], c->st, p->payload);
            CHECK(p->client_id && strcmp(p->client_id, M.cid[s][h]) == 0 && p->qos == 1 &&
                      !p->retain && strcmp(p_str(p->json, "id"), M.id[k]) == 0 &&
                      strcmp(p_str(p->json, "request"), ty_names[type]) == 0 &&
                      p_num(p->json, "ts") == T.now,
                  "error publish: %s to %s", p->payload, p->client_id ? p->client_id : "all");
            M.errors[e]++;
            errors++;
        } else {
            CHECK(type >= TY_ACCEPT && strcmp(ptype, ty_names[type]) == 0 && !p->client_id &&
                      p->qos == 1 && !p->retain && T.out && strcmp(p->payload, T.out) == 0,
                  "%s from %s: unexpected publish %s", json, M.uid[s], p->payload);
            copies++;
        }
    }
    p_deliveries_done();
    if (allowed) {
        CHECK(v == RTM_DENY && errors == 1 && copies == 0,
              "%s from %s to %s (id %s, state %d): verdict %d, %zu errors, expected one of 0x%x",
              json, M.uid[s], M.uid[t], M.id[k], c->st, v, errors, allowed);
    } else {
        CHECK(v == RTM_REPLACE && errors == 0,
              "%s from %s to %s (state %d): verdict %d, %zu errors%s%s", json, M.uid[s], M.uid[t],
              c->st, v, errors, T.rec.npubs ? ": " : "",
              T.rec.npubs ? T.rec.pubs[T.rec.npubs - 1].payload : "");
        CHECK(copies == (type >= TY_ACCEPT ? 1u : 0u), "%s: %zu copies to the sender's inbox", json,
              copies);
        p_replaced(type, ck, s, t, timeout, content, channel, response);
    }
}

static void p_init(void)
{
    memset(&M, 0, sizeof(M));
    const char *env = getenv("RTM_SEED");
    M.seed =
        env && *env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)clock() << 32);
    M.rng = M.seed;
    print_message("property test seed %" PRIu64 " (set RTM_SEED to replay)\n", M.seed);
    for (int u = 0; u < P_UIDS; u++) {
        snprintf(M.uid[u], sizeof(M.uid[u]), "u%d", u);
        M.u[u].grace_due = -1;
        for (int h = 0; h < P_HANDLES; h++) {
            snprintf(M.cid[u][h], sizeof(M.cid[u][h]), "u%d-dev%d", u, h);
            M.cl[u][h].handle = &M.cl[u][h]; /* its own address (recorder.h) */
            M.cl[u][h].uid = M.uid[u];
            M.cl[u][h].client_id = M.cid[u][h];
        }
    }
    for (int k = 0; k < P_IDS; k++)
        snprintf(M.id[k], sizeof(M.id[k]), "k%d", k);
}

static void test_property_random_traffic(void **state)
{
    (void)state;
    boot();
    p_init();
    for (M.step = 1; M.step <= P_STEPS; M.step++) {
        int r = rnd_below(100);
        int u = rnd_below(P_UIDS), h = rnd_below(P_HANDLES);
        if (r < 12) {
            if (!M.u[u].connected[h])
                p_connect(u, h);
        } else if (r < 20) {
            if (M.u[u].connected[h])
                p_disconnect(u, h);
        } else if (r < 62) {
            p_request();
        } else if (r < 80) {
            T.now += rnd_below(3001);
        } else {
            p_tick();
        }
        p_check_stats(false);
    }

    /* Everyone leaves; every timer runs out; nothing is left. */
    for (int u = 0; u < P_UIDS; u++) {
        for (int h = 0; h < P_HANDLES; h++) {
            if (M.u[u].connected[h])
                p_disconnect(u, h);
        }
    }
    p_tick();
    for (int i = 0; i < 1000; i++) {
        int64_t due = rtm_core_next_due(T.core, T.now);
        if (due < 0)
            break;
        T.now += due;
        p_tick();
    }
    struct rtm_core_stats s = stats();
    CHECK(s.users == 0 && s.sessions == 0 && s.calls_live == 0 && s.calls_remembered == 0 &&
              s.timers == 0,
          "left over: %zu users, %zu sessions, %zu live, %zu remembered, %zu timers", s.users,
          s.sessions, s.calls_live, s.calls_remembered, s.timers);

    print_message("replaced: %zu invite, %zu ringing, %zu accept, %zu refuse, %zu cancel; "
                  "%zu re-sends; %zu ids reused; %zu deliveries; %zu presence\n",
                  M.replaced[0], M.replaced[1], M.replaced[2], M.replaced[3], M.replaced[4],
                  M.resends, M.reused, M.redelivered, M.presence);
    print_message("errors: bad_request %zu, unknown %zu, not_party %zu, invalid_state %zu, "
                  "duplicate %zu, self_call %zu; failures: peer_offline %zu, no_response %zu, "
                  "expired %zu, caller_offline %zu\n",
                  M.errors[E_BAD], M.errors[E_UNKNOWN], M.errors[E_NOT_PARTY], M.errors[E_STATE],
                  M.errors[E_DUP], M.errors[E_SELF], M.failures[0], M.failures[1], M.failures[2],
                  M.failures[3]);
    /* The run must have gone everywhere the checks look. */
    for (int i = 0; i < 5; i++)
        CHECK(M.replaced[i] > 0, "no %s was let through", ty_names[i]);
    for (int e = E_BAD; e <= E_SELF; e++)
        CHECK(M.errors[e] > 0, "no %s error", err_names[e]);
    for (int r = 0; r < R_COUNT; r++)
        CHECK(M.failures[r] > 0, "no %s failure", reason_names[r]);
    CHECK(M.reused > 0 && M.resends > 0 && M.redelivered > 0 && M.presence > 0,
          "the run never reused an id, re-sent, delivered a pending invite or changed presence");
    CHECK(M.unchanged == 0, "presence published %zu times without a change, first at %s",
          M.unchanged, M.unchanged_example);
}

int main(void)
{
#define T_(f) cmocka_unit_test_setup_teardown(f, core_setup, core_teardown)
    const struct CMUnitTest tests[] = {
        T_(test_property_random_traffic),
    };
#undef T_
    return cmocka_run_group_tests(tests, NULL, NULL);
}
