// Projects: list and create; one project's settings (repository link, `auto_review`),
// code (sync from GitHub or upload an archive, with status), search with results linking
// to the file view, and its pull-request reviews. Panels whose routes this server does not
// have (404) are left out.

import { ApiError, api, del, get, post, put, query } from '../api.js';
import { busy, clear, clearErrors, field, formValues, formatTime, h, showErrors, toast } from '../dom.js';
import { highlight, languageOf } from '../markdown.js';

export async function projectsView(main, route) {
  const [id, sub] = route.rest;
  if (id && sub === 'file') return fileView(main, id, route.params.get('path'), Number(route.params.get('line')) || 0);
  if (id) return projectView(main, id);
  return listView(main);
}

async function listView(main) {
  const list = h('div', { class: 'cards' });
  const form = h('form', { class: 'card form', novalidate: true },
    h('h2', {}, 'New project'),
    h('p', { class: 'form-error', role: 'alert', hidden: true }),
    field('Name', h('input', { name: 'name', required: true })),
    field('Description', h('input', { name: 'description' })),
    field('GitHub repository', h('input', { name: 'repo_url', type: 'url', placeholder: 'https://github.com/owner/repo' }), 'Optional: pull requests of a linked repository are reviewed.'),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create project')));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    clearErrors(form);
    busy(form, async () => {
      const values = formValues(form);
      const body = { name: values.name };
      if (values.description.trim()) body.description = values.description;
      if (values.repo_url.trim()) body.repo_url = values.repo_url.trim();
      try {
        const project = await post('/projects', body);
        toast('Project created');
        location.hash = `#/projects/${project.id}`;
      } catch (err) {
        showErrors(form, err);
      }
    });
  });
  main.append(h('div', { class: 'page' }, h('h1', {}, 'Projects'), list, form));
  try {
    const page = await get('/projects?limit=100');
    clear(list, page.items.length ? page.items.map((p) => h('article', { class: 'card project' },
      h('h2', {}, h('a', { href: `#/projects/${p.id}` }, p.name)),
      p.description ? h('p', {}, p.description) : null,
      p.repo_url ? h('p', { class: 'muted' }, p.repo_url) : null,
      p.sync ? h('p', { class: 'muted' }, `Code: ${p.sync.status}`) : null)) : h('p', { class: 'muted' }, 'No projects yet.'));
  } catch (err) {
    clear(list, h('p', { class: 'form-error' }, err.message));
  }
}

/** Runs an optional route: resolves to null when this server does not have it (404). */
async function optional(work) {
  try {
    return await work();
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null;
    throw err;
  }
}

