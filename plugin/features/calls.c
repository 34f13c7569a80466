/*
 * The call-invitation lifecycle (PROTOCOL.md section 4):
 *
 *   pending -> ringing -> accepted | refused | canceled | failed
 *
 * Each call has one timer armed for its next deadline: the invite deadline
 * while pending, the ring deadline while ringing, and, once ended, the time
 * it is forgotten. Ended calls are kept that long so late messages about
 * them get invalid_state rather than unknown_invitation.
 *
 * Requests arrive validated (message.c); this file decides what they do,
 * builds the stamped event that replaces the request, and publishes the
 * copies that go to the other inbox.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtm_calls.h"
#include "rtm_outbox.h"
#include "rtm_timers.h"
#include "rtm_users.h"

#define REMEMBER_MIN_MS 60000

static const char *const state_names[] = {"pending", "ringing",  "accepted",
                                          "refused", "canceled", "failed"};

/* The channel is stored inline, after the id: no allocation of its own. */
static const char *call_channel(const struct rtm_call *call)
{
    return call->has_channel ? call->id + strlen(call->id) + 1 : NULL;
}

static int64_t invite_deadline(const struct rtm_call *call)
{
    return call->created_at + call->invite_after;
}

/* An answer must come by ring_timeout after the invite, and never before
 * the invite deadline. Computed, not stored (4 bytes less per call): the
 * configuration is fixed for the core's life (rtm_core_new). */
static int64_t ring_deadline(const struct rtm_core *core, const struct rtm_call *call)
{
    int64_t ring = core->cfg->ring_timeout_ms;
    return call->created_at + (ring > call->invite_after ? ring : call->invite_after);
}

/* An invitation is named by its caller and its id together (PROTOCOL.md
 * section 3): two callers may use the same id at once, and one caller's
 * ended invitation holds its id for that caller alone. */
struct call_key {
    const char *caller;
    const char *id;
};

static bool call_eq(const struct rtm_hnode *node, const void *key)
{
    const struct rtm_call *call = rtm_container_of(node, struct rtm_call, node);
    const struct call_key *k = key;
    return strcmp(call->id, k->id) == 0 && strcmp(call->caller->uid, k->caller) == 0;
}

static uint64_t call_hash(const struct rtm_core *core, const char *caller, const char *id)
{
    return rtm_hash_pair(&core->calls, caller, id);
}

static struct rtm_call *call_find(const struct rtm_core *core, const char *caller, const char *id)
{
    struct call_key key = {caller, id};
    struct rtm_hnode *n = rtm_hash_find(&core->calls, call_hash(core, caller, id), call_eq, &key);
    return n ? rtm_container_of(n, struct rtm_call, node) : NULL;
}

static bool call_live(const struct rtm_call *call)
{
    return call->state == RTM_CALL_PENDING || call->state == RTM_CALL_RINGING;
}

/* The content and the time the call ended share their space (rtm_calls.h). */
static const char *call_content(const struct rtm_call *call)
{
    return call_live(call) ? call->content : NULL;
}

static int64_t ended_at(const struct rtm_call *call)
{
    return call->created_at + call->ended_after;
}

static void arm(struct rtm_core *core, struct rtm_call *call, int64_t due)
{
    rtm_timer_arm(core, &call->timer, due, call->id);
}

/* While pending, the next deadline is the fallback push (an online callee
 * that has not rung yet may have a dead socket) or else the invite deadline. */
static void arm_pending(struct rtm_core *core, struct rtm_call *call)
{
    int64_t due = invite_deadline(call);
    int64_t fallback = core->cfg->push_fallback_ms;
    if (!call->pushed && fallback > 0 && call->created_at + fallback < due)
        due = call->created_at + fallback;
    arm(core, call, due);
}

/* The stamped event for `call`. `by` NULL means the server. */
static char *call_event(const struct rtm_call *call, enum rtm_msg_type type, const char *by,
                        const char *response, int64_t ts, size_t *len)
{
    struct rtm_event ev = {
        .type = type,
        .id = call->id,
        .caller = call->caller->uid,
        .callee = call->callee->uid,
        .by = by,
        .ts = ts,
        .content = call_content(call),
        .channel = call_channel(call),
        .expires_at = invite_deadline(call),
        .response = response,
        .reason = (enum rtm_fail_reason)call->reason,
    };
    return rtm_event_json(&ev, len);
}

