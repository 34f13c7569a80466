// What the browser tests need around the page: their settings, the served directory, a real
// mosquitto with the plugin serving it on a websockets listener (the JS client tests' broker,
// clients/js/test/broker.js, which also reads RTM_BROKER, RTM_PLUGIN and RTM_PRELOAD and checks
// the broker's log for sanitizer reports when it stops), and a plain static server.
import { access, cp, mkdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startBroker } from '../../clients/js/test/broker.js';

export { freePort };

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** The test's settings, from the environment (see the README for each variable). */
export function settings(env = process.env) {
  return {
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
 * Starts mosquitto with the plugin, serving `webDir` on its websockets listener (`wsPort`).
 * Fails, rather than testing nothing, when the broker was built without websockets.
 */
export async function startDemoBroker(webDir) {
  const broker = await startBroker({ websockets: true, httpDir: webDir });
  if (!broker.wsPort) {
    await broker.stop();
    throw new Error(`this broker cannot serve the demo: ${broker.wsUnavailable}`);
  }
  return broker;
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
