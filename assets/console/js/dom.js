// Building DOM without HTML strings: text is always set as text, so nothing the API
// returns can become markup except through markdown.js's sanitiser.

/** h('button', {class: 'x', onclick: fn}, 'Label', child) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      el.className = value;
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (key === 'value' || key === 'checked' || key === 'selected') {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function toast(message, kind = 'info') {
  const box = document.getElementById('toasts');
  const item = h('div', { class: `toast toast-${kind}` }, message);
  box.append(item);
  setTimeout(() => item.remove(), 6000);
}

export function formatTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? '' : date.toLocaleString();
}

/**
 * A labelled form field with a slot for its error message, linked for screen readers.
 * `input` is the control element; its `name` names the API field.
 */
export function field(label, input, hint) {
  const id = `f-${input.name}-${Math.random().toString(36).slice(2, 8)}`;
  input.id = id;
  const error = h('p', { class: 'field-error', id: `${id}-error`, hidden: true });
  input.setAttribute('aria-describedby', `${id}-error`);
  return h('div', { class: 'field', dataset: { field: input.name } },
    h('label', { for: id }, label),
    input,
    hint ? h('p', { class: 'hint' }, hint) : null,
    error);
}

/** Shows an API error on a form: field errors next to their fields, the rest on top. */
export function showErrors(form, err) {
  clearErrors(form);
  const banner = form.querySelector('.form-error');
  const unplaced = [];
  for (const { field: name, message } of err.errors || []) {
    const key = String(name).split('.').pop();
    const box = form.querySelector(`.field[data-field="${CSS.escape(key)}"]`);
    if (!box) { unplaced.push(message); continue; }
    const slot = box.querySelector('.field-error');
    slot.textContent = message;
    slot.hidden = false;
    box.querySelector('input, textarea, select')?.setAttribute('aria-invalid', 'true');
  }
  if (banner && (!err.errors?.length || unplaced.length)) {
    banner.textContent = unplaced.length ? unplaced.join(' ') : err.message;
    banner.hidden = false;
  }
  const first = form.querySelector('[aria-invalid="true"]');
  if (first) first.focus();
}

export function clearErrors(form) {
  for (const slot of form.querySelectorAll('.field-error, .form-error')) {
    slot.textContent = '';
    slot.hidden = true;
  }
  for (const input of form.querySelectorAll('[aria-invalid]')) input.removeAttribute('aria-invalid');
}

/** Reads a form's named controls into an object (checkboxes as booleans). */
export function formValues(form) {
  const values = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    values[el.name] = el.type === 'checkbox' ? el.checked : el.value;
  }
  return values;
}

/** Disables a form's submit button while `work` runs. */
export async function busy(form, work) {
  const buttons = form.querySelectorAll('button[type="submit"]');
  buttons.forEach((b) => { b.disabled = true; });
  try {
    return await work();
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}
