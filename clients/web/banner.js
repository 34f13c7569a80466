// The banner above the phones: says when the broker cannot be reached, when a connection
// dropped, and when it came back.
import { el } from 'demo/dom';

const RESTORED_SHOWN_MS = 5000;
const PROBE_EVERY_MS = 3000;

export class Banner {
  /**
   * @param {HTMLElement} node the [data-testid=banner] element
   * @param {string} brokerUrl the WebSocket URL the phones connect to
   */
  constructor(node, brokerUrl) {
    this.node = node;
    this.brokerUrl = brokerUrl;
    this.hideTimer = null;
    this.probeTimer = null;
  }

  /** What a phone saw: 'unreachable', 'lost', 'restored' or 'ok' (connected). */
  update(event) {
    if (event === 'unreachable') this.showUnreachable();
    else if (event === 'lost') this.show('lost', [`The connection to the broker at ${this.brokerUrl}/ dropped — reconnecting…`]);
    else if (event === 'restored') this.show('restored', ['Reconnected to the broker.'], RESTORED_SHOWN_MS);
    else if (event === 'ok' && this.node.dataset.kind === 'unreachable') this.hide();
  }

  /**
   * Opens and at once closes a WebSocket to the broker, so that the page says it is unreachable
   * before anyone tries to log in. While it is, tries again now and then and clears the banner
   * when the broker answers.
   */
  async checkReachable() {
    clearTimeout(this.probeTimer);
    if (await reachable(this.brokerUrl)) {
      this.update('ok');
      return;
    }
    this.showUnreachable();
    this.probeTimer = setTimeout(() => this.checkReachable(), PROBE_EVERY_MS);
  }

  showUnreachable() {
    this.show('unreachable', [`Cannot reach the broker at ${this.brokerUrl}/ — is `,
      el('code', {}, 'bash tools/run-broker.sh'), ' running?']);
  }

  /** content: strings and nodes; hideAfterMs: 0 keeps the banner until something replaces it. */
  show(kind, content, hideAfterMs = 0) {
    clearTimeout(this.hideTimer);
    this.node.dataset.kind = kind;
    this.node.replaceChildren(...content);
    this.node.hidden = false;
    if (hideAfterMs) this.hideTimer = setTimeout(() => this.hide(), hideAfterMs);
  }

  hide() {
    this.node.hidden = true;
    delete this.node.dataset.kind;
  }
}

function reachable(url) {
  return new Promise((resolve) => {
    let socket;
    try {
      socket = new WebSocket(url, 'mqtt');
    } catch {
      resolve(false);
      return;
    }
    socket.onopen = () => {
      socket.close();
      resolve(true);
    };
    socket.onerror = () => resolve(false);
  });
}