static void to_inbox(struct rtm_core *core, const char *uid, const void *handle, const char *json,
                     size_t len)
{
    if (json)
        rtm_out_inbox(core, uid, handle, json, len);
    else
        rtm_out_log(core, RTM_LOG_ERR, "rtm: out of memory delivering to %s", uid);
}

/* Hands a push to the provider, if one is installed. The call counts as
 * pushed either way, so the fallback timer never fires twice. */
static void push(struct rtm_core *core, struct rtm_call *call, enum rtm_push_kind kind,
                 const char *why, const char *reason, int64_t now)
{
    call->pushed = true;
    if (!rtm_out_can_push(core))
        return;
    struct rtm_push p = {
        .kind = kind,
        .call_id = call->id,
        .caller = call->caller->uid,
        .callee = call->callee->uid,
        .channel = call->has_channel ? call_channel(call) : "",
        .expires_at = invite_deadline(call),
        .why = why,
        .reason = reason,
        .now_ms = now,
    };
    rtm_out_push(core, &p);
}

static enum rtm_party party_of(const struct rtm_call *call, const struct rtm_user *user)
{
    if (!user)
        return RTM_PARTY_SERVER;
    return user == call->caller ? RTM_PARTY_CALLER : RTM_PARTY_CALLEE;
}

/* What the call_cancel of an ending tells the callee's pushed devices. The
 * broker cannot tell which device answered: all of them get it, and the
 * app on the one that answered ignores a cancel for a call it answered. */
static const char *cancel_reason(enum rtm_call_state state, enum rtm_fail_reason reason)
{
    switch (state) {
    case RTM_CALL_ACCEPTED:
    case RTM_CALL_REFUSED:
        return RTM_CANCEL_ANSWERED_ELSEWHERE;
    case RTM_CALL_CANCELED:
        return "canceled";
    default:
        return rtm_fail_reason_name(reason);
    }
}

/* Moves `call` into an ending state and starts the time it is remembered. */
static void end_call(struct rtm_core *core, struct rtm_call *call, enum rtm_call_state state,
                     enum rtm_fail_reason reason, struct rtm_user *by, int64_t now)
{
    free(call->content); /* first: ended_after takes its place */
    call->state = state & 7;
    call->reason = reason & 7;
    call->ended_after = (uint32_t)(now - call->created_at);
    call->ended_by = party_of(call, by) & 3;
    rtm_hlist_remove(&call->out_link);
    rtm_hlist_remove(&call->in_link);
    call->caller->busy--;
    core->calls_live--;
    if (call->pushed && core->cfg->push_on_cancel) {
        const char *why = cancel_reason(state, reason);
        push(core, call, RTM_PUSH_CALL_CANCEL, why, why, now);
    }
    if (rtm_hlist_empty(&call->caller->calls_out))
        rtm_user_disarm(core, call->caller);
    int64_t remember = core->cfg->ring_timeout_ms;
    arm(core, call, now + (remember > REMEMBER_MIN_MS ? remember : REMEMBER_MIN_MS));
    rtm_out_log(core, RTM_LOG_INFO, "rtm: call %s %s -> %s %s%s%s by %s after %lld ms", call->id,
                call->caller->uid, call->callee->uid, state_names[state], reason ? ": " : "",
                rtm_fail_reason_name(reason), by ? by->uid : "server",
                (long long)(now - call->created_at));
}

static void forget_call(struct rtm_core *core, struct rtm_call *call)
{
    rtm_hash_remove(&core->calls, &call->node);
    rtm_timer_disarm(core, &call->timer);
    rtm_user_release(core, call->caller);
    rtm_user_release(core, call->callee);
    if (call_live(call))
        free(call->content);
    rtm_pool_free(&core->pool, call);
}

