#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets into tests/fuzz/corpus/.

The seeds are checked in; this script only documents how they were made
(and remakes them after the input format of a target changes):

    python3 tests/fuzz/make_seeds.py

fuzz_core seeds are operation sequences in the byte encoding of
fuzz_core.c (run_op and the builders it calls); the helpers below mirror it:
an operation byte is slot * 9 + operation. fuzz_guard seeds are broker
event sequences in the encoding of fuzz_guard.c: an operation byte, then
its arguments (the g_* helpers).
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))

# --- fuzz_topic: one topic or filter per file ----------------------------------

TOPICS = {
    "inbox": "rtm/u/alice/call",
    "presence": "rtm/presence/bob",
    "device": "rtm/u/alice/devices/d1",
    "own-devices-wild": "rtm/u/alice/devices/+",
    "own-all": "rtm/u/alice/#",
    "all-inboxes": "rtm/u/+/call",
    "prefix-all": "rtm/#",
    "presence-all": "rtm/presence/+",
    "multi-level-inbox": "app/rtm/u/bob/call",
    "multi-level-presence": "app/rtm/presence/+",
    "outside-wild": "+/u/+/call",
    "hash": "#",
    "dotted-uid": "rtm/u/a.b@c-d_e/+",
    "bad-device": "rtm/u/bob/devices/bad.id",
    "deep": "rtm/u/alice/call/extra",
    "peer-message": "rtm/u/alice/msg/bob",
    "own-messages": "rtm/u/alice/msg/+",
    "user-attr": "rtm/u/alice/attr/status",
    "others-attrs": "rtm/u/bob/attr/+",
    "all-attrs": "rtm/u/+/attr/+",
    "join": "rtm/c/room1/join",
    "channel-message": "rtm/c/room1/msg/bob",
    "channel-all": "rtm/c/room1/#",
    "all-counts": "rtm/c/+/count",
    "channel-attr": "rtm/c/room1/attr/notice",
    "own-plus-level": "rtm/u/alice/+/x.y",
}

# --- fuzz_payload: a feed letter, then that parser's input ------------------------


def http(status, body=b"", retry_after=None, reset=None, error=None):
    """A JPush answer in fuzz_payload.c's layout (feed_jpush_response)."""
    flags = (retry_after is not None) | (reset is not None) << 1 | (error is not None) << 2
    out = b"h" + status.to_bytes(2, "big") + bytes([flags])
    for value in (retry_after, reset, error):
        out += (value or "").encode() + b"\0"
    return out + body


PAYLOADS = {
    "request-invite": b'r{"type":"invite","id":"call-1","content":"hi \\u00e9","channel":"room","timeout":30}',
    "request-ringing": b'r{"type":"ringing","id":"call-1"}',
    "request-accept": b'r{"type":"accept","id":"call-1","response":"on my way"}',
    "request-cancel": b'r{"type":"cancel","id":"call-1"}',
    "request-field-twice": b'r{"type":"invite","id":"x","type":"cancel"}',
    "request-small-limits": b'R{"type":"invite","id":"call-2","channel":"room","timeout":5}',
    "request-33-fields": b"r{" + b",".join(b'"f%d":%d' % (i, i) for i in range(33)) + b"}",
    "request-long-response": b'r{"type":"accept","id":"a","response":"' + b"x" * 4097 + b'"}',
    "json-nested": b'j{"a":[1,{"b":"\\u00e9"}],"c":null,"d":1.5e3,"e":true}',
    "registration-android": b'd{"provider":"jpush","platform":"android","token":"1a0018970a5c3f4d"}',
    "registration-ios": b'd{"provider":"jpush","platform":"ios","token":"T:1.x"}',
    "presence-online": b'p{"uid":"bob","online":true,"sessions":2,"ts":1764100000000}',
    "jpush-ok": http(200, b'{"sendno":"0","msg_id":"54043196"}'),
    "jpush-rate-limited": http(429, b'{"error":{"code":2002,"message":"rate limited"}}',
                               retry_after="3", reset="60"),
    "jpush-no-audience": http(400, b'{"error":{"code":1011,"message":"cannot find user by this audience"}}'),
    "jpush-no-response": http(0, error="Could not resolve host: api.jpush.cn"),
    "jpush-request": b"b" + (1764100030000).to_bytes(8, "big") + b"Call from {caller}\0"
                     b"{caller} is calling ({channel})\0room-1\0alice",
    "config-options": b"ctopic_prefix=app/rtm/\nadmin_users=root, ops\nbusy_limit=3\n"
                      b"invite_timeout=20\njpush_options={\"classification\":1}",
    "config-token": b"cauth=token\ntoken_secret=0123456789abcdef0\n"
                    b"registry_listener=127.0.0.1:1883\njpush_endpoint=https://api.jpush.cn/",
    "identity-username": b"ibob\0bob-phone",
    "token-vector": b"tbob\0rtm1.1893456000.mR6nAaVLCWMgawKyhLOcY8KPd06_ERt3c5Q2_ktVRSA",
    "token-other-uid": b"talice\0rtm1.1893456000.mR6nAaVLCWMgawKyhLOcY8KPd06_ERt3c5Q2_ktVRSA",
}

