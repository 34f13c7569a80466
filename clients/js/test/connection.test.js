// Logging in and out: connection states, refused and unreachable logins, WebSockets, a lost
// connection that comes back, and a takeover of the client id.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:net';
import { test } from 'node:test';
import mqtt from 'mqtt';
import { freePort } from './broker.js';
import { record, setUp, startProxy, waitFor } from './helpers.js';

const SECRET = 'a-secret-for-the-js-client-tests';
const open = await setUp({ websockets: true });
const guarded = await setUp({ options: { auth: 'token', token_secret_file: '{dir}/secret' }, files: { secret: `${SECRET}\n` } });

/** A login token for `uid`, as docs/TOKENS.md mints them. */
function tokenFor(uid, secret = SECRET) {
  const expiry = String(Math.floor(Date.now() / 1000) + 600);
  const sig = createHmac('sha256', secret).update(`rtm1.${uid}.${expiry}`).digest('base64url');
  return `rtm1.${expiry}.${sig}`;
}

test('login and logout: the connection states, the uid and the presence others see', async () => {
  const watcher = await open.login('watcher1');
  await watcher.subscribePeersOnlineStatus(['alice1']);
  const alice = open.client();
  const states = record(alice, 'ConnectionStateChanged');

  const online = waitFor(watcher, 'PeersOnlineStatusChanged', 3000, (s) => s.alice1 === 'ONLINE');
  await alice.login({ uid: 'alice1' });
  assert.equal(alice.uid, 'alice1');
  assert.equal(alice.connectionState, 'CONNECTED');
  await online;

  const offline = waitFor(watcher, 'PeersOnlineStatusChanged', 3000, (s) => s.alice1 === 'OFFLINE');
  await alice.logout();
  await offline;
  assert.equal(alice.uid, null);
  assert.deepEqual(states, [['CONNECTING', 'LOGIN'], ['CONNECTED', 'LOGIN_SUCCESS'], ['DISCONNECTED', 'LOGOUT']]);
});

test('a request before login rejects with not_logged_in, also as an error event', async () => {
  const alice = open.client();
  const errors = record(alice, 'error');
  await assert.rejects(alice.sendMessageToPeer({ text: 'hi' }, 'bob'), { name: 'RtmError', code: 'not_logged_in' });
  assert.deepEqual(errors.map((e) => e.code), ['not_logged_in']);
});

test('with auth token: a valid token logs in, a wrong one is refused (login_refused)', async () => {
  const alice = await guarded.login('alice2', { token: tokenFor('alice2') });
  assert.equal(alice.connectionState, 'CONNECTED');

  const mallory = guarded.client();
  const states = record(mallory, 'ConnectionStateChanged');
  const errors = record(mallory, 'error');
  await assert.rejects(mallory.login({ uid: 'alice2', token: tokenFor('alice2', 'not-the-secret-of-the-broker') }),
    { name: 'RtmError', code: 'login_refused' });
  assert.deepEqual(states, [['CONNECTING', 'LOGIN'], ['DISCONNECTED', 'LOGIN_FAILURE']]);
  assert.deepEqual(errors.map((e) => e.code), ['login_refused']);
});

test('a uid the plugin does not accept is refused its inbox: login_refused', async () => {
  const client = open.client();
  await assert.rejects(client.login({ uid: 'not a uid' }), { code: 'login_refused' });
  assert.equal(client.connectionState, 'DISCONNECTED');
});

test('nobody listening: unreachable within requestTimeout, and no more attempts after', async () => {
  const port = await freePort();
  const client = open.client({ url: `mqtt://127.0.0.1:${port}`, requestTimeout: 1000 });
  const states = record(client, 'ConnectionStateChanged');
  const started = Date.now();
  await assert.rejects(client.login({ uid: 'alice3' }), { code: 'unreachable' });
  assert.ok(Date.now() - started < 2000, `rejected after ${Date.now() - started} ms`);
  assert.deepEqual(states.at(-1), ['DISCONNECTED', 'LOGIN_TIMEOUT']);

  // mqtt.js retries every second while logging in; after the rejection nothing connects.
  const server = createServer((socket) => socket.destroy());
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  try {
    await assert.rejects(waitFor(server, 'connection', 1500), /no 'connection' event/);
  } finally {
    server.close();
  }
});

