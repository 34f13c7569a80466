/*
 * The device registry (rtm_registry.h). Two intrusive rtm_hash tables index
 * the same records: `users` maps uid -> struct user, which keeps its devices
 * on an intrusive list (at most max_devices long, so scanning it is O(1) in
 * the number of users), and `tokens` maps token -> the one struct device
 * holding it. Every device is on both, always. A user record lives only
 * while it has a device, so memory follows live state.
 *
 * rtm_registry_set allocates everything it needs before it changes anything:
 * NOMEM and TOO_MANY leave the registry exactly as it was. Callers pass uids
 * and device ids already checked by the topic parser (rtm_uid_valid,
 * rtm_id_valid); longer ones are stored but cut short in a rtm_device_ref.
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtm_hash.h"
#include "rtm_list.h"
#include "rtm_message.h"
#include "rtm_registry.h"

#define PAYLOAD_MAX 1024

struct user {
    struct rtm_hnode node;   /* in reg->users, keyed by uid */
    struct rtm_list devices; /* struct device.link, in registration order */
    size_t count;
    char uid[];
};

struct device {
    struct rtm_hnode node; /* in reg->tokens, keyed by token */
    struct rtm_list link;  /* in user->devices */
    struct user *user;
    enum rtm_platform platform;
    char provider[sizeof(((struct rtm_registration *)0)->provider)];
    char *token;
    char device[];
};

struct rtm_registry {
    struct rtm_hash users;
    struct rtm_hash tokens;
    size_t count; /* devices */
    unsigned max_devices;
};

/* --- parsing a registration --------------------------------------------- */

static const char *const platform_names[] = {
    [RTM_PLATFORM_ANDROID] = "android",
    [RTM_PLATFORM_IOS] = "ios",
    [RTM_PLATFORM_HMOS] = "hmos",
};

const char *rtm_platform_name(enum rtm_platform platform)
{
    return (unsigned)platform <= RTM_PLATFORM_HMOS ? platform_names[platform] : "";
}

static bool token_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == ':' || c == '.';
}

static bool token_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > RTM_TOKEN_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!token_char(s[i]))
            return false;
    }
    return true;
}

static bool parse_provider(const cJSON *root, struct rtm_registration *out, const char **why)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, "provider");
    if (!cJSON_IsString(item) || strcmp(item->valuestring, "jpush") != 0) {
        *why = "provider must be \"jpush\"";
        return false;
    }
    strcpy(out->provider, "jpush");
    return true;
}

static bool parse_platform(const cJSON *root, struct rtm_registration *out, const char **why)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, "platform");
    for (int p = RTM_PLATFORM_ANDROID; cJSON_IsString(item) && p <= RTM_PLATFORM_HMOS; p++) {
        if (strcmp(item->valuestring, platform_names[p]) == 0) {
            out->platform = (enum rtm_platform)p;
            return true;
        }
    }
    *why = "platform must be \"android\", \"ios\" or \"hmos\"";
    return false;
}

static bool parse_token(const cJSON *root, struct rtm_registration *out, const char **why)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, "token");
    if (!cJSON_IsString(item) || !token_valid(item->valuestring)) {
        *why = "token must be a string of 1-256 characters of A-Z a-z 0-9 _ - : .";
        return false;
    }
    strcpy(out->token, item->valuestring);
    return true;
}

bool rtm_registration_parse(const char *payload, size_t len, struct rtm_registration *out,
                            const char **why)
{
    memset(out, 0, sizeof(*out));
    if (len > PAYLOAD_MAX) {
        *why = "registration larger than 1024 bytes";
        return false;
    }
    cJSON *root = rtm_json_object_parse(payload, len, why);
    if (!root)
        return false;
    bool ok = parse_provider(root, out, why) && parse_platform(root, out, why) &&
              parse_token(root, out, why);
    cJSON_Delete(root);
    if (!ok)
        memset(out, 0, sizeof(*out));
    return ok;
}

/* --- records ------------------------------------------------------------- */

static uint64_t str_hash(const struct rtm_hash *h, const char *s)
{
    return rtm_hash_bytes(h, s, strlen(s));
}

static bool user_eq(const struct rtm_hnode *node, const void *key)
{
    const struct user *u = rtm_container_of(node, struct user, node);
    return strcmp(u->uid, key) == 0;
}

