// Presence (PROTOCOL.md section 6): one-off queries and watched peers.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { record, setUp, waitFor } from './helpers.js';

const { login } = await setUp();

test('query: online, offline after a logout, and never seen', async () => {
  const alice = await login('alice1');
  const bob = await login('bob1');
  const carol = await login('carol1');
  await carol.logout();
  assert.deepEqual(await alice.queryPeersOnlineStatus(['bob1', 'carol1', 'nobody1']),
    { bob1: true, carol1: false, nobody1: false });
  await bob.logout();
  assert.deepEqual(await alice.queryPeersOnlineStatus(['bob1']), { bob1: false });
});

test('a query of a watched peer leaves the watch in place', async () => {
  const alice = await login('alice2');
  const bob = await login('bob2');
  await alice.subscribePeersOnlineStatus(['bob2']);
  assert.deepEqual(await alice.queryPeersOnlineStatus(['bob2']), { bob2: true });
  const offline = waitFor(alice, 'PeersOnlineStatusChanged', 3000);
  await bob.logout();
  assert.deepEqual(await offline, [{ bob2: 'OFFLINE' }]);
});

test('subscribe: the current state at once, then each change', async () => {
  const alice = await login('alice3');
  await login('bob3');
  const changes = record(alice, 'PeersOnlineStatusChanged');
  await alice.subscribePeersOnlineStatus(['bob3', 'carol3']);
  assert.deepEqual(changes, [{ bob3: 'ONLINE', carol3: 'OFFLINE' }]);

  const online = waitFor(alice, 'PeersOnlineStatusChanged', 3000);
  const carol = await login('carol3');
  assert.deepEqual(await online, [{ carol3: 'ONLINE' }]);
  const offline = waitFor(alice, 'PeersOnlineStatusChanged', 3000);
  await carol.logout();
  assert.deepEqual(await offline, [{ carol3: 'OFFLINE' }]);
});

test('unsubscribe: no more events for that peer', async () => {
  const alice = await login('alice4');
  await alice.subscribePeersOnlineStatus(['bob4', 'carol4']);
  await alice.unsubscribePeersOnlineStatus(['bob4']);
  const changes = record(alice, 'PeersOnlineStatusChanged');
  // The broker publishes bob4's presence before carol4's: had the watch of bob4 stayed, its
  // event would come first.
  await login('bob4');
  await login('carol4');
  await waitFor(alice, 'PeersOnlineStatusChanged', 3000);
  assert.deepEqual(changes, [{ carol4: 'ONLINE' }]);
});
