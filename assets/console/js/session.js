// The signed-in session: tokens in localStorage (so a reload or a new tab stays signed
// in), never in a URL. Refresh tokens are single-use and a reused one revokes the whole
// family, so only one refresh may run at a time across every open tab (Web Locks), and a
// tab that waited uses the pair another tab just obtained instead of spending the old one.

const KEY = 'codesherpa.session';
const listeners = new Set();

export function current() {
  try {
    const saved = JSON.parse(localStorage.getItem(KEY) || 'null');
    return saved && saved.access_token && saved.refresh_token ? saved : null;
  } catch {
    return null;
  }
}

export function save(pair) {
  const previous = current();
  const session = {
    access_token: pair.access_token,
    refresh_token: pair.refresh_token,
    user: pair.user || previous?.user || null,
  };
  localStorage.setItem(KEY, JSON.stringify(session));
  notify(session);
  return session;
}

export function setUser(user) {
  const session = current();
  if (session) {
    session.user = user;
    localStorage.setItem(KEY, JSON.stringify(session));
  }
}

/** Forgets the session; `reason` ('logout' or 'expired') reaches the listeners. */
export function clear(reason = 'logout') {
  localStorage.removeItem(KEY);
  notify(null, reason);
}

/**
 * Called with the new session (or null and a reason) whenever tokens change, in this tab
 * or another (then the reason is 'elsewhere').
 */
export function onChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function notify(session, reason) {
  for (const listener of listeners) listener(session, reason);
}

window.addEventListener('storage', (event) => {
  if (event.key === KEY) notify(current(), 'elsewhere');
});

/** Seconds until the access token expires (from its `exp` claim), or 0. */
export function accessTokenLifetime(session = current()) {
  try {
    const payload = session.access_token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const { exp } = JSON.parse(atob(payload));
    return Math.max(0, exp - Date.now() / 1000);
  } catch {
    return 0;
  }
}

let inFlight = null;

/**
 * Exchanges the refresh token for a new pair; `exchange(refreshToken)` does the HTTP
 * call and returns the pair, or throws. Resolves to the new session, or null when the
 * session is over (the caller then returns to the login screen).
 */
export function refresh(staleAccessToken, exchange) {
  if (!inFlight) {
    inFlight = withLock(() => refreshOnce(staleAccessToken, exchange)).finally(() => {
      inFlight = null;
    });
  }
  return inFlight;
}

async function refreshOnce(staleAccessToken, exchange) {
  const session = current();
  if (!session) return null;
  // Another tab refreshed while we waited for the lock: its pair is the live one.
  if (session.access_token !== staleAccessToken) return session;
  try {
    return save(await exchange(session.refresh_token));
  } catch (err) {
    if (err.status === 401 || err.status === 403 || err.status === 422) {
      clear('expired');
      return null;
    }
    throw err;
  }
}

function withLock(work) {
  if (navigator.locks?.request) {
    return navigator.locks.request('codesherpa.refresh', work);
  }
  return work();
}