static bool token_eq(const struct rtm_hnode *node, const void *key)
{
    const struct device *d = rtm_container_of(node, struct device, node);
    return strcmp(d->token, key) == 0;
}

static struct user *user_find(const struct rtm_registry *reg, const char *uid)
{
    struct rtm_hnode *n = rtm_hash_find(&reg->users, str_hash(&reg->users, uid), user_eq, uid);
    return n ? rtm_container_of(n, struct user, node) : NULL;
}

static struct device *token_find(const struct rtm_registry *reg, const char *token)
{
    struct rtm_hnode *n =
        rtm_hash_find(&reg->tokens, str_hash(&reg->tokens, token), token_eq, token);
    return n ? rtm_container_of(n, struct device, node) : NULL;
}

/* `user`'s device called `device`; NULL when either is missing. */
static struct device *device_find(const struct user *user, const char *device)
{
    if (!user)
        return NULL;
    for (struct rtm_list *l = user->devices.next; l != &user->devices; l = l->next) {
        struct device *d = rtm_container_of(l, struct device, link);
        if (strcmp(d->device, device) == 0)
            return d;
    }
    return NULL;
}

static char *copy_string(const char *s)
{
    size_t len = strlen(s);
    char *copy = malloc(len + 1);
    if (copy)
        memcpy(copy, s, len + 1);
    return copy;
}

static struct user *user_alloc(const char *uid)
{
    size_t len = strlen(uid);
    struct user *u = calloc(1, sizeof(*u) + len + 1);
    if (!u)
        return NULL;
    memcpy(u->uid, uid, len + 1);
    rtm_list_init(&u->devices);
    return u;
}

/* A device record not yet on any index, or NULL when out of memory. */
static struct device *device_alloc(const char *device, const struct rtm_registration *r)
{
    size_t len = strlen(device);
    struct device *d = calloc(1, sizeof(*d) + len + 1);
    if (!d)
        return NULL;
    d->token = copy_string(r->token);
    if (!d->token) {
        free(d);
        return NULL;
    }
    memcpy(d->device, device, len + 1);
    rtm_list_init(&d->link);
    d->platform = r->platform;
    snprintf(d->provider, sizeof(d->provider), "%s", r->provider);
    return d;
}

static void device_free(struct device *d)
{
    free(d->token);
    free(d);
}

/* Unlinks `d` from both indexes and frees it, and its user when it was the
 * user's last device. */
static void device_remove(struct rtm_registry *reg, struct device *d)
{
    struct user *u = d->user;
    rtm_hash_remove(&reg->tokens, &d->node);
    rtm_list_remove(&d->link);
    u->count--;
    reg->count--;
    device_free(d);
    if (u->count == 0) {
        rtm_hash_remove(&reg->users, &u->node);
        free(u);
    }
}

static void ref_fill(struct rtm_device_ref *ref, const struct device *d)
{
    if (!ref)
        return;
    snprintf(ref->uid, sizeof(ref->uid), "%s", d->user->uid);
    snprintf(ref->device, sizeof(ref->device), "%s", d->device);
}

/* Takes a token away from its holder, reporting who that was. */
static void evict(struct rtm_registry *reg, struct device *holder,
                  struct rtm_device_ref *moved_from, bool *moved)
{
    ref_fill(moved_from, holder);
    if (moved)
        *moved = true;
    device_remove(reg, holder);
}

/* --- the registry ------------------------------------------------------- */

struct rtm_registry *rtm_registry_new(unsigned max_devices, const struct rtm_hash_key *key)
{
    struct rtm_registry *reg = calloc(1, sizeof(*reg));
    if (!reg)
        return NULL;
    if (rtm_hash_init(&reg->users, 16, key) != 0)
        goto fail_users;
    if (rtm_hash_init(&reg->tokens, 16, key) != 0)
        goto fail_tokens;
    reg->max_devices = max_devices;
    return reg;
fail_tokens:
    rtm_hash_fini(&reg->users);
fail_users:
    free(reg);
    return NULL;
}

void rtm_registry_free(struct rtm_registry *reg)
{
    if (!reg)
        return;
    struct rtm_hnode *n;
    while ((n = rtm_hash_pop(&reg->users)) != NULL) {
        struct user *u = rtm_container_of(n, struct user, node);
        while (!rtm_list_empty(&u->devices)) {
            struct device *d = rtm_container_of(u->devices.next, struct device, link);
            rtm_list_remove(&d->link);
            device_free(d);
        }
        free(u);
    }
    rtm_hash_fini(&reg->users);
    rtm_hash_fini(&reg->tokens);
    free(reg);
}

