// The demo page in Firefox: Debian's firefox-esr, driven by puppeteer-core over WebDriver BiDi,
// against a real broker serving the page. demo.test.js goes through every feature in chromium;
// this checks that the same page works in the other engine users have: the loader (boot.js, no
// Content-Type from Mosquitto), both phones logging in over WebSockets, presence, a call rung and
// accepted, a chat message and a channel. Each step waits on the page's state with a timeout and
// leaves a screenshot, firefox-NN-name.png, in RTM_SCREENSHOT_DIR.
//
//   (cd tests/browser && npm ci) && node --test tests/browser/firefox.test.js
//
// Environment: as demo.test.js, and RTM_FIREFOX (default /usr/bin/firefox-esr). puppeteer-core
// rather than playwright-core: Playwright drives only its own patched Firefox builds.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, test } from 'node:test';
import puppeteer from 'puppeteer-core';
import { assembleWebDir, settings, startDemoBroker } from './harness.js';

const config = settings();
const firefox = process.env.RTM_FIREFOX || '/usr/bin/firefox-esr';
const STEP_TIMEOUT_MS = 15_000;

let workDir;
let broker;
let browser;
let page;
const problems = []; // page errors and console errors, checked after every step

before(async () => {
  workDir = await mkdtemp(path.join(os.tmpdir(), 'rtm-firefox-'));
  await mkdir(config.screenshotDir, { recursive: true });
  const webDir = config.webDir || (await assembleWebDir(path.join(workDir, 'web')));
  broker = await startDemoBroker(webDir);
  browser = await puppeteer.launch({ browser: 'firefox', executablePath: firefox, headless: true });
  page = await browser.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  await page.setViewport({ width: 1280, height: 800 });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
  });
});

after(async () => {
  await browser?.close().catch(() => {});
  // A sanitizer report in the broker's log, thrown once everything is cleaned up.
  const brokerProblem = await broker?.stop().catch((error) => error);
  if (workDir) await rm(workDir, { recursive: true, force: true });
  if (brokerProblem) throw brokerProblem;
});

afterEach((t) => {
  assert.deepEqual(problems.splice(0), [], `${t.name}: errors on the page`);
});

/** A CSS selector for [data-testid=id] with these data-* values, inside `scope` (a selector). */
function sel(scope, id, data = {}) {
  const attributes = Object.entries(data).map(([name, value]) => `[data-${name}="${value}"]`).join('');
  return `${scope} [data-testid="${id}"]${attributes}`.trim();
}

const alice = sel('', 'phone', { uid: 'alice' });
const bob = sel('', 'phone', { uid: 'bob' });

async function waitFor(selector) {
  await page.waitForSelector(selector, { visible: true });
}

async function shot(name) {
  await page.screenshot({ path: path.join(config.screenshotDir, `firefox-${name}.png`), fullPage: true });
}

test('the page loads through boot.js and both phones log in over WebSockets', async () => {
  await page.goto(`http://127.0.0.1:${broker.wsPort}/`);
  for (const phone of [alice, bob]) {
    await page.locator(sel(phone, 'login-switch')).click();
    await waitFor(sel(phone, 'conn-state', { state: 'CONNECTED' }));
  }
  await waitFor(sel(alice, 'contact', { uid: 'bob', presence: 'online' }));
  await waitFor(sel(bob, 'contact', { uid: 'alice', presence: 'online' }));
  await shot('01-login');
});

test('alice calls, bob accepts: both in call', async () => {
  await page.locator(sel(sel(alice, 'contact', { uid: 'bob' }), 'contact-call')).click();
  await waitFor(sel(alice, 'call-screen', { state: 'ringing' }));
  await waitFor(sel(bob, 'call-screen', { state: 'incoming' }));
  await shot('02-ringing');
  await page.locator(sel(bob, 'call-accept')).click();
  await waitFor(sel(alice, 'call-screen', { state: 'in-call' }));
  await waitFor(sel(bob, 'call-screen', { state: 'in-call' }));
  await shot('03-in-call');
});

test('both hang up; a chat message from alice shows on bob\'s phone', async () => {
  for (const phone of [alice, bob]) {
    await page.locator(sel(phone, 'call-hangup')).click();
    await waitFor(sel(phone, 'call-screen', { state: 'ended' }));
    await page.locator(sel(phone, 'call-close')).click();
    await page.waitForSelector(sel(phone, 'call-screen'), { hidden: true });
  }
  await page.locator(sel(sel(alice, 'contact', { uid: 'bob' }), 'contact-chat')).click();
  await page.locator(sel(alice, 'chat-input')).fill('Lunch at noon?');
  await page.locator(sel(alice, 'chat-send')).click();
  await waitFor(sel(alice, 'chat-message', { dir: 'out', delivery: 'delivered' }));
  await page.locator(sel(bob, 'tab-chat')).click();
  await page.locator(sel(bob, 'chat-message', { dir: 'in', peer: 'alice' }))
    .filter((message) => message.textContent.includes('Lunch at noon?')).wait();
  await shot('04-chat');
});

test('both join the lobby: two members, and a channel message', async () => {
  for (const phone of [alice, bob]) {
    await page.locator(sel(phone, 'tab-channel')).click();
    await page.locator(sel(phone, 'channel-join')).click();
  }
  for (const phone of [alice, bob]) {
    await waitFor(sel(phone, 'channel-count', { count: 2 }));
    assert.equal((await page.$$(sel(phone, 'channel-member'))).length, 2);
  }
  await page.locator(sel(alice, 'channel-msg-input')).fill('Hello, lobby');
  await page.locator(sel(alice, 'channel-send')).click();
  await page.locator(sel(bob, 'channel-message', { from: 'alice', dir: 'in' }))
    .filter((message) => message.textContent.includes('Hello, lobby')).wait();
  await shot('05-channel');
});
