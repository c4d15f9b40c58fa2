// The `/ws` client: one socket per tab, opened with `?token=` (the only place a token goes
// in a URL: browsers cannot set headers on a WebSocket), kept alive across token refreshes
// with `auth` frames, and reopened with backoff when it drops.

import { refreshSession } from './api.js';
import * as session from './session.js';

const pending = new Map(); // request_id -> handlers of one chat
const broadcastListeners = new Set();
const stateListeners = new Set();
let socket = null;
let attempts = 0;
let reconnectTimer = null;
let stopped = true;

export function isOpen() {
  return socket?.readyState === WebSocket.OPEN;
}

export function onBroadcast(listener) {
  broadcastListeners.add(listener);
  return () => broadcastListeners.delete(listener);
}

export function onState(listener) {
  stateListeners.add(listener);
  listener(isOpen());
  return () => stateListeners.delete(listener);
}

function announce() {
  for (const listener of stateListeners) listener(isOpen());
}

export function start() {
  stopped = false;
  if (!socket) connect();
}

export function stop() {
  stopped = true;
  clearTimeout(reconnectTimer);
  if (socket) socket.close(1000, 'logged out');
  socket = null;
  failPending('Disconnected');
}

async function connect() {
  let current = session.current();
  if (!current || stopped) return;
  // An upgrade refused for an expired token gives the page no status to act on.
  if (session.accessTokenLifetime(current) < 15) current = await refreshSession(current.access_token).catch(() => null);
  if (!current || stopped) return;
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const ws = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(current.access_token)}`);
  socket = ws;
  let opened = false;
  ws.addEventListener('open', () => {
    opened = true;
    attempts = 0;
    announce();
  });
  ws.addEventListener('message', (event) => dispatch(event.data));
  ws.addEventListener('close', async (event) => {
    if (socket !== ws) return;
    socket = null;
    announce();
    failPending('The connection was lost; the answer is kept in the session history.');
    if (stopped) return;
    // Refused before opening, or closed for an expired token: renew it before retrying.
    if (!opened || event.code === 4401) {
      await refreshSession(session.current()?.access_token).catch(() => null);
    }
    attempts += 1;
    const delay = Math.min(30000, 500 * 2 ** Math.min(attempts, 6)) * (0.5 + Math.random() / 2);
    reconnectTimer = setTimeout(connect, delay);
  });
}

// Keep the open socket's authentication in step with refreshed tokens.
session.onChange((current) => {
  if (!current) return;
  if (isOpen()) socket.send(JSON.stringify({ type: 'auth', token: current.access_token }));
});

function dispatch(data) {
  let frame;
  try {
    frame = JSON.parse(data);
  } catch {
    return;
  }
  if (frame.type === 'message') {
    for (const listener of broadcastListeners) listener(frame.chat);
    return;
  }
  const handlers = frame.request_id ? pending.get(String(frame.request_id)) : null;
  if (!handlers) return;
  if (frame.type === 'status') handlers.status?.(frame);
  else if (frame.type === 'delta') handlers.delta?.(frame);
  else if (frame.type === 'response') {
    pending.delete(String(frame.request_id));
    handlers.response?.(frame);
  } else if (frame.type === 'error') {
    pending.delete(String(frame.request_id));
    handlers.error?.(frame);
  }
}

function failPending(reason) {
  for (const [id, handlers] of pending) {
    pending.delete(id);
    handlers.error?.({ content: reason, code: 'disconnected' });
  }
}

/**
 * Sends a chat frame; `handlers` get `status`, `delta`, `response` and `error` frames.
 * Returns the request id (for `cancel`).
 */
export function chat(body, handlers) {
  const requestId = crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
  pending.set(requestId, handlers);
  socket.send(JSON.stringify({ type: 'chat', request_id: requestId, ...body }));
  return requestId;
}

export function cancel(requestId) {
  if (isOpen()) socket.send(JSON.stringify({ type: 'cancel', request_id: requestId }));
}
