/*
 * The core's life: creating and freeing its context, and what the adapter
 * may ask of it outside any broker event (statistics, the registry, the
 * push provider). Events go through core/dispatch.c.
 */
#include <stdlib.h>
#include <string.h>

#include "rtm_attrs.h"
#include "rtm_calls.h"
#include "rtm_channels.h"
#include "rtm_dispatch.h"
#include "rtm_outbox.h"
#include "rtm_presence.h"
#include "rtm_users.h"

struct rtm_core *rtm_core_new(const struct rtm_config *cfg, const struct rtm_sink *sink,
                              const struct rtm_hash_key *hash_key)
{
    struct rtm_core *core = calloc(1, sizeof(*core));
    if (!core)
        return NULL;
    core->cfg = cfg;
    core->sink = sink;
    core->hooks = &rtm_dispatch_hooks;
    rtm_heap_init(&core->timers);
    rtm_pool_init(&core->pool);
    if (hash_key)
        core->hash_key = *hash_key;
    core->registry = rtm_registry_new(cfg->max_devices, &core->hash_key);
    if (!core->registry || rtm_hash_init(&core->users, 1024, &core->hash_key) ||
        rtm_hash_init(&core->sessions, 1024, NULL) ||
        rtm_hash_init(&core->calls, 1024, &core->hash_key) || rtm_channels_init(core) ||
        rtm_attrs_init(core)) {
        rtm_core_free(core);
        return NULL;
    }
    return core;
}

const struct rtm_hash_key *rtm_core_hash_key(const struct rtm_core *core)
{
    return &core->hash_key;
}

void rtm_core_set_push(struct rtm_core *core, rtm_push_fn fn, void *ud)
{
    core->push = fn;
    core->push_ud = ud;
}

void rtm_core_free(struct rtm_core *core)
{
    if (!core)
        return;
    rtm_heap_fini(&core->timers); /* first: it touches timers inside calls and users */
    rtm_calls_free_all(core);
    rtm_presence_free_all(core);
    rtm_attrs_free_all(core);
    rtm_channels_free_all(core); /* before the sessions that point at memberships */
    rtm_sessions_free_all(core);
    rtm_users_free_all(core);
    if (rtm_pool_live(&core->pool) != 0)
        rtm_out_log(core, RTM_LOG_ERR, "rtm: %zu records were never freed",
                    rtm_pool_live(&core->pool));
    rtm_pool_fini(&core->pool);
    rtm_hash_fini(&core->calls);
    rtm_hash_fini(&core->sessions);
    rtm_hash_fini(&core->users);
    rtm_registry_free(core->registry);
    free(core);
}

const char *rtm_identity_uid(const struct rtm_config *cfg, const char *username,
                             const char *client_id)
{
    const char *uid = NULL;
    switch (cfg->identity) {
    case RTM_IDENTITY_AUTO:
        uid = username ? username : client_id;
        break;
    case RTM_IDENTITY_USERNAME:
        uid = username;
        break;
    case RTM_IDENTITY_CLIENTID:
        uid = client_id;
        break;
    }
    return uid && rtm_uid_valid(uid, strlen(uid)) ? uid : NULL;
}

bool rtm_core_has_session(struct rtm_core *core, const void *handle)
{
    return rtm_session_find(core, handle) != NULL;
}

bool rtm_core_owns_topic(const struct rtm_core *core, const char *topic)
{
    return rtm_topic_under_prefix(core->cfg->topic_prefix, core->cfg->prefix_len, topic);
}

struct rtm_registry *rtm_core_registry(struct rtm_core *core)
{
    return core->registry;
}

bool rtm_core_call_pending(const struct rtm_core *core, const char *caller, const char *id)
{
    return rtm_calls_pending(core, caller, id);
}

void rtm_core_stats(const struct rtm_core *core, struct rtm_core_stats *out)
{
    out->users = core->users.count;
    out->sessions = core->sessions.count;
    out->calls_live = core->calls_live;
    out->calls_remembered = core->calls.count - core->calls_live;
    out->timers = core->timers.len;
    out->devices = rtm_registry_count(core->registry);
    out->pool_bytes = rtm_pool_bytes(&core->pool);
    out->pool_records = rtm_pool_live(&core->pool);
    rtm_channels_stats(core, &out->channels, &out->memberships);
    rtm_attrs_stats(core, &out->attributes);
    for (size_t i = 0; i < RTM_ERR_KINDS; i++)
        out->refused[i] = core->refused[i];
}
