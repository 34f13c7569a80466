/*
 * Users: one record per uid the core currently needs, found by hash. A
 * record is created on first use and freed once no session, call or pending
 * presence update refers to it and its rate buckets are full again, so
 * memory follows live state and rate limits survive reconnecting.
 */
#include <stdlib.h>
#include <string.h>

#include "rtm_state.h"

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
    rtm_list_init(&u->sessions);
    rtm_list_init(&u->calls_out);
    rtm_list_init(&u->calls_in);
    rtm_hash_insert(&core->users, &u->node, rtm_hash_bytes(&core->users, uid, len));
    return u;
}

struct rtm_user *rtm_user_acquire(struct rtm_core *core, const char *uid)
{
    struct rtm_user *u = rtm_user_find(core, uid);
    if (!u)
        u = user_new(core, uid);
    if (!u)
        return NULL;
    if (u->timer.kind == RTM_TIMER_USER_LINGER)
        rtm_heap_disarm(&core->timers, &u->timer);
    u->refs++;
    return u;
}

static void user_free(struct rtm_core *core, struct rtm_user *user)
{
    rtm_heap_disarm(&core->timers, &user->timer);
    rtm_hash_remove(&core->users, &user->node);
    free(user);
}

void rtm_user_release(struct rtm_core *core, struct rtm_user *user)
{
    if (user->refs > 0)
        user->refs--;
    rtm_user_gc(core, user);
}

/* When the bucket is full again (ms), or -1 when it was never drawn from. */
static int64_t full_at(const struct rtm_bucket *b)
{
    return b->tat_us ? (b->tat_us + 999) / 1000 : -1;
}

void rtm_user_gc(struct rtm_core *core, struct rtm_user *user)
{
    if (user->refs != 0 || user->dirty)
        return;
    int64_t a = full_at(&user->invites);
    int64_t b = full_at(&user->registrations);
    int64_t due = a > b ? a : b;
    if (due < 0) {
        user_free(core, user);
        return;
    }
    if (rtm_timer_armed(&user->timer))
        return;
    user->timer.kind = RTM_TIMER_USER_LINGER;
    if (rtm_heap_arm(&core->timers, &user->timer, due) != 0)
        user_free(core, user); /* out of memory: forget the limits, not the memory */
}

void rtm_user_linger_done(struct rtm_core *core, struct rtm_user *user)
{
    user->invites.tat_us = 0;
    user->registrations.tat_us = 0;
    rtm_user_gc(core, user);
}

bool rtm_user_live(const struct rtm_user *user)
{
    return user->confirmed + user->unconfirmed > 0;
}

bool rtm_user_take(struct rtm_bucket *b, uint32_t rate, int64_t now)
{
    const int64_t interval = 60000000 / rate;    /* microseconds per action */
    const int64_t burst = interval * (rate - 1); /* how far ahead of now it may run */
    int64_t now_us = now * 1000;
    int64_t tat = b->tat_us > now_us ? b->tat_us : now_us;
    if (tat - now_us > burst)
        return false;
    b->tat_us = tat + interval;
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