static void fail_call(struct rtm_core *core, struct rtm_call *call, enum rtm_fail_reason reason,
                      int64_t now)
{
    end_call(core, call, RTM_CALL_FAILED, reason, NULL, now);
    size_t len;
    char *json = call_event(call, RTM_MSG_FAILURE, NULL, NULL, now, &len);
    to_inbox(core, call->caller->uid, NULL, json, len);
    to_inbox(core, call->callee->uid, NULL, json, len);
    free(json);
}

void rtm_calls_timer(struct rtm_core *core, struct rtm_call *call, int64_t now)
{
    switch (call->state) {
    case RTM_CALL_PENDING:
        if (now < invite_deadline(call)) { /* the fallback push is due */
            push(core, call, RTM_PUSH_CALL_INVITE, "no ringing within push_fallback_ms", NULL, now);
            arm_pending(core, call);
            break;
        }
        fail_call(core, call, call->callee_seen ? RTM_FAIL_NO_RESPONSE : RTM_FAIL_PEER_OFFLINE,
                  now);
        break;
    case RTM_CALL_RINGING:
        fail_call(core, call, RTM_FAIL_EXPIRED, now);
        break;
    default:
        forget_call(core, call);
        break;
    }
}

static enum rtm_err refuse(enum rtm_err err, char *why, size_t why_len, const char *fmt,
                           const char *arg)
{
    snprintf(why, why_len, fmt, arg);
    return err;
}

static struct rtm_call *call_new(struct rtm_core *core, const struct rtm_request *req,
                                 struct rtm_user *caller, struct rtm_user *callee, int64_t now)
{
    size_t id_len = strlen(req->id);
    size_t channel_size = req->channel ? strlen(req->channel) + 1 : 0;
    struct rtm_call *call =
        rtm_pool_alloc(&core->pool, RTM_FLEX_SIZE(struct rtm_call, id, id_len + 1 + channel_size));
    if (!call)
        return NULL;
    call->content = req->content ? strdup(req->content) : NULL;
    if (req->content && !call->content) {
        rtm_pool_free(&core->pool, call);
        return NULL;
    }
    memcpy(call->id, req->id, id_len + 1);
    if (req->channel)
        memcpy(call->id + id_len + 1, req->channel, channel_size);
    call->has_channel = req->channel != NULL;
    call->timer.kind = RTM_TIMER_CALL;
    call->caller = caller;
    call->callee = callee;
    call->created_at = now;
    int64_t wait = req->timeout_s ? (int64_t)req->timeout_s * 1000 : core->cfg->invite_timeout_ms;
    call->invite_after = (uint32_t)wait;
    call->callee_seen = callee->confirmed > 0;
    return call;
}

/* An invite whose id the same caller already has: a re-send, a late copy
 * of an ended invitation, or the id used again for another callee. */
static enum rtm_err known_invite(const struct rtm_call *call, const char *sender, const char *peer,
                                 char **out, size_t *out_len, char *why, size_t why_len)
{
    if (strcmp(call->callee->uid, peer) != 0)
        return refuse(RTM_ERR_DUPLICATE_ID, why, why_len,
                      "id %s belongs to another of your invitations", call->id);
    if (!call_live(call))
        return refuse(RTM_ERR_INVALID_STATE, why, why_len, "invitation %s has already ended",
                      call->id);
    *out = call_event(call, RTM_MSG_INVITE, sender, NULL, call->created_at, out_len);
    return RTM_OK;
}

