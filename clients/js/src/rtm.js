// mosquitto-rtm client: RTM calls, presence, peer and channel messages, channels and attributes
// over MQTT 5, for a Mosquitto broker running mosquitto_rtm.so. The wire protocol is
// docs/PROTOCOL.md; the names follow Agora RTM (web SDK v1).
//
// One file whose only import is the bare specifier 'mqtt', so that it runs unchanged in Node and
// in a browser (there as a blob: module through an import map): no relative imports, no Node
// built-ins. The broker checks uids, sizes and states; this client does not repeat those checks
// but surfaces the broker's `error` answers.

import mqtt from 'mqtt';

const DEFAULT_PREFIX = 'rtm';
const DEFAULT_REQUEST_TIMEOUT_MS = 5000;
const FIRST_REFUSAL_CODE = 0x80;        // PUBACK reason codes from here on refuse the publish
const NO_MATCHING_SUBSCRIBERS = 0x10;   // a PUBACK's "nobody subscribes": the peer is unreachable
const SESSION_TAKEN_OVER = 0x8e;        // a server DISCONNECT: another connection took our client id
// Mosquitto drops QoS 0 messages beyond max_queued_messages (default 1000) per client, so a
// snapshot (below) subscribes to at most this many filters at a time.
const SNAPSHOT_BATCH = 256;
// An ended invitation is remembered this long, so that the broker's re-deliveries are dropped.
const ENDED_INVITATION_MEMORY_MS = 120000;
const CLIENT_CODES = new Set(['unreachable', 'login_refused', 'timeout', 'not_logged_in', 'connection_lost']);

// Members that the client and the objects it makes share, and applications do not see.
const deliver = Symbol('deliver');
const connectionRestored = Symbol('connectionRestored');
const sessionEnded = Symbol('sessionEnded');
const request = Symbol('request');
const finish = Symbol('finish');
const advance = Symbol('advance');
const endedAt = Symbol('endedAt');

// ---------------------------------------------------------------------------------------------
// Small helpers

/**
 * An event emitter for browsers and Node alike: on/off/once return `this`. Unlike Node's
 * EventEmitter, emitting 'error' without listeners does not throw. A listener that throws stops
 * neither the other listeners nor the client: its exception is rethrown asynchronously, so the
 * platform reports it.
 */
class Emitter {
  #listeners = new Map();

  /** Calls `listener` on every `event`. */
  on(event, listener) {
    this.#listeners.set(event, [...(this.#listeners.get(event) ?? []), listener]);
    return this;
  }

  /** Removes `listener` (added by on or once) from `event`. */
  off(event, listener) {
    const listeners = this.#listeners.get(event) ?? [];
    const index = listeners.findIndex((l) => l === listener || l.listener === listener);
    if (index >= 0) this.#listeners.set(event, listeners.filter((_, i) => i !== index));
    return this;
  }

  /** Calls `listener` on the next `event` only. */
  once(event, listener) {
    const wrapper = (...args) => {
      this.off(event, wrapper);
      listener.apply(this, args);
    };
    wrapper.listener = listener;
    return this.on(event, wrapper);
  }

  /** Calls the listeners of `event` with `args`. */
  emit(event, ...args) {
    for (const listener of this.#listeners.get(event) ?? []) {
      try {
        listener.apply(this, args);
      } catch (error) {
        setTimeout(() => { throw error; });
      }
    }
  }
}

/** A failed request: `code` is the broker's error code or one of the client's own. */
export class RtmError extends Error {
  /** `message` is for people (match on `code`); `details` is the broker's error message, if any. */
  constructor(code, message = code, details = {}) {
    super(message);
    this.name = 'RtmError';
    this.code = code;
    for (const field of ['id', 'request', 'topic', 'ts']) {
      if (details[field] !== undefined) this[field] = details[field];
    }
  }
}

/**
 * A failure of the client's own. It becomes an RtmError, and an 'error' event, only where it
 * decides a request: a connection that ends after the answer came must not report anything.
 */
class Failure {
  constructor(code, message) { Object.assign(this, { code, message }); }
}

const CONNECTION_ENDED = new Failure('connection_lost', 'the connection ended before the broker answered');

/** A catch handler for mqtt.js's subscribeAsync: a refusal carries the SUBACK, a lost connection not. */
function subscriptionRefused(code, message) {
  return (error) => {
    throw error.packet?.cmd === 'suback' ? new Failure(code, message) : CONNECTION_ENDED;
  };
}

