// Calls (PROTOCOL.md sections 3 and 4): invitations from both sides, their endings and failures,
// and the broker's refusals as rejections and 'error' events.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import mqtt from 'mqtt';
import { record, setUp, startProxy, waitFor } from './helpers.js';

// Short timers: an invitation fails 1 s after the invite without ringing, 2 s after it when
// rung but not answered, and 1 s after its caller went away.
const { broker, client, login } = await setUp({ options: { invite_timeout: 1, ring_timeout: 2, caller_grace: 1 } });
const WAIT_MS = 3000;   // long enough for any of the timers above

/** Alice invites bob; resolves once bob has the invitation and alice the ringing. */
async function ring(alice, bob, options) {
  const received = waitFor(bob, 'RemoteInvitationReceived', WAIT_MS);
  const local = alice.invite(bob.uid, options);
  const rung = waitFor(local, 'LocalInvitationReceivedByPeer', WAIT_MS);
  const [remote] = await received;
  await rung;
  return { local, remote };
}

test('an accepted call: invite, ringing, accept with a response, seen by both sides', async () => {
  const alice = await login('alice1');
  const bob = await login('bob1');
  const { local, remote } = await ring(alice, bob, { content: 'video', channelId: 'media-1' });
  assert.equal(local.state, 'RECEIVED_BY_REMOTE');
  assert.deepEqual([remote.callerId, remote.id, remote.content, remote.channelId], ['alice1', local.id, 'video', 'media-1']);
  assert.equal(remote.state, 'RECEIVED');
  assert.ok(remote.expiresAt > Date.now());
  // The broker's stamp: the caller as its connection proved it, and when.
  assert.equal(remote.by, 'alice1');
  assert.ok(Math.abs(remote.ts - Date.now()) < 10_000, `ts ${remote.ts} is now`);

  const accepted = waitFor(local, 'LocalInvitationAccepted', WAIT_MS);
  const acceptedHere = waitFor(remote, 'RemoteInvitationAccepted', WAIT_MS);
  await remote.accept({ response: 'on my way' });
  assert.deepEqual(await accepted, ['on my way']);
  await acceptedHere;
  assert.equal(local.state, 'ACCEPTED_BY_REMOTE');
  assert.equal(local.response, 'on my way');
  assert.equal(remote.state, 'ACCEPTED');
  assert.equal(remote.answeredHere, true);
});

test('a refused call', async () => {
  const alice = await login('alice2');
  const bob = await login('bob2');
  const { local, remote } = await ring(alice, bob);
  const refused = waitFor(local, 'LocalInvitationRefused', WAIT_MS);
  const refusedHere = waitFor(remote, 'RemoteInvitationRefused', WAIT_MS);
  await remote.refuse({ response: 'busy' });
  assert.deepEqual(await refused, ['busy']);
  await refusedHere;
  assert.equal(local.state, 'REFUSED_BY_REMOTE');
  assert.equal(remote.state, 'REFUSED');
});

test('a canceled call: the callee sees RemoteInvitationCanceled', async () => {
  const alice = await login('alice3');
  const bob = await login('bob3');
  const { local, remote } = await ring(alice, bob);
  const canceledThere = waitFor(remote, 'RemoteInvitationCanceled', WAIT_MS);
  const canceled = waitFor(local, 'LocalInvitationCanceled', WAIT_MS);
  await local.cancel();
  await Promise.all([canceled, canceledThere]);
  assert.equal(local.state, 'CANCELED');
  assert.equal(remote.state, 'CANCELED');
});

test('another device of the callee answers: this one sees the ending, not answered here', async () => {
  const alice = await login('alice4');
  const phone = await login('bob4');
  const { local, remote: onPhone } = await ring(alice, phone);
  // The tablet logs in while the call is pending: the broker delivers the invite on connecting
  // and again on subscribing; the client reports it once.
  const tablet = client();
  const received = record(tablet, 'RemoteInvitationReceived');
  const arrived = waitFor(tablet, 'RemoteInvitationReceived', WAIT_MS);
  await tablet.login({ uid: 'bob4' });
  const [onTablet] = await arrived;
  assert.equal(onTablet.id, local.id);

  // The ending reaches each device on its own connection, in no set order: wait for both.
  const endedOnBoth = [onTablet, onPhone].map((inv) => waitFor(inv, 'RemoteInvitationAccepted', WAIT_MS));
  await onPhone.accept();
  await Promise.all(endedOnBoth);
  assert.equal(onTablet.answeredHere, false);
  assert.equal(onPhone.answeredHere, true);
  assert.equal(received.length, 1);
});

test('peer_offline: nobody is logged in as the callee', async () => {
  const alice = await login('alice5');
  const local = alice.invite('nobody5');
  assert.deepEqual(await waitFor(local, 'LocalInvitationFailure', WAIT_MS), ['peer_offline']);
  assert.equal(local.state, 'FAILURE');
  assert.equal(local.failureReason, 'peer_offline');
});

