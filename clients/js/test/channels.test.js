// Channels (PROTOCOL.md section 9): joining, members, member events and count, messages,
// refusals, channel attributes, and a membership that survives a lost connection.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { record, setUp, startProxy, waitFor } from './helpers.js';

const { broker, login } = await setUp();
const WAIT_MS = 3000;   // the count goes out at most once a second

test('join, members, member events, count, messages and leave', async () => {
  const alice = await login('alice1');
  const bob = await login('bob1');
  const room = alice.createChannel('room1');
  assert.equal(alice.createChannel('room1'), room);
  assert.deepEqual(await room.join(), { members: ['alice1'], count: 1, truncated: false });
  assert.equal(room.joined, true);

  const joined = waitFor(room, 'MemberJoined', WAIT_MS);
  const counted = waitFor(room, 'MemberCountUpdated', WAIT_MS, (count) => count === 2);
  const bobsRoom = bob.createChannel('room1');
  assert.deepEqual(await bobsRoom.join(), { members: ['alice1', 'bob1'], count: 2, truncated: false });
  assert.deepEqual(await joined, ['bob1']);
  await counted;
  assert.equal(room.memberCount, 2);

  // A member's own messages do not come back to it: alice sees only bob's, bob only alice's.
  const alicesMessages = record(room, 'ChannelMessage');
  const toBob = waitFor(bobsRoom, 'ChannelMessage', WAIT_MS);
  await room.sendMessage({ text: 'hello room' });
  const [message, from] = await toBob;
  assert.deepEqual([message.text, from], ['hello room', 'alice1']);
  const toAlice = waitFor(room, 'ChannelMessage', WAIT_MS);
  await bobsRoom.sendMessage({ rawMessage: new Uint8Array([1, 2, 3]) });
  await toAlice;
  assert.deepEqual(alicesMessages.map(([m, sender]) => [m.rawMessage, sender]), [[new Uint8Array([1, 2, 3]), 'bob1']]);

  assert.deepEqual(await bobsRoom.getMembers(), { members: ['alice1', 'bob1'], count: 2, truncated: false });
  const left = waitFor(room, 'MemberLeft', WAIT_MS);
  await bobsRoom.leave();
  assert.deepEqual(await left, ['bob1']);
  assert.equal(bobsRoom.joined, false);
  assert.equal(room.memberCount, 1);
});

test('a session that has not joined: sendMessage and getMembers reject with not_party', async () => {
  const alice = await login('alice2');
  await alice.createChannel('room2').join();
  const bob = await login('bob2');
  const room = bob.createChannel('room2');
  const clientErrors = record(bob, 'error');
  const channelErrors = record(room, 'error');
  await assert.rejects(room.sendMessage({ text: 'let me in' }), { code: 'not_party', topic: 'rtm/c/room2/msg/bob2' });
  await assert.rejects(room.getMembers(), { code: 'not_party', topic: 'rtm/c/room2/members' });
  assert.deepEqual(clientErrors.map((e) => e.code), ['not_party', 'not_party']);
  assert.deepEqual(channelErrors.map((e) => e.code), ['not_party', 'not_party']);
});

test('channel attributes: written by a member, read by anyone, AttributesUpdated for members', async () => {
  const alice = await login('alice3');
  const bob = await login('bob3');
  const room = alice.createChannel('room3');
  const bobsRoom = bob.createChannel('room3');
  await room.join();
  await room.addOrUpdateChannelAttributes({ notice: 'stand-up at 10', topic: 'release' });

  const initial = waitFor(bobsRoom, 'AttributesUpdated', WAIT_MS);
  await bobsRoom.join();
  assert.deepEqual(Object.keys((await initial)[0]).sort(), ['notice', 'topic']);

  const updated = waitFor(bobsRoom, 'AttributesUpdated', WAIT_MS, (attrs) => !('topic' in attrs));
  await room.deleteChannelAttributesByKeys(['topic']);
  const [attributes] = await updated;
  assert.deepEqual(Object.keys(attributes), ['notice']);
  assert.equal(attributes.notice.value, 'stand-up at 10');
  assert.equal(attributes.notice.by, 'alice3');
  assert.deepEqual(Object.keys(await room.getChannelAttributes()), ['notice']);   // a member's, kept since the join

  const carol = await login('carol3');   // no member
  const carolsRoom = carol.createChannel('room3');
  assert.deepEqual(Object.keys(await carolsRoom.getChannelAttributes()), ['notice']);
  await assert.rejects(carolsRoom.addOrUpdateChannelAttributes({ notice: 'hacked' }), { code: 'not_party' });
});

test('after a lost connection the channel is joined again', async () => {
  const proxy = await startProxy(broker.port);
  const alice = await login('alice4', { url: proxy.url, mqttOptions: { reconnectPeriod: 200 } });
  const bob = await login('bob4');
  const room = alice.createChannel('room4');
  const bobsRoom = bob.createChannel('room4');
  await room.join();
  await bobsRoom.join();

  const left = waitFor(bobsRoom, 'MemberLeft', WAIT_MS);
  const back = waitFor(bobsRoom, 'MemberJoined', WAIT_MS);
  proxy.cut();
  assert.deepEqual(await left, ['alice4']);
  assert.deepEqual(await back, ['alice4']);
  assert.equal(room.joined, true);
  const toAlice = waitFor(room, 'ChannelMessage', WAIT_MS);
  await bobsRoom.sendMessage({ text: 'welcome back' });
  assert.equal((await toAlice)[0].text, 'welcome back');
});
