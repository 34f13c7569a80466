/*
 * Authentication of connecting clients (plugin_opt_auth). `none` accepts
 * everyone, for trying the plugin out; `defer` leaves the decision to
 * password_file or another plugin and only observes. Token login is the
 * next mode to come here; it needs nothing from the adapter but this call.
 */
#include "rtm_state.h"

enum rtm_login_verdict rtm_core_authenticate(const struct rtm_core *core,
                                             const struct rtm_client *client, const char *password,
                                             int64_t now_ms)
{
    (void)client;
    (void)password;
    (void)now_ms;
    switch (core->cfg->auth) {
    case RTM_AUTH_NONE:
        return RTM_LOGIN_ACCEPT;
    case RTM_AUTH_DEFER:
        break;
    }
    return RTM_LOGIN_DEFER;
}
