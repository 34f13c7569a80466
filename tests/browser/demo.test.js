// The demo page (clients/web) in a real browser against a real broker: Debian's chromium, driven
// by playwright-core, and mosquitto with the plugin serving the page on its websockets listener.
// Two pages, alice's and bob's, go through calls, presence, chat, a channel and a refusal; then
// the page is checked against an unreachable broker, behind a static server with MIME types,
// side by side with both phones, and across a broker restart. Every step waits on the page's
// state (Playwright's auto-waiting locators, with timeouts) and leaves a full-page screenshot in
// RTM_SCREENSHOT_DIR. Any page error or unexpected console error fails the step.
//
//   (cd tests/browser && npm ci) && node --test tests/browser/
//
// Environment: RTM_WEB_DIR (the assembled page, e.g. build/web; unset: assembled here from
// clients/web, clients/js/src/rtm.js and mqtt's bundle in clients/js/node_modules), RTM_BROKER,
// RTM_PLUGIN, RTM_PRELOAD (as in clients/js/test/broker.js), RTM_CHROMIUM, RTM_SCREENSHOT_DIR
// (defaults in harness.js).
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { chromium } from 'playwright-core';
import { assembleWebDir, freePort, settings, startDemoBroker, startStaticServer } from './harness.js';

const config = settings();
const STEP_TIMEOUT_MS = 10_000;
// What chromium logs when a WebSocket finds nobody listening: expected where the test makes it so.
const WEBSOCKET_REFUSED = /WebSocket connection to '.*' failed/;

let workDir;
let broker;
let browser;
let staticServer;
const problems = [];   // page errors and unexpected console errors, checked after every step
const openPages = new Set();

/** A test whose failure also prints what the pages' event logs and the broker's log said. */
function step(name, body) {
  test(name, async () => {
    try {
      await body();
    } catch (error) {
      console.error(await diagnostics());
      throw error;
    }
  });
}

async function diagnostics() {
  const logs = await Promise.all([...openPages].map((page) => page.$$eval('[data-testid="phone"]', (phones) =>
    phones.map((phone) => `event log of ${phone.dataset.uid} (newest first):\n${
      [...phone.querySelectorAll('[data-testid="log-entry"]')].map((entry) => `  ${entry.innerText.replace(/\s+/g, ' ')}`).join('\n')}`)
      .join('\n')).catch(() => '')));
  const brokerLog = (await broker.log()).split('\n').slice(-60).join('\n');
  return `${logs.join('\n')}\nlast lines of the broker's log:\n${brokerLog}`;
}

/** A locator for [data-testid=id] with the given data-* attribute values, inside `scope`. */
function byTestId(scope, id, data = {}) {
  const attributes = Object.entries(data).map(([name, value]) => `[data-${name}="${value}"]`).join('');
  return scope.locator(`[data-testid="${id}"]${attributes}`);
}

