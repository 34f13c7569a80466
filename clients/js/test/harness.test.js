// The test broker's log check (broker.js, also used by the browser tests): which sanitizer
// reports fail a test, since a check that never fires would let a leaking plugin pass.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { problemIn } from './broker.js';

const pluginLeak = [
  '==1==ERROR: LeakSanitizer: detected memory leaks',
  '    #1 0x7f in rtm_pool_alloc (/repo/build-asan/mosquitto_rtm.so+0x1234)',
  'SUMMARY: AddressSanitizer: 16 byte(s) leaked in 1 allocation(s).',
].join('\n');
// 2.0.11's own leak with an http_dir, followed by the log of the broker's next run.
const brokerLeakThenRestart = [
  '==2==ERROR: LeakSanitizer: detected memory leaks',
  '    #2 0x55 in mosq_websockets_init (/usr/sbin/mosquitto+0x4266e)',
  'SUMMARY: AddressSanitizer: 4113 byte(s) leaked in 2 allocation(s).',
  '1796682484: Loading plugin: /repo/build-asan/mosquitto_rtm.so',
].join('\n');

test('a leak through the plugin counts, with or without a websockets listener', () => {
  assert.equal(problemIn(pluginLeak, true), 'LeakSanitizer');
  assert.equal(problemIn(pluginLeak, false), 'LeakSanitizer');
});

test("the broker's own websockets leak counts only without a websockets listener", () => {
  assert.equal(problemIn(brokerLeakThenRestart, true), undefined);
  assert.equal(problemIn(brokerLeakThenRestart, false), 'LeakSanitizer');
  assert.equal(problemIn(`${brokerLeakThenRestart}\n${pluginLeak}`, true), 'LeakSanitizer');
});

test('memory errors and undefined behaviour always count; a clean log does not', () => {
  assert.equal(problemIn('==3==ERROR: AddressSanitizer: heap-use-after-free', true), 'ERROR: AddressSanitizer');
  assert.equal(problemIn('plugin.c:10:5: runtime error: signed integer overflow', true), 'runtime error:');
  assert.equal(problemIn('1796682484: mosquitto version 2.0.11 terminating', true), undefined);
});
