// A phone's call screen, drawn over the phone while a call is set up, runs or has just ended.
// States (data-state on the screen): idle, calling (invite sent), ringing (the callee's app
// rings), incoming, in-call, ended (with data-outcome and data-reason). Hanging up is local
// only: the protocol signals the call's set-up, not its end.
import { byTestId, clock, describeError, duration, el, hueOf, initial, part } from 'demo/dom';

// Response sent with a refusal, so that the caller reads why.
const REFUSE_RESPONSE = "Can't talk now";
const BUSY_RESPONSE = 'Busy on another call';

const FAILURE_TEXT = {
  peer_offline: 'Not reachable: the callee was offline',
  no_response: "The callee's app did not ring",
  expired: 'Nobody answered in time',
  caller_offline: 'The caller went offline',
};

const LABELS = { calling: 'Calling', ringing: 'Ringing', incoming: 'Incoming call', 'in-call': 'In call', ended: 'Call ended' };

/** How a failure reads: the broker's timers have their own words, a refusal its code. */
function failureText(reason) {
  return FAILURE_TEXT[reason] || `Call failed: ${reason}`;
}

function quoted(response) {
  return response ? ` — “${response}”` : '';
}

/** A fresh id for the media channel a call would use (any app-chosen name, at most 64 bytes). */
function newMediaChannel() {
  const bytes = crypto.getRandomValues(new Uint8Array(4));
  return `room-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

export class CallScreen {
  /**
   * @param {HTMLElement} root the [data-testid=call-screen] element
   * @param {{log: import('demo/event-log').EventLog, history: import('demo/history').CallHistory,
   *          announce(text: string): void, onMissed(): void}} deps
   */
  constructor(root, deps) {
    this.root = root;
    this.deps = deps;
    this.parts = {
      label: part(root, 'call-label'),
      avatar: part(root, 'call-avatar'),
      peer: byTestId(root, 'call-peer'),
      status: byTestId(root, 'call-status'),
      timer: byTestId(root, 'call-timer'),
      details: byTestId(root, 'call-details'),
    };
    this.call = null;   // { direction, peer, invitation, connectedAt, refusedHere }
    this.ticker = null;
    root.addEventListener('click', (event) => {
      const action = event.target.closest('[data-action]');
      if (action) this[action.dataset.action]();
    });
  }

  /** True while a call is being set up or running; an ended screen still waiting to be closed is not busy. */
  get busy() {
    return this.call !== null && this.root.dataset.state !== 'ended';
  }

  dial(client, peer) {
    if (this.busy) return;
    this.close();
    const channelId = newMediaChannel();
    const invitation = client.invite(peer, { channelId });
    this.call = { direction: 'out', peer, invitation };
    this.deps.log.add('call', `invite sent to ${peer}`, [['id', invitation.id], ['channel', channelId]]);
    this.listen(invitation, {
      LocalInvitationReceivedByPeer: () => this.show('ringing', `${peer}'s phone is ringing`),
      LocalInvitationPushed: (devices) => this.deps.log.add('call', `${peer}'s phones woken by push`, [['devices', devices]]),
      LocalInvitationAccepted: (response) => this.connect(`${peer} answered${quoted(response)}`),
      LocalInvitationRefused: (response) => this.end('declined', `${peer} declined${quoted(response)}`, 'refused'),
      LocalInvitationCanceled: () => this.end('canceled', 'You canceled the call', 'canceled'),
      LocalInvitationFailure: (reason) => this.end('failed', failureText(reason), reason),
      error: (error) => this.onOutgoingError(error),
    });
    this.show('calling', `Calling ${peer}…`);
    this.setDetails([['Channel', channelId], ['Invitation', invitation.id]]);
  }

  receive(invitation) {
    const peer = invitation.callerId;
    this.deps.log.add('call', `invite from ${peer}`, [['id', invitation.id], ...stampFields(invitation)]);
    if (this.busy) {
      this.refuseWhileBusy(invitation);
      return;
    }
    this.close();
    this.call = { direction: 'in', peer, invitation };
    this.listen(invitation, {
      RemoteInvitationAccepted: () => this.onAnswered(invitation),
      RemoteInvitationRefused: () => this.onRefused(invitation),
      RemoteInvitationCanceled: () => this.end('missed', `${peer} canceled the call`, 'canceled'),
      RemoteInvitationFailure: (reason) => this.end('missed', failureText(reason), reason),
    });
    this.show('incoming', `${peer} is calling you`);
    this.setDetails([['Channel', invitation.channelId || '—'], ['Invitation', invitation.id], ...stampDetails(invitation)]);
    this.deps.announce(`Incoming call from ${peer}`);
  }

  /** Logged out: whatever was on screen is over for this phone. */
  reset() {
    if (this.busy) this.end(this.call.direction === 'in' ? 'missed' : 'failed', 'You logged out', 'logged_out');
    this.close();
  }

  // --- Buttons -----------------------------------------------------------------------------

  accept() {
    const { invitation } = this.call;
    // The broker took our accept: connected, whether or not our copy of it came back yet.
    invitation.accept().then(
      () => this.isCurrent(invitation) && this.connect('Connected'),
      (error) => this.deps.log.error(error));
  }

  refuse() {
    const { invitation } = this.call;
    this.call.refusedHere = true;
    invitation.refuse({ response: REFUSE_RESPONSE }).then(
      () => this.isCurrent(invitation) && this.onRefused(invitation),
      (error) => this.deps.log.error(error));
  }

  cancel() {
    this.call.invitation.cancel().catch((error) => this.deps.log.error(error));
  }

  hangup() {
    this.deps.log.add('call', `hung up on ${this.call.peer} (on this phone only: the protocol has no hang-up)`);
    this.end('answered', `Call ended after ${duration(Date.now() - this.call.connectedAt)}`, 'hung_up');
  }

  close() {
    this.stopTicking();
    this.call = null;
    this.root.hidden = true;
    this.root.dataset.state = 'idle';
    delete this.root.dataset.outcome;
    delete this.root.dataset.reason;
  }

  // --- Transitions -------------------------------------------------------------------------

  /**
   * Subscribes to an invitation's events; an event about a call no longer on screen is ignored.
   * (Its errors reach the event log anyway, through the client's 'error' event.)
   */
  listen(invitation, handlers) {
    for (const [event, handler] of Object.entries(handlers)) {
      invitation.on(event, (...args) => {
        if (this.isCurrent(invitation)) handler(...args);
      });
    }
  }

  isCurrent(invitation) {
    return this.call !== null && this.call.invitation === invitation;
  }

  onOutgoingError(error) {
    // A refused cancel changes nothing: the call's ending arrives on its own. A refused invite
    // means there is no call; the client also fails the invitation with the broker's code, before
    // or after this event, and either way the screen shows the broker's explanation.
    if (error.request === 'cancel') return;
    const text = `Call failed: ${describeError(error)}`;
    if (this.busy) this.end('failed', text, error.code);
    else if (this.root.dataset.reason === error.code) this.parts.status.textContent = text;
  }

  onAnswered(invitation) {
    if (invitation.answeredHere === false) {
      this.end('answered', 'Answered on another device', 'answered_elsewhere');
    } else {
      this.connect('Connected');
    }
  }

  onRefused(invitation) {
    const here = this.call.refusedHere || invitation.answeredHere !== false;
    this.end('declined', here ? `You declined${quoted(REFUSE_RESPONSE)}` : 'Declined on another device', 'refused');
  }

  refuseWhileBusy(invitation) {
    invitation.refuse({ response: BUSY_RESPONSE }).catch((error) => this.deps.log.error(error));
    this.deps.history.record({ direction: 'in', peer: invitation.callerId, kind: 'missed', summary: `Declined: ${BUSY_RESPONSE.toLowerCase()}` });
    this.deps.onMissed();
  }

  connect(statusText) {
    if (!this.busy || this.root.dataset.state === 'in-call') return;
    this.call.connectedAt = Date.now();
    this.show('in-call', statusText);
    this.deps.log.add('call', `in call with ${this.call.peer}`);
  }

  end(kind, summary, reason) {
    if (!this.busy) return;
    const { direction, peer } = this.call;
    this.stopTicking();
    this.show('ended', summary);
    this.root.dataset.outcome = kind;
    this.root.dataset.reason = reason;
    this.addDetail('Reason', reason);
    this.deps.history.record({ direction, peer, kind, summary });
    this.deps.log.add('call', `call with ${peer} ended: ${summary}`, [['reason', reason]]);
    if (kind === 'missed') this.deps.onMissed();
  }

  // --- Drawing -----------------------------------------------------------------------------

  show(state, statusText) {
    const { peer } = this.call;
    this.root.hidden = false;
    this.root.dataset.state = state;
    this.parts.label.textContent = LABELS[state];
    this.parts.avatar.textContent = initial(peer);
    this.parts.avatar.style.setProperty('--hue', hueOf(peer));
    this.parts.peer.textContent = peer;
    this.parts.status.textContent = statusText;
    this.startTicking();
  }

  setDetails(rows) {
    this.parts.details.replaceChildren();
    for (const [label, value] of rows) this.addDetail(label, value);
  }

  addDetail(label, value) {
    this.parts.details.append(el('dt', {}, label), el('dd', {}, String(value)));
  }

  startTicking() {
    this.tick();
    if (!this.ticker) this.ticker = setInterval(() => this.tick(), 250);
  }

  stopTicking() {
    clearInterval(this.ticker);
    this.ticker = null;
  }

  /** The in-call timer, or while an incoming call rings, how long it may still ring. */
  tick() {
    const state = this.root.dataset.state;
    const { invitation, connectedAt } = this.call || {};
    if (state === 'in-call') {
      this.parts.timer.textContent = duration(Date.now() - connectedAt);
    } else if (state === 'incoming' && invitation.expiresAt) {
      this.parts.timer.textContent = `rings for ${duration(invitation.expiresAt - Date.now())}`;
    } else {
      this.parts.timer.textContent = '';
    }
  }
}

const STAMP_LABELS = { by: 'Stamped by', ts: 'Stamped at', expires_at: 'Rings until' };

/** What the broker stamped on an incoming invite, as [label, value] rows for the screen. */
function stampDetails(invitation) {
  return stampFields(invitation).map(([name, value]) => [STAMP_LABELS[name], name === 'by' ? value : clock(value)]);
}

/** The stamped fields of an incoming invite: by, ts and expires_at. */
function stampFields(invitation) {
  const fields = [['by', invitation.by], ['ts', invitation.ts], ['expires_at', invitation.expiresAt]];
  return fields.filter(([, value]) => value !== undefined && value !== null);
}
