// One phone of the demo: its own RTM client, an account strip (uid, log-in switch, status), and
// the panels for contacts, recents, chat, channel and the event log, with the call screen on top.
import { createClient } from 'mosquitto-rtm';
import { byTestId, part } from 'demo/dom';
import { Tabs } from 'demo/tabs';
import { EventLog } from 'demo/event-log';
import { Contacts, STATUS_KEY } from 'demo/contacts';
import { CallHistory } from 'demo/history';
import { CallScreen } from 'demo/call';
import { PeerChat } from 'demo/chat';
import { ChannelPanel } from 'demo/channel';

const STATE_TEXT = {
  DISCONNECTED: 'Offline',
  CONNECTING: 'Connecting…',
  CONNECTED: 'Online',
  RECONNECTING: 'Reconnecting…',
  ABORTED: 'Logged out',
};

export class Phone {
  /**
   * @param {HTMLTemplateElement} template the phone's markup
   * @param {{uid: string, brokerUrl: string, contacts: string[],
   *          onConnection(event: 'unreachable'|'lost'|'restored'|'ok'): void,
   *          onLogin(uid: string): void}} options
   */
  constructor(template, options) {
    this.options = options;
    this.root = template.content.firstElementChild.cloneNode(true);
    this.client = createClient({ url: options.brokerUrl });
    this.lastState = 'DISCONNECTED';
    this.buildParts();
    this.uidInput.value = options.uid;
    this.showIdentity();
    this.setLoggedIn(false);
    for (const uid of options.contacts) this.addContact(uid);
    this.listenToUi();
    this.listenToClient();
  }

  buildParts() {
    const { root } = this;
    this.uidInput = byTestId(root, 'uid-input');
    this.loginSwitch = byTestId(root, 'login-switch');
    this.statusSelect = byTestId(root, 'status-select');
    this.connState = byTestId(root, 'conn-state');
    this.tabs = new Tabs(root);
    // The log's tab counts the errors it has not shown yet; other entries are routine.
    this.log = new EventLog(byTestId(root, 'event-log'), (kind) => kind === 'error' && this.tabs.notify('log', { alert: true }));
    this.contacts = new Contacts(byTestId(root, 'contacts'), part(root, 'contacts-empty'), {
      onCall: (uid) => this.call.dial(this.client, uid),
      onChat: (uid) => this.openChat(uid),
    });
    this.history = new CallHistory(byTestId(root, 'history'), part(root, 'history-empty'));
    this.call = new CallScreen(byTestId(root, 'call-screen'), {
      log: this.log,
      history: this.history,
      announce: (text) => { part(root, 'announce').textContent = text; },
      onMissed: () => this.tabs.notify('recents', { alert: true }),
    });
    this.chat = new PeerChat(root.querySelector('[data-panel="chat"]'), {
      log: this.log,
      client: () => this.client,
      onUnread: () => this.tabs.notify('chat'),
    });
    this.channel = new ChannelPanel(root.querySelector('[data-panel="channel"]'), {
      log: this.log,
      client: () => this.client,
      me: () => this.client.uid,
      onActivity: () => this.tabs.notify('channel'),
    });
  }

  /** The uid in the uid field (the one the phone logs in, or is logged in, with). */
  get uid() {
    return this.uidInput.value.trim();
  }

  get loggedIn() {
    return this.root.dataset.loggedIn === 'true';
  }

  listenToUi() {
    part(this.root, 'account').addEventListener('submit', (event) => event.preventDefault());
    this.uidInput.addEventListener('input', () => this.showIdentity());
    this.loginSwitch.addEventListener('change', () => (this.loginSwitch.checked ? this.logIn() : this.logOut()));
    this.statusSelect.addEventListener('change', () => this.publishStatus());
    const dial = part(this.root, 'dial');
    dial.addEventListener('submit', (event) => {
      event.preventDefault();
      const uid = dial.elements.uid.value.trim();
      if (event.submitter && event.submitter.value === 'call') {
        this.call.dial(this.client, uid);
      } else {
        this.addContact(uid);
        dial.reset();
      }
    });
  }