/** Passes `promise` on; its failure is also emitted as 'error' on `target`. */
function reportedTo(target, promise) {
  return promise.catch((error) => {
    target.emit('error', error);
    throw error;
  });
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function textOf(bytes) {
  try { return utf8.decode(bytes); } catch { return undefined; }
}

/** The JSON object in `bytes`, or undefined. */
function jsonOf(bytes) {
  try {
    const value = JSON.parse(textOf(bytes) ?? '');
    return value !== null && typeof value === 'object' ? value : undefined;
  } catch { return undefined; }
}

/** What MessageFromPeer and ChannelMessage carry: the bytes, and the text when they are UTF-8. */
function messageOf(bytes) {
  const text = textOf(bytes);
  return text === undefined ? { rawMessage: bytes } : { text, rawMessage: bytes };
}

function payloadOf(message) {
  return message.text !== undefined ? message.text : message.rawMessage;
}

function presenceOf(bytes) {
  return jsonOf(bytes)?.online === true ? 'ONLINE' : 'OFFLINE';
}

function lastLevel(topic) {
  return topic.slice(topic.lastIndexOf('/') + 1);
}

// Web Crypto: global in browsers and from Node 19; Node 18 (Debian 12's) has it only as a
// module. The import runs only there, so the browser never sees a Node built-in.
const webCrypto = globalThis.crypto ?? (await import('node:crypto')).webcrypto;

function randomHex(byteCount) {
  const bytes = webCrypto.getRandomValues(new Uint8Array(byteCount));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** A random version 4 UUID (crypto.randomUUID exists in browsers only in secure contexts). */
function randomUuid() {
  const hex = randomHex(16);
  const variant = ((parseInt(hex[16], 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20)}`;
}

/** Settles like `promise`, or rejects with `makeError()` after `ms`. */
function withTimeout(promise, ms, makeError) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(makeError()), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A promise with its resolve and reject exposed; a rejection nobody awaits is not reported. */
function deferred() {
  const d = {};
  d.promise = new Promise((resolve, reject) => Object.assign(d, { resolve, reject }));
  d.promise.catch(() => {});
  return d;
}

/** Subscriptions to `filters` at QoS 0, as Subscriptions.hold takes them. */
function atQos0(filters) {
  return Object.fromEntries(filters.map((filter) => [filter, { qos: 0 }]));
}

/** Whether an MQTT topic filter (with `+` and `#`) matches `topic`. */
function filterMatches(filter, topic) {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length || (f[i] !== '+' && f[i] !== t[i])) return false;
  }
  return f.length === t.length;
}

/** The attributes of one user or channel, kept from their stamped retained messages. */
class AttributeSet {
  #entries = new Map();

  static of(messages) {
    const attributes = new AttributeSet();
    for (const { topic, bytes } of messages) attributes.apply(lastLevel(topic), bytes);
    return attributes;
  }

  /** Applies one attribute message (stamped JSON, or empty: deleted); true when it changed. */
  apply(key, bytes) {
    const stamped = bytes.length ? jsonOf(bytes) : undefined;
    if (!stamped) return this.#entries.delete(key);
    const before = this.#entries.get(key);
    const entry = { value: stamped.value, by: stamped.by, ts: stamped.ts };
    this.#entries.set(key, entry);
    return before?.value !== entry.value || before?.by !== entry.by || before?.ts !== entry.ts;
  }

  toObject() {
    return Object.fromEntries([...this.#entries].map(([key, entry]) => [key, { ...entry }]));
  }
}

/** The topic names of docs/PROTOCOL.md section 2 under one prefix. */
class Topics {
  constructor(prefix) {
    this.prefix = prefix.replace(/\/+$/, '');
  }

  inbox(uid) { return `${this.prefix}/u/${uid}/call`; }
  peerMessage(peer, sender) { return `${this.prefix}/u/${peer}/msg/${sender}`; }
  presence(uid) { return `${this.prefix}/presence/${uid}`; }
  userAttribute(uid, key) { return `${this.prefix}/u/${uid}/attr/${key}`; }
  channel(channelId, leaf) { return `${this.prefix}/c/${channelId}/${leaf}`; }

  /** The levels below the prefix, or null for a topic outside it. */
  levels(topic) {
    return topic.startsWith(`${this.prefix}/`) ? topic.slice(this.prefix.length + 1).split('/') : null;
  }
}

/** Requests waiting for an incoming message: each offered message settles the oldest match. */
class Waiters {
  #waiting = [];

  /** A waiter whose `promise` resolves with the first offered message `matches` accepts. */
  expect(matches) {
    const waiter = { matches, ...deferred() };
    waiter.cancel = () => { this.#waiting = this.#waiting.filter((w) => w !== waiter); };
    this.#waiting.push(waiter);
    return waiter;
  }

  offer(message) {
    const waiter = this.#waiting.find((w) => w.matches(message));
    waiter?.cancel();
    waiter?.resolve(message);
  }

  clear() {
    this.#waiting = [];
  }
}

/**
 * Whether a broker error answers `req` ({topic, id, type, refused}). Call errors name the
 * request by `id` and `request`, section 9 errors by `topic`. An error with neither (an invalid
 * id or topic) answers the oldest request already refused: the broker handles a connection's
 * publishes in order and sends each refusal's PUBACK before its error message.
 */
function answersRequest(error, req) {
  if (error.topic !== undefined) return error.topic === req.topic;
  if (error.id !== undefined) return error.id === req.id && error.request === req.type;
  return req.refused && (error.request === undefined || error.request === req.type);
}

// ---------------------------------------------------------------------------------------------
// Subscriptions

/**
 * The client's subscriptions besides its inbox, counted by holder, so that a filter two holders
 * share (a watch and a query) is unsubscribed when both let go; and snapshots: the retained
 * messages of some filters, read with a temporary QoS 0 subscription. The UNSUBACK of a filter
 * never subscribed marks the end of the retained messages: Mosquitto (2.0.11 to 2.1) sends the
 * SUBACK, then the retained messages of a QoS 0 subscription, then its answer to the next
 * request. (At QoS 1 only the first max_inflight_messages come before that answer.)
 */
class Subscriptions {
  #holders = new Map();
  #snapshots = new Set();
  #ctx;

  /** @param ctx {{connection(), client(), bounded(promise), barrierTopic()}} */
  constructor(ctx) {
    this.#ctx = ctx;
  }

  /**
   * Subscribes to the filters of `subscriptions` ({filter: {qos, nl}}) that nobody holds yet (with
   * `again`, to all of them); with `settle`, resolves only once their retained messages arrived.
   */
  async hold(subscriptions, { settle = false, again = false } = {}) {
    const filters = Object.keys(subscriptions);
    const toSubscribe = again ? filters : filters.filter((filter) => !this.#holders.has(filter));
    for (const filter of filters) this.#holders.set(filter, (this.#holders.get(filter) ?? 0) + 1);
    try {
      if (toSubscribe.length) await this.#subscribe(toSubscribe.map((filter) => [filter, subscriptions[filter]]));
      if (settle) await this.#ctx.bounded(this.#ctx.connection().unsubscribeAsync(this.#ctx.barrierTopic()));
    } catch (error) {
      this.release(filters);
      throw error;
    }
  }

  /** Lets go of `filters`; those nobody holds any more are unsubscribed (without waiting). */
  release(filters) {
    const unheld = [];
    for (const filter of filters) {
      const holders = (this.#holders.get(filter) ?? 0) - 1;
      if (holders > 0) this.#holders.set(filter, holders);
      else if (this.#holders.delete(filter)) unheld.push(filter);
    }
    if (unheld.length) this.#ctx.client()?.unsubscribe(unheld);
  }

  /**
   * The messages on `filters`: their retained ones, and any live ones meanwhile, as [{topic, bytes}].
   * The callers answer what a watch already knows themselves: subscribing again to a filter the
   * session has makes Mosquitto 2.0.11 leak (fixed by 2.0.22), though it resends the retained messages.
   */
  async snapshot(filters) {
    const snapshot = { filters, messages: [] };
    this.#snapshots.add(snapshot);
    try {
      for (let i = 0; i < filters.length; i += SNAPSHOT_BATCH) {
        const batch = filters.slice(i, i + SNAPSHOT_BATCH);
        // Again even where held (by a watch still starting, or another snapshot): a SUBSCRIBE is
        // what makes the broker send retained messages.
        await this.hold(atQos0(batch), { settle: true, again: true });
        this.release(batch);
      }
    } finally {
      this.#snapshots.delete(snapshot);
    }
    return snapshot.messages;
  }

  /** Gives an incoming message to the snapshots that wait for its topic. */
  offer(topic, bytes) {
    for (const { filters, messages } of this.#snapshots) {
      if (filters.some((filter) => filterMatches(filter, topic))) messages.push({ topic, bytes });
    }
  }

  /** Forgets everything: the session that held the subscriptions is gone. */
  clear() {
    this.#holders.clear();
    this.#snapshots.clear();
  }

  /**
   * The broker sends no `error` message for a refused subscription, only a SUBACK failure; it is
   * reported as `not_party`, the code a publish to the same topic gets.
   */
  async #subscribe(entries) {
    const filters = entries.map(([filter]) => filter).join(', ');
    const refused = subscriptionRefused('not_party', `the broker refused the subscription to ${filters}`);
    // `resubscribe` makes mqtt.js send the SUBSCRIBE even for filters it knows are subscribed.
    const subscriptions = Object.fromEntries([...entries, ['resubscribe', true]]);
    await this.#ctx.bounded(this.#ctx.connection().subscribeAsync(subscriptions).catch(refused));
  }
}

// ---------------------------------------------------------------------------------------------
// Invitations

/** The invitations of one side by key; ended ones are forgotten after a while. */
class InvitationBook extends Map {
  add(key, invitation) {
    const now = Date.now();
    for (const [k, inv] of this) {
      if (now - (inv[endedAt] ?? now) > ENDED_INVITATION_MEMORY_MS) this.delete(k);
    }
    this.set(key, invitation);
  }
}

/** Call message types that end an invitation: the state and event of each, per side. */
const ENDINGS = {
  local: {
    accept: ['ACCEPTED_BY_REMOTE', 'LocalInvitationAccepted'],
    refuse: ['REFUSED_BY_REMOTE', 'LocalInvitationRefused'],
    cancel: ['CANCELED', 'LocalInvitationCanceled'],
    failure: ['FAILURE', 'LocalInvitationFailure'],
  },
  remote: {
    accept: ['ACCEPTED', 'RemoteInvitationAccepted'],
    refuse: ['REFUSED', 'RemoteInvitationRefused'],
    cancel: ['CANCELED', 'RemoteInvitationCanceled'],
    failure: ['FAILURE', 'RemoteInvitationFailure'],
  },
};

/** What both sides of an invitation share: the state, the ending (once), the call messages. */
class Invitation extends Emitter {
  #state;
  #ctx;
  #inbox;
  #endings;

  /** `otherParty`: the uid whose inbox gets this side's call messages; `side`: local or remote. */
  constructor(ctx, side, state, otherParty, fields) {
    super();
    this.#ctx = ctx;
    this.#endings = ENDINGS[side];
    this.#state = state;
    this.#inbox = ctx.topics.inbox(otherParty);
    Object.assign(this, fields, { response: undefined, failureReason: undefined });
  }

  get state() {
    return this.#state;
  }

  /** Applies an ending message (accept, refuse, cancel, failure) unless one came before. */
  [finish](message) {
    if (this[endedAt]) return;
    const [state, event] = this.#endings[message.type];
    this.#state = state;
    this[endedAt] = Date.now();
    this.response = message.response;
    this.failureReason = message.reason;
    this.emit(event, message.type === 'failure' ? message.reason : message.response);
  }

  /** Applies a call message about this invitation: here the endings, the subclasses add the rest. */
  [deliver](message) {
    if (this.#endings[message.type]) this[finish](message);
  }

  /** Publishes `{type, id, ...fields}` to the other party's inbox. */
  [request](type, fields = {}) {
    const message = JSON.stringify({ type, id: this.id, ...fields });
    return this.#ctx.request(this.#inbox, message, { call: { id: this.id, type } });
  }

  /** Moves to a state that is not an ending. */
  [advance](state) {
    this.#state = state;
  }
}

/** An invitation this client sent (RTM's LocalInvitation). */
export class LocalInvitation extends Invitation {
  constructor(ctx, calleeId, { content = '', channelId = '', timeout, id = randomUuid() }) {
    super(ctx, 'local', 'SENT_TO_REMOTE', calleeId, { calleeId, id, content, channelId });
    this.#invite(timeout);
  }

  /** Cancels the invitation; 'LocalInvitationCanceled' follows when the broker delivers the cancel. */
  cancel() {
    return reportedTo(this, this[request]('cancel'));
  }

  async #invite(timeout) {
    try {
      await this[request]('invite', { content: this.content, channel: this.channelId, ...(timeout !== undefined && { timeout }) });
    } catch (error) {
      // An invite the broker refused never started: it fails with the broker's code. One whose
      // answer was lost with the connection may still be delivered, so it stays as it is.
      if (!CLIENT_CODES.has(error.code)) this[finish]({ type: 'failure', reason: error.code });
      this.emit('error', error);
    }
  }

  [deliver](message) {
    if (message.type === 'ringing' && this.state === 'SENT_TO_REMOTE') {
      this[advance]('RECEIVED_BY_REMOTE');
      this.emit('LocalInvitationReceivedByPeer');
    } else if (message.type === 'pushed') {
      this.emit('LocalInvitationPushed', message.devices);
    } else {
      super[deliver](message);
    }
  }
}

/** An invitation this client received (RTM's RemoteInvitation). */
export class RemoteInvitation extends Invitation {
  #answering;

  constructor(ctx, invite) {
    super(ctx, 'remote', 'RECEIVED', invite.caller, {
      callerId: invite.caller,
      id: invite.id,
      content: invite.content ?? '',
      channelId: invite.channel ?? '',
      expiresAt: invite.expires_at,
      by: invite.by,
      ts: invite.ts,
      answeredHere: false,
    });
  }

  /** Accepts, with an optional `response` for the caller. */
  accept({ response } = {}) {
    return this.#answer('accept', response);
  }

  /** Refuses, with an optional `response` for the caller. */
  refuse({ response } = {}) {
    return this.#answer('refuse', response);
  }

  async #answer(type, response) {
    this.#answering = type;
    try {
      await reportedTo(this, this[request](type, response !== undefined ? { response } : {}));
    } catch (error) {
      this.#answering = undefined;
      throw error;
    }
  }

  [deliver](message) {
    // Every ending reaches all the callee's sessions: an answer from another device arrives too.
    if (!this[endedAt]) this.answeredHere = this.#answering === message.type;
    super[deliver](message);
  }
}

// ---------------------------------------------------------------------------------------------
// Channels

/** A channel (RTM's RtmChannel). Its membership belongs to this client's connection. */
export class RtmChannel extends Emitter {
  #ctx;
  #membership = 'left';   // 'left', 'joining' (join sent) or 'joined' (answered)
  #memberCount = 0;
  #attributes = new AttributeSet();

  constructor(ctx, channelId) {
    super();
    this.#ctx = ctx;
    this.channelId = channelId;
  }

  get joined() { return this.#membership === 'joined'; }
  get memberCount() { return this.#memberCount; }

  /**
   * Joins: subscribes to the channel's events, messages, count and attributes first, so as to
   * miss nothing, then publishes the join and resolves with the broker's `joined` answer.
   * 'AttributesUpdated' fires once then with the channel's attributes, and on every change.
   */
  async join() {
    if (this.#membership !== 'left') return this.#ask('join', 'joined');   // answered again, nothing changes
    await reportedTo(this, this.#ctx.subscriptions.hold(this.#subscriptions()));
    this.#membership = 'joining';
    try {
      const answer = await this.#ask('join', 'joined');
      this.#membership = 'joined';
      this.emit('AttributesUpdated', this.#attributes.toObject());
      return answer;
    } catch (error) {
      this.#dropMembership();
      throw error;
    }
  }

  /** Leaves the channel and drops its subscriptions. */
  async leave() {
    this.#dropMembership();
    await reportedTo(this, this.#ctx.request(this.#topic('leave'), ''));
  }

  /** The members, as the broker lists them to a member. */
  getMembers() {
    return this.#ask('members', 'members');
  }

  /** Sends `{text}` or `{rawMessage}` to the other members. */
  async sendMessage(message) {
    await reportedTo(this, this.#ctx.request(this.#topic(`msg/${this.#ctx.uid()}`), payloadOf(message)));
  }

  /** Writes channel attributes, as a member. */
  addOrUpdateChannelAttributes(attributes) {
    return reportedTo(this, this.#ctx.writeAttributes((key) => this.#topic(`attr/${key}`), attributes));
  }

  /** Deletes channel attributes, as a member. */
  deleteChannelAttributesByKeys(keys) {
    const none = Object.fromEntries(keys.map((key) => [key, '']));
    return reportedTo(this, this.#ctx.writeAttributes((key) => this.#topic(`attr/${key}`), none));
  }

  /** The channel's attributes; reading them needs no membership. */
  async getChannelAttributes() {
    if (this.joined) return this.#attributes.toObject();   // kept up to date since the join
    const messages = await reportedTo(this, this.#ctx.subscriptions.snapshot([this.#topic('attr/+')]));
    return AttributeSet.of(messages).toObject();
  }

  /** A message on this channel's topics: `leaf` is events, msg, count or attr, `name` the level after it. */
  [deliver](leaf, name, bytes) {
    if (leaf === 'attr') {
      if (this.#attributes.apply(name, bytes) && this.joined) this.emit('AttributesUpdated', this.#attributes.toObject());
    } else if (this.#membership === 'left') {
      // Not for us yet (a retained count before the join) or any more (after the leave).
    } else if (leaf === 'msg') {
      this.emit('ChannelMessage', messageOf(bytes), name);
    } else if (leaf === 'count') {
      this.#memberCount = jsonOf(bytes)?.count ?? 0;
      this.emit('MemberCountUpdated', this.#memberCount);
    } else if (leaf === 'events') {
      this.#onMemberEvent(jsonOf(bytes) ?? {});
    }
  }

  /**
   * The connection came back without its memberships: join again. The channel stays joined
   * meanwhile, unless the broker refuses (an 'error' event).
   */
  [connectionRestored]() {
    if (this.joined) this.#ask('join', 'joined').catch(() => this.#dropMembership());
  }

  /** The session ended (logout): no membership and no subscriptions any more. */
  [sessionEnded]() {
    this.#membership = 'left';
    this.#attributes = new AttributeSet();
  }

  #dropMembership() {
    if (this.#membership === 'left') return;
    this.#membership = 'left';
    this.#ctx.subscriptions.release(Object.keys(this.#subscriptions()));
  }

  #onMemberEvent(event) {
    if (typeof event.count === 'number') this.#memberCount = event.count;
    if (event.uid === this.#ctx.uid()) return;   // our own arrival or departure is no news to us
    if (event.type === 'member_joined') this.emit('MemberJoined', event.uid);
    if (event.type === 'member_left') this.emit('MemberLeft', event.uid);
  }

  /** Publishes to `leaf` and resolves with the broker's answer of `answerType` for this channel. */
  async #ask(leaf, answerType) {
    const answer = this.#ctx.answers.expect((m) => m.type === answerType && m.channel === this.channelId);
    const asked = this.#ctx.request(this.#topic(leaf), '').then(() => this.#ctx.bounded(answer.promise));
    try {
      const { members, count, truncated } = await reportedTo(this, asked);
      this.#memberCount = count;
      return { members, count, truncated };
    } finally {
      answer.cancel();
    }
  }

  #topic(leaf) {
    return this.#ctx.topics.channel(this.channelId, leaf);
  }

  /**
   * The channel's filters: events and messages at QoS 1, the retained count and attributes at
   * QoS 0; no local for messages, so that a member's own do not come back to it, as in RTM.
   */
  #subscriptions() {
    return {
      [this.#topic('events')]: { qos: 1 },
      [this.#topic('msg/+')]: { qos: 1, nl: true },
      [this.#topic('count')]: { qos: 0 },
      [this.#topic('attr/+')]: { qos: 0 },
    };
  }
}

// ---------------------------------------------------------------------------------------------
// The client

/** An RTM client over one MQTT 5 connection (RTM's RtmClient). */
export class RtmClient extends Emitter {
  #url;
  #requestTimeout;
  #mqttOptions;
  #topics;
  #mqtt = null;
  #uid = null;
  #state = 'DISCONNECTED';
  #loginAttempt = null;            // settles when the first CONNACK of a login arrives
  #connectionEnd = deferred();     // rejects when the current connection ends
  #pubackReasons = new Map();      // message id -> reason code of its PUBACK
  #refusals = new Waiters();       // requests waiting for the broker's error message
  #answers = new Waiters();        // channel requests waiting for `joined` or `members`
  #subscriptions;
  #channels = new Map();
  #localInvitations = new InvitationBook();    // by id
  #remoteInvitations = new InvitationBook();   // by caller/id
  #presence = new Map();           // watched uid -> 'ONLINE' | 'OFFLINE' | null (not known yet)
  #userAttributes = new Map();     // watched uid -> {attributes: AttributeSet, known: boolean}
  #ctx;

  /** @param {{url: string, prefix?: string, requestTimeout?: number, mqttOptions?: object}} options */
  constructor({ url, prefix = DEFAULT_PREFIX, requestTimeout = DEFAULT_REQUEST_TIMEOUT_MS, mqttOptions = {} }) {
    super();
    this.#url = url;
    this.#requestTimeout = requestTimeout;
    this.#mqttOptions = mqttOptions;
    this.#topics = new Topics(prefix);
    // What the objects the client makes may use of it.
    this.#ctx = {
      topics: this.#topics,
      answers: this.#answers,
      uid: () => this.#uid,
      client: () => this.#mqtt,
      connection: () => this.#connection(),
      request: (topic, payload, options) => this.#request(topic, payload, options),
      writeAttributes: (topicOf, attributes) => this.#writeAttributes(topicOf, attributes),
      bounded: (promise) => this.#bounded(promise),
      barrierTopic: () => `${this.#topics.inbox(this.#uid)}/barrier`,
    };
    this.#subscriptions = this.#ctx.subscriptions = new Subscriptions(this.#ctx);
  }

  get uid() { return this.#uid; }
  get connectionState() { return this.#state; }

  /**
   * Connects as `uid` (MQTT 5, clean start, username `uid`, password `token`) and subscribes to
   * its inbox. Rejects with 'unreachable' when no connection is made within requestTimeout (the
   * client then stops trying) or 'login_refused' when the broker refuses the login.
   */
  async login({ uid, token }) {
    if (this.#mqtt) throw this.#fail('invalid_state', `cannot log in while ${this.#state}`);
    this.#uid = uid;
    this.#loginAttempt = deferred();
    this.#setState('CONNECTING', 'LOGIN');
    const client = mqtt.connect(this.#url, {
      protocolVersion: 5,
      connectTimeout: this.#requestTimeout,
      ...this.#mqttOptions,
      clean: true,
      clientId: `${uid}-${randomHex(6)}`,   // a client id of the uid's own, as auth token requires
      username: uid,
      ...(token !== undefined && { password: token }),
    });
    this.#mqtt = client;
    this.#listen(client);
    try {
      await withTimeout(this.#loginAttempt.promise, this.#requestTimeout,
        () => new Failure('unreachable', `no connection to ${this.#url} within ${this.#requestTimeout} ms`));
      const inbox = [this.#topics.inbox(uid), this.#topics.peerMessage(uid, '+')];
      const refused = subscriptionRefused('login_refused', `the broker refused "${uid}" its inbox: is it a valid uid?`);
      await this.#bounded(client.subscribeAsync(inbox, { qos: 1 }).catch(refused));
    } catch (failure) {
      const error = failure instanceof Failure ? this.#fail(failure.code, failure.message) : failure;
      this.#endSession().end(true);
      this.#setState('DISCONNECTED', error.code === 'unreachable' ? 'LOGIN_TIMEOUT' : 'LOGIN_FAILURE');
      throw error;
    }
    this.#setState('CONNECTED', 'LOGIN_SUCCESS');
  }

  /** Disconnects cleanly; the state becomes DISCONNECTED. */
  async logout() {
    if (!this.#mqtt) return;
    const connected = this.#state === 'CONNECTED';
    const client = this.#endSession();
    // mqtt.js sends DISCONNECT once its in-flight messages are acknowledged: without a
    // connection it would wait for ever.
    if (connected) {
      await withTimeout(client.endAsync(), this.#requestTimeout, () => new Error('no clean end')).catch(() => client.end(true));
    } else {
      client.end(true);
    }
    this.#setState('DISCONNECTED', 'LOGOUT');
  }

  /**
   * Invites `calleeId`: publishes the invite and returns the invitation at once; its events tell
   * the rest. `timeout` is in seconds (the broker's invite_timeout for this invitation).
   */
  invite(calleeId, options = {}) {
    const invitation = new LocalInvitation(this.#ctx, calleeId, options);
    this.#localInvitations.add(invitation.id, invitation);
    return invitation;
  }

  /** Whether each of `uids` is online now. */
  async queryPeersOnlineStatus(uids) {
    const online = Object.fromEntries(uids.map((uid) => [uid, this.#presence.get(uid) === 'ONLINE']));
    const unknown = uids.filter((uid) => !this.#presence.get(uid));   // not watched, or not known yet
    const messages = await this.#subscriptions.snapshot(unknown.map((uid) => this.#topics.presence(uid)));
    for (const { topic, bytes } of messages) online[lastLevel(topic)] = presenceOf(bytes) === 'ONLINE';
    return online;
  }

  /**
   * Watches the presence of `uids`: 'PeersOnlineStatusChanged' fires once with their current
   * state, then on every change.
   */
  async subscribePeersOnlineStatus(uids) {
    const fresh = uids.filter((uid) => !this.#presence.has(uid));
    for (const uid of fresh) this.#presence.set(uid, null);
    try {
      await this.#subscriptions.hold(atQos0(fresh.map((uid) => this.#topics.presence(uid))), { settle: true });
    } catch (error) {
      for (const uid of fresh) this.#presence.delete(uid);
      throw error;
    }
    for (const uid of fresh) this.#presence.set(uid, this.#presence.get(uid) ?? 'OFFLINE');   // never seen
    this.emit('PeersOnlineStatusChanged', Object.fromEntries(uids.map((uid) => [uid, this.#presence.get(uid)])));
  }

  /** Stops watching the presence of `uids`. */
  async unsubscribePeersOnlineStatus(uids) {
    const watched = uids.filter((uid) => this.#presence.delete(uid));
    this.#subscriptions.release(watched.map((uid) => this.#topics.presence(uid)));
  }

  /**
   * Sends `{text}` or `{rawMessage}` to `peerId`. `hasPeerReceived` is false when nobody
   * subscribes to the peer's messages (the broker's "no matching subscribers").
   */
  async sendMessageToPeer(message, peerId) {
    const reason = await this.#request(this.#topics.peerMessage(peerId, this.#uid), payloadOf(message));
    return { hasPeerReceived: reason !== NO_MATCHING_SUBSCRIBERS };
  }

  /** The channel `channelId`: the same object each time for the same id. */
  createChannel(channelId) {
    if (!this.#channels.has(channelId)) this.#channels.set(channelId, new RtmChannel(this.#ctx, channelId));
    return this.#channels.get(channelId);
  }

  /** Writes this user's attributes. */
  async addOrUpdateLocalUserAttributes(attributes) {
    await this.#writeAttributes((key) => this.#topics.userAttribute(this.#uid, key), attributes);
  }

  /** Deletes this user's attributes `keys`. */
  async deleteLocalUserAttributesByKeys(keys) {
    const none = Object.fromEntries(keys.map((key) => [key, '']));
    await this.#writeAttributes((key) => this.#topics.userAttribute(this.#uid, key), none);
  }

  /** The attributes of `uid`, as the broker stamped them. */
  async getUserAttributes(uid) {
    const watch = this.#userAttributes.get(uid);
    if (watch?.known) return watch.attributes.toObject();
    return AttributeSet.of(await this.#subscriptions.snapshot([this.#topics.userAttribute(uid, '+')])).toObject();
  }

  /**
   * Watches the attributes of `uid`: 'UserAttributesUpdated' (uid, attributes) fires once with
   * all of them, then on every change, again with all of them.
   */
  async subscribeUserAttributes(uid) {
    if (this.#userAttributes.has(uid)) return;
    const watch = { attributes: new AttributeSet(), known: false };
    this.#userAttributes.set(uid, watch);
    try {
      await this.#subscriptions.hold(atQos0([this.#topics.userAttribute(uid, '+')]), { settle: true });
    } catch (error) {
      this.#userAttributes.delete(uid);
      throw error;
    }
    watch.known = true;
    this.emit('UserAttributesUpdated', uid, watch.attributes.toObject());
  }

  /** Stops watching the attributes of `uid`. */
  async unsubscribeUserAttributes(uid) {
    if (this.#userAttributes.delete(uid)) this.#subscriptions.release([this.#topics.userAttribute(uid, '+')]);
  }

  // --- The connection

  #setState(state, reason) {
    this.#state = state;
    this.emit('ConnectionStateChanged', state, reason);
  }

  /** Makes an RtmError of the client's own and emits it: every failure shows on 'error' once. */
  #fail(code, message) {
    const error = new RtmError(code, message);
    this.emit('error', error);
    return error;
  }

  /** The MQTT client when connected; else throws 'not_logged_in' or 'connection_lost'. */
  #connection() {
    if (this.#state === 'CONNECTED') return this.#mqtt;
    throw this.#fail(this.#state === 'RECONNECTING' ? 'connection_lost' : 'not_logged_in', `not connected (${this.#state})`);
  }

  /**
   * Settles like `promise`, unless the connection ends first ('connection_lost') or requestTimeout
   * passes ('timeout'); a Failure that decides it becomes an RtmError, emitted.
   */
  #bounded(promise) {
    const settled = Promise.race([promise, this.#connectionEnd.promise]);
    const timeout = () => new Failure('timeout', `no answer from the broker within ${this.#requestTimeout} ms`);
    return withTimeout(settled, this.#requestTimeout, timeout).catch((error) => {
      throw error instanceof Failure ? this.#fail(error.code, error.message) : error;
    });
  }

  /** Routes the events of `client`, for as long as it is this client's connection. */
  #listen(client) {
    const on = (event, handler) => client.on(event, (...args) => {
      if (client === this.#mqtt) handler(...args);
    });
    on('connect', () => this.#onConnect());
    on('close', () => this.#onClose());
    on('error', (error) => this.#onError(error));
    on('disconnect', (packet) => this.#onServerDisconnect(packet));
    on('message', (topic, payload) => this.#dispatch(topic, new Uint8Array(payload)));   // a copy, as a plain Uint8Array
    on('packetreceive', (packet) => {
      if (packet.cmd === 'puback') this.#pubackReasons.set(packet.messageId, packet.reasonCode ?? 0);
    });
  }

  #onConnect() {
    this.#connectionEnd = deferred();
    if (this.#state === 'CONNECTING') {
      this.#loginAttempt.resolve();
      return;
    }
    // Reconnected: mqtt.js subscribes again, the channels join again.
    this.#setState('CONNECTED', 'LOGIN_SUCCESS');
    for (const channel of this.#channels.values()) channel[connectionRestored]();
  }

  #onClose() {
    this.#connectionEnd.reject(CONNECTION_ENDED);
    if (this.#state === 'CONNECTED') this.#setState('RECONNECTING', 'INTERRUPTED');
  }

  /**
   * Socket errors are retried by mqtt.js; a refused CONNACK (a numeric reason code while
   * connecting) is final. Once connected, mqtt.js closes on a protocol error and reconnects.
   */
  #onError(error) {
    if (typeof error.code !== 'number' || this.#state === 'CONNECTED') return;
    if (this.#state === 'CONNECTING') {
      this.#loginAttempt.reject(new Failure('login_refused', error.message));
      return;
    }
    this.#fail('login_refused', error.message);
    this.#endSession().end(true);
    this.#setState('DISCONNECTED', 'LOGIN_FAILURE');
  }

  #onServerDisconnect(packet) {
    if (packet.reasonCode !== SESSION_TAKEN_OVER) return;
    this.#endSession().end(true);
    this.#setState('ABORTED', 'REMOTE_LOGIN');
  }

  /** Forgets everything that belonged to the session; returns its MQTT client, to be ended. */
  #endSession() {
    const client = this.#mqtt;
    this.#mqtt = null;
    this.#uid = null;
    this.#connectionEnd.reject(CONNECTION_ENDED);
    this.#subscriptions.clear();
    this.#refusals.clear();
    this.#answers.clear();
    this.#pubackReasons.clear();
    this.#presence.clear();
    this.#userAttributes.clear();
    for (const channel of this.#channels.values()) channel[sessionEnded]();
    return client;
  }

  // --- Requests

  /**
   * Publishes at QoS 1 and settles with the broker's verdict: resolves with the PUBACK reason
   * code when it accepted the publish, rejects with the broker's error message (an RtmError)
   * when it refused. `call` ({id, type}) names a call message, as the broker's errors do.
   */
  async #request(topic, payload, { retain = false, call } = {}) {
    const client = this.#connection();
    const req = { topic, id: call?.id, type: call?.type, refused: false };
    const refusal = this.#refusals.expect((error) => answersRequest(error, req));
    try {
      const reason = await this.#bounded(this.#publish(client, topic, payload, retain));
      if (reason < FIRST_REFUSAL_CODE) return reason;
      req.refused = true;
      throw await this.#bounded(refusal.promise);
    } finally {
      refusal.cancel();
    }
  }

  /**
   * Resolves with the PUBACK's reason code. mqtt.js reports a refusal (>= 0x80) as an error with
   * that code, but gives a success code (0x10 too) to nobody: 'packetreceive' keeps it for us.
   */
  #publish(client, topic, payload, retain) {
    return new Promise((resolve, reject) => {
      client.publish(topic, payload, { qos: 1, retain }, (error, packet) => {
        if (typeof error?.code === 'number') return resolve(error.code);
        if (error) return reject(CONNECTION_ENDED);
        resolve(this.#pubackReasons.get(packet.messageId) ?? 0);
        this.#pubackReasons.delete(packet.messageId);
      });
    });
  }

  /** Writes attributes, one retained publish per key to `topicOf(key)`; an empty value deletes. */
  async #writeAttributes(topicOf, attributes) {
    await Promise.all(Object.entries(attributes).map(([key, value]) =>
      this.#request(topicOf(key), String(value), { retain: true })));
  }

  // --- Incoming messages

  /**
   * Routes a message by its topic (PROTOCOL.md section 2): `{p}/presence/{uid}`,
   * `{p}/u/{uid}/{call|msg|attr}[/{sender|key}]` or `{p}/c/{ch}/{leaf}[/{sender|key}]`.
   */
  #dispatch(topic, bytes) {
    const levels = this.#topics.levels(topic);
    if (!levels) return;
    this.#subscriptions.offer(topic, bytes);
    const [area, name, leaf, last] = levels;
    switch (area === 'u' ? leaf : area) {
      case 'presence': this.#onPresence(name, bytes); break;
      case 'c': this.#channels.get(name)?.[deliver](leaf, last, bytes); break;
      case 'call': this.#onInboxMessage(jsonOf(bytes) ?? {}); break;
      case 'msg': this.emit('MessageFromPeer', messageOf(bytes), last); break;
      case 'attr': this.#onUserAttribute(name, last, bytes); break;
      default: break;
    }
  }

  #onInboxMessage(message) {
    if (message.type === 'error') this.#onBrokerError(message);
    else if (message.type === 'joined' || message.type === 'members') this.#answers.offer(message);
    else if (message.type === 'invite') this.#onInvite(message);
    else if (message.caller === this.#uid) this.#localInvitations.get(message.id)?.[deliver](message);
    else this.#remoteInvitations.get(`${message.caller}/${message.id}`)?.[deliver](message);
  }

  /** Every error the broker sends is emitted, then rejects the request it answers, if one waits. */
  #onBrokerError(message) {
    const error = new RtmError(message.code, message.message, message);
    this.emit('error', error);
    this.#refusals.offer(error);
  }

  #onInvite(invite) {
    const key = `${invite.caller}/${invite.id}`;
    if (this.#remoteInvitations.has(key)) return;   // delivered again (at least once, and on subscribing)
    const invitation = new RemoteInvitation(this.#ctx, invite);
    this.#remoteInvitations.add(key, invitation);
    reportedTo(invitation, invitation[request]('ringing')).catch(() => {});   // RTM's "received by peer"
    this.emit('RemoteInvitationReceived', invitation);
  }

  #onPresence(uid, bytes) {
    if (!this.#presence.has(uid)) return;
    const before = this.#presence.get(uid);
    const state = presenceOf(bytes);
    this.#presence.set(uid, state);
    if (before !== null && before !== state) this.emit('PeersOnlineStatusChanged', { [uid]: state });
  }

  #onUserAttribute(uid, key, bytes) {
    const watch = this.#userAttributes.get(uid);
    if (watch?.attributes.apply(key, bytes) && watch.known) this.emit('UserAttributesUpdated', uid, watch.attributes.toObject());
  }
}

/**
 * A client for the broker at `url` ('mqtt://host:1883' in Node, 'ws://host:9001' in browsers).
 * @param {{url: string, prefix?: string, requestTimeout?: number, mqttOptions?: object}} options
 */
export function createClient(options) {
  return new RtmClient(options);
}
