// The tab bar at the bottom of a phone: one panel shown at a time, and a badge on a tab whose
// panel got something new while it was not shown.
import { el } from 'demo/dom';

let nextTabsId = 0;

export class Tabs {
  /** @param {HTMLElement} screen the phone's screen holding [role=tab] buttons and [data-panel] sections */
  constructor(screen) {
    const prefix = `tabs${nextTabsId++}`;
    this.tabs = new Map();
    for (const button of screen.querySelectorAll('[role="tab"]')) {
      const name = button.dataset.tab;
      const panel = screen.querySelector(`[data-panel="${name}"]`);
      button.id = `${prefix}-${name}-tab`;
      panel.id = `${prefix}-${name}`;
      panel.setAttribute('role', 'tabpanel');
      panel.setAttribute('aria-labelledby', button.id);
      button.setAttribute('aria-controls', panel.id);
      const badge = el('span', { class: 'badge', 'data-testid': `badge-${name}`, hidden: true });
      button.append(badge);
      button.addEventListener('click', () => this.show(name));
      button.addEventListener('keydown', (event) => this.onKey(event, name));
      this.tabs.set(name, { button, panel, badge, count: 0 });
    }
    this.current = null;
    this.show(this.tabs.keys().next().value);
  }

  show(name) {
    for (const [tabName, tab] of this.tabs) {
      const selected = tabName === name;
      tab.button.setAttribute('aria-selected', String(selected));
      tab.button.tabIndex = selected ? 0 : -1;
      tab.panel.hidden = !selected;
    }
    this.current = name;
    this.setBadge(name, 0);
  }

  /** Arrow keys, Home and End move between the tabs (only the selected tab is in the Tab order). */
  onKey(event, name) {
    const names = [...this.tabs.keys()];
    const index = names.indexOf(name);
    const next = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: names.length - 1 }[event.key];
    if (next === undefined) return;
    event.preventDefault();
    const target = names[(next + names.length) % names.length];
    this.show(target);
    this.tabs.get(target).button.focus();
  }

  /** Counts one more new thing on a hidden tab; `alert` colours the badge (errors, missed calls). */
  notify(name, { alert = false } = {}) {
    if (this.current === name) return;
    const tab = this.tabs.get(name);
    if (alert) tab.badge.classList.add('badge-alert');
    this.setBadge(name, tab.count + 1);
  }

  setBadge(name, count) {
    const tab = this.tabs.get(name);
    tab.count = count;
    tab.badge.textContent = count > 99 ? '99+' : String(count);
    tab.badge.hidden = count === 0;
    if (count === 0) tab.badge.classList.remove('badge-alert');
  }
}
