/*
 * The device registry: which push targets each user has registered. The
 * retained messages on {prefix}/u/{uid}/devices/{device} are the store; this
 * is the plugin's index of them, built from the same messages, so lookups
 * at invite time are O(1). Pure: no Mosquitto calls, no clock.
 *
 * Two indexes: uid -> that user's devices (at most max_devices), and
 * token -> the one device holding it, so registering a token that another
 * user holds moves it (a shared phone stops ringing for whoever logged out).
 */
#ifndef RTM_REGISTRY_H
#define RTM_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include "rtm_config.h"
#include "rtm_hash.h"

#define RTM_TOKEN_MAX 256

enum rtm_platform {
    RTM_PLATFORM_ANDROID,
    RTM_PLATFORM_IOS,
    RTM_PLATFORM_HMOS,
};

/* A validated registration payload:
 * {"provider":"jpush","platform":"android"|"ios"|"hmos","token":"..."} */
struct rtm_registration {
    char provider[16];
    enum rtm_platform platform;
    char token[RTM_TOKEN_MAX + 1];
};

/* A (uid, device) pair, e.g. the previous holder of a token that moved. */
struct rtm_device_ref {
    char uid[RTM_UID_MAX + 1];
    char device[RTM_ID_MAX + 1];
};

/* One registered device, as rtm_registry_devices() lists them. */
struct rtm_device_entry {
    const char *device;
    const char *provider;
    enum rtm_platform platform;
    const char *token;
};

enum rtm_registry_result {
    RTM_REG_OK,
    RTM_REG_TOO_MANY, /* the user already has max_devices other devices */
    RTM_REG_NOMEM,
};

/* Validates a registration payload (UTF-8 JSON object, at most 1024 bytes,
 * provider "jpush", a known platform, a token of 1-256 characters of
 * A-Z a-z 0-9 _ - : .). Returns false with `*why` (static text) when invalid. */
bool rtm_registration_parse(const char *payload, size_t len, struct rtm_registration *out,
                            const char **why);

const char *rtm_platform_name(enum rtm_platform platform);

struct rtm_registry;

/* `key`: the secret hash key for uids and tokens (NULL: all zero). */
struct rtm_registry *rtm_registry_new(unsigned max_devices, const struct rtm_hash_key *key);
void rtm_registry_free(struct rtm_registry *reg);

/* Records (uid, device) -> registration, replacing what that device had.
 * If the token was held by another (uid, device), that entry is removed and
 * reported in `*moved_from` (and `*moved` set true) so the caller can clear
 * its retained message. Re-registering an existing device id never counts
 * against max_devices. */
enum rtm_registry_result rtm_registry_set(struct rtm_registry *reg, const char *uid,
                                          const char *device,
                                          const struct rtm_registration *registration,
                                          struct rtm_device_ref *moved_from, bool *moved);

/* Forgets (uid, device); a no-op when it is not registered. */
void rtm_registry_remove(struct rtm_registry *reg, const char *uid, const char *device);

/* Forgets whichever device holds `token`; true (and `*out` filled) if one did. */
bool rtm_registry_remove_token(struct rtm_registry *reg, const char *token,
                               struct rtm_device_ref *out);

/* Lists the devices of `uid` into out[0..max); returns how many it has
 * (which may exceed max). Pointers stay valid until the next change. */
size_t rtm_registry_devices(const struct rtm_registry *reg, const char *uid,
                            struct rtm_device_entry *out, size_t max);

size_t rtm_registry_count(const struct rtm_registry *reg); /* devices in all */

#endif
