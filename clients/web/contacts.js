// A phone's contacts: each with a live presence dot (subscribePeersOnlineStatus) and the
// status the contact published as a user attribute (subscribeUserAttributes).
import { el, avatar } from 'demo/dom';

export const STATUS_KEY = 'status';

const PRESENCE_TEXT = { online: 'Online', offline: 'Offline', unknown: 'Presence unknown' };

export class Contacts {
  /**
   * @param {HTMLElement} list the <ul> of contacts
   * @param {HTMLElement} empty what to show while there are none
   * @param {{onCall(uid: string): void, onChat(uid: string): void}} actions
   */
  constructor(list, empty, actions) {
    this.list = list;
    this.empty = empty;
    this.actions = actions;
    this.rows = new Map();
  }

  uids() {
    return [...this.rows.keys()];
  }

  /** Adds a row for uid unless there is one; returns whether it was added. */
  add(uid) {
    if (this.rows.has(uid)) return false;
    const presence = el('span', { class: 'dot', 'data-testid': 'contact-presence' });
    const status = el('span', { class: 'contact-sub', 'data-testid': 'contact-status' });
    const face = avatar(uid);
    face.append(presence);
    const row = el('li', { class: 'contact', 'data-testid': 'contact', dataset: { uid, presence: 'unknown', status: '' } },
      face,
      el('span', { class: 'contact-main' }, el('span', { class: 'contact-name' }, uid), status),
      el('button', { type: 'button', class: 'btn btn-light', 'data-testid': 'contact-chat', 'aria-label': `Message ${uid}`, onclick: () => this.actions.onChat(uid) }, 'Message'),
      el('button', { type: 'button', class: 'btn btn-ok', 'data-testid': 'contact-call', 'data-needs-login': true, 'aria-label': `Call ${uid}`, onclick: () => this.actions.onCall(uid) }, 'Call'));
    this.rows.set(uid, { row, status });
    this.list.append(row);
    this.empty.hidden = true;
    this.render(uid);
    return true;
  }

  /** From the client's PeersOnlineStatusChanged: { bob: 'ONLINE' | 'OFFLINE' }. */
  updatePresence(statuses) {
    for (const [uid, state] of Object.entries(statuses)) {
      if (!this.rows.has(uid)) continue;
      this.rows.get(uid).row.dataset.presence = state === 'ONLINE' ? 'online' : 'offline';
      this.render(uid);
    }
  }

  /** From the client's UserAttributesUpdated: the uid's attributes, each { value, by, ts }. */
  updateAttributes(uid, attributes) {
    if (!this.rows.has(uid)) return;
    const status = attributes && attributes[STATUS_KEY];
    this.rows.get(uid).row.dataset.status = status ? status.value : '';
    this.render(uid);
  }

  /** Logged out: nothing is watched any more. */
  forgetAll() {
    for (const [uid, { row }] of this.rows) {
      row.dataset.presence = 'unknown';
      row.dataset.status = '';
      this.render(uid);
    }
  }

  render(uid) {
    const { row, status } = this.rows.get(uid);
    const { presence, status: value } = row.dataset;
    status.replaceChildren(PRESENCE_TEXT[presence], value ? el('span', { class: 'status-pill', dataset: { status: value } }, value) : '');
  }
}
