// Loads the demo's ES modules. A CLASSIC script on purpose: Mosquitto 2.0's http_dir server
// sends no Content-Type header, and Chromium refuses to run <script type="module" src=...>
// without a JavaScript MIME type, while classic scripts run. So this script fetches the text of
// every module, gives each a blob: URL typed text/javascript, maps a bare specifier to each in
// an import map, and then imports the app. A blob: module has no base URL, so the modules
// import each other only by the bare specifiers below, never by relative paths.
// The same steps work behind any static server, with or without MIME types.
(function boot() {
  'use strict';

  // Bare specifier -> path of the module's source, relative to index.html.
  const MODULES = {
    'mqtt': 'vendor/mqtt.esm.js',
    'mosquitto-rtm': 'rtm.js',
    'demo/app': 'app.js',
    'demo/banner': 'banner.js',
    'demo/call': 'call.js',
    'demo/channel': 'channel.js',
    'demo/chat': 'chat.js',
    'demo/contacts': 'contacts.js',
    'demo/dom': 'dom.js',
    'demo/event-log': 'event-log.js',
    'demo/history': 'history.js',
    'demo/phone': 'phone.js',
    'demo/tabs': 'tabs.js',
  };
  const ENTRY = 'demo/app';

  async function moduleUrl(path) {
    const response = await fetch(path, { cache: 'no-cache' });
    if (!response.ok) {
      throw new Error(`${path}: HTTP ${response.status} ${response.statusText}`.trim());
    }
    const source = await response.text();
    return URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
  }

  async function installImportMap() {
    const entries = Object.entries(MODULES);
    const urls = await Promise.all(entries.map(([, path]) => moduleUrl(path)));
    const imports = Object.fromEntries(entries.map(([specifier], i) => [specifier, urls[i]]));
    const map = document.createElement('script');
    map.type = 'importmap';
    map.textContent = JSON.stringify({ imports });
    document.head.append(map);
  }

  // A failed load must be seen on the page, not only in the console.
  function showFailure(error) {
    console.error('mosquitto-rtm demo: loading failed:', error);
    const banner = document.querySelector('[data-testid="boot-error"]');
    banner.textContent = `The demo could not load: ${error && error.message ? error.message : error}`;
    banner.hidden = false;
    const loading = document.querySelector('.loading');
    if (loading) loading.remove();
  }

  installImportMap()
    .then(() => import(ENTRY))
    .catch(showFailure);
})();
