// The demo's entry point (imported by boot.js). Without parameters it shows two phones side by
// side, alice and bob, each with its own client. ?uid=carol shows one phone for carol (one
// phone per tab). The phones connect to the broker that served the page, ws://<this host>/;
// ?broker=ws://HOST:PORT names another one.
import { Phone } from 'demo/phone';
import { Banner } from 'demo/banner';

const DEFAULT_UIDS = ['alice', 'bob'];

function brokerUrl(params) {
  return params.get('broker') || `ws://${location.host}`;
}

function main() {
  const params = new URLSearchParams(location.search);
  const url = brokerUrl(params);
  const banner = new Banner(document.querySelector('[data-testid="banner"]'), url);
  const uids = params.has('uid') ? [params.get('uid')] : DEFAULT_UIDS;
  const template = document.getElementById('phone-template');

  const phones = uids.map((uid) => new Phone(template, {
    uid,
    brokerUrl: url,
    contacts: uids.filter((other) => other !== uid),
    onConnection: (event) => banner.update(event),
    // Side by side, each phone has the other one as a contact, under whatever uid it logs in with.
    onLogin: (loggedIn) => phones.filter((phone) => phone.uid !== loggedIn)
      .forEach((phone) => phone.addContact(loggedIn)),
  }));

  const container = document.querySelector('[data-testid="phones"]');
  container.dataset.count = phones.length;
  container.replaceChildren(...phones.map((phone) => phone.root));
  banner.checkReachable();
}

main();
