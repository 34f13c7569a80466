/*
 * Authentication of connecting clients (plugin_opt_auth). `none` accepts
 * everyone, for trying the plugin out; `defer` leaves the decision to
 * password_file or another plugin and only observes; `token` accepts exactly
 * the clients whose password is a valid login token for their uid and whose
 * client id belongs to that uid. Mosquitto asks before it looks the client id
 * up (handle_connect.c: mosquitto_unpwd_check, then connect__on_authorised),
 * so a refused login never takes over, and so never disconnects, the
 * connection that holds the id.
 */
#include <string.h>

#include "rtm_outbox.h"
#include "rtm_users.h"
#include "rtm_token.h"

/* True when `client_id` is `uid` itself, or `uid` followed by '-' or '/' and
 * anything (SPEC 7): the ids a token for `uid` may connect with. */
static bool client_id_belongs(const char *uid, const char *client_id)
{
    size_t n = strlen(uid);
    if (strncmp(client_id, uid, n) != 0)
        return false;
    return client_id[n] == '\0' || client_id[n] == '-' || client_id[n] == '/';
}

static enum rtm_login_verdict check_token(struct rtm_core *core, const struct rtm_client *client,
                                          const char *password, int64_t now_ms)
{
    const struct rtm_config *cfg = core->cfg;
    const char *client_id = client->client_id ? client->client_id : "";
    if (!client->uid) {
        rtm_out_log(core, RTM_LOG_NOTICE,
                    "rtm: refused login of client %s: no valid uid to check a token for",
                    client_id);
        return RTM_LOGIN_REFUSE;
    }
    enum rtm_token_result r = RTM_TOKEN_MALFORMED;
    if (password)
        r = rtm_token_verify(cfg->token_secret, strlen(cfg->token_secret), client->uid, password,
                             now_ms / 1000, cfg->token_leeway_s);
    if (r != RTM_TOKEN_OK) {
        /* The token itself is never logged: a genuine but expired one is
         * still a credential until the leeway passes. */
        rtm_out_log(core, RTM_LOG_NOTICE, "rtm: refused login of %s (client %s): token %s",
                    client->uid, client_id, password ? rtm_token_result_name(r) : "missing");
        return RTM_LOGIN_REFUSE;
    }
    if (!client_id_belongs(client->uid, client_id)) {
        rtm_out_log(core, RTM_LOG_NOTICE,
                    "rtm: refused login of %s (client %s): client id not %s's own "
                    "(%s, %s-*, %s/*)",
                    client->uid, client_id, client->uid, client->uid, client->uid, client->uid);
        return RTM_LOGIN_REFUSE;
    }
    return RTM_LOGIN_ACCEPT;
}

enum rtm_login_verdict rtm_core_authenticate(struct rtm_core *core, const struct rtm_client *client,
                                             const char *password, int64_t now_ms)
{
    switch (core->cfg->auth) {
    case RTM_AUTH_NONE:
        return RTM_LOGIN_ACCEPT;
    case RTM_AUTH_TOKEN:
        return check_token(core, client, password, now_ms);
    case RTM_AUTH_DEFER:
        break;
    }
    return RTM_LOGIN_DEFER;
}

enum rtm_login_verdict rtm_core_reauthenticate(struct rtm_core *core,
                                               const struct rtm_client *client,
                                               const char *password, int64_t now_ms)
{
    if (!rtm_session_find(core, client->handle))
        return rtm_core_authenticate(core, client, password, now_ms);
    return core->cfg->auth == RTM_AUTH_DEFER ? RTM_LOGIN_DEFER : RTM_LOGIN_ACCEPT;
}