static enum rtm_err handle_invite(struct rtm_core *core, const char *sender, const char *peer,
                                  const struct rtm_request *req, int64_t now, char **out,
                                  size_t *out_len, char *why, size_t why_len)
{
    if (strcmp(sender, peer) == 0)
        return refuse(RTM_ERR_SELF_CALL, why, why_len, "%s cannot invite itself", sender);
    struct rtm_call *known = call_find(core, sender, req->id);
    if (known)
        return known_invite(known, sender, peer, out, out_len, why, why_len);
    struct rtm_user *caller = rtm_user_acquire(core, sender);
    struct rtm_user *callee = caller ? rtm_user_acquire(core, peer) : NULL;
    enum rtm_err err = RTM_OK;
    if (!callee)
        err = refuse(RTM_ERR_BAD_REQUEST, why, why_len, "%s", "server out of memory");
    else if (caller->busy >= core->cfg->busy_limit)
        err = refuse(RTM_ERR_BUSY_LIMIT, why, why_len,
                     "%s already has busy_limit pending invitations", sender);
    else if (!rtm_bucket_take(&caller->invites, core->cfg->invite_rate, 60000, now))
        err = refuse(RTM_ERR_RATE_LIMITED, why, why_len,
                     "%s started more than invite_rate invitations in a minute", sender);
    struct rtm_call *call = err == RTM_OK ? call_new(core, req, caller, callee, now) : NULL;
    if (err == RTM_OK && !call)
        err = refuse(RTM_ERR_BAD_REQUEST, why, why_len, "%s", "server out of memory");
    if (err != RTM_OK) {
        if (callee)
            rtm_user_release(core, callee);
        if (caller)
            rtm_user_release(core, caller);
        return err;
    }
    rtm_hash_insert(&core->calls, &call->node, call_hash(core, sender, call->id));
    rtm_hlist_add_head(&caller->calls_out, &call->out_link);
    rtm_hlist_add_head(&callee->calls_in, &call->in_link);
    caller->busy++;
    core->calls_live++;
    if (!rtm_user_live(callee)) /* before arming: a pushed call needs no fallback push */
        push(core, call, RTM_PUSH_CALL_INVITE, "callee offline", NULL, now);
    arm_pending(core, call);
    if (!rtm_user_live(caller)) /* e.g. a client the broker authenticated by certificate */
        rtm_calls_user_offline(core, caller, now);
    rtm_out_log(core, RTM_LOG_DEBUG, "rtm: call %s %s -> %s invited, ring by %lld", call->id,
                sender, peer, (long long)invite_deadline(call));
    *out = call_event(call, RTM_MSG_INVITE, sender, NULL, now, out_len);
    return RTM_OK;
}

static enum rtm_call_state ending_of(enum rtm_msg_type type)
{
    switch (type) {
    case RTM_MSG_ACCEPT:
        return RTM_CALL_ACCEPTED;
    case RTM_MSG_REFUSE:
        return RTM_CALL_REFUSED;
    default:
        return RTM_CALL_CANCELED;
    }
}

/* ringing from the callee. */
static enum rtm_err handle_ringing(struct rtm_core *core, struct rtm_call *call, int64_t now,
                                   char **out, size_t *out_len, char *why, size_t why_len)
{
    if (!call_live(call))
        return refuse(RTM_ERR_INVALID_STATE, why, why_len, "invitation %s has already ended",
                      call->id);
    if (call->state == RTM_CALL_PENDING) {
        call->state = RTM_CALL_RINGING;
        arm(core, call, ring_deadline(core, call));
        rtm_out_log(core, RTM_LOG_DEBUG, "rtm: call %s ringing at %s", call->id, call->callee->uid);
    }
    *out = call_event(call, RTM_MSG_RINGING, call->callee->uid, NULL, now, out_len);
    return RTM_OK;
}

/* accept, refuse or cancel, sent by `by`. The request itself reaches the
 * other party's inbox; the sender's own inbox gets a copy, so its other
 * devices learn the outcome too. */
static enum rtm_err handle_ending(struct rtm_core *core, struct rtm_call *call,
                                  const struct rtm_request *req, struct rtm_user *by, int64_t now,
                                  char **out, size_t *out_len, char *why, size_t why_len)
{
    enum rtm_call_state ending = ending_of(req->type);
    if (!call_live(call) && (call->state != ending || call->ended_by != party_of(call, by)))
        return refuse(RTM_ERR_INVALID_STATE, why, why_len, "invitation %s has already ended",
                      call->id);
    /* Live: end it now. Ended by this same request (a QoS 1 retry): deliver
     * it again, exactly as the first time. */
    if (call_live(call))
        end_call(core, call, ending, RTM_FAIL_NONE, by, now);
    *out = call_event(call, req->type, by->uid, req->response, ended_at(call), out_len);
    if (*out)
        to_inbox(core, by->uid, NULL, *out, *out_len);
    return RTM_OK;
}

