/*
 * The dispatcher (core/dispatch.c): routes each broker event to the one
 * feature that owns its topic, and fans session events and fired timers
 * out to the features that subscribe to them.
 */
#ifndef RTM_DISPATCH_H
#define RTM_DISPATCH_H

#include "rtm_context.h"

extern const struct rtm_session_hooks rtm_dispatch_hooks;

#endif
