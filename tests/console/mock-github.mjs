// A stand-in for GitHub's side of connecting an account, on one port serving both the web
// host (GITHUB_WEB_URL) and the REST API (GITHUB_API_URL), as the server speaks them:
// - `GET /login/oauth/authorize`: the user approves at once; the browser is sent back to
//   the redirect_uri with a fresh `code` and the given `state` (after the same checks as
//   GitHub: a known client_id, the OAuth App's registered callback URL);
// - `POST /login/oauth/access_token`: client id and secret checked, each code works once
//   (and only with the redirect_uri it was issued for); refusals are 200 with `error`, as
//   GitHub answers them, JSON only when asked with `Accept: application/json`;
// - `GET /user` for the issued tokens (401 otherwise);
// - `GET /repos/{owner}/{repo}` with this user's `permissions` on that repository, 404 for
//   a repository they cannot see.
// Permissions can be changed while the test runs (`grant`), and every request is logged.

import { randomBytes } from 'node:crypto';
import http from 'node:http';

const ROLES = ['pull', 'triage', 'push', 'maintain', 'admin'];

/** GitHub's `permissions` object for one role. */
export function role(name) {
  const level = ROLES.indexOf(name);
  if (level < 0) throw new Error(`not a GitHub role: ${name}`);
  return Object.fromEntries(ROLES.map((r, i) => [r, i <= level]));
}

function json(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
}

function bearer(req) {
  const match = /^(?:Bearer|token) (\S+)$/i.exec(req.headers.authorization || '');
  return match ? match[1] : null;
}

/**
 * Starts the mock. `user` is who approves ({login, id}); `repositories` maps
 * `owner/repo` to a role name. Resolves to {server, url, clientId, clientSecret, log,
 * registerCallback(url), grant(repository, roleName | null), issued}.
 */
export function startGithubMock({ user, repositories = {}, clientId = 'Iv1.console-test', clientSecret = 'console-test-secret' }) {
  const permissions = new Map(Object.entries(repositories).map(([repo, name]) => [repo.toLowerCase(), role(name)]));
  const codes = new Map(); // code → { redirectUri, expires }
  const tokens = new Set();
  const log = [];
  const issued = []; // { code, state } in the order the authorize page sent them
  let callback = null; // the OAuth App's registered callback URL

  function authorize(req, res, url) {
    const params = url.searchParams;
    if (params.get('client_id') !== clientId) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not Found: no such OAuth App');
      return;
    }
    const redirectUri = params.get('redirect_uri') || callback;
    if (!redirectUri || (callback && redirectUri !== callback)) {
      res.writeHead(400, { 'Content-Type': 'text/plain' })
        .end(`The redirect_uri is not associated with this application: ${redirectUri} (registered: ${callback})`);
      return;
    }
    const code = randomBytes(10).toString('hex');
    codes.set(code, { redirectUri, expires: Date.now() + 10 * 60 * 1000 });
    const back = new URL(redirectUri);
    back.searchParams.set('code', code);
    if (params.has('state')) back.searchParams.set('state', params.get('state'));
    issued.push({ code, state: params.get('state') });
    res.writeHead(302, { Location: back.toString() }).end();
  }

  function exchange(req, res, body) {
    const form = /application\/json/i.test(req.headers['content-type'] || '')
      ? Object.fromEntries(Object.entries(JSON.parse(body || '{}')).map(([k, v]) => [k, String(v)]))
      : Object.fromEntries(new URLSearchParams(body));
    const answer = (fields) => {
      if (/application\/json/i.test(req.headers.accept || '')) json(res, 200, fields);
      else res.writeHead(200, { 'Content-Type': 'application/x-www-form-urlencoded' }).end(new URLSearchParams(fields).toString());
    };
    if (form.client_id !== clientId || form.client_secret !== clientSecret) {
      answer({ error: 'incorrect_client_credentials', error_description: 'The client_id and/or client_secret passed are incorrect.' });
      return;
    }
    const grant = codes.get(form.code);
    codes.delete(form.code); // a code works once, whatever happens next
    if (!grant || grant.expires < Date.now()) {
      answer({ error: 'bad_verification_code', error_description: 'The code passed is incorrect or expired.' });
      return;
    }
    if (form.redirect_uri && form.redirect_uri !== grant.redirectUri) {
      answer({ error: 'redirect_uri_mismatch', error_description: 'The redirect_uri MUST match the registered callback URL for this application.' });
      return;
    }
    const token = `gho_${randomBytes(18).toString('hex')}`;
    tokens.add(token);
    answer({ access_token: token, token_type: 'bearer', scope: '' });
  }

  function api(req, res, url) {
    if (!tokens.has(bearer(req))) {
      json(res, 401, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' });
      return;
    }
    if (url.pathname === '/user') {
      json(res, 200, { login: user.login, id: user.id, type: 'User' });
      return;
    }
    const repo = /^\/repos\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    const granted = repo && permissions.get(`${repo[1]}/${repo[2]}`.toLowerCase());
    if (!granted) {
      json(res, 404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest/repos/repos#get-a-repository' });
      return;
    }
    json(res, 200, {
      name: repo[2],
      full_name: `${repo[1]}/${repo[2]}`,
      private: true,
      default_branch: 'main',
      permissions: granted,
    });
  }

  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (part) => { body += part; });
    req.on('end', () => {
      const url = new URL(req.url, 'http://mock');
      log.push(`${req.method} ${url.pathname}`);
      try {
        if (req.method === 'GET' && url.pathname === '/login/oauth/authorize') authorize(req, res, url);
        else if (req.method === 'POST' && url.pathname === '/login/oauth/access_token') exchange(req, res, body);
        else if (req.method === 'GET' && (url.pathname === '/user' || url.pathname.startsWith('/repos/'))) api(req, res, url);
        else json(res, 404, { message: 'Not Found' });
      } catch (err) {
        json(res, 500, { message: String(err) });
      }
    });
  });

  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({
      server,
      url: `http://127.0.0.1:${server.address().port}`,
      clientId,
      clientSecret,
      log,
      issued,
      /** The callback URL registered for the OAuth App: authorize refuses any other. */
      registerCallback(url) { callback = url; },
      /** Gives the user a role on a repository (null: they can no longer see it). */
      grant(repository, roleName) {
        if (roleName) permissions.set(repository.toLowerCase(), role(roleName));
        else permissions.delete(repository.toLowerCase());
      },
    }));
  });
}
