// Types of the mosquitto-rtm JavaScript client (src/rtm.js). The wire protocol underneath is
// docs/PROTOCOL.md; the names follow Agora RTM (web SDK v1).

export type ConnectionState = 'DISCONNECTED' | 'CONNECTING' | 'CONNECTED' | 'RECONNECTING' | 'ABORTED';

/**
 * Why the connection state changed: LOGIN (login called), LOGIN_SUCCESS (connected, also after a
 * reconnection), LOGIN_FAILURE (the broker refused the login), LOGIN_TIMEOUT (unreachable),
 * LOGOUT, INTERRUPTED (connection lost; reconnecting), REMOTE_LOGIN (another connection took
 * this client id; only brokers that say so, Mosquitto 2.1).
 */
export type ConnectionChangeReason =
  'LOGIN' | 'LOGIN_SUCCESS' | 'LOGIN_FAILURE' | 'LOGIN_TIMEOUT' | 'LOGOUT' | 'INTERRUPTED' | 'REMOTE_LOGIN';

export type PeerStatus = 'ONLINE' | 'OFFLINE';

/** A message to send: text (sent as UTF-8) or bytes. */
export type RtmMessage = { text: string } | { rawMessage: Uint8Array };

/** A message received: always the bytes, and the text when they are valid UTF-8. */
export interface ReceivedMessage {
  text?: string;
  rawMessage: Uint8Array;
}

/** An attribute as the broker stamped it: the value, who wrote it last and when (ms epoch). */
export interface Attribute {
  value: string;
  by: string;
  ts: number;
}

export type Attributes = Record<string, Attribute>;

/** The `joined` and `members` answers. `truncated`: more members than the 512 listed. */
export interface MemberList {
  members: string[];
  count: number;
  truncated: boolean;
}

export interface ClientOptions {
  /** 'mqtt://127.0.0.1:1883' (Node) or 'ws://127.0.0.1:9001' (browser). */
  url: string;
  /** Topic prefix, `plugin_opt_topic_prefix` of the broker. Default 'rtm'. */
  prefix?: string;
  /** Milliseconds to wait for any answer (CONNACK, SUBACK, PUBACK, joined, error). Default 5000. */
  requestTimeout?: number;
  /** Passed to mqtt.connect (keepalive, reconnectPeriod, ...); clientId, username, password and clean are the client's. */
  mqttOptions?: object;
}

/**
 * A failed request, also emitted as 'error' on the client (and on the object it concerns).
 * `code` is the broker's (bad_request, not_party, unknown_invitation, invalid_state,
 * duplicate_id, self_call, rate_limited, busy_limit, limit_exceeded) or the client's own:
 * unreachable, login_refused, timeout, not_logged_in, connection_lost; and invalid_state for a
 * login while logged in. A subscription the broker refuses (an invalid uid or channel id) is
 * not_party, as a publish to that topic would be.
 */
export class RtmError extends Error {
  readonly code: string;
  /** As in the broker's error message: the call's id and request type, or the refused topic. */
  readonly id?: string;
  readonly request?: string;
  readonly topic?: string;
  readonly ts?: number;
  constructor(code: string, message?: string, details?: { id?: string; request?: string; topic?: string; ts?: number });
}

type Listener = (...args: any[]) => void;

/**
 * The emitter every class is. Emitting 'error' without a listener does not throw; a listener
 * that throws does not stop the others (its exception is rethrown asynchronously).
 */
declare class Emitter<Events extends { [E in keyof Events]: Listener }> {
  on<E extends keyof Events>(event: E, listener: Events[E]): this;
  off<E extends keyof Events>(event: E, listener: Events[E]): this;
  once<E extends keyof Events>(event: E, listener: Events[E]): this;
  emit<E extends keyof Events>(event: E, ...args: Parameters<Events[E]>): void;
}

export interface RtmClientEvents {
  ConnectionStateChanged: (newState: ConnectionState, reason: ConnectionChangeReason) => void;
  /** Every error: each one the broker sends this session, and each request the client rejects. */
  error: (error: RtmError) => void;
  /** An invite arrived; the client already answered `ringing`. Duplicates are dropped. */
  RemoteInvitationReceived: (invitation: RemoteInvitation) => void;
  /** For watched peers: once with all of them after subscribing, then one per change. */
  PeersOnlineStatusChanged: (status: Record<string, PeerStatus>) => void;
  MessageFromPeer: (message: ReceivedMessage, peerId: string) => void;
  /** For watched users: once with all attributes after subscribing, then all of them on each change. */
  UserAttributesUpdated: (uid: string, attributes: Attributes) => void;
}

export class RtmClient extends Emitter<RtmClientEvents> {
  constructor(options: ClientOptions);
  /** The uid while logged in, else null. */
  readonly uid: string | null;
  readonly connectionState: ConnectionState;

  /**
   * Connects (MQTT 5, clean start, username = uid, password = token, client id `${uid}-<hex>`)
   * and subscribes to the inbox. Rejects 'unreachable' (no connection within requestTimeout; no
   * more attempts), 'login_refused' (CONNACK refused, or the inbox refused: an invalid uid).
   * After a lost connection the client reconnects by itself and joins its channels again.
   */
  login(options: { uid: string; token?: string }): Promise<void>;
  /** A clean DISCONNECT (at once when the connection is down). */
  logout(): Promise<void>;

