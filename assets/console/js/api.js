// The REST client: the envelope unwrapped, the bearer token attached, one refresh and a
// retry on 401, and a clean return to the login screen when the refresh is refused.

import * as session from './session.js';

export const BASE = '/api/v1';

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || (status ? `Request failed (${status})` : 'The server could not be reached'));
    this.status = status;
    this.code = body?.code;
    this.errors = body?.errors || [];
  }
}

let onSessionEnded = () => {};

/** Called once when the session can no longer be refreshed. */
export function whenSessionEnds(handler) {
  onSessionEnded = handler;
}

async function send(method, path, { body, token, headers = {}, raw = false } = {}) {
  const init = { method, headers: { Accept: 'application/json', ...headers } };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body instanceof Blob || body instanceof ArrayBuffer) {
    init.body = body;
  } else if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(BASE + path, init);
  } catch {
    throw new ApiError(0, null);
  }
  if (raw && response.ok) return response;
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    // Not JSON (a proxy's error page): the status alone has to do.
  }
  if (!response.ok || payload?.success === false) {
    throw new ApiError(response.status, payload);
  }
  return payload ? payload.data : null;
}

function exchange(refreshToken) {
  return send('POST', '/auth/refresh', { body: { refresh_token: refreshToken } });
}

/** Refreshes the access token; null when the session is over. */
export async function refreshSession(staleAccessToken = session.current()?.access_token) {
  const renewed = await session.refresh(staleAccessToken, exchange);
  if (!renewed) onSessionEnded();
  return renewed;
}

/** An authenticated call; resolves to the envelope's `data`. */
export async function api(method, path, options = {}) {
  const current = session.current();
  if (!current) {
    onSessionEnded();
    throw new ApiError(401, { message: 'Please log in' });
  }
  try {
    return await send(method, path, { ...options, token: current.access_token });
  } catch (err) {
    if (err.status !== 401) throw err;
    const renewed = await refreshSession(current.access_token);
    if (!renewed) throw err;
    return send(method, path, { ...options, token: renewed.access_token });
  }
}

export const get = (path, options) => api('GET', path, options);
export const post = (path, body, options) => api('POST', path, { ...options, body });
export const put = (path, body, options) => api('PUT', path, { ...options, body });
export const del = (path, options) => api('DELETE', path, options);

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

export async function login(email, password) {
  return session.save(await send('POST', '/auth/login', { body: { email, password } }));
}

export function register(name, email, password) {
  return send('POST', '/auth/register', { body: { name, email, password } });
}

/** Revokes the refresh token on the server, then forgets the session here. */
export async function logout() {
  const current = session.current();
  if (current) {
    try {
      await send('POST', '/auth/logout', {
        body: { refresh_token: current.refresh_token },
        token: current.access_token,
      });
    } catch {
      // Already revoked or unreachable: the local session is dropped either way.
    }
  }
  session.clear();
}
