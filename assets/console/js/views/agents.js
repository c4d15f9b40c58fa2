// Agents: the built-in specialists and the user's own, each editable (prompt, model,
// status), created and deleted here.

import { del, get, post, put } from '../api.js';
import { busy, clear, clearErrors, field, formValues, h, showErrors, toast } from '../dom.js';

const STATUSES = ['active', 'inactive', 'processing'];

export async function agentsView(main) {
  const list = h('div', { class: 'cards' });
  const editor = h('div', { class: 'editor' });
  main.append(h('div', { class: 'page' },
    h('div', { class: 'page-head' },
      h('h1', {}, 'Agents'),
      h('button', { type: 'button', class: 'primary', onclick: () => edit(null) }, 'New agent')),
    editor,
    list));
  await load();

  async function load() {
    try {
      const page = await get('/agents?limit=100');
      clear(list, page.items.length ? page.items.map(card) : h('p', { class: 'muted' }, 'No agents yet.'));
    } catch (err) {
      clear(list, h('p', { class: 'form-error' }, err.message));
    }
  }

  function card(agent) {
    return h('article', { class: 'card agent' },
      h('header', {},
        h('h2', {}, agent.name),
        h('span', { class: `status status-${agent.status}` }, agent.status)),
      agent.description ? h('p', {}, agent.description) : null,
      h('dl', { class: 'facts' },
        h('dt', {}, 'Role'), h('dd', {}, agent.role || '—'),
        h('dt', {}, 'Model'), h('dd', {}, agent.model || 'default provider')),
      agent.system_prompt ? h('details', {}, h('summary', {}, 'System prompt'), h('pre', { class: 'prompt' }, agent.system_prompt)) : null,
      h('div', { class: 'actions' },
        h('button', { type: 'button', onclick: () => edit(agent) }, 'Edit'),
        h('button', { type: 'button', class: 'danger', onclick: () => remove(agent) }, 'Delete')));
  }

  function edit(agent) {
    const status = h('select', { name: 'status' }, STATUSES.map((s) => h('option', { value: s, selected: (agent?.status || 'active') === s }, s)));
    const form = h('form', { class: 'card form', novalidate: true },
      h('h2', {}, agent ? `Edit ${agent.name}` : 'New agent'),
      h('p', { class: 'form-error', role: 'alert', hidden: true }),
      field('Name', h('input', { name: 'name', value: agent?.name || '', required: true })),
      field('Description', h('input', { name: 'description', value: agent?.description || '' })),
      h('div', { class: 'row' },
        field('Role', h('input', { name: 'role', value: agent?.role || 'custom' })),
        field('Model', h('input', { name: 'model', value: agent?.model || '', placeholder: 'default' }), 'e.g. local, openai:gpt-4o-mini, bedrock:…'),
        field('Status', status)),
      field('System prompt', h('textarea', { name: 'system_prompt', rows: 6, value: agent?.system_prompt || '' })),
      h('div', { class: 'actions' },
        h('button', { type: 'submit', class: 'primary' }, agent ? 'Save' : 'Create'),
        h('button', { type: 'button', onclick: () => clear(editor) }, 'Cancel')));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      clearErrors(form);
      busy(form, async () => {
        const values = formValues(form);
        const body = { name: values.name, status: values.status, role: values.role };
        for (const key of ['description', 'model', 'system_prompt']) {
          // On update an empty field clears the value; on create it is left out.
          if (values[key].trim()) body[key] = values[key];
          else if (agent) body[key] = null;
        }
        try {
          if (agent) await put(`/agents/${agent.id}`, body);
          else await post('/agents', body);
          toast(agent ? 'Agent saved' : 'Agent created');
          clear(editor);
          await load();
        } catch (err) {
          showErrors(form, err);
        }
      });
    });
    clear(editor, form);
    form.querySelector('input').focus();
  }

  async function remove(agent) {
    if (!confirm(`Delete the agent “${agent.name}”?`)) return;
    try {
      await del(`/agents/${agent.id}`);
      toast('Agent deleted');
      await load();
    } catch (err) {
      toast(err.message, 'error');
    }
  }
}
