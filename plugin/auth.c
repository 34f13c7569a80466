/*
 * Authentication of connecting clients (plugin_opt_auth). `none` accepts
 * everyone, for trying the plugin out; `defer` leaves the decision to
 * password_file or another plugin and only observes; `token` accepts exactly
 * the clients whose password is a valid login token for their uid.
 */
#include <string.h>

#include "rtm_state.h"
#include "rtm_token.h"

static enum rtm_login_verdict check_token(struct rtm_core *core, const struct rtm_client *client,
                                          const char *password, int64_t now_ms)
{
    const struct rtm_config *cfg = core->cfg;
    const char *client_id = client->client_id ? client->client_id : "";
    if (!client->uid) {
        rtm_core_log(core, RTM_LOG_NOTICE,
                     "rtm: refused login of client %s: no valid uid to check a token for",
                     client_id);
        return RTM_LOGIN_REFUSE;
    }
    enum rtm_token_result r = RTM_TOKEN_MALFORMED;
    if (password)
        r = rtm_token_verify(cfg->token_secret, strlen(cfg->token_secret), client->uid, password,
                             now_ms / 1000, cfg->token_leeway_s);
    if (r == RTM_TOKEN_OK)
        return RTM_LOGIN_ACCEPT;
    /* The token itself is never logged: a genuine but expired one is
     * still a credential until the leeway passes. */
    rtm_core_log(core, RTM_LOG_NOTICE, "rtm: refused login of %s (client %s): token %s",
                 client->uid, client_id, password ? rtm_token_result_name(r) : "missing");
    return RTM_LOGIN_REFUSE;
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