async function projectView(main, id) {
  let project;
  try {
    project = await get(`/projects/${encodeURIComponent(id)}`);
  } catch (err) {
    main.append(h('div', { class: 'page' }, h('p', { class: 'form-error' }, err.message), h('a', { href: '#/projects' }, '← Projects')));
    return undefined;
  }
  const base = `/projects/${project.id}`;
  const title = h('h1', {}, project.name);
  const codePanel = h('section', { class: 'card panel', 'aria-labelledby': 'code-h' });
  const accessPanel = h('section', { class: 'card panel', 'aria-labelledby': 'access-h', hidden: true });
  const searchPanel = h('section', { class: 'card panel', 'aria-labelledby': 'search-h', hidden: true });
  const reviewsPanel = h('section', { class: 'card panel', 'aria-labelledby': 'reviews-h', hidden: true });
  let poll = null;

  main.append(h('div', { class: 'page' },
    h('a', { href: '#/projects', class: 'back' }, '← Projects'),
    title,
    settingsForm(),
    accessPanel,
    codePanel,
    searchPanel,
    reviewsPanel,
    h('section', { class: 'card panel danger-zone' },
      h('h2', {}, 'Delete project'),
      h('p', {}, 'Deletes the project and its indexed files. Chats are kept.'),
      h('button', { type: 'button', class: 'danger', onclick: remove }, 'Delete project'))));

  drawAccess();
  drawCode();
  setUpSearch();
  loadReviews();

  function settingsForm() {
    const form = h('form', { class: 'card form', novalidate: true, 'aria-label': 'Project settings' },
      h('h2', {}, 'Settings'),
      h('p', { class: 'form-error', role: 'alert', hidden: true }),
      field('Name', h('input', { name: 'name', value: project.name, required: true })),
      field('Description', h('input', { name: 'description', value: project.description || '' })),
      field('GitHub repository', h('input', { name: 'repo_url', type: 'url', value: project.repo_url || '', placeholder: 'https://github.com/owner/repo' })),
      'auto_review' in project
        ? h('div', { class: 'field check', dataset: { field: 'auto_review' } },
          h('label', {}, h('input', { type: 'checkbox', name: 'auto_review', checked: project.auto_review }), ' Review pull requests automatically'),
          h('p', { class: 'field-error', hidden: true }))
        : null,
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Save')));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      clearErrors(form);
      busy(form, async () => {
        const values = formValues(form);
        const body = {
          name: values.name,
          description: values.description.trim() ? values.description : null,
          repo_url: values.repo_url.trim() ? values.repo_url.trim() : null,
        };
        if ('auto_review' in values) body.auto_review = values.auto_review;
        try {
          project = await put(base, body);
          title.textContent = project.name;
          toast('Project saved');
          drawAccess();
          drawCode();
        } catch (err) {
          showErrors(form, err);
        }
      });
    });
    return form;
  }

  // Whether the owner's connected GitHub account may push to the repository (SPEC §6.2).
  function drawAccess() {
    const access = project.repo_access;
    accessPanel.hidden = !access;
    if (!access) return;
    clear(accessPanel,
      h('h2', { id: 'access-h' }, 'Repository access'),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Status'), h('dd', {}, h('span', { class: `status status-access-${access.status}` }, access.status)),
        access.login ? [h('dt', {}, 'GitHub account'), h('dd', {}, access.login)] : null,
        access.checked_at ? [h('dt', {}, 'Checked'), h('dd', {}, formatTime(access.checked_at))] : null,
        access.reason ? [h('dt', {}, 'Reason'), h('dd', { class: 'access-reason' }, access.reason)] : null),
      access.status === 'verified'
        ? null
        : h('p', { class: 'muted' }, 'Reviews, push re-syncs and private syncs need verified access: ', h('a', { href: '#/account' }, 'connect GitHub'), ' with an account that can push to the repository.'),
      h('div', { class: 'actions' }, h('button', { type: 'button', onclick: checkAccess }, 'Check again')));
  }

  async function checkAccess() {
    try {
      project = await post(`${base}/repo-access`, {});
      drawAccess();
      toast(`Repository access: ${project.repo_access.status}`);
    } catch (err) {
      toast(err.message, 'error');
    }
  }

  function drawCode() {
    clearTimeout(poll);
    const sync = project.sync;
    const upload = h('input', { type: 'file', name: 'archive', accept: '.tar.gz,.tgz,.zip,application/gzip,application/zip' });
    const uploadForm = h('form', { class: 'inline-form', novalidate: true, 'aria-label': 'Upload code' },
      field('Upload a .tar.gz or .zip of the code', upload),
      h('button', { type: 'submit' }, 'Upload'));
    uploadForm.addEventListener('submit', (event) => {
      event.preventDefault();
      const file = upload.files[0];
      if (!file) return;
      busy(uploadForm, async () => {
        const type = /\.zip$/i.test(file.name) ? 'application/zip' : 'application/gzip';
        try {
          await put(`${base}/files`, file, { headers: { 'Content-Type': type } });
          toast('Files uploaded');
          await reload();
        } catch (err) {
          toast(err.message, 'error');
        }
      });
    });
    clear(codePanel,
      h('h2', { id: 'code-h' }, 'Code'),
      sync ? h('dl', { class: 'facts' },
        h('dt', {}, 'Status'), h('dd', {}, h('span', { class: `status status-${sync.status}` }, sync.status)),
        sync.commit ? [h('dt', {}, 'Commit'), h('dd', {}, h('code', {}, sync.commit.slice(0, 12)))] : null,
        sync.files != null ? [h('dt', {}, 'Files'), h('dd', {}, String(sync.files))] : null,
        sync.skipped ? [h('dt', {}, 'Skipped'), h('dd', {}, Array.isArray(sync.skipped) ? String(sync.skipped.length) : String(sync.skipped))] : null,
        sync.synced_at ? [h('dt', {}, 'Synced'), h('dd', {}, formatTime(sync.synced_at))] : null,
        sync.reason ? [h('dt', {}, 'Reason'), h('dd', {}, sync.reason)] : null) : null,
      h('div', { class: 'actions' },
        project.repo_url && sync ? h('button', { type: 'button', onclick: startSync }, 'Sync from GitHub') : null),
      uploadForm);
    // A server without code indexing shows no `sync` on projects: no panel then.
    codePanel.hidden = !sync;
    if (sync && (sync.status === 'queued' || sync.status === 'running')) {
      poll = setTimeout(reload, 2000);
    }
  }

  async function reload() {
    if (!codePanel.isConnected) return;
    try {
      project = await get(base);
      drawAccess();
      drawCode();
    } catch (err) {
      toast(err.message, 'error');
    }
  }

  async function startSync() {
    try {
      await post(`${base}/sync`, {});
      toast('Sync queued');
      await reload();
    } catch (err) {
      toast(err.message, 'error');
    }
  }

  async function setUpSearch() {
    const available = await optional(() => get(`${base}/files${query({ path_prefix: '' })}`)).catch(() => null);
    if (!available) return;
    const results = h('ol', { class: 'search-results', 'aria-live': 'polite' });
    const input = h('input', { name: 'q', type: 'search', required: true, placeholder: 'Search the code', 'aria-label': 'Search the code' });
    const form = h('form', { class: 'inline-form', role: 'search' }, input, h('button', { type: 'submit' }, 'Search'));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (!input.value.trim()) return;
      try {
        const found = await get(`${base}/search${query({ q: input.value, limit: 50 })}`);
        clear(results, found.items.length ? found.items.map((item) => h('li', {},
          h('a', { href: `#/projects/${project.id}/file?${new URLSearchParams({ path: item.path, line: item.line })}` }, `${item.path}:${item.line}`),
          h('pre', { class: 'snippet' }, h('code', {}, item.snippet)))) : h('li', { class: 'muted' }, 'No matches.'));
        results.prepend(h('li', { class: 'muted count' }, `${found.total} matching line${found.total === 1 ? '' : 's'}`));
      } catch (err) {
        clear(results, h('li', { class: 'form-error' }, err.message));
      }
    });
    clear(searchPanel, h('h2', { id: 'search-h' }, 'Search'), form, results);
    searchPanel.hidden = false;
  }

  async function loadReviews() {
    let page;
    try {
      page = await optional(() => get(`${base}/reviews?limit=50`));
    } catch (err) {
      page = null;
      toast(err.message, 'error');
    }
    if (!page) return;
    clear(reviewsPanel, h('h2', { id: 'reviews-h' }, 'Pull-request reviews'),
      page.items.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'reviews' },
        h('thead', {}, h('tr', {}, ['Pull request', 'Head', 'Status', 'Attempts', 'Updated', 'Result'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, page.items.map((r) => h('tr', {},
          h('td', { 'data-label': 'Pull request' }, `${r.repository}#${r.pull_number}`),
          h('td', { 'data-label': 'Head' }, h('code', {}, String(r.head_sha || '').slice(0, 7))),
          h('td', { 'data-label': 'Status' }, h('span', { class: `status status-${r.status}` }, r.status), r.reason ? h('div', { class: 'muted' }, r.reason) : null),
          h('td', { 'data-label': 'Attempts' }, String(r.attempts)),
          h('td', { 'data-label': 'Updated' }, formatTime(r.updated_at)),
          h('td', { 'data-label': 'Result' },
            r.chat_id ? h('a', { href: `#/chat/${encodeURIComponent(`github:${r.repository}#${r.pull_number}`)}` }, 'Review') : null,
            /^https:\/\//.test(r.comment_url || '') ? [' · ', h('a', { href: r.comment_url, target: '_blank', rel: 'noopener noreferrer' }, 'Comment')] : null)))))) : h('p', { class: 'muted' }, 'No reviews yet. Link a repository and open a pull request.'));
    reviewsPanel.hidden = false;
  }

  async function remove() {
    if (!confirm(`Delete the project “${project.name}”?`)) return;
    try {
      await del(base);
      toast('Project deleted');
      location.hash = '#/projects';
    } catch (err) {
      toast(err.message, 'error');
    }
  }

  return () => clearTimeout(poll);
}

async function fileView(main, id, path, line) {
  const back = h('a', { href: `#/projects/${encodeURIComponent(id)}`, class: 'back' }, '← Project');
  const page = h('div', { class: 'page' }, back, h('h1', { class: 'path' }, path || ''));
  main.append(page);
  let file;
  try {
    file = await api('GET', `/projects/${encodeURIComponent(id)}/files/content${query({ path })}`);
  } catch (err) {
    page.append(h('p', { class: 'form-error' }, err.message));
    return;
  }
  const text = typeof file === 'string' ? file : String(file?.content ?? '');
  const lines = text.split('\n');
  const gutter = h('pre', { class: 'gutter', 'aria-hidden': 'true' },
    lines.map((_, i) => h('span', { class: i + 1 === line ? 'target' : null }, `${i + 1}\n`)));
  const code = h('code', {}, text);
  highlight(code, languageOf(path));
  page.append(h('div', { class: 'file-view' }, gutter, h('pre', { class: 'source', tabindex: 0 }, code)));
  gutter.querySelector('.target')?.scrollIntoView({ block: 'center' });
}
