// Test helpers: waiting on events (the only way the tests wait), a broker per test file with
// clients that log out before it stops, and a TCP proxy that cuts connections as a network would.

import { createConnection, createServer } from 'node:net';
import { after } from 'node:test';
import { createClient } from '../src/rtm.js';
import { startBroker } from './broker.js';

/**
 * Resolves with the arguments (an array) of the first `event` of `emitter` that `match`
 * accepts; rejects after `ms`. Works with RTM objects, mqtt.js clients and Node emitters.
 */
export function waitFor(emitter, event, ms, match = () => true) {
  return new Promise((resolve, reject) => {
    const onEvent = (...args) => {
      if (!match(...args)) return;
      clearTimeout(timer);
      emitter.off(event, onEvent);
      resolve(args);
    };
    const timer = setTimeout(() => {
      emitter.off(event, onEvent);
      reject(new Error(`no '${event}' event within ${ms} ms`));
    }, ms);
    emitter.on(event, onEvent);
  });
}

/** Every `event` of `emitter` from now on, in an array: its argument, or all of them when several. */
export function record(emitter, event) {
  const seen = [];
  emitter.on(event, (...args) => seen.push(args.length === 1 ? args[0] : args));
  return seen;
}

const tearDowns = [];

/**
 * Runs `step` when the test file ends. All steps run in the order they came, each whatever the
 * others did (one after() hook that throws would keep Node's later ones from running, and a
 * broker or proxy left running keeps the file from ending); then the first failure is thrown.
 */
function atTearDown(step) {
  if (!tearDowns.length) {
    after(async () => {
      const failures = [];
      for (const tearDown of tearDowns) await tearDown().catch((error) => failures.push(error));
      if (failures.length) throw failures[0];
    });
  }
  tearDowns.push(step);
}

/**
 * Starts a broker for this test file (`config` as for startBroker) and returns it with
 * `client(options)`, which makes a client of it, and `login(uid, options)`, which also logs it
 * in (`token` goes to login, the rest to createClient). When the file ends, every such client
 * logs out, then the broker stops (and fails the file if its log reports a memory error).
 */
export async function setUp(config) {
  const broker = await startBroker(config);
  const made = [];
  atTearDown(async () => {
    await Promise.allSettled(made.map((client) => client.logout()));
    await broker.stop();
  });
  const client = (options = {}) => {
    const rtm = createClient({ url: broker.url, requestTimeout: 3000, ...options });
    made.push(rtm);
    return rtm;
  };
  const login = async (uid, { token, ...options } = {}) => {
    const loggedIn = client(options);
    await loggedIn.login({ uid, token });
    return loggedIn;
  };
  return { broker, client, login };
}

/**
 * A TCP proxy on 127.0.0.1 to `port`: `cut()` drops every connection through it, as a network
 * failure would, without the client or the broker closing anything first.
 */
export async function startProxy(port) {
  const pairs = new Set();
  const server = createServer((inbound) => {
    const outbound = createConnection({ host: '127.0.0.1', port });
    const pair = [inbound, outbound];
    pairs.add(pair);
    inbound.pipe(outbound).pipe(inbound);
    for (const socket of pair) {
      socket.on('error', () => {});
      socket.on('close', () => {
        pairs.delete(pair);
        pair.forEach((s) => s.destroy());
      });
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  atTearDown(() => new Promise((resolve) => {
    server.close(resolve);
    for (const pair of pairs) pair.forEach((s) => s.destroy());
  }));
  return {
    url: `mqtt://127.0.0.1:${server.address().port}`,
    cut() {
      for (const pair of pairs) pair.forEach((s) => s.destroy());
    },
  };
}