test('over WebSockets', async (t) => {
  if (!open.broker.wsUrl) {
    const why = `broker has no websockets (${open.broker.wsUnavailable})`;
    console.warn(`\n*** SKIPPED: ${why} ***\n`);
    t.skip(why);
    return;
  }
  const alice = await open.login('alice4', { url: open.broker.wsUrl });
  const bob = await open.login('bob4');
  const received = waitFor(bob, 'MessageFromPeer', 3000);
  assert.deepEqual(await alice.sendMessageToPeer({ text: 'over ws' }, 'bob4'), { hasPeerReceived: true });
  const [message, from] = await received;
  assert.equal(message.text, 'over ws');
  assert.equal(from, 'alice4');
});

test('a cut connection: RECONNECTING, then CONNECTED again, and requests work again', async () => {
  const proxy = await startProxy(open.broker.port);
  const alice = await open.login('alice5', { url: proxy.url, mqttOptions: { reconnectPeriod: 200 } });
  const states = record(alice, 'ConnectionStateChanged');
  const back = waitFor(alice, 'ConnectionStateChanged', 3000, (state) => state === 'CONNECTED');
  proxy.cut();
  await back;
  assert.deepEqual(states, [['RECONNECTING', 'INTERRUPTED'], ['CONNECTED', 'LOGIN_SUCCESS']]);

  // The inbox subscription came back with the connection.
  const bob = await open.login('bob5');
  const received = waitFor(alice, 'MessageFromPeer', 3000);
  await bob.sendMessageToPeer({ text: 'still there?' }, 'alice5');
  assert.equal((await received)[0].text, 'still there?');
});

test('logout while the connection is down ends at once, a request in flight included', async () => {
  const proxy = await startProxy(open.broker.port);
  const alice = await open.login('alice7', { url: proxy.url, mqttOptions: { reconnectPeriod: 60000 } });
  const interrupted = waitFor(alice, 'ConnectionStateChanged', 3000);
  // Cut in the same tick as the publish: its PUBACK cannot come back.
  const lost = assert.rejects(alice.sendMessageToPeer({ text: 'hello?' }, 'bob7'), { code: 'connection_lost' });
  proxy.cut();
  await interrupted;
  await lost;
  const loggedOut = waitFor(alice, 'ConnectionStateChanged', 1000);
  await alice.logout();
  assert.deepEqual(await loggedOut, ['DISCONNECTED', 'LOGOUT']);
});

test('another connection takes over the client id: ABORTED, REMOTE_LOGIN', async (t) => {
  if (open.broker.version.startsWith('2.0.')) {
    // Mosquitto 2.0 closes the taken-over connection without a DISCONNECT saying why: to the
    // client it is a lost connection, and it reconnects.
    t.skip(`mosquitto ${open.broker.version} sends no DISCONNECT 0x8E on a takeover`);
    return;
  }
  const alice = await open.login('alice6');
  // The client id is the uid and a random suffix; the broker's log tells which.
  const clientId = open.broker.log().match(/as (alice6-[0-9a-f]+)/)[1];
  const aborted = waitFor(alice, 'ConnectionStateChanged', 3000);
  const intruder = await mqtt.connectAsync(open.broker.url, { protocolVersion: 5, clientId, username: 'alice6' });
  try {
    assert.deepEqual(await aborted, ['ABORTED', 'REMOTE_LOGIN']);
    assert.equal(alice.uid, null);
  } finally {
    await intruder.endAsync();
  }
});
