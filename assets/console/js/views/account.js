// Account: name and email, password change (needs the current password; every other
// session ends), connecting a GitHub account (OAuth in this tab; GitHub sends the browser
// back here), linking a WhatsApp number with a code sent from the phone, and opting in to
// a WhatsApp message when a pull-request review of one's projects finishes.

import { ApiError, del, get, login, post, put } from '../api.js';
import { busy, clear, clearErrors, field, formValues, formatTime, h, showErrors, toast } from '../dom.js';
import * as session from '../session.js';

export async function accountView(main, route) {
  let user;
  try {
    user = await get('/user/me');
  } catch (err) {
    main.append(h('p', { class: 'form-error' }, err.message));
    return;
  }
  session.setUser(user);
  const whatsapp = h('section', { class: 'card panel', 'aria-labelledby': 'wa-h' });
  const github = h('section', { class: 'card panel', 'aria-labelledby': 'gh-h' });
  main.append(h('div', { class: 'page narrow' },
    h('h1', {}, 'Account'),
    profileForm(),
    passwordForm(),
    github,
    whatsapp));
  if (route?.params?.get('github') === 'connected') {
    toast('GitHub connected');
    // Said once: a reload or a bookmark of this address (even after a disconnect) must
    // not announce it again. replaceState fires no hashchange, so nothing re-renders.
    history.replaceState(history.state, '', '#/account');
  }
  drawGithub();
  drawWhatsapp();

  async function drawGithub() {
    let identity = null;
    try {
      identity = await get('/user/github');
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) {
        clear(github, h('h2', { id: 'gh-h' }, 'GitHub'), h('p', { class: 'form-error' }, err.message));
        return;
      }
    }
    clear(github,
      h('h2', { id: 'gh-h' }, 'GitHub'),
      identity
        ? [h('p', {}, 'Connected as ', h('strong', { class: 'github-login' }, identity.login), h('span', { class: 'muted' }, ` since ${formatTime(identity.connected_at)}`)),
          h('p', { class: 'muted' }, 'Projects whose repository this account can push to are verified: they get pull-request reviews and private syncs.'),
          h('button', { type: 'button', class: 'danger', onclick: disconnectGithub }, 'Disconnect GitHub')]
        : [h('p', {}, 'Connect your GitHub account to prove access to your repositories: only then are they reviewed and synced with the server\'s credentials.'),
          h('button', { type: 'button', class: 'primary', onclick: connectGithub }, 'Connect GitHub')]);
  }

  async function connectGithub() {
    try {
      const { authorize_url: url } = await post('/user/github/connect', {});
      window.location.assign(url);
    } catch (err) {
      toast(err.status === 503 ? 'GitHub sign-in is not configured on this server.' : err.message, 'error');
    }
  }

  async function disconnectGithub() {
    try {
      await del('/user/github');
      toast('GitHub disconnected');
      drawGithub();
    } catch (err) {
      toast(err.message, 'error');
    }
  }

  function profileForm() {
    const form = h('form', { class: 'card form', novalidate: true, 'aria-label': 'Profile' },
      h('h2', {}, 'Profile'),
      h('p', { class: 'form-error', role: 'alert', hidden: true }),
      field('Name', h('input', { name: 'name', value: user.name, autocomplete: 'name', required: true })),
      field('Email', h('input', { name: 'email', type: 'email', value: user.email, autocomplete: 'email', required: true })),
      h('p', { class: 'muted' }, `Member since ${formatTime(user.created_at)}`),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Save')));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      clearErrors(form);
      busy(form, async () => {
        const { name, email } = formValues(form);
        const body = {};
        if (name !== user.name) body.name = name;
        if (email !== user.email) body.email = email;
        if (!Object.keys(body).length) return;
        try {
          user = await put('/user/me', body);
          session.setUser(user);
          toast('Profile saved');
        } catch (err) {
          showErrors(form, err);
        }
      });
    });
    return form;
  }

  function passwordForm() {
    const form = h('form', { class: 'card form', novalidate: true, 'aria-label': 'Change password' },
      h('h2', {}, 'Password'),
      h('p', { class: 'form-error', role: 'alert', hidden: true }),
      field('Current password', h('input', { name: 'current_password', type: 'password', autocomplete: 'current-password', required: true })),
      field('New password', h('input', { name: 'password', type: 'password', autocomplete: 'new-password', required: true }), '8 to 72 bytes. Every other session is logged out.'),
      field('Repeat the new password', h('input', { name: 'confirm', type: 'password', autocomplete: 'new-password', required: true })),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Change password')));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      clearErrors(form);
      busy(form, async () => {
        const values = formValues(form);
        if (values.password !== values.confirm) {
          showErrors(form, new ApiError(422, { message: 'The passwords differ', errors: [{ field: 'confirm', message: 'Does not match the new password' }] }));
          return;
        }
        try {
          user = await put('/user/me', { current_password: values.current_password, password: values.password });
          // The change revoked every refresh token, ours included: sign in again with the new one.
          await login(user.email, values.password);
          form.reset();
          toast('Password changed');
        } catch (err) {
          showErrors(form, err);
        }
      });
    });
    return form;
  }

  function drawWhatsapp() {
    const codeBox = h('div', { class: 'link-code', 'aria-live': 'polite' });
    clear(whatsapp,
      h('h2', { id: 'wa-h' }, 'WhatsApp'),
      user.whatsapp_number
        ? [h('p', {}, 'Linked number: ', h('strong', {}, `+${user.whatsapp_number}`)),
          h('button', { type: 'button', class: 'danger', onclick: unlink }, 'Unlink')]
        : h('p', {}, 'Chat with your agents from your phone: get a code, then send it from WhatsApp.'),
      h('button', { type: 'button', onclick: () => linkCode(codeBox) }, user.whatsapp_number ? 'Link another number' : 'Get a linking code'),
      codeBox,
      h('label', { class: 'notify-switch' },
        h('input', { type: 'checkbox', name: 'whatsapp_notify', checked: Boolean(user.whatsapp_notify), onchange: (event) => setNotify(event.target) }),
        ' Message me on WhatsApp when a pull-request review of my projects finishes'),
      user.whatsapp_number ? null : h('p', { class: 'muted' }, 'Takes effect once a number is linked.'));
  }

  async function setNotify(box) {
    const wanted = box.checked;
    box.disabled = true;
    try {
      user = await put('/user/me', { whatsapp_notify: wanted });
      session.setUser(user);
      toast(wanted ? 'WhatsApp review notifications on' : 'WhatsApp review notifications off');
    } catch (err) {
      box.checked = !wanted;
      toast(err.message, 'error');
    } finally {
      box.disabled = false;
    }
  }

  async function linkCode(box) {
    try {
      const link = await post('/user/whatsapp/link', {});
      clear(box,
        h('p', { class: 'code' }, link.code),
        h('p', {}, link.instructions || `Send “link ${link.code}” to the CodeSherpa WhatsApp number.`),
        h('p', { class: 'muted' }, `Valid until ${formatTime(link.expires_at)}. Reload this page once it is linked.`));
    } catch (err) {
      clear(box, h('p', { class: 'form-error' }, err.status === 404 ? 'WhatsApp linking is not available on this server.' : err.message));
    }
  }

  async function unlink() {
    try {
      try {
        await del('/user/whatsapp');
      } catch (err) {
        if (err.status !== 404) throw err;
        await put('/user/me', { whatsapp_number: null });
      }
      user = await get('/user/me');
      toast('WhatsApp number unlinked');
      drawWhatsapp();
    } catch (err) {
      toast(err.message, 'error');
    }
  }
}