  /** Publishes the invite and returns at once. `timeout`: seconds; `id`: default a random UUID. */
  invite(calleeId: string, options?: { content?: string; channelId?: string; timeout?: number; id?: string }): LocalInvitation;

  queryPeersOnlineStatus(uids: string[]): Promise<Record<string, boolean>>;
  subscribePeersOnlineStatus(uids: string[]): Promise<void>;
  unsubscribePeersOnlineStatus(uids: string[]): Promise<void>;

  /** `hasPeerReceived` is false when nobody subscribes to the peer's messages (PUBACK 0x10). */
  sendMessageToPeer(message: RtmMessage, peerId: string): Promise<{ hasPeerReceived: boolean }>;

  /** The same object for the same id. */
  createChannel(channelId: string): RtmChannel;

  addOrUpdateLocalUserAttributes(attributes: Record<string, string>): Promise<void>;
  deleteLocalUserAttributesByKeys(keys: string[]): Promise<void>;
  getUserAttributes(uid: string): Promise<Attributes>;
  subscribeUserAttributes(uid: string): Promise<void>;
  unsubscribeUserAttributes(uid: string): Promise<void>;
}

export function createClient(options: ClientOptions): RtmClient;

export type LocalInvitationState =
  'SENT_TO_REMOTE' | 'RECEIVED_BY_REMOTE' | 'ACCEPTED_BY_REMOTE' | 'REFUSED_BY_REMOTE' | 'CANCELED' | 'FAILURE';

export interface LocalInvitationEvents {
  /** The callee's app has it and rings (its `ringing`). */
  LocalInvitationReceivedByPeer: () => void;
  /** The callee's phones were woken by a push; `devices`: how many the provider accepted. */
  LocalInvitationPushed: (devices: number) => void;
  LocalInvitationAccepted: (response: string | undefined) => void;
  LocalInvitationRefused: (response: string | undefined) => void;
  LocalInvitationCanceled: () => void;
  /**
   * peer_offline, no_response, expired or caller_offline; or, when the broker refused the
   * invite itself, its error code (bad_request, duplicate_id, rate_limited, ...).
   */
  LocalInvitationFailure: (reason: string) => void;
  error: (error: RtmError) => void;
}

/** An invitation sent. Each ending is delivered once, whatever the broker re-sends. */
export class LocalInvitation extends Emitter<LocalInvitationEvents> {
  readonly calleeId: string;
  readonly id: string;
  readonly content: string;
  readonly channelId: string;
  readonly state: LocalInvitationState;
  readonly response: string | undefined;
  readonly failureReason: string | undefined;
  /** Resolves when the broker took the cancel; 'LocalInvitationCanceled' follows. */
  cancel(): Promise<void>;
}

export type RemoteInvitationState = 'RECEIVED' | 'ACCEPTED' | 'REFUSED' | 'CANCELED' | 'FAILURE';

export interface RemoteInvitationEvents {
  RemoteInvitationAccepted: (response: string | undefined) => void;
  RemoteInvitationRefused: (response: string | undefined) => void;
  RemoteInvitationCanceled: () => void;
  RemoteInvitationFailure: (reason: string) => void;
  error: (error: RtmError) => void;
}

/**
 * An invitation received. Its endings arrive also when another device of the same user
 * answered: then `answeredHere` is false.
 */
export class RemoteInvitation extends Emitter<RemoteInvitationEvents> {
  readonly callerId: string;
  readonly id: string;
  readonly content: string;
  readonly channelId: string;
  /** The ringing deadline of the stamped invite, ms since the epoch. */
  readonly expiresAt: number;
  /** Who the broker says sent the invite (the caller's uid, from its connection). */
  readonly by: string;
  /** When the broker stamped the invite, ms since the epoch. */
  readonly ts: number;
  readonly state: RemoteInvitationState;
  readonly response: string | undefined;
  readonly failureReason: string | undefined;
  readonly answeredHere: boolean;
  accept(options?: { response?: string }): Promise<void>;
  refuse(options?: { response?: string }): Promise<void>;
}

export interface RtmChannelEvents {
  /** A message of another member (a member's own messages do not come back to it). */
  ChannelMessage: (message: ReceivedMessage, memberId: string) => void;
  MemberJoined: (uid: string) => void;
  MemberLeft: (uid: string) => void;
  /** The broker's member count, at most once a second. */
  MemberCountUpdated: (count: number) => void;
  /** Once with all attributes when joined, then all of them on every change. */
  AttributesUpdated: (attributes: Attributes) => void;
  error: (error: RtmError) => void;
}

/** A channel; the membership belongs to the client's connection and is renewed after a reconnection. */
export class RtmChannel extends Emitter<RtmChannelEvents> {
  readonly channelId: string;
  readonly joined: boolean;
  readonly memberCount: number;
  /** Subscribes to the channel's events, messages, count and attributes, then joins. */
  join(): Promise<MemberList>;
  leave(): Promise<void>;
  /** As a member. */
  getMembers(): Promise<MemberList>;
  /** As a member. */
  sendMessage(message: RtmMessage): Promise<void>;
  /** As a member. */
  addOrUpdateChannelAttributes(attributes: Record<string, string>): Promise<void>;
  /** As a member. */
  deleteChannelAttributesByKeys(keys: string[]): Promise<void>;
  /** Needs no membership. */
  getChannelAttributes(): Promise<Attributes>;
}
