// The channel panel: join one channel (default "lobby"), watch its members and count, and chat
// with everyone in it.
import { avatar, byTestId, clock, describeError, el, messageText, part } from 'demo/dom';

export class ChannelPanel {
  /**
   * @param {HTMLElement} panel the channel panel of the phone
   * @param {{log: import('demo/event-log').EventLog, client(): object, me(): string, onActivity(): void}} deps
   */
  constructor(panel, deps) {
    this.deps = deps;
    this.joinForm = part(panel, 'channel-form');
    this.joinButton = byTestId(panel, 'channel-join');
    this.countLabel = byTestId(panel, 'channel-count');
    this.memberList = byTestId(panel, 'channel-members');
    this.thread = byTestId(panel, 'channel-thread');
    this.messageForm = part(panel, 'channel-msg-form');
    this.channel = null;
    this.members = new Set();
    this.handlers = {
      ChannelMessage: (message, memberId) => this.onMessage(message, memberId),
      MemberJoined: (uid) => this.onMember(uid, true),
      MemberLeft: (uid) => this.onMember(uid, false),
      MemberCountUpdated: (count) => this.setCount(count),
      error: (error) => this.deps.log.error(error),
    };
    this.joinForm.addEventListener('submit', (event) => {
      event.preventDefault();
      if (this.channel) this.leave();
      else this.join(this.joinForm.elements.channel.value.trim());
    });
    this.messageForm.addEventListener('submit', (event) => {
      event.preventDefault();
      this.send(this.messageForm.elements.text.value);
    });
    this.render();
  }

  async join(channelId) {
    const channel = this.deps.client().createChannel(channelId);
    this.attach(channel);
    this.joinButton.disabled = true;
    try {
      const { members, count } = await channel.join();
      this.members = new Set(members);
      this.setCount(count);
      this.deps.log.add('channel', `joined ${channelId}`, [['count', count], ['members', members.join(',')]]);
    } catch (error) {
      this.deps.log.error(error);
      this.detach();
    } finally {
      this.joinButton.disabled = false;
      this.render();
    }
  }

  async leave() {
    const { channel } = this;
    this.detach();
    this.render();
    try {
      await channel.leave();
      this.deps.log.add('channel', `left ${channel.channelId}`);
    } catch (error) {
      this.deps.log.error(error);
    }
  }

  /** Logged out: the session's memberships ended with it. */
  reset() {
    if (this.channel) this.detach();
    this.render();
  }

  async send(text) {
    if (!this.channel || !text) return;
    this.messageForm.reset();
    try {
      await this.channel.sendMessage({ text });
      // The client subscribes with "no local" (as in RTM): our own message does not come back.
      this.appendMessage(this.deps.me(), text);
    } catch (error) {
      this.deps.log.error(error);
      this.appendNote(`Not sent: ${describeError(error)}`);
    }
  }

  attach(channel) {
    this.channel = channel;
    for (const [event, handler] of Object.entries(this.handlers)) channel.on(event, handler);
  }

  detach() {
    for (const [event, handler] of Object.entries(this.handlers)) this.channel.off(event, handler);
    this.channel = null;
    this.members = new Set();
    this.thread.replaceChildren();
  }

  onMessage(message, memberId) {
    this.appendMessage(memberId, messageText(message));
  }

  /** A message bubble; ours (sent here, or by another device of our uid) on the right. */
  appendMessage(memberId, text) {
    const direction = memberId === this.deps.me() ? 'out' : 'in';
    this.thread.append(el('li', { class: `bubble bubble-${direction}`, 'data-testid': 'channel-message', dataset: { dir: direction, from: memberId } },
      el('span', { class: 'bubble-from' }, memberId),
      el('span', { class: 'bubble-text' }, text),
      el('span', { class: 'bubble-meta' }, clock(Date.now()))));
    this.thread.scrollTop = this.thread.scrollHeight;
    if (direction === 'in') this.deps.onActivity();
  }

  onMember(uid, joined) {
    if (joined) this.members.add(uid);
    else this.members.delete(uid);
    this.deps.log.add('channel', `${uid} ${joined ? 'joined' : 'left'} ${this.channel.channelId}`);
    this.render();
  }

  appendNote(text) {
    this.thread.append(el('li', { class: 'note' }, text));
  }

  setCount(count) {
    this.countLabel.dataset.count = count;
    this.countLabel.textContent = `${count} member${count === 1 ? '' : 's'}`;
  }

  render() {
    const joined = this.channel !== null;
    this.joinButton.textContent = joined ? 'Leave' : 'Join';
    this.joinButton.classList.toggle('btn-primary', !joined);
    this.joinForm.elements.channel.readOnly = joined;
    for (const control of this.messageForm.elements) control.disabled = !joined;
    if (!joined) {
      this.countLabel.dataset.count = 0;
      this.countLabel.textContent = 'Not in a channel';
    }
    this.memberList.replaceChildren(...[...this.members].sort().map((uid) =>
      el('li', { class: 'chip', 'data-testid': 'channel-member', dataset: { uid } }, avatar(uid, 'avatar-small'), uid)));
  }
}
