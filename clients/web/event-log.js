// A phone's event log: what its client did and heard, newest first. Every error the broker
// refused a request with lands here with its code and message; none is dropped.
import { el, clock } from 'demo/dom';

const MAX_ENTRIES = 300;

export class EventLog {
  /**
   * @param {HTMLElement} list the <ol> to fill
   * @param {(kind: string) => void} onEntry called for each new entry (e.g. to badge the tab)
   */
  constructor(list, onEntry) {
    this.list = list;
    this.onEntry = onEntry;
    // An error both rejects a request and is emitted as the client's 'error' event: the same
    // object must make one entry, not two.
    this.loggedErrors = new WeakSet();
  }

  /** kind: conn, call, presence, message, channel, attr or error; details: [label, value] pairs. */
  add(kind, text, details = []) {
    const entry = el('li', { class: `log-entry log-${kind}`, 'data-testid': 'log-entry', dataset: { kind } },
      el('time', { class: 'log-time' }, clock(Date.now())),
      el('span', { class: 'log-kind' }, kind),
      el('span', { class: 'log-text' }, text),
      details.length ? el('span', { class: 'log-details' }, details.map(([k, v]) => `${k}=${v}`).join(' ')) : null);
    this.list.prepend(entry);
    while (this.list.children.length > MAX_ENTRIES) this.list.lastElementChild.remove();
    this.onEntry(kind);
  }

  /** Logs an RtmError (broker or client side) once, with the fields the broker sent. */
  error(error) {
    if (error && typeof error === 'object') {
      if (this.loggedErrors.has(error)) return;
      this.loggedErrors.add(error);
    }
    const code = error && error.code ? error.code : 'error';
    const message = error && error.message ? error.message : String(error);
    const fields = ['id', 'request', 'topic'].filter((name) => error && error[name]).map((name) => [name, error[name]]);
    this.add('error', `${code} — ${message}`, fields);
  }
}