/** A new page in its own context, its errors collected; `allow` lists console errors it may log. */
async function newPage(name, { viewport = { width: 560, height: 860 }, allow = [] } = {}) {
  const context = await browser.newContext({ viewport });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  const page = await context.newPage();
  openPages.add(page);
  page.on('close', () => openPages.delete(page));
  page.on('pageerror', (error) => problems.push(`${name}: page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && !allow.some((pattern) => pattern.test(message.text()))) {
      problems.push(`${name}: console error: ${message.text()}`);
    }
  });
  return page;
}

async function openPhone(uid) {
  const page = await newPage(uid);
  await page.goto(`http://127.0.0.1:${broker.wsPort}/?uid=${uid}`);
  await byTestId(page, 'phone', { uid }).waitFor();
  return page;
}

async function screenshot(page, name) {
  // animations 'disabled': a screen that is still fading in is shown as it ends up.
  await page.screenshot({ path: path.join(config.screenshotDir, `${name}.png`), fullPage: true, animations: 'disabled' });
}

/** Each page's screenshot for one step: NN-name-alice.png and NN-name-bob.png. */
async function screenshots(name, pages) {
  await Promise.all(Object.entries(pages).map(([uid, page]) => screenshot(page, `${name}-${uid}`)));
}

async function logIn(phone) {
  await byTestId(phone, 'login-switch').check();
  await byTestId(phone, 'conn-state', { state: 'CONNECTED' }).waitFor();
}

async function addContact(phone, uid) {
  await byTestId(phone, 'tab-contacts').click();
  await byTestId(phone, 'contact-input').fill(uid);
  await byTestId(phone, 'contact-add').click();
}

function contact(phone, uid, data = {}) {
  return byTestId(phone, 'contact', { uid, ...data });
}

async function call(phone, uid) {
  await byTestId(contact(phone, uid), 'contact-call').click();
}

function callScreen(phone, data) {
  return byTestId(phone, 'call-screen', data);
}

/** Waits for an ended call with this outcome and reason, saying `statusText` (a RegExp). */
async function expectEnded(phone, outcome, reason, statusText) {
  const screen = callScreen(phone, { state: 'ended', outcome, reason });
  await byTestId(screen, 'call-status').filter({ hasText: statusText }).waitFor();
}

async function closeCall(phone) {
  await byTestId(phone, 'call-close').click();
  await byTestId(phone, 'call-screen').waitFor({ state: 'hidden' });
}

/** Waits until `locator` matches exactly `count` elements. */
async function expectCount(locator, count) {
  await locator.nth(count - 1).waitFor();
  assert.equal(await locator.count(), count);
}

/** Empties the screenshot directory of an earlier run's shots, so that none is taken for this run's. */
async function clearScreenshots() {
  await mkdir(config.screenshotDir, { recursive: true });
  const earlier = (await readdir(config.screenshotDir)).filter((name) => /^\d\d-.*\.png$/.test(name));
  await Promise.all(earlier.map((name) => rm(path.join(config.screenshotDir, name))));
}

before(async () => {
  workDir = await mkdtemp(path.join(os.tmpdir(), 'rtm-browser-'));
  await clearScreenshots();
  const webDir = config.webDir || (await assembleWebDir(path.join(workDir, 'web')));
  broker = await startDemoBroker(webDir);
  browser = await chromium.launch({ executablePath: config.chromium, args: ['--no-sandbox'] });
  staticServer = await startStaticServer(webDir);
});

after(async () => {
  // Each step is guarded on its own so that one failure does not leave the rest running.
  await browser?.close().catch(() => {});
  // A sanitizer report in the broker's log, thrown once everything is cleaned up.
  const brokerProblem = await broker?.stop().catch((error) => error);
  await new Promise((resolve) => (staticServer ? staticServer.close(resolve) : resolve()));
  if (workDir) await rm(workDir, { recursive: true, force: true });
  if (brokerProblem) throw brokerProblem;
});

afterEach((t) => {
  assert.deepEqual(problems.splice(0), [], `${t.name}: errors on the page`);
});

describe('two pages: alice and bob, one phone each', () => {
  let alice;
  let bob;
  const both = () => ({ alice, bob });

  step('both log in', async () => {
    [alice, bob] = await Promise.all([openPhone('alice'), openPhone('bob')]);
    await Promise.all([logIn(alice), logIn(bob)]);
    await screenshots('01-login', both());
  });

  step('presence and status: each sees the other online, and bob busy', async () => {
    await addContact(alice, 'bob');
    await addContact(bob, 'alice');
    await contact(alice, 'bob', { presence: 'online' }).waitFor();
    await contact(bob, 'alice', { presence: 'online' }).waitFor();
    await byTestId(bob, 'status-select').selectOption('busy');
    await contact(alice, 'bob', { status: 'busy' }).waitFor();
    await screenshots('02-presence', both());
  });

  step('alice calls, bob refuses: alice sees the refusal and its response', async () => {
    await call(alice, 'bob');
    const incoming = callScreen(bob, { state: 'incoming' });
    await incoming.waitFor();
    assert.equal(await byTestId(incoming, 'call-peer').innerText(), 'alice');
    assert.match(await byTestId(incoming, 'call-details').innerText(), /Rings until/);
    await callScreen(alice, { state: 'ringing' }).waitFor();
    await screenshots('03-ringing', both());
    await byTestId(bob, 'call-refuse').click();
    await expectEnded(alice, 'declined', 'refused', /bob declined — “Can't talk now”/);
    await expectEnded(bob, 'declined', 'refused', /You declined/);
    await screenshots('04-refused', both());
    await Promise.all([closeCall(alice), closeCall(bob)]);
  });

  step('alice calls, bob accepts: both in call with a running timer', async () => {
    await call(alice, 'bob');
    await byTestId(bob, 'call-accept').click();
    for (const phone of [alice, bob]) {
      const screen = callScreen(phone, { state: 'in-call' });
      await screen.waitFor();
      assert.match(await byTestId(screen, 'call-timer').innerText(), /^\d+:\d\d$/);
    }
    await screenshots('05-in-call', both());
    for (const phone of [alice, bob]) {
      await byTestId(phone, 'call-hangup').click();
      await expectEnded(phone, 'answered', 'hung_up', /Call ended after/);
      await closeCall(phone);
    }
  });

  step('alice calls and cancels: bob sees a missed call', async () => {
    await call(alice, 'bob');
    await callScreen(bob, { state: 'incoming' }).waitFor();
    await byTestId(alice, 'call-cancel').click();
    await expectEnded(alice, 'canceled', 'canceled', /You canceled/);
    await expectEnded(bob, 'missed', 'canceled', /alice canceled/);
    await Promise.all([closeCall(alice), closeCall(bob)]);
    await byTestId(bob, 'tab-recents').click();
    await byTestId(bob, 'history-entry', { kind: 'missed', peer: 'alice' }).waitFor();
    await screenshots('06-missed', both());
  });

  step('a chat message from alice shows on bob\'s page', async () => {
    await byTestId(contact(alice, 'bob'), 'contact-chat').click();
    await byTestId(alice, 'chat-input').fill('Lunch at noon?');
    await byTestId(alice, 'chat-send').click();
    await byTestId(alice, 'chat-message', { dir: 'out', delivery: 'delivered' }).waitFor();
    await byTestId(bob, 'badge-chat').waitFor();
    await byTestId(bob, 'tab-chat').click();
    await byTestId(bob, 'chat-message', { dir: 'in', peer: 'alice' }).filter({ hasText: 'Lunch at noon?' }).waitFor();
    await screenshots('07-chat', both());
  });

  step('both join the lobby: two members, and a channel message', async () => {
    for (const phone of [alice, bob]) {
      await byTestId(phone, 'tab-channel').click();
      await byTestId(phone, 'channel-join').click();
    }
    for (const phone of [alice, bob]) {
      await byTestId(phone, 'channel-count', { count: 2 }).waitFor();
      await expectCount(byTestId(phone, 'channel-member'), 2);
    }
    await byTestId(alice, 'channel-msg-input').fill('Hello, lobby');
    await byTestId(alice, 'channel-send').click();
    await byTestId(bob, 'channel-message', { from: 'alice', dir: 'in' }).filter({ hasText: 'Hello, lobby' }).waitFor();
    await byTestId(alice, 'channel-message', { from: 'alice', dir: 'out' }).waitFor();
    await screenshots('08-channel', both());
  });

  step('alice calls herself: the broker refuses with self_call, shown on the call and in the log', async () => {
    await byTestId(alice, 'tab-contacts').click();
    await byTestId(alice, 'contact-input').fill('alice');
    await byTestId(alice, 'dial-call').click();
    await expectEnded(alice, 'failed', 'self_call', /^Call failed: self_call: .+/);
    await screenshot(alice, '09-error-call-alice');
    await closeCall(alice);
    await byTestId(alice, 'badge-log').waitFor();
    await byTestId(alice, 'tab-log').click();
    await byTestId(alice, 'log-entry', { kind: 'error' }).filter({ hasText: 'self_call' }).first().waitFor();
    await screenshot(alice, '10-error-log-alice');
  });

  step('bob logs out: alice sees him offline', async () => {
    await byTestId(bob, 'login-switch').uncheck();
    await byTestId(bob, 'conn-state', { state: 'DISCONNECTED' }).waitFor();
    await byTestId(alice, 'tab-contacts').click();
    await contact(alice, 'bob', { presence: 'offline' }).waitFor();
    await screenshots('11-logout', both());
  });

  after(async () => {
    await Promise.all([alice, bob].filter(Boolean).map((page) => page.context().close()));
  });
});

step('a broker nobody listens for: the page says it cannot reach it', async () => {
  const deadPort = await freePort();
  const page = await newPage('unreachable', { allow: [WEBSOCKET_REFUSED] });
  await page.goto(`http://127.0.0.1:${broker.wsPort}/?uid=carol&broker=ws://127.0.0.1:${deadPort}`);
  const banner = byTestId(page, 'banner', { kind: 'unreachable' });
  await banner.waitFor();
  assert.match(await banner.innerText(), new RegExp(`Cannot reach the broker at ws://127\\.0\\.0\\.1:${deadPort}/ — is bash tools/run-broker\\.sh running\\?`));
  await screenshot(page, '12-unreachable');
  await page.context().close();
});

step('a module that cannot be fetched: the page says the demo could not load', async () => {
  const page = await newPage('boot-failure', { allow: [/status of 404/, /loading failed/] });
  await page.route('**/rtm.js', (route) => route.fulfill({ status: 404, body: 'gone' }));
  await page.goto(`http://127.0.0.1:${broker.wsPort}/`);
  const banner = byTestId(page, 'boot-error');
  await banner.filter({ hasText: 'The demo could not load: rtm.js: HTTP 404' }).waitFor();
  await screenshot(page, '13-boot-failure');
  await page.context().close();
});

step('behind a static server with MIME types the page loads and logs in too', async () => {
  const page = await newPage('static');
  await page.goto(`http://127.0.0.1:${staticServer.address().port}/?uid=carol&broker=ws://127.0.0.1:${broker.wsPort}`);
  await logIn(byTestId(page, 'phone', { uid: 'carol' }));
  await screenshot(page, '14-static-server');
  await page.context().close();
});

describe('side by side: the default page with both phones', () => {
  let page;
  let alice;
  let bob;

  step('both phones log in and ring', async () => {
    page = await newPage('side-by-side', { viewport: { width: 1280, height: 800 }, allow: [WEBSOCKET_REFUSED] });
    await page.goto(`http://127.0.0.1:${broker.wsPort}/`);
    [alice, bob] = [byTestId(page, 'phone', { uid: 'alice' }), byTestId(page, 'phone', { uid: 'bob' })];
    // One after the other: one page has one mouse, and two clicks at once may both land on one switch.
    await logIn(alice);
    await logIn(bob);
    await contact(alice, 'bob', { presence: 'online' }).waitFor();
    await contact(bob, 'alice', { presence: 'online' }).waitFor();
    await byTestId(bob, 'status-select').selectOption('away');
    await contact(alice, 'bob', { status: 'away' }).waitFor();
    await call(alice, 'bob');
    await callScreen(alice, { state: 'ringing' }).waitFor();
    await callScreen(bob, { state: 'incoming' }).waitFor();
    await screenshot(page, '15-side-by-side-ringing');
  });

  step('bob accepts: both in call', async () => {
    await byTestId(bob, 'call-accept').click();
    await callScreen(alice, { state: 'in-call' }).waitFor();
    await callScreen(bob, { state: 'in-call' }).waitFor();
    await screenshot(page, '16-side-by-side-in-call');
  });

  step('the broker restarts: the page says the connection dropped and came back', async () => {
    await broker.halt();
    await byTestId(page, 'banner', { kind: 'lost' }).waitFor();
    await screenshot(page, '17-connection-lost');
    await broker.resume();
    await byTestId(page, 'banner', { kind: 'restored' }).waitFor({ timeout: 15_000 });
    await byTestId(alice, 'conn-state', { state: 'CONNECTED' }).waitFor();
    await byTestId(bob, 'conn-state', { state: 'CONNECTED' }).waitFor();
    await screenshot(page, '18-reconnected');
  });
});