  listenToClient() {
    const { client } = this;
    client.on('ConnectionStateChanged', (state, reason) => this.onConnectionState(state, reason));
    client.on('RemoteInvitationReceived', (invitation) => this.call.receive(invitation));
    client.on('PeersOnlineStatusChanged', (statuses) => {
      this.contacts.updatePresence(statuses);
      this.log.add('presence', Object.entries(statuses).map(([uid, state]) => `${uid} ${state}`).join(', '));
    });
    client.on('UserAttributesUpdated', (uid, attributes) => {
      this.contacts.updateAttributes(uid, attributes);
      const status = attributes[STATUS_KEY];
      this.log.add('attr', `${uid} status: ${status ? status.value : '(none)'}`, status ? [['by', status.by], ['ts', status.ts]] : []);
    });
    client.on('MessageFromPeer', (message, peerId) => this.chat.receive(message, peerId));
    client.on('error', (error) => this.log.error(error));
  }

  // --- Logging in and out ------------------------------------------------------------------

  async logIn() {
    const { uid } = this;
    if (!uid) {
      this.loginSwitch.checked = false;
      this.uidInput.reportValidity();
      return;
    }
    this.setAccountBusy(true);
    try {
      await this.client.login({ uid });
    } catch (error) {
      this.log.error(error);
      this.loginSwitch.checked = false;
      if (error.code === 'unreachable') this.options.onConnection('unreachable');
      return;
    } finally {
      this.setAccountBusy(false);
    }
    this.setLoggedIn(true);
    this.options.onConnection('ok');
    this.options.onLogin(uid);
    await Promise.all([this.publishStatus(), this.watch(this.contacts.uids())]);
  }

  async logOut() {
    this.setAccountBusy(true);
    try {
      await this.client.logout();
    } catch (error) {
      this.log.error(error);
    } finally {
      this.setAccountBusy(false);
      this.leftSession();
    }
  }

  /** The session is over (logged out, or the broker ended it): nothing of it is live any more. */
  leftSession() {
    this.setLoggedIn(false);
    this.contacts.forgetAll();
    this.call.reset();
    this.channel.reset();
  }

  onConnectionState(state, reason) {
    const previous = this.lastState;
    this.lastState = state;
    this.connState.dataset.state = state;
    this.connState.textContent = STATE_TEXT[state] || state;
    this.log.add('conn', state.toLowerCase(), [['reason', reason]]);
    if (state === 'RECONNECTING') this.options.onConnection('lost');
    if (state === 'CONNECTED' && previous === 'RECONNECTING') this.restored();
    if (state === 'ABORTED') {
      this.loginSwitch.checked = false;
      this.leftSession();
    }
  }

  /**
   * Back after a drop. The broker ended the old session and with it the user's attributes (their
   * lifetime is the session's), so the status is written again; the client itself joins the
   * channels again and renews its subscriptions.
   */
  restored() {
    this.options.onConnection('restored');
    this.publishStatus();
  }

  setLoggedIn(loggedIn) {
    this.root.dataset.loggedIn = String(loggedIn);
    this.uidInput.readOnly = loggedIn;
    this.loginSwitch.checked = loggedIn;
    this.enableBrokerControls();
  }

  /** Buttons that ask the broker for something (marked data-needs-login) work only when logged in. */
  enableBrokerControls() {
    for (const control of this.root.querySelectorAll('[data-needs-login]')) control.disabled = !this.loggedIn;
  }

  setAccountBusy(busy) {
    this.loginSwitch.disabled = busy;
    this.root.setAttribute('aria-busy', String(busy));
  }

  showIdentity() {
    const { uid } = this;
    part(this.root, 'me').textContent = uid || 'no user id';
    this.root.dataset.uid = uid;
    this.root.setAttribute('aria-label', `Phone of ${uid || 'nobody yet'}`);
  }

  // --- Contacts, status, chat -------------------------------------------------------------

  /** Adds a contact (and a chat peer); while logged in, starts watching its presence and status. */
  addContact(uid) {
    if (!uid || !this.contacts.add(uid)) return;
    this.enableBrokerControls();
    this.chat.addPeer(uid);
    if (this.loggedIn) this.watch([uid]);
  }

  async watch(uids) {
    if (uids.length === 0) return;
    try {
      await Promise.all([
        this.client.subscribePeersOnlineStatus(uids),
        ...uids.map((uid) => this.client.subscribeUserAttributes(uid)),
      ]);
    } catch (error) {
      this.log.error(error);
    }
  }

  async publishStatus() {
    if (!this.loggedIn) return;
    const status = this.statusSelect.value;
    try {
      await this.client.addOrUpdateLocalUserAttributes({ [STATUS_KEY]: status });
      this.log.add('attr', `my status: ${status}`);
    } catch (error) {
      this.log.error(error);
    }
  }

  openChat(uid) {
    this.chat.open(uid);
    this.tabs.show('chat');
  }
}
