/*
 * Users: one record per uid the core currently needs, found by hash. A
 * record is created on first use and freed as soon as no session, call or
 * pending presence update refers to it, so memory follows live state.
 */
#include <stdlib.h>
#include <string.h>

#include "rtm_state.h"

#define RATE_UNIT 60000 /* bucket units per invitation: one minute in ms */

static bool user_eq(const struct rtm_hnode *node, const void *key)
{
    const struct rtm_user *u = rtm_container_of(node, struct rtm_user, node);
    return strcmp(u->uid, key) == 0;
}

struct rtm_user *rtm_user_find(struct rtm_core *core, const char *uid)
{
    struct rtm_hnode *n =
        rtm_hash_find(&core->users, rtm_hash_bytes(&core->users, uid, strlen(uid)), user_eq, uid);
    return n ? rtm_container_of(n, struct rtm_user, node) : NULL;
}

static struct rtm_user *user_new(struct rtm_core *core, const char *uid)
{
    size_t len = strlen(uid);
    struct rtm_user *u = calloc(1, sizeof(*u) + len + 1);
    if (!u)
        return NULL;
    memcpy(u->uid, uid, len + 1);
    u->grace.kind = RTM_TIMER_CALLER_GRACE;
    rtm_list_init(&u->sessions);
    rtm_list_init(&u->calls_out);
    rtm_list_init(&u->calls_in);
    rtm_list_init(&u->dirty);
    u->rate_tokens = (int64_t)core->cfg->invite_rate * RATE_UNIT;
    u->rate_at = -1; /* full, never drawn from */
    rtm_hash_insert(&core->users, &u->node, rtm_hash_bytes(&core->users, uid, len));
    return u;
}

struct rtm_user *rtm_user_acquire(struct rtm_core *core, const char *uid)
{
    struct rtm_user *u = rtm_user_find(core, uid);
    if (!u)
        u = user_new(core, uid);
    if (u)
        u->refs++;
    return u;
}

void rtm_user_hold(struct rtm_user *user)
{
    user->refs++;
}

static void user_free(struct rtm_core *core, struct rtm_user *user)
{
    rtm_heap_disarm(&core->timers, &user->grace);
    rtm_hash_remove(&core->users, &user->node);
    free(user);
}

void rtm_user_release(struct rtm_core *core, struct rtm_user *user)
{
    if (user->refs > 0)
        user->refs--;
    rtm_user_gc(core, user);
}

void rtm_user_gc(struct rtm_core *core, struct rtm_user *user)
{
    if (user->refs == 0 && !rtm_list_linked(&user->dirty))
        user_free(core, user);
}

bool rtm_user_live(const struct rtm_user *user)
{
    return user->confirmed + user->unconfirmed > 0;
}

bool rtm_user_take_invite_token(struct rtm_core *core, struct rtm_user *user, int64_t now)
{
    /* Token bucket: holds invite_rate invitations and refills invite_rate per
     * minute, continuously. Counted in 1/60000 of an invitation so that the
     * refill per millisecond is the integer invite_rate. */
    const int64_t capacity = (int64_t)core->cfg->invite_rate * RATE_UNIT;
    if (user->rate_at >= 0 && now > user->rate_at) {
        int64_t refill = (now - user->rate_at) * (int64_t)core->cfg->invite_rate;
        user->rate_tokens =
            refill >= capacity - user->rate_tokens ? capacity : user->rate_tokens + refill;
    }
    if (user->rate_at < 0 || now > user->rate_at)
        user->rate_at = now;
    if (user->rate_tokens < RATE_UNIT)
        return false;
    user->rate_tokens -= RATE_UNIT;
    return true;
}

void rtm_users_free_all(struct rtm_core *core)
{
    struct rtm_hnode *n;
    while ((n = rtm_hash_pop(&core->users)) != NULL) {
        struct rtm_user *u = rtm_container_of(n, struct rtm_user, node);
        free(u);
    }
}
