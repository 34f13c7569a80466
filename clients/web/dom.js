// Small DOM and formatting helpers shared by the demo's modules.

/** Creates an element: el('li', { class: 'row', dataset: { uid } }, 'text', childNode). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === 'dataset') Object.assign(node.dataset, value);
    else if (name === 'class') node.className = value;
    else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(name, value === true ? '' : value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

/** The element of `root` marked data-part="name" (the template's names for the parts code fills). */
export function part(root, name) {
  return root.querySelector(`[data-part="${name}"]`);
}

/** The element of `root` marked data-testid="id". */
export function byTestId(root, id) {
  return root.querySelector(`[data-testid="${id}"]`);
}

/** 21:15:03 for a ms-epoch time. */
export function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

/** 1:05 (or 1:02:05) for a duration in ms. */
export function duration(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = String(total % 60).padStart(2, '0');
  return hours ? `${hours}:${String(minutes).padStart(2, '0')}:${seconds}` : `${minutes}:${seconds}`;
}

/** The first letter of a uid, for an avatar. */
export function initial(uid) {
  return (uid || '?').charAt(0).toUpperCase();
}

/** A hue from 0 to 359 derived from a uid, so each user's avatar keeps one colour. */
export function hueOf(uid) {
  let hash = 0;
  for (const char of uid || '') hash = (hash * 31 + char.codePointAt(0)) % 360;
  return hash;
}

/** A round avatar with the uid's initial and colour. */
export function avatar(uid, extraClass = '') {
  const node = el('span', { class: `avatar ${extraClass}`.trim(), 'aria-hidden': 'true' }, initial(uid));
  node.style.setProperty('--hue', hueOf(uid));
  return node;
}

/** The text of a peer or channel message, or what it is when it is not UTF-8. */
export function messageText(message) {
  return message.text !== undefined ? message.text : `(${message.rawMessage.length} bytes, not text)`;
}

/** Text of an RtmError for people: "self_call: you cannot call yourself". */
export function describeError(error) {
  if (!error) return 'unknown error';
  return error.code ? `${error.code}: ${error.message}` : String(error.message || error);
}
