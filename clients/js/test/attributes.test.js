// User attributes (PROTOCOL.md section 9): writes, reads, deletes, watching, and a refusal.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { record, setUp, waitFor } from './helpers.js';

const { login } = await setUp({ options: { max_attr_keys: 3 } });

test('add, get (by anyone) and delete, stamped with the writer and the time', async () => {
  const alice = await login('alice1');
  const bob = await login('bob1');
  const before = Date.now();
  await alice.addOrUpdateLocalUserAttributes({ status: 'busy', name: 'Alice' });
  const attributes = await bob.getUserAttributes('alice1');
  assert.deepEqual(Object.keys(attributes).sort(), ['name', 'status']);
  assert.equal(attributes.status.value, 'busy');
  assert.equal(attributes.status.by, 'alice1');
  assert.ok(attributes.status.ts >= before - 1000 && attributes.status.ts <= Date.now() + 1000);

  await alice.deleteLocalUserAttributesByKeys(['name']);
  assert.deepEqual(Object.keys(await bob.getUserAttributes('alice1')), ['status']);
  assert.deepEqual(await bob.getUserAttributes('nobody1'), {});
});

test('subscribe: UserAttributesUpdated with all of them at once, then on every change', async () => {
  const alice = await login('alice2');
  const bob = await login('bob2');
  await alice.addOrUpdateLocalUserAttributes({ status: 'busy' });
  const updates = record(bob, 'UserAttributesUpdated');
  await bob.subscribeUserAttributes('alice2');
  assert.equal(updates.length, 1);
  assert.equal(updates[0][0], 'alice2');
  assert.deepEqual(Object.keys(updates[0][1]), ['status']);

  const changed = waitFor(bob, 'UserAttributesUpdated', 3000);
  await alice.addOrUpdateLocalUserAttributes({ status: 'free' });
  const [uid, attributes] = await changed;
  assert.equal(uid, 'alice2');
  assert.equal(attributes.status.value, 'free');
  assert.deepEqual(await bob.getUserAttributes('alice2'), attributes);   // from the watch

  const deleted = waitFor(bob, 'UserAttributesUpdated', 3000);
  await alice.deleteLocalUserAttributesByKeys(['status']);
  assert.deepEqual((await deleted)[1], {});
});

test('unsubscribe: no more updates', async () => {
  const alice = await login('alice3');
  const carol = await login('carol3');
  const bob = await login('bob3');
  await bob.subscribeUserAttributes('alice3');
  await bob.subscribeUserAttributes('carol3');
  await bob.unsubscribeUserAttributes('alice3');
  const updates = record(bob, 'UserAttributesUpdated');
  // alice3 writes first: were bob still subscribed, her update would come before carol's.
  await alice.addOrUpdateLocalUserAttributes({ status: 'away' });
  await carol.addOrUpdateLocalUserAttributes({ status: 'here' });
  await waitFor(bob, 'UserAttributesUpdated', 3000);
  assert.deepEqual(updates.map(([uid]) => uid), ['carol3']);
});

test('a write beyond max_attr_keys: rejected with limit_exceeded, also as an error event', async () => {
  const alice = await login('alice4');
  await alice.addOrUpdateLocalUserAttributes({ a: '1', b: '2', c: '3' });
  const errors = record(alice, 'error');
  await assert.rejects(alice.addOrUpdateLocalUserAttributes({ d: '4' }),
    { name: 'RtmError', code: 'limit_exceeded', topic: 'rtm/u/alice4/attr/d' });
  assert.deepEqual(errors.map((e) => e.code), ['limit_exceeded']);
});