# --- fuzz_core: a configuration byte, then operations ------------------------------

# Indexes into fuzz_core.c's tables.
ALICE, BOB, CAROL, ROOT, BAD, NOUSER, DOTTED = range(7)  # usernames (connect)
T_ALICE, T_BOB, T_CAROL, T_ROOT = range(4)  # topic_uids
INVITE, RINGING, ACCEPT, REFUSE, CANCEL = range(5)  # msg_types
READ, WRITE, SUBSCRIBE, UNSUBSCRIBE = range(4)
TPL_OWN_DEVICE, TPL_PRESENCE, TPL_OWN_INBOX, TPL_PREFIX_ALL = 2, 4, 1, 14
TPL_DEVICE = 3


def connect(slot, user, password=1):
    return bytes([slot * 9 + 0, user, password])


def disconnect(slot):
    return bytes([slot * 9 + 1])


def tick(b):
    """b < 200: b * 100 ms; else (b - 199) * 5 s."""
    return bytes([2, b])


def short_tick(b):
    """b * 10 ms."""
    return bytes([8, b])


def answer(which, how):
    """JPush answers request `which` in flight with answers[how]: 0 ok,
    1 no response, 2 rate limited, 3 503, 4 unknown tokens, 5 bad key,
    6 bad parameter, 7 a redirect."""
    return bytes([7, which, how])


def call(slot, peer, type_, call_id=0, flags=0, timeout=None):
    """A call message from `slot` to topic_uids[peer]'s inbox."""
    out = bytes([slot * 9 + 4, peer, call_id * 7 + type_, flags])
    return out + (bytes([timeout]) if flags & 8 else b"")


def registration(token=0, platform=0):
    return bytes([4, platform << 1, token])


def empty():
    return bytes([6])


def publish(slot, template, fields, payload, retain):
    return bytes([slot * 9 + 3, template]) + bytes(fields) + payload + bytes([retain])


def acl(slot, access, template, fields, payload):
    return bytes([slot * 9 + 5, access, template]) + bytes(fields) + payload


def load(slot, template, fields, payload):
    return bytes([slot * 9 + 6, template]) + bytes(fields) + payload


def seq(variant, *ops):
    return bytes([variant]) + b"".join(ops)


CONTENT, CHANNEL, TIMEOUT, RESPONSE = 2, 4, 8, 16
online = connect(0, ALICE) + connect(1, BOB) + tick(1)

