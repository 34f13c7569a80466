// A phone's call history ("Recents"): one entry per call that ended, newest first.
import { el, avatar, clock } from 'demo/dom';

export class CallHistory {
  /**
   * @param {HTMLElement} list the <ul> of entries
   * @param {HTMLElement} empty what to show while there are none
   */
  constructor(list, empty) {
    this.list = list;
    this.empty = empty;
  }

  /**
   * @param {{direction: 'in'|'out', peer: string, kind: string, summary: string}} call
   *   kind: missed, answered, declined, canceled or failed; summary: how it ended, for people.
   */
  record({ direction, peer, kind, summary }) {
    const title = direction === 'in' ? `${kind === 'missed' ? 'Missed call' : 'Call'} from ${peer}` : `Call to ${peer}`;
    const entry = el('li', { class: `history-entry history-${kind}`, 'data-testid': 'history-entry', dataset: { kind, direction, peer } },
      avatar(peer),
      el('span', { class: 'history-main' },
        el('span', { class: 'history-title' }, el('span', { class: 'history-arrow', 'aria-hidden': 'true' }, direction === 'in' ? '↙' : '↗'), title),
        el('span', { class: 'history-sub' }, summary)),
      el('time', { class: 'history-time' }, clock(Date.now())));
    this.list.prepend(entry);
    this.empty.hidden = true;
  }
}
