// A real mosquitto broker with the mosquitto_rtm plugin for the tests, one per test file.
//
// Environment (CTest sets these; the defaults suit a run by hand from clients/js):
//   RTM_BROKER   the mosquitto binary (default /usr/sbin/mosquitto)
//   RTM_PLUGIN   mosquitto_rtm.so (default ../../build/mosquitto_rtm.so from clients/js)
//   RTM_PRELOAD  passed to the broker as LD_PRELOAD (the ASan build needs its runtime first)

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { constants as osConstants, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const packageDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const brokerBinary = process.env.RTM_BROKER || '/usr/sbin/mosquitto';
const pluginPath = path.resolve(packageDir, process.env.RTM_PLUGIN || '../../build/mosquitto_rtm.so');

const START_TIMEOUT_MS = 10000;
const STOP_TIMEOUT_MS = 5000;
const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'];
// What mosquitto 2.0 logs once every listener is open, and what it logs when it was built
// without libwebsockets and reads a `protocol websockets` line.
const RUNNING_LINE = /mosquitto version (\S+) running/;
const NO_WEBSOCKETS_LINE = /websockets support not available/i;
// What a broker's log must not say once it stopped (as tests/integration/harness_broker.c checks):
// the sanitizers' reports with RTM_PRELOAD, and the plugin's own check of its record pool.
const LOG_ERRORS = ['ERROR: AddressSanitizer', 'runtime error:', 'records were never freed'];

/**
 * What the log of a stopped broker reports, or undefined: a memory error, or a leak. Mosquitto
 * 2.0.11 leaks at exit whenever it has a websockets listener, used or not (16 bytes, and the
 * realpath of an http_dir), so with one (`ownLeaksOnly`) only leaks through the plugin's frames
 * count. The log may hold several runs of the broker (a restart), so each leak report is read
 * on its own, up to its SUMMARY line.
 */
export function problemIn(log, ownLeaksOnly) {
  const error = LOG_ERRORS.find((text) => log.includes(text));
  if (error) return error;
  const leakReports = log.split('ERROR: LeakSanitizer').slice(1)
    .map((report) => report.split('SUMMARY:')[0]);
  const counted = leakReports.filter((report) => !ownLeaksOnly || /mosquitto_rtm|<unknown module>/.test(report));
  return counted.length > 0 ? 'LeakSanitizer' : undefined;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function configText({ port, wsPort, httpDir, options }) {
  const lines = [
    `listener ${port} 127.0.0.1`,
    ...(wsPort ? [`listener ${wsPort} 127.0.0.1`, 'protocol websockets'] : []),
    ...(wsPort && httpDir ? [`http_dir ${httpDir}`] : []),
    'allow_anonymous true',
    ...(process.getuid?.() === 0 ? ['user root'] : []),
    'log_dest stderr',
    'log_type all',
    `plugin ${pluginPath}`,
    'plugin_opt_other_topics allow',
    ...Object.entries(options).map(([name, value]) => `plugin_opt_${name} ${value}`),
  ];
  return lines.join('\n') + '\n';
}

/**
 * Runs mosquitto with `configFile` until its log says it is running. Resolves with the child
 * process and a function returning everything it logged; rejects with that log when it exits
 * or stays silent for START_TIMEOUT_MS.
 */
function runMosquitto(configFile) {
  const env = { ...process.env };
  if (process.env.RTM_PRELOAD) env.LD_PRELOAD = process.env.RTM_PRELOAD;
  const child = spawn(brokerBinary, ['-c', configFile], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const readLog = () => log;
  return new Promise((resolve, reject) => {
    const fail = (why) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      const error = new Error(`mosquitto did not start (${why}):\n${log}`);
      error.log = log;
      reject(error);
    };
    const onOutput = (chunk) => {
      log += chunk;
      if (RUNNING_LINE.test(log)) {
        clearTimeout(timer);
        child.off('exit', onExit);
        resolve({ child, readLog });
      }
    };
    const onExit = (code, signal) => fail(`exited with ${signal || code}`);
    const timer = setTimeout(() => fail(`no "running" line within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
    child.stdout.setEncoding('utf8').on('data', onOutput);
    child.stderr.setEncoding('utf8').on('data', onOutput);
    child.once('error', (error) => fail(error.message));
    child.once('exit', onExit);
  });
}

function stopProcess(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * Starts a broker with the plugin on free loopback ports. `options` are plugin options without
 * their `plugin_opt_` prefix; `files` are written into the broker's temp dir first, and
 * `{dir}` in an option value stands for that dir. With `websockets` a second listener speaks
 * MQTT over WebSockets; a broker built without them is then started without it, and
 * `wsUrl` is null with the reason in `wsUnavailable`; `httpDir` is served on that listener (the
 * browser tests' demo page). `halt()` and `resume()` stop and restart the same broker on the
 * same ports; `log()` holds every run's lines.
 *
 * @returns {Promise<{url: string, wsUrl: string|null, wsPort: number|null,
 *   wsUnavailable: string|null, port: number, version: string, log: () => string,
 *   halt: () => Promise<void>, resume: () => Promise<void>, stop: () => Promise<void>}>}
 */
export async function startBroker({ options = {}, files = {}, websockets = false, httpDir } = {}) {
  if (!existsSync(pluginPath)) {
    throw new Error(`the plugin ${pluginPath} does not exist: build it (cmake --build build ` +
      '--target mosquitto_rtm) or point RTM_PLUGIN at it');
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'rtm-js-test-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  const resolved = Object.fromEntries(
    Object.entries(options).map(([name, value]) => [name, String(value).replaceAll('{dir}', dir)]));
  const configFile = path.join(dir, 'mosquitto.conf');
  const port = await freePort();
  const start = async (wsPort) => {
    writeFileSync(configFile, configText({ port, wsPort, httpDir, options: resolved }));
    return runMosquitto(configFile);
  };

  let wsPort = websockets ? await freePort() : null;
  let wsUnavailable = null;
  let broker;
  try {
    broker = await start(wsPort).catch((error) => {
      if (!wsPort || !NO_WEBSOCKETS_LINE.test(error.log ?? '')) throw error;
      wsUnavailable = error.log.split('\n').find((line) => NO_WEBSOCKETS_LINE.test(line)).replace(/^\d+: /, '');
      wsPort = null;
      return start(null);
    });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }

  // A test process that ends without running its after() hooks (it failed, or was told to stop)
  // must not leave a broker or its files behind.
  const cleanUp = () => {
    broker.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  const stopped = (signal) => {
    cleanUp();
    process.exit(128 + osConstants.signals[signal]);
  };
  process.once('exit', cleanUp);
  for (const signal of STOP_SIGNALS) process.once(signal, stopped);
  // Nor keep it from ending: then the exit handler stops the broker.
  const detach = () => {
    for (const handle of [broker.child, broker.child.stdout, broker.child.stderr]) handle.unref();
  };
  detach();
  let earlierRuns = '';
  const log = () => earlierRuns + broker.readLog();
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    wsPort,
    wsUrl: wsPort ? `ws://127.0.0.1:${wsPort}` : null,
    wsUnavailable,
    version: broker.readLog().match(RUNNING_LINE)[1],
    log,
    /** Stops the broker's process, keeping its ports, files and log for `resume()`. */
    async halt() {
      await stopProcess(broker.child);
    },
    /** Starts the broker again after `halt()`, with the same configuration. */
    async resume() {
      earlierRuns = log();
      broker = await runMosquitto(configFile);
      detach();
    },
    /** Stops the broker; rejects when its log reports a memory error or a leak. */
    async stop() {
      process.off('exit', cleanUp);
      for (const signal of STOP_SIGNALS) process.off(signal, stopped);
      await stopProcess(broker.child);
      rmSync(dir, { recursive: true, force: true });
      const problem = problemIn(log(), Boolean(wsPort));
      if (problem) throw new Error(`the broker's log reports "${problem}":\n${log()}`);
    },
  };
}