/* No invitation (caller, id) to `callee` for a request whose addressing
 * says so. If there is one with the two roles swapped, the sender is a
 * party doing the other party's part: not_party. Anything else reads
 * exactly as if no such id existed, whatever invitations other users have:
 * the answer depends only on invitations the sender is a party of, so no
 * one can probe for other people's calls. */
static enum rtm_err not_found(struct rtm_core *core, const char *caller, const char *callee,
                              const struct rtm_request *req, char *why, size_t why_len)
{
    const struct rtm_call *swapped = call_find(core, callee, req->id);
    if (swapped && strcmp(swapped->callee->uid, caller) == 0)
        return refuse(RTM_ERR_NOT_PARTY, why, why_len,
                      req->type == RTM_MSG_CANCEL ? "only the caller of %s may cancel it"
                                                  : "only the callee of %s may answer it",
                      req->id);
    return refuse(RTM_ERR_UNKNOWN_INVITATION, why, why_len, "no invitation with id %s", req->id);
}

/* ringing, accept, refuse (callee to the caller's inbox) and cancel (caller
 * to the callee's inbox): the sender and the inbox name the caller, and the
 * invitation is found by that caller and the id. */
static enum rtm_err handle_party(struct rtm_core *core, const char *sender, const char *peer,
                                 const struct rtm_request *req, int64_t now, char **out,
                                 size_t *out_len, char *why, size_t why_len)
{
    bool from_caller = req->type == RTM_MSG_CANCEL;
    if (strcmp(sender, peer) == 0) /* nobody calls itself: always the wrong inbox */
        return refuse(RTM_ERR_BAD_REQUEST, why, why_len,
                      from_caller ? "cancel must be published to the callee's inbox, not %s's"
                                  : "answers must be published to the caller's inbox, not %s's",
                      sender);
    const char *caller = from_caller ? sender : peer;
    const char *callee = from_caller ? peer : sender;
    struct rtm_call *call = call_find(core, caller, req->id);
    if (call && strcmp(call->callee->uid, callee) != 0) {
        if (from_caller) /* the sender's own invitation, to someone else */
            return refuse(RTM_ERR_BAD_REQUEST, why, why_len,
                          "cancel must be published to the callee's inbox (%s)", call->callee->uid);
        call = NULL; /* another user's invitation: the sender is no party of it */
    }
    if (!call)
        return not_found(core, caller, callee, req, why, why_len);
    if (req->type == RTM_MSG_RINGING)
        return handle_ringing(core, call, now, out, out_len, why, why_len);
    return handle_ending(core, call, req, from_caller ? call->caller : call->callee, now, out,
                         out_len, why, why_len);
}

static enum rtm_err calls_request(struct rtm_core *core, const char *sender, const char *peer,
                                  const struct rtm_request *req, int64_t now, char **out,
                                  size_t *out_len, char *why, size_t why_len)
{
    *out = NULL;
    *out_len = 0;
    enum rtm_err err = req->type == RTM_MSG_INVITE
                           ? handle_invite(core, sender, peer, req, now, out, out_len, why, why_len)
                           : handle_party(core, sender, peer, req, now, out, out_len, why, why_len);
    if (err == RTM_OK && !*out)
        err = refuse(RTM_ERR_BAD_REQUEST, why, why_len, "%s", "server out of memory");
    return err;
}

/* Tells the one session that sent a refused request why, and logs it. */
static void refuse_request(struct rtm_core *core, const struct rtm_client *client, enum rtm_err err,
                           const char *why, const struct rtm_request *req, int64_t now)
{
    size_t len;
    char *json = rtm_error_json(err, why, req->id, req->type, now, &len);
    if (json)
        rtm_out_inbox(core, client->uid, client->handle, json, len);
    free(json);
    rtm_out_log(core, RTM_LOG_NOTICE, "rtm: refused %s from %s (%s): %s: %s",
                req->type < RTM_MSG_FAILURE ? rtm_msg_type_name(req->type) : "request", client->uid,
                client->client_id ? client->client_id : "", rtm_err_code(err), why);
}

