// Peer chat: one conversation per peer, all kept in one list and filtered by the chosen peer.
import { byTestId, clock, describeError, el, messageText, part } from 'demo/dom';

export class PeerChat {
  /**
   * @param {HTMLElement} panel the chat panel of the phone
   * @param {{log: import('demo/event-log').EventLog, client(): object, onUnread(): void}} deps
   */
  constructor(panel, deps) {
    this.deps = deps;
    this.peerSelect = byTestId(panel, 'chat-peer');
    this.thread = byTestId(panel, 'chat-thread');
    this.form = part(panel, 'chat-form');
    this.peerSelect.addEventListener('change', () => this.filter());
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.send(this.form.elements.text.value);
    });
    this.filter();
  }

  get peer() {
    return this.peerSelect.value;
  }

  addPeer(uid) {
    if ([...this.peerSelect.options].some((option) => option.value === uid)) return;
    this.peerSelect.append(el('option', { value: uid }, uid));
    this.filter();
  }

  open(uid) {
    this.addPeer(uid);
    this.peerSelect.value = uid;
    this.filter();
    this.form.elements.text.focus();
  }

  /** From the client's MessageFromPeer. */
  receive(message, peerId) {
    this.addPeer(peerId);
    const text = messageText(message);
    this.append('in', peerId, text, clock(Date.now()));
    this.deps.log.add('message', `from ${peerId}`, [['bytes', message.rawMessage.length]]);
    if (peerId !== this.peer) this.peerSelect.value = peerId;
    this.filter();
    this.deps.onUnread();
  }

  async send(text) {
    const peer = this.peer;
    if (!peer || !text) return;
    this.form.reset();
    const meta = this.append('out', peer, text, 'sending…');
    try {
      const { hasPeerReceived } = await this.deps.client().sendMessageToPeer({ text }, peer);
      this.setDelivery(meta, hasPeerReceived ? 'delivered' : 'offline',
        hasPeerReceived ? `${clock(Date.now())} · delivered` : `not delivered: ${peer} is offline`);
      this.deps.log.add('message', `to ${peer}`, [['hasPeerReceived', hasPeerReceived]]);
    } catch (error) {
      this.setDelivery(meta, 'failed', `failed: ${describeError(error)}`);
      this.deps.log.error(error);
    }
  }

  /** Appends a message bubble; returns its meta line, which tells how it went. */
  append(direction, peer, text, metaText) {
    const meta = el('span', { class: 'bubble-meta', 'data-testid': 'chat-delivery' }, metaText);
    const bubble = el('li', { class: `bubble bubble-${direction}`, 'data-testid': 'chat-message', dataset: { dir: direction, peer } },
      el('span', { class: 'bubble-text' }, text), meta);
    bubble.hidden = peer !== this.peer;
    this.thread.append(bubble);
    this.thread.scrollTop = this.thread.scrollHeight;
    return meta;
  }

  setDelivery(meta, state, text) {
    meta.textContent = text;
    meta.closest('.bubble').dataset.delivery = state;
  }

  /** Shows the chosen peer's conversation only. */
  filter() {
    for (const bubble of this.thread.children) bubble.hidden = bubble.dataset.peer !== this.peer;
    const noPeer = !this.peer;
    for (const control of this.form.elements) control.disabled = noPeer;
  }
}
