// Start-up and the hash router: `#/login`, `#/register`, `#/chat[/session]`, `#/agents`,
// `#/projects[/id[/file?path=…]]`, `#/account`. Hash routes need no server routes, and
// nothing secret ever goes in them.

import { logout, whenSessionEnds } from './api.js';
import { clear, toast } from './dom.js';
import * as session from './session.js';
import * as socket from './socket.js';
import { accountView } from './views/account.js';
import { agentsView } from './views/agents.js';
import { loginView, registerView } from './views/auth.js';
import { chatView } from './views/chat.js';
import { projectsView } from './views/projects.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
let teardown = null;

const routes = {
  login: { view: loginView, public: true },
  register: { view: registerView, public: true },
  chat: { view: chatView },
  agents: { view: agentsView },
  projects: { view: projectsView },
  account: { view: accountView },
};

function parse() {
  const [path, search = ''] = location.hash.replace(/^#\/?/, '').split('?');
  const [section, ...rest] = path.split('/').map(decodeURIComponent);
  return { section: section || 'chat', rest, params: new URLSearchParams(search) };
}

export function go(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

async function render() {
  const route = parse();
  const signedIn = Boolean(session.current());
  const entry = routes[route.section];
  if (!entry) return go('#/chat');
  if (!entry.public && !signedIn) return go('#/login');
  if (entry.public && signedIn) return go('#/chat');
  nav.hidden = !signedIn;
  for (const link of nav.querySelectorAll('a')) {
    if (link.dataset.section === route.section) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (signedIn) socket.start();
  if (typeof teardown === 'function') teardown();
  teardown = null;
  clear(main);
  teardown = await entry.view(main, route);
}

// Signed out: by this tab, another tab, or a refresh the server refused.
session.onChange((current, reason) => {
  if (current) return;
  socket.stop();
  if (reason === 'expired') toast('Your session has ended. Please log in again.', 'error');
  if (!routes[parse().section]?.public) go('#/login');
});
whenSessionEnds(() => {
  if (!routes[parse().section]?.public) go('#/login');
});

document.getElementById('logout').addEventListener('click', async () => {
  socket.stop();
  await logout();
  go('#/login');
});

// The skip link moves focus without touching the hash, which belongs to the router.
document.querySelector('.skip-link').addEventListener('click', (event) => {
  event.preventDefault();
  main.focus();
});

window.addEventListener('hashchange', () => {
  if (location.hash.startsWith('#/') || !location.hash) render();
});
render();