struct rtm_message_result rtm_calls_message(struct rtm_core *core, const struct rtm_client *client,
                                            const struct rtm_topic *topic, const void *payload,
                                            size_t len, bool retain, int64_t now)
{
    struct rtm_message_result res = {RTM_DENY, NULL, 0};
    struct rtm_request req;
    const char *why = NULL;
    char reason[256];
    enum rtm_err err = rtm_request_parse(payload, len, core->cfg, &req, &why);
    if (err == RTM_OK && retain) {
        err = RTM_ERR_BAD_REQUEST;
        why = "call messages must not be retained";
    }
    if (err == RTM_OK) {
        char peer[RTM_UID_MAX + 1];
        memcpy(peer, topic->uid, topic->uid_len);
        peer[topic->uid_len] = '\0';
        err = calls_request(core, client->uid, peer, &req, now, &res.payload, &res.payload_len,
                            reason, sizeof(reason));
        why = reason;
    }
    if (err == RTM_OK)
        res.verdict = RTM_REPLACE;
    else
        refuse_request(core, client, err, why, &req, now);
    rtm_request_free(&req);
    return res;
}

bool rtm_calls_read_ok(struct rtm_core *core, const char *topic, size_t len, bool retain)
{
    if (retain && len > 0)
        rtm_out_erase(core, topic, "call messages are never retained");
    return !retain && len > 0;
}

/* Calls join their lists at the head; these walks go oldest first, as the
 * calls were placed, so that events keep that order. */
void rtm_calls_caller_gone(struct rtm_core *core, struct rtm_user *user, int64_t now)
{
    struct rtm_hlist_node *n = rtm_hlist_last(&user->calls_out);
    while (n) {
        /* Failing this call unlinks it; the newer ones stay where they are. */
        struct rtm_hlist_node *newer = rtm_hlist_prev(&user->calls_out, n);
        fail_call(core, rtm_container_of(n, struct rtm_call, out_link), RTM_FAIL_CALLER_OFFLINE,
                  now);
        n = newer;
    }
}

void rtm_calls_redeliver(struct rtm_core *core, struct rtm_user *user, const void *handle,
                         int64_t now)
{
    (void)now;
    for (struct rtm_hlist_node *n = rtm_hlist_last(&user->calls_in); n;
         n = rtm_hlist_prev(&user->calls_in, n)) {
        struct rtm_call *call = rtm_container_of(n, struct rtm_call, in_link);
        size_t len;
        char *json =
            call_event(call, RTM_MSG_INVITE, call->caller->uid, NULL, call->created_at, &len);
        to_inbox(core, user->uid, handle, json, len);
        free(json);
    }
}

void rtm_calls_session_up(struct rtm_core *core, struct rtm_user *user, const void *handle,
                          int64_t now)
{
    for (struct rtm_hlist_node *n = user->calls_in.first; n; n = n->next)
        rtm_container_of(n, struct rtm_call, in_link)->callee_seen = true;
    rtm_calls_redeliver(core, user, handle, now);
}

void rtm_calls_user_offline(struct rtm_core *core, struct rtm_user *user, int64_t now)
{
    if (rtm_hlist_empty(&user->calls_out) || rtm_user_timer_armed(user))
        return;
    if (!rtm_user_arm(core, user, RTM_TIMER_CALLER_GRACE, now + core->cfg->caller_grace_ms))
        rtm_out_log(core, RTM_LOG_ERR, "rtm: out of memory arming caller_grace of %s", user->uid);
}

void rtm_calls_user_online(struct rtm_core *core, struct rtm_user *user)
{
    rtm_user_disarm(core, user);
}

bool rtm_calls_pending(const struct rtm_core *core, const char *caller, const char *id)
{
    const struct rtm_call *call = call_find(core, caller, id);
    return call && call_live(call);
}

void rtm_calls_free_all(struct rtm_core *core)
{
    struct rtm_hnode *n;
    while ((n = rtm_hash_pop(&core->calls)) != NULL) {
        struct rtm_call *call = rtm_container_of(n, struct rtm_call, node);
        if (call_live(call))
            free(call->content);
        rtm_pool_free(&core->pool, call);
    }
    core->calls_live = 0;
}