test('no_response: the callee is online but never says it rings', async () => {
  const alice = await login('alice6');
  // Online (with a session) but not subscribed to its inbox, so it never gets the invite.
  const bob = await mqtt.connectAsync(broker.url, { protocolVersion: 5, username: 'bob6', clientId: 'bob6' });
  try {
    const local = alice.invite('bob6');
    assert.deepEqual(await waitFor(local, 'LocalInvitationFailure', WAIT_MS), ['no_response']);
  } finally {
    await bob.endAsync();
  }
});

test('expired: rung but not answered within ring_timeout, on both sides', async () => {
  const alice = await login('alice7');
  const bob = await login('bob7');
  const { local, remote } = await ring(alice, bob);
  const [[reason], [remoteReason]] = await Promise.all([
    waitFor(local, 'LocalInvitationFailure', WAIT_MS),
    waitFor(remote, 'RemoteInvitationFailure', WAIT_MS),
  ]);
  assert.equal(reason, 'expired');
  assert.equal(remoteReason, 'expired');
  assert.equal(remote.failureReason, 'expired');
});

test('caller_offline: the caller logs out while the call rings', async () => {
  const alice = await login('alice8');
  const bob = await login('bob8');
  const { remote } = await ring(alice, bob);
  await alice.logout();
  assert.deepEqual(await waitFor(remote, 'RemoteInvitationFailure', WAIT_MS), ['caller_offline']);
  assert.equal(remote.state, 'FAILURE');
});

test('caller_offline: the caller\'s connection is cut and does not come back in time', async () => {
  const proxy = await startProxy(broker.port);
  const alice = await login('alice9', { url: proxy.url, mqttOptions: { reconnectPeriod: 60000 } });
  const bob = await login('bob9');
  const { remote } = await ring(alice, bob);
  const interrupted = waitFor(alice, 'ConnectionStateChanged', WAIT_MS);
  proxy.cut();
  assert.deepEqual(await interrupted, ['RECONNECTING', 'INTERRUPTED']);
  assert.deepEqual(await waitFor(remote, 'RemoteInvitationFailure', WAIT_MS), ['caller_offline']);
});

test('cancel after accept: rejected with invalid_state, also on the client and the invitation', async () => {
  const alice = await login('alice10');
  const bob = await login('bob10');
  const { local, remote } = await ring(alice, bob);
  const accepted = waitFor(local, 'LocalInvitationAccepted', WAIT_MS);
  await remote.accept();
  await accepted;

  const clientErrors = record(alice, 'error');
  const invitationErrors = record(local, 'error');
  await assert.rejects(local.cancel(), { name: 'RtmError', code: 'invalid_state', id: local.id, request: 'cancel' });
  assert.deepEqual(clientErrors.map((e) => e.code), ['invalid_state']);
  assert.deepEqual(invitationErrors.map((e) => e.code), ['invalid_state']);
  assert.equal(local.state, 'ACCEPTED_BY_REMOTE');
});

test('a refused invite fails with the broker\'s code: duplicate_id, and a bad id without an echo', async () => {
  const alice = await login('alice11');
  await login('bob11');
  const first = alice.invite('bob11', { id: 'call-1' });
  await waitFor(first, 'LocalInvitationReceivedByPeer', WAIT_MS);

  const clientErrors = record(alice, 'error');
  const duplicate = alice.invite('carol11', { id: 'call-1' });
  const [error] = await waitFor(duplicate, 'error', WAIT_MS);
  assert.equal(error.code, 'duplicate_id');
  assert.equal(duplicate.state, 'FAILURE');
  assert.equal(duplicate.failureReason, 'duplicate_id');

  // The broker does not echo an invalid id: the error still finds the invitation that caused it.
  const invalid = alice.invite('bob11', { id: 'not an id' });
  assert.deepEqual(await waitFor(invalid, 'LocalInvitationFailure', WAIT_MS), ['bad_request']);
  assert.deepEqual(clientErrors.map((e) => e.code), ['duplicate_id', 'bad_request']);
  assert.equal(first.state, 'RECEIVED_BY_REMOTE');
});

test('cancel of an invitation the broker never started: unknown_invitation', async () => {
  const alice = await login('alice12');
  const local = alice.invite('bob12', { timeout: 100000 });   // beyond max_invite_timeout
  assert.deepEqual(await waitFor(local, 'LocalInvitationFailure', WAIT_MS), ['bad_request']);
  const clientErrors = record(alice, 'error');
  await assert.rejects(local.cancel(), { code: 'unknown_invitation', id: local.id, request: 'cancel' });
  assert.deepEqual(clientErrors.map((e) => e.code), ['unknown_invitation']);
});
