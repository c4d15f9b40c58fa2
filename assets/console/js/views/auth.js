// Log in and register. Field errors from the envelope appear under their fields.

import { login, register } from '../api.js';
import { busy, clearErrors, field, formValues, h, showErrors, toast } from '../dom.js';

function authForm(title, fields, submitLabel, footer, onSubmit) {
  const form = h('form', { class: 'card auth-card', novalidate: true },
    h('h1', {}, title),
    h('p', { class: 'form-error', role: 'alert', hidden: true }),
    fields,
    h('button', { type: 'submit', class: 'primary' }, submitLabel),
    footer);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    await busy(form, async () => {
      try {
        await onSubmit(formValues(form), form);
      } catch (err) {
        showErrors(form, err);
      }
    });
  });
  return form;
}

export function loginView(main) {
  const form = authForm('Log in',
    [
      field('Email', h('input', { name: 'email', type: 'email', autocomplete: 'username', required: true })),
      field('Password', h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true })),
    ],
    'Log in',
    h('p', {}, 'New here? ', h('a', { href: '#/register' }, 'Create an account')),
    async ({ email, password }) => {
      await login(email, password);
      location.hash = '#/chat';
    });
  main.append(h('div', { class: 'auth-page' }, form));
  form.querySelector('input').focus();
}

export function registerView(main) {
  const form = authForm('Create an account',
    [
      field('Name', h('input', { name: 'name', autocomplete: 'name', required: true })),
      field('Email', h('input', { name: 'email', type: 'email', autocomplete: 'email', required: true })),
      field('Password', h('input', { name: 'password', type: 'password', autocomplete: 'new-password', required: true }), '8 to 72 bytes.'),
    ],
    'Create account',
    h('p', {}, 'Already registered? ', h('a', { href: '#/login' }, 'Log in')),
    async ({ name, email, password }) => {
      await register(name, email, password);
      await login(email, password);
      toast(`Welcome, ${name}!`);
      location.hash = '#/chat';
    });
  main.append(h('div', { class: 'auth-page' }, form));
  form.querySelector('input').focus();
}