/* Would adding one device to `user` (NULL: a new user) break max_devices?
 * A device of the same user that holds the token leaves as the new one
 * comes, so it does not count. */
static bool too_many(const struct rtm_registry *reg, const struct user *user,
                     const struct device *holder)
{
    size_t have = user ? user->count : 0;
    if (holder && holder->user == user)
        have--;
    return have >= reg->max_devices;
}

/* Re-registration of the existing device `d`: updated in place. */
static enum rtm_registry_result update(struct rtm_registry *reg, struct device *d,
                                       struct device *holder, const struct rtm_registration *r,
                                       struct rtm_device_ref *moved_from, bool *moved)
{
    char *token = NULL;
    if (holder != d) {
        token = copy_string(r->token);
        if (!token)
            return RTM_REG_NOMEM;
    }
    if (holder && holder != d)
        evict(reg, holder, moved_from, moved); /* never d's user's last device: d stays */
    d->platform = r->platform;
    snprintf(d->provider, sizeof(d->provider), "%s", r->provider);
    if (token) {
        rtm_hash_remove(&reg->tokens, &d->node);
        free(d->token);
        d->token = token;
        rtm_hash_insert(&reg->tokens, &d->node, str_hash(&reg->tokens, token));
    }
    return RTM_REG_OK;
}

/* A new device for `user` (NULL: the uid has none yet). */
static enum rtm_registry_result add(struct rtm_registry *reg, struct user *user, const char *uid,
                                    const char *device, struct device *holder,
                                    const struct rtm_registration *r,
                                    struct rtm_device_ref *moved_from, bool *moved)
{
    struct user *fresh = user ? NULL : user_alloc(uid);
    if (!user && !fresh)
        return RTM_REG_NOMEM;
    struct device *d = device_alloc(device, r);
    if (!d) {
        free(fresh);
        return RTM_REG_NOMEM;
    }
    if (fresh) {
        rtm_hash_insert(&reg->users, &fresh->node, str_hash(&reg->users, uid));
        user = fresh;
    }
    d->user = user;
    rtm_list_add_tail(&user->devices, &d->link);
    user->count++;
    reg->count++;
    /* After linking d, so evicting a device of the same user never frees it. */
    if (holder)
        evict(reg, holder, moved_from, moved);
    rtm_hash_insert(&reg->tokens, &d->node, str_hash(&reg->tokens, d->token));
    return RTM_REG_OK;
}

enum rtm_registry_result rtm_registry_set(struct rtm_registry *reg, const char *uid,
                                          const char *device,
                                          const struct rtm_registration *registration,
                                          struct rtm_device_ref *moved_from, bool *moved)
{
    if (moved)
        *moved = false;
    struct user *user = user_find(reg, uid);
    struct device *d = device_find(user, device);
    struct device *holder = token_find(reg, registration->token);
    if (d)
        return update(reg, d, holder, registration, moved_from, moved);
    if (too_many(reg, user, holder))
        return RTM_REG_TOO_MANY;
    return add(reg, user, uid, device, holder, registration, moved_from, moved);
}

void rtm_registry_remove(struct rtm_registry *reg, const char *uid, const char *device)
{
    struct device *d = device_find(user_find(reg, uid), device);
    if (d)
        device_remove(reg, d);
}

bool rtm_registry_remove_token(struct rtm_registry *reg, const char *token,
                               struct rtm_device_ref *out)
{
    struct device *d = token_find(reg, token);
    if (!d)
        return false;
    ref_fill(out, d);
    device_remove(reg, d);
    return true;
}

size_t rtm_registry_devices(const struct rtm_registry *reg, const char *uid,
                            struct rtm_device_entry *out, size_t max)
{
    const struct user *user = user_find(reg, uid);
    if (!user)
        return 0;
    size_t i = 0;
    for (struct rtm_list *l = user->devices.next; l != &user->devices && i < max; l = l->next) {
        const struct device *d = rtm_container_of(l, struct device, link);
        out[i++] = (struct rtm_device_entry){
            .device = d->device,
            .provider = d->provider,
            .platform = d->platform,
            .token = d->token,
        };
    }
    return user->count;
}

size_t rtm_registry_count(const struct rtm_registry *reg)
{
    return reg->count;
}
