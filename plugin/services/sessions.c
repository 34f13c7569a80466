/*
 * Sessions (rtm_users.h): the connections the core tracks, by client
 * handle, and the counts they keep on their user. Confirming or ending a
 * session raises a session event; the features hear of it only that way.
 */
#include "rtm_outbox.h"
#include "rtm_users.h"

static bool session_eq(const struct rtm_hnode *node, const void *key)
{
    return rtm_container_of(node, struct rtm_session, node)->handle == key;
}

struct rtm_session *rtm_session_find(struct rtm_core *core, const void *handle)
{
    struct rtm_hnode *n = rtm_hash_find(&core->sessions, rtm_hash_ptr(handle), session_eq, handle);
    return n ? rtm_container_of(n, struct rtm_session, node) : NULL;
}

void rtm_session_open(struct rtm_core *core, const struct rtm_client *client, int64_t now)
{
    if (!client->uid)
        return;
    if (rtm_session_find(core, client->handle)) /* the handle authenticated again */
        rtm_session_close(core, client->handle, now);
    struct rtm_session *s = rtm_pool_alloc(&core->pool, sizeof(*s));
    struct rtm_user *user = s ? rtm_user_acquire(core, client->uid) : NULL;
    if (!user) {
        rtm_pool_free(&core->pool, s);
        rtm_out_log(core, RTM_LOG_ERR, "rtm: out of memory tracking session of %s", client->uid);
        return;
    }
    *s = (struct rtm_session){.handle = client->handle, .user = user};
    rtm_hash_insert(&core->sessions, &s->node, rtm_hash_ptr(client->handle));
    user->unconfirmed++;
    /* Out of memory, it is confirmed at its first publish or subscribe. */
    if (rtm_vec_push(&core->unconfirmed, (void *)client->handle) != 0)
        rtm_out_log(core, RTM_LOG_ERR, "rtm: out of memory queueing session of %s", client->uid);
}

bool rtm_session_confirm(struct rtm_core *core, const void *handle, int64_t now)
{
    struct rtm_session *s = rtm_session_find(core, handle);
    if (!s || s->confirmed)
        return false;
    struct rtm_user *user = s->user;
    s->confirmed = true;
    user->unconfirmed--;
    user->confirmed++;
    /* Tracked, so still connected (the broker reports the disconnect before
     * it frees the client): its handle may name it to the adapter. */
    core->hooks->up(core, s, user->confirmed == 1, now);
    return true;
}

void rtm_session_close(struct rtm_core *core, const void *handle, int64_t now)
{
    struct rtm_session *s = rtm_session_find(core, handle);
    if (!s)
        return;
    struct rtm_user *user = s->user;
    rtm_hash_remove(&core->sessions, &s->node);
    if (s->confirmed)
        user->confirmed--;
    else
        user->unconfirmed--; /* its handle in core->unconfirmed finds nothing */
    core->hooks->down(core, s, s->confirmed, !rtm_user_live(user), now);
    rtm_pool_free(&core->pool, s);
    rtm_user_release(core, user);
}

void rtm_sessions_confirm_queued(struct rtm_core *core, int64_t now)
{
    /* A handle may be stale (disconnected, or reused by a new session that
     * is queued again after it): only a session still unconfirmed counts. */
    for (size_t i = 0; i < core->unconfirmed.len; i++)
        rtm_session_confirm(core, core->unconfirmed.v[i], now);
    rtm_vec_clear(&core->unconfirmed);
}

void rtm_sessions_free_all(struct rtm_core *core)
{
    struct rtm_hnode *n;
    while ((n = rtm_hash_pop(&core->sessions)) != NULL)
        rtm_pool_free(&core->pool, rtm_container_of(n, struct rtm_session, node));
    rtm_vec_free(&core->unconfirmed);
}
