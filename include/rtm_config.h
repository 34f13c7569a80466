/*
 * Plugin options (`plugin_opt_<name>` in mosquitto.conf), parsed and
 * validated once at load. Pure: no Mosquitto calls; errors come back as a
 * message that names the option.
 */
#ifndef RTM_CONFIG_H
#define RTM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RTM_PREFIX_MAX      128
#define RTM_UID_MAX         64
#define RTM_ID_MAX          64
#define RTM_CONFIG_TEXT_MAX 255
#define RTM_CONFIG_JSON_MAX 4095

enum rtm_identity {
    RTM_IDENTITY_AUTO,     /* username when there is one, else client id */
    RTM_IDENTITY_USERNAME, /* username only */
    RTM_IDENTITY_CLIENTID, /* client id only */
};

enum rtm_auth_mode {
    RTM_AUTH_NONE,  /* accept every client */
    RTM_AUTH_DEFER, /* another source authenticates; only observe */
    RTM_AUTH_TOKEN, /* the password must be a login token (rtm_token.h) */
};

/* A token secret shorter than this is refused at load: HMAC-SHA256 keys
 * should not be guessable. */
#define RTM_TOKEN_SECRET_MIN 16

enum rtm_other_topics {
    RTM_OTHER_DEFER, /* another ACL source decides topics outside the prefix */
    RTM_OTHER_ALLOW, /* allow every topic outside the prefix */
};

enum rtm_attr_lifetime {
    RTM_ATTR_SESSION,    /* a user's attributes go when the user goes offline */
    RTM_ATTR_PERSISTENT, /* kept, restarts included, until deleted */
};

struct rtm_config {
    char topic_prefix[RTM_PREFIX_MAX + 1]; /* no trailing slash */
    size_t prefix_len;
    enum rtm_identity identity;
    enum rtm_auth_mode auth;
    char token_secret[RTM_CONFIG_TEXT_MAX + 1]; /* auth token only */
    uint32_t token_leeway_s;                    /* clock skew allowed past a token's expiry */
    enum rtm_other_topics other_topics;
    int64_t invite_timeout_ms;
    int64_t ring_timeout_ms;
    int64_t caller_grace_ms;
    uint32_t max_invite_timeout_s;
    uint32_t busy_limit;
    uint32_t invite_rate; /* invitations a caller may start per minute */
    uint32_t device_rate; /* device registrations a uid may write per minute */
    uint32_t max_payload; /* bytes */
    char **admin_users;
    size_t admin_count;

    /* Peer and channel messages, channels, attributes (SPEC 8). */
    uint32_t max_message;       /* bytes of one peer or channel message */
    uint32_t message_rate;      /* peer and channel messages per second per uid (= burst) */
    uint32_t join_rate;         /* channel joins per second per uid (= burst) */
    uint32_t max_channels;      /* channels one session may be in */
    uint32_t member_events_max; /* member events while a channel has at most this many; 0: none */
    enum rtm_attr_lifetime user_attr_lifetime;
    uint32_t max_attr_keys;  /* per user and per channel */
    uint32_t max_attr_bytes; /* bytes of all values, per user and per channel */
    /* Attributes held in all: channel attributes outlive their members, so
     * without a global bound new channel names could grow them for ever. */
    uint32_t max_attributes;
    uint32_t attr_rate; /* attribute writes per 5 seconds per uid */

    /* Device registry and offline push. */
    uint32_t max_devices;
    int64_t push_fallback_ms; /* 0: never push an online callee */
    bool push_on_cancel;
    bool apns_production;
    uint32_t push_queue_max;
    int64_t push_timeout_ms;
    char jpush_app_key[RTM_CONFIG_TEXT_MAX + 1]; /* "": dry run, nothing is sent */
    char jpush_master_secret[RTM_CONFIG_TEXT_MAX + 1];
    char jpush_endpoint[RTM_CONFIG_TEXT_MAX + 1];
    char jpush_options[RTM_CONFIG_JSON_MAX + 1]; /* a JSON object, or "" */
    char jpush_ca_file[RTM_CONFIG_TEXT_MAX + 1]; /* extra CA bundle, or "" */
    char push_title[RTM_CONFIG_TEXT_MAX + 1];
    char push_alert[RTM_CONFIG_TEXT_MAX + 1];
    char registry_listener[RTM_CONFIG_TEXT_MAX + 1]; /* "auto", "none" or "IP:port" */
    uint32_t stats_interval_s;                       /* 0: no statistics */
    /* Also report the process heap (glibc's mallinfo2). It walks every free
     * chunk on the broker thread: tens of milliseconds on a heap of
     * millions of chunks, so it is for measuring, not for production. */
    bool stats_heap;
    bool debug_log; /* format and send the debug lines at all */
};

struct rtm_option {
    const char *key; /* without the plugin_opt_ prefix */
    const char *value;
};

/* Fills every field with its documented default. */
void rtm_config_defaults(struct rtm_config *cfg);

/* Applies `opts` over the defaults. Returns 0, or -1 with `err` naming the
 * offending option and why; on error `cfg` holds nothing to free. */
int rtm_config_parse(struct rtm_config *cfg, const struct rtm_option *opts, size_t count, char *err,
                     size_t err_len);

void rtm_config_free(struct rtm_config *cfg);

bool rtm_config_is_admin(const struct rtm_config *cfg, const char *uid);

#endif