CORE = {
    "call-accepted": seq(0, online, call(0, T_BOB, INVITE, 1, CONTENT | CHANNEL),
                         acl(1, SUBSCRIBE, TPL_OWN_INBOX, [], empty()),
                         call(1, T_ALICE, RINGING, 1), call(1, T_ALICE, ACCEPT, 1, RESPONSE),
                         call(1, T_ALICE, ACCEPT, 1, RESPONSE), tick(250)),
    "call-refused-late-cancel": seq(0, online, call(0, T_BOB, INVITE, 2),
                                    call(1, T_ALICE, REFUSE, 2), call(0, T_BOB, CANCEL, 2)),
    "invite-peer-offline": seq(0, connect(0, ALICE), tick(1), call(0, T_CAROL, INVITE, 2),
                               tick(210), tick(250)),
    "caller-offline": seq(0, online, call(0, T_BOB, INVITE, 3, TIMEOUT, 100), disconnect(0),
                          tick(150), tick(199)),
    "ring-expired": seq(0, online, call(0, T_BOB, INVITE, 1), call(1, T_ALICE, RINGING, 1),
                        tick(215)),
    "devices-move-and-push": seq(0, online,
                                 publish(1, TPL_OWN_DEVICE, [0], registration(0), 1),
                                 publish(0, TPL_OWN_DEVICE, [1], registration(0, 1), 1),
                                 disconnect(0), call(1, T_ALICE, INVITE, 1), tick(60),
                                 call(1, T_ALICE, CANCEL, 1),
                                 publish(0, TPL_OWN_DEVICE, [1], empty(), 1)),
    "load-then-push": seq(0, load(0, TPL_DEVICE, [T_CAROL, 0], registration(1)),
                          load(0, TPL_DEVICE, [T_CAROL, 1], registration(2, 2)),
                          connect(0, ALICE), tick(1), call(0, T_CAROL, INVITE, 1), tick(250)),
    "busy-limit": seq(1, online, call(0, T_BOB, INVITE, 1), call(0, T_CAROL, INVITE, 2)),
    "invite-rate": seq(2, online, call(0, T_BOB, INVITE, 1), call(0, T_BOB, CANCEL, 1),
                       call(0, T_BOB, INVITE, 2), call(0, T_BOB, INVITE, 3), tick(211),
                       call(0, T_BOB, INVITE, 0)),
    "admin-reads-all": seq(3, connect(3, ROOT), connect(1, BOB), tick(1),
                           acl(3, SUBSCRIBE, TPL_PREFIX_ALL, [], empty()),
                           acl(3, READ, TPL_DEVICE, [T_BOB, 0], empty()),
                           publish(3, TPL_DEVICE, [T_BOB, 0], registration(3), 1),
                           acl(1, READ, TPL_PRESENCE, [T_CAROL], bytes([5, 3]))),
    "multi-level-prefix": seq(4, online, call(0, T_BOB, INVITE, 1, CHANNEL),
                              call(1, T_ALICE, RINGING, 1), call(0, T_BOB, CANCEL, 1)),
    "short-timers-fallback": seq(5, online, call(0, T_BOB, INVITE, 1, TIMEOUT, 3),
                                 short_tick(40), tick(30), tick(200)),
    "max-devices": seq(5, connect(1, BOB), tick(1),
                       publish(1, TPL_OWN_DEVICE, [0], registration(0), 1),
                       publish(1, TPL_OWN_DEVICE, [1], registration(1), 1),
                       publish(1, TPL_OWN_DEVICE, [2], registration(2), 1),
                       publish(1, TPL_OWN_DEVICE, [0], registration(3), 1)),
    # carol is offline with one device: her invitation is pushed, rate
    # limited, retried, accepted by JPush (alice is told), then canceled,
    # and the cancel push finds the token unknown: the device is removed.
    "push-retry-then-unknown-token": seq(0, connect(2, CAROL), tick(1),
                                         publish(2, TPL_OWN_DEVICE, [0], registration(0), 1),
                                         disconnect(2), connect(0, ALICE), tick(1),
                                         call(0, T_CAROL, INVITE, 1), answer(0, 2),
                                         short_tick(150), answer(0, 0),
                                         call(0, T_CAROL, CANCEL, 1), answer(0, 4)),
    "push-refusals": seq(0, load(0, TPL_DEVICE, [T_BOB, 0], registration(0)), online,
                         disconnect(1), call(0, T_BOB, INVITE, 1), answer(0, 5),
                         call(0, T_BOB, INVITE, 2), answer(0, 1), answer(0, 3),
                         answer(0xff, 0), tick(250)),
    # Freed while calls, sessions, timers and push jobs are all live.
    "free-while-busy": seq(0x80, load(0, TPL_DEVICE, [T_CAROL, 0], registration(0)), online,
                           call(0, T_BOB, INVITE, 1), call(1, T_CAROL, INVITE, 2),
                           call(1, T_ALICE, RINGING, 1), answer(0, 2)),
    "token-auth": seq(6, connect(0, ALICE, 1), connect(1, BOB, 3), connect(2, BOB, 2),
                      connect(4, BAD, 1), tick(1), call(0, T_BOB, INVITE, 1),
                      call(2, T_ALICE, ACCEPT, 1)),
    # bob's second connection takes over before the first one leaves: never
    # shown offline; then a stale "online" of carol is read and corrected.
    "takeover-and-stale-presence": seq(0, connect(0, BOB), tick(1), connect(2, BOB),
                                       disconnect(0), connect(5, NOUSER), tick(1),
                                       acl(2, READ, TPL_PRESENCE, [T_CAROL], bytes([5, 3]))),
}


# --- fuzz_guard: broker event sequences (fuzz_guard.c's operation bytes) ------

def g_login(h, id_):
    return bytes([0, h, id_])


def g_publish(h, topic, reads):
    return bytes([1, h, topic, reads])


def g_drop(h, will, topic):
    return bytes([2, h, will, topic])


def g_takeover(old, new, will, mail, topic):
    return bytes([3, old, new, (1 if will else 0) | (2 if mail else 0), topic])


def g_late_will(h, topic, retain, reads):
    return bytes([4, h, topic, retain, reads])


def g_retain_source(topic, h, superseded):
    return bytes([5, topic, h, superseded])


def g_post(h):
    return bytes([6, h])


G_TICK = bytes([7])

GUARD = {
    "publish-then-drop-with-will": g_login(0, 0) + g_publish(0, 0, 2) + g_drop(0, 1, 0) + G_TICK,
    "takeover-with-mail-and-will": g_login(0, 0) + g_post(0) + g_takeover(0, 1, True, True, 1)
    + g_post(1) + G_TICK,
    "will-delay-retained": g_login(2, 1) + g_drop(2, 0, 0) + g_late_will(2, 1, 1, 0) + G_TICK,
    "will-delay-fanned-out": g_login(2, 1) + g_drop(2, 0, 0) + g_late_will(2, 0, 0, 3) + G_TICK,
    "retain-source-check": g_login(1, 2) + g_retain_source(1, 1, 1) + g_publish(1, 1, 1),
}


def write(target, name, data):
    path = os.path.join(HERE, "corpus", target, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def main():
    for name, topic in TOPICS.items():
        write("fuzz_topic", name, topic.encode())
    for name, data in PAYLOADS.items():
        write("fuzz_payload", name, data)
    for name, data in CORE.items():
        write("fuzz_core", name, data)
    for name, data in GUARD.items():
        write("fuzz_guard", name, data)


if __name__ == "__main__":
    main()
