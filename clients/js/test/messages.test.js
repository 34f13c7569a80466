// Peer messages (PROTOCOL.md section 9): text and bytes, "peer unreachable", and a refusal.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { record, setUp, waitFor } from './helpers.js';

const MAX_MESSAGE = 1024;
const { login } = await setUp({ options: { max_message: MAX_MESSAGE } });

test('a text message arrives with its text, its bytes and its sender', async () => {
  const alice = await login('alice1');
  const bob = await login('bob1');
  const received = waitFor(bob, 'MessageFromPeer', 3000);
  assert.deepEqual(await alice.sendMessageToPeer({ text: 'Are you free at 3? ✓' }, 'bob1'), { hasPeerReceived: true });
  const [message, peerId] = await received;
  assert.equal(peerId, 'alice1');
  assert.equal(message.text, 'Are you free at 3? ✓');
  assert.deepEqual(message.rawMessage, new TextEncoder().encode('Are you free at 3? ✓'));
});

test('bytes that are not UTF-8 arrive as they are, without text', async () => {
  const alice = await login('alice2');
  const bob = await login('bob2');
  const bytes = new Uint8Array([0x00, 0xff, 0xfe, 0x80, 0x41]);
  const received = waitFor(bob, 'MessageFromPeer', 3000);
  await alice.sendMessageToPeer({ rawMessage: bytes }, 'bob2');
  const [message] = await received;
  assert.equal(message.text, undefined);
  assert.equal(Object.getPrototypeOf(message.rawMessage), Uint8Array.prototype);
  assert.deepEqual(message.rawMessage, bytes);
});

test('hasPeerReceived is false when nobody subscribes to the peer\'s messages', async () => {
  const alice = await login('alice3');
  assert.deepEqual(await alice.sendMessageToPeer({ text: 'anyone?' }, 'nobody3'), { hasPeerReceived: false });
});

test('a message over max_message: rejected with bad_request and its topic, also as an error event', async () => {
  const alice = await login('alice4');
  await login('bob4');
  const errors = record(alice, 'error');
  await assert.rejects(alice.sendMessageToPeer({ rawMessage: new Uint8Array(MAX_MESSAGE + 1) }, 'bob4'),
    { name: 'RtmError', code: 'bad_request', topic: 'rtm/u/bob4/msg/alice4' });
  assert.deepEqual(errors.map((e) => e.code), ['bad_request']);
});
