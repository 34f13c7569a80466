// What the browser test needs around the page: its settings, the served directory, a real
// mosquitto with the plugin and a websockets listener, and a plain static server.
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { access, cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
// The JS client's test broker knows what a sanitizer's or the plugin's own report looks like.
import { freePort, problemIn } from '../../clients/js/test/broker.js';

export { freePort };

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

const BROKER_START_MS = 10_000;
const BROKER_STOP_MS = 5_000;

/** Whether something accepts a TCP connection on 127.0.0.1:port right now. */
function accepts(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** The test's settings, from the environment (see the README for each variable). */
export function settings(env = process.env) {
  return {
    broker: env.RTM_BROKER || '/usr/sbin/mosquitto',
    plugin: env.RTM_PLUGIN || path.join(repoRoot, 'build', 'mosquitto_rtm.so'),
    preload: env.RTM_PRELOAD || '',
    chromium: env.RTM_CHROMIUM || '/usr/bin/chromium',
    screenshotDir: env.RTM_SCREENSHOT_DIR || path.join(repoRoot, 'build', 'screenshots'),
    webDir: env.RTM_WEB_DIR || '',
  };
}

async function mustExist(file, hint) {
  try {
    await access(file);
  } catch {
    throw new Error(`${file} is missing: ${hint}`);
  }
}

/**
 * Assembles the served directory from the repository as the build does: the demo's files, the
 * client as rtm.js and mqtt's browser bundle as vendor/mqtt.esm.js.
 */
export async function assembleWebDir(into) {
  const web = path.join(repoRoot, 'clients', 'web');
  const client = path.join(repoRoot, 'clients', 'js', 'src', 'rtm.js');
  const mqtt = path.join(repoRoot, 'clients', 'js', 'node_modules', 'mqtt', 'dist', 'mqtt.esm.js');
  await mustExist(path.join(web, 'index.html'), 'the demo page belongs in clients/web/');
  await mustExist(client, 'the JS client belongs in clients/js/src/rtm.js');
  await mustExist(mqtt, "run 'npm ci' in clients/js first");
  await cp(web, into, { recursive: true });
  await cp(client, path.join(into, 'rtm.js'));
  await mkdir(path.join(into, 'vendor'), { recursive: true });
  await cp(mqtt, path.join(into, 'vendor', 'mqtt.esm.js'));
  return into;
}

/**
 * A real mosquitto with the plugin: a plain listener (the plugin's registry loader uses it) and a
 * websockets listener serving `webDir`, logging everything to mosquitto.log in `workDir`.
 */
export class Broker {
  constructor({ settings: config, workDir, webDir }) {
    this.config = config;
    this.workDir = workDir;
    this.webDir = webDir;
    this.child = null;
    this.logFile = path.join(workDir, 'mosquitto.log');
  }

  async start() {
    if (!this.wsPort) {
      this.mqttPort = await freePort();
      this.wsPort = await freePort();
      await writeFile(this.confFile(), this.conf());
    }
    const env = { ...process.env };
    if (this.config.preload) env.LD_PRELOAD = this.config.preload;
    // What mosquitto says before its log file is open (a bad configuration) goes to stderr.
    this.child = spawn(this.config.broker, ['-c', this.confFile()], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    this.child.stderr.pipe(createWriteStream(this.logFile, { flags: 'a' }));
    try {
      await this.listening();
    } catch (error) {
      error.message += `; its log:\n${await this.log()}`;
      throw error;
    }
  }

  confFile() {
    return path.join(this.workDir, 'mosquitto.conf');
  }

  conf() {
    const lines = [
      `listener ${this.mqttPort} 127.0.0.1`,
      `listener ${this.wsPort} 127.0.0.1`,
      'protocol websockets',
      `http_dir ${this.webDir}`,
      'allow_anonymous true',
      'per_listener_settings false',
      'persistence false',
      `log_dest file ${this.logFile}`,
      'log_type all',
      'connection_messages true',
      `plugin ${this.config.plugin}`,
      'plugin_opt_other_topics allow',
    ];
    // As root with no `user` line, mosquitto would switch to the mosquitto user, who may not
    // be able to read a plugin built in someone's checkout.
    if (process.getuid && process.getuid() === 0) lines.unshift('user root');
    return `${lines.join('\n')}\n`;
  }

  /** Resolves once the websockets port accepts connections; rejects if mosquitto exits first. */
  async listening() {
    const deadline = Date.now() + BROKER_START_MS;
    const exited = new Promise((_, reject) => this.child.once('exit', (code, signal) =>
      reject(new Error(`mosquitto exited (${code ?? signal}) while starting`))));
    while (Date.now() < deadline) {
      if (await Promise.race([accepts(this.wsPort), exited])) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`mosquitto did not open port ${this.wsPort} within ${BROKER_START_MS} ms`);
  }

  /** Stops mosquitto (SIGTERM, then SIGKILL if it lingers). Safe to call when it is not running. */
  async stop() {
    const { child } = this;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), BROKER_STOP_MS);
    await exited;
    clearTimeout(timer);
  }

  /**
   * Throws if the log of the broker, once stopped, reports a memory error or a leak through the
   * plugin (the ASan build runs it with RTM_PRELOAD), as the integration tests check.
   */
  async checkLog() {
    const log = await this.log();
    const problem = problemIn(log, true);
    if (problem) throw new Error(`the broker's log reports "${problem}":\n${log}`);
  }

  /** Kills mosquitto at once, synchronously: for a process that is exiting. */
  killNow() {
    this.child?.kill('SIGKILL');
  }

  async log() {
    return readFile(this.logFile, 'utf8').catch(() => '');
  }
}

const MIME_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

/** A plain static server for `root`, with correct Content-Type headers (unlike mosquitto's). */
export function startStaticServer(root) {
  const server = http.createServer(async (request, response) => {
    const { pathname } = new URL(request.url, 'http://localhost');
    const file = path.join(root, pathname === '/' ? 'index.html' : decodeURIComponent(pathname));
    if (!file.startsWith(root + path.sep)) {
      response.writeHead(403).end();
      return;
    }
    try {
      const body = await readFile(file);
      response.writeHead(200, { 'Content-Type': MIME_TYPES[path.extname(file)] || 'application/octet-stream' }).end(body);
    } catch {
      response.writeHead(404).end();
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}
