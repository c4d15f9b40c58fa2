// Drives the web console in headless Chromium (Debian's, through playwright-core) against
// the real server: register and log in, chat with streaming, stop a generation, a review
// table from a diff, XSS payloads staying inert, agents, projects, account, connecting
// GitHub (OAuth through a mock GitHub) and each project's repository access, live chats
// from elsewhere, reload, logout. Screenshots of the main screens at desktop and phone
// widths, light and dark, go to $SCREENSHOT_DIR.
//
// Environment: CODESHERPA_BIN (the server binary), CHROMIUM (default /usr/bin/chromium),
// SCREENSHOT_DIR (default ./artifacts).

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startGithubMock } from './mock-github.mjs';
import { startMock } from './mock-openai.mjs';
import { tarGz } from './tar.mjs';

const BIN = process.env.CODESHERPA_BIN;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = path.resolve(process.env.SCREENSHOT_DIR || 'artifacts');
const WAIT = { timeout: 20000 };
if (!BIN) throw new Error('CODESHERPA_BIN must name the server binary');
mkdirSync(SHOTS, { recursive: true });

let failures = 0;
let currentStep = '';
let skipped = 0;
const cleanups = [];

function log(...args) { console.log(...args); }
function check(condition, what) {
  if (!condition) throw new Error(`check failed: ${what}`);
}
async function step(name, body) {
  process.stdout.write(`• ${name} … `);
  currentStep = name;
  try {
    const result = await body();
    if (result === 'skip') { skipped += 1; log('SKIPPED'); } else log('ok');
  } catch (err) {
    failures += 1;
    log('FAILED');
    console.error(err);
    throw err;
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

async function startServer(mockUrl, github) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'codesherpa-console-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  github.registerCallback(`${base}/api/v1/integrations/github/callback`);
  const server = spawn(BIN, [], {
    cwd: dir, // no developer .env is read
    env: {
      PATH: process.env.PATH,
      HOST: '127.0.0.1',
      PORT: String(port),
      DATABASE_URL: `sqlite://${path.join(dir, 'console.db')}`,
      DEBUG: 'true',
      SECRET_KEY: randomBytes(32).toString('hex'),
      BCRYPT_ROUNDS: '4',
      LOG_FORMAT: 'json',
      RUST_LOG: 'warn',
      OPENAI_API_KEY: 'test-key',
      OPENAI_BASE_URL: mockUrl,
      RATE_LIMIT_AUTH_PER_MINUTE: '0',
      // GitHub's web host and API are the mock; GitHub sends the browser back to PUBLIC_URL.
      GITHUB_WEB_URL: github.url,
      GITHUB_API_URL: github.url,
      GITHUB_CLIENT_ID: github.clientId,
      GITHUB_CLIENT_SECRET: github.clientSecret,
      PUBLIC_URL: base,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  cleanups.push(() => server.kill('SIGTERM'));
  for (let i = 0; i < 200; i += 1) {
    if (server.exitCode !== null) throw new Error(`server exited with ${server.exitCode}`);
    try {
      if ((await fetch(`${base}/health`)).ok) return base;
    } catch { /* not up yet */ }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('server did not start');
}

async function shoot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: false });
}

const storedSession = (page) => page.evaluate(() => JSON.parse(localStorage.getItem('codesherpa.session')));

async function sendChat(page, text, { agent = null, context = null } = {}) {
  if (agent) await page.getByLabel('Agent').selectOption({ label: agent });
  else await page.getByLabel('Agent').selectOption('');
  if (context) {
    await page.locator('details.context summary').click();
    await page.getByLabel('Code context').fill(context);
  }
  await page.getByLabel('Message').fill(text);
  await page.getByRole('button', { name: 'Send' }).click();
}

const lastAnswer = (page) => page.locator('.bubble.answer').last();
const finished = (page) => page.waitForFunction(() => {
  const bubble = [...document.querySelectorAll('.bubble.answer')].pop();
  return bubble && bubble.querySelector('.answer-body');
}, null, WAIT);

const DIFF = `diff --git a/src/payments.rs b/src/payments.rs
--- a/src/payments.rs
+++ b/src/payments.rs
@@ -1,3 +1,8 @@
 pub fn charge(amount: u64) -> u64 {
+    let api_key = "sk_live_51HardCodedSecretValue";
+    let rate: u64 = std::env::var("RATE").unwrap().parse().unwrap();
+    println!("charging {} with {}", amount, api_key);
+    // TODO: remove before release
     amount * rate
 }
`;

const GITHUB_USER = { login: 'ada-gh', id: 5150 };
const accessPanel = (page) => page.locator('section[aria-labelledby="access-h"]');
const githubSection = (page) => page.locator('section[aria-labelledby="gh-h"]');

/** Creates a project from the Projects screen and waits for its page. */
async function createProject(page, name, repoUrl) {
  await page.locator('#nav').getByRole('link', { name: 'Projects', exact: true }).click();
  await page.getByRole('heading', { name: 'Projects', exact: true }).waitFor(WAIT);
  await page.getByLabel('Name').fill(name);
  await page.getByLabel('GitHub repository').fill(repoUrl);
  await page.getByRole('button', { name: 'Create project' }).click();
  await page.waitForURL(/#\/projects\/\d+$/, WAIT);
  await page.getByRole('heading', { name }).waitFor(WAIT);
  return page.url();
}

async function main() {
  const mock = await startMock();
  cleanups.push(() => mock.server.close());
  const github = await startGithubMock({
    user: GITHUB_USER,
    repositories: { 'acme/payments': 'push' }, // and nothing else: other repositories are 404
  });
  cleanups.push(() => github.server.close());
  const base = await startServer(mock.url, github);
  log(`server at ${base}`);

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  cleanups.push(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'light' });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (msg) => {
    // Refused requests (401 before a refresh, 404 for absent panels, 422 for invalid
    // forms) are the console doing its job; anything else is a problem.
    if (msg.type() === 'error' && !/Failed to load resource: the server responded with a status of (401|404|422)\b/.test(msg.text())) {
      problems.push(`[${currentStep}] ${msg.text()}`);
    }
  });
  page.on('pageerror', (err) => problems.push(`[${currentStep}] page error: ${err.message}`));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (event) => {
      console.error(`CSP violation: ${event.violatedDirective} ${event.blockedURI}`);
    });
  });

  const email = `console-${Date.now()}@example.com`;
  let password = 'correct horse battery';

  await step('the console opens on the login screen', async () => {
    const response = await page.goto(base);
    check(response.headers()['content-security-policy']?.includes("script-src 'self'"), 'CSP header on /');
    await page.waitForURL(/#\/login$/, WAIT);
    await page.getByRole('heading', { name: 'Log in' }).waitFor(WAIT);
    await shoot(page, 'login-desktop-light');
  });

  await step('registration errors from the envelope appear next to their fields', async () => {
    await page.getByRole('link', { name: 'Create an account' }).click();
    await page.getByLabel('Name').fill('Ada');
    await page.getByLabel('Email').fill('not-an-email');
    await page.getByLabel('Password').fill('short');
    await page.getByRole('button', { name: 'Create account' }).click();
    const emailError = page.locator('.field[data-field="email"] .field-error');
    await emailError.waitFor({ state: 'visible', ...WAIT });
    check((await emailError.textContent()).length > 0, 'email error text');
    await page.locator('.field[data-field="password"] .field-error').waitFor({ state: 'visible', ...WAIT });
    check(await page.getByLabel('Email').getAttribute('aria-invalid') === 'true', 'email marked invalid');
  });

  await step('register, then log out and log in again', async () => {
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.waitForURL(/#\/chat/, WAIT);
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL(/#\/login$/, WAIT);
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill('wrong password!');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.locator('.form-error').waitFor({ state: 'visible', ...WAIT });
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(/#\/chat/, WAIT);
    await page.locator('.connection.on').waitFor(WAIT);
  });

  await step('a chat streams over /ws and names the agent that answered', async () => {
    await sendChat(page, 'Please explain this code', { context: 'fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n' });
    await finished(page);
    const who = await lastAnswer(page).locator('.who').textContent();
    check(/Codebase Sherpa/.test(who), `agent named (got "${who}")`);
    await lastAnswer(page).locator('.explanation').waitFor(WAIT);
    check(await lastAnswer(page).locator('.concepts dt').count() > 0, 'key concepts listed');
    check(await lastAnswer(page).locator('.steps li').count() > 0, 'learning steps listed');
    check(/#\/chat\/.+/.test(page.url()), 'the new session is in the address');
  });

  await step('agents: create one that uses the OpenAI-compatible mock, then edit it', async () => {
    await page.getByRole('link', { name: 'Agents' }).click();
    await page.getByRole('heading', { name: 'Agents' }).waitFor(WAIT);
    await page.getByRole('button', { name: 'New agent' }).click();
    await page.getByLabel('Name').fill('Echo');
    await page.getByLabel('Model').fill('openai:mock');
    await page.getByLabel('System prompt').fill('Repeat things.');
    await page.getByRole('button', { name: 'Create' }).click();
    const card = page.locator('article.agent', { hasText: 'Echo' });
    await card.waitFor(WAIT);
    await card.getByRole('button', { name: 'Edit' }).click();
    await page.getByLabel('System prompt').fill('Repeat everything you are told.');
    await page.getByRole('button', { name: 'Save' }).click();
    await card.locator('details summary').click();
    await card.getByText('Repeat everything you are told.').waitFor(WAIT);
    await shoot(page, 'agents-desktop-light');
  });

  await step('deltas appear as they arrive, and Stop keeps the partial answer', async () => {
    await page.getByRole('link', { name: 'Chat' }).click();
    await page.getByRole('button', { name: 'New chat' }).click();
    await sendChat(page, 'slow answer please', { agent: 'Echo' });
    await page.waitForFunction(() => {
      const body = [...document.querySelectorAll('.bubble.answer')].pop()?.querySelector('.streaming');
      return body && /word3 /.test(body.textContent);
    }, null, WAIT);
    check(!(await lastAnswer(page).locator('.answer-body').count()), 'still streaming when deltas show');
    await page.getByRole('button', { name: 'Stop' }).click();
    await finished(page);
    await lastAnswer(page).getByText('stopped').waitFor(WAIT);
    const text = await lastAnswer(page).locator('.answer-body').textContent();
    check(/word3/.test(text) && !/word79/.test(text), 'the partial answer is kept');
  });

  await step('model output with XSS payloads stays inert', async () => {
    await sendChat(page, 'show me the payloads', { agent: 'Echo' });
    await finished(page);
    const body = lastAnswer(page).locator('.answer-body');
    await body.getByText('Payloads follow.').waitFor(WAIT);
    check(await body.locator('img, script, svg, [onerror], [onload]').count() === 0, 'no active elements');
    check(await body.locator('a[href^="javascript:" i]').count() === 0, 'no javascript: links');
    // Raw HTML from the model is shown as text, not parsed.
    await body.getByText('<img src=x onerror=', { exact: false }).waitFor(WAIT);
    for (const text of ['click me', 'evil link']) {
      const link = body.getByText(text);
      if (await link.count()) await link.first().click();
    }
    await body.locator('pre code.hljs').waitFor(WAIT);
    await page.waitForTimeout(300); // give an injected handler every chance to run
    check(await page.evaluate(() => window.__xss) === undefined, 'no payload ran');
  });

  await step('a diff gets a Review Monk table with severity, file:line, suggestion and fix', async () => {
    await page.getByRole('button', { name: 'New chat' }).click();
    await sendChat(page, `Please review this diff\n\n${DIFF}`);
    await finished(page);
    const table = lastAnswer(page).locator('table.findings');
    await table.waitFor(WAIT);
    check(/Review Monk/.test(await lastAnswer(page).locator('.who').textContent()), 'Review Monk answered');
    check(await table.locator('tbody tr').count() >= 2, 'several findings');
    const locations = await table.locator('code.location').allTextContents();
    check(locations.some((l) => /^src\/payments\.rs:\d+$/.test(l)), `file:line shown (${locations})`);
    check(await table.locator('.severity').count() > 0, 'severity shown');
    await shoot(page, 'chat-review-desktop-light');
  });

  await step('a chat made over REST appears live in the open session', async () => {
    const { access_token: token } = await storedSession(page);
    const sessionId = decodeURIComponent(page.url().split('#/chat/')[1]);
    const response = await fetch(`${base}/api/v1/chat`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ message: 'hello from another client', session_id: sessionId }),
    });
    check(response.status === 201, `REST chat created (${response.status})`);
    await page.locator('.bubble.user', { hasText: 'hello from another client' }).waitFor(WAIT);
  });

  await step('projects: create one, link a repository, and upload and search code', async () => {
    await page.getByRole('link', { name: 'Projects' }).click();
    await page.getByLabel('Name').fill('Payments');
    await page.getByLabel('Description').fill('The payment service');
    await page.getByRole('button', { name: 'Create project' }).click();
    await page.waitForURL(/#\/projects\/\d+$/, WAIT);
    await page.getByLabel('GitHub repository').fill('https://github.com/example/payments');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Project saved').waitFor(WAIT);
    const upload = page.getByLabel('Upload a .tar.gz or .zip of the code');
    if (!(await upload.isVisible())) {
      log('\n  (this server has no code upload yet: upload and search SKIPPED)');
      await shoot(page, 'project-desktop-light');
      return 'skip';
    }
    await upload.setInputFiles({
      name: 'code.tar.gz',
      mimeType: 'application/gzip',
      buffer: tarGz({ 'src/payments.rs': 'pub fn charge(amount: u64) -> u64 {\n    amount * 2\n}\n', 'README.md': '# Payments\n' }),
    });
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    await page.getByText('Files uploaded').waitFor(WAIT);
    await page.getByRole('searchbox').fill('charge');
    await page.getByRole('button', { name: 'Search' }).click();
    const hit = page.locator('.search-results a', { hasText: 'src/payments.rs:1' });
    await hit.waitFor(WAIT);
    await shoot(page, 'project-desktop-light');
    await hit.click();
    await page.locator('.file-view .source code', { hasText: 'amount * 2' }).waitFor(WAIT);
    return undefined;
  });

  await step('account: profile, WhatsApp linking code', async () => {
    await page.getByRole('link', { name: 'Account' }).click();
    await page.getByLabel('Name').fill('Ada Lovelace');
    await page.locator('form[aria-label="Profile"]').getByRole('button', { name: 'Save' }).click();
    await page.getByText('Profile saved').waitFor(WAIT);
    await page.getByRole('button', { name: /linking code/ }).click();
    await page.locator('.link-code p').first().waitFor(WAIT);
    await page.evaluate(() => window.scrollTo(0, 0));
    await shoot(page, 'account-desktop-light');
  });

  await step('account: the WhatsApp review notification switch is saved', async () => {
    const notify = page.getByLabel(/Message me on WhatsApp/);
    check(!(await notify.isChecked()), 'off by default');
    await notify.check();
    await page.locator('.toast', { hasText: 'WhatsApp review notifications on' }).waitFor(WAIT);
    await page.getByRole('link', { name: 'Agents' }).click();
    await page.getByRole('link', { name: 'Account' }).click();
    await page.getByLabel(/Message me on WhatsApp/).waitFor(WAIT);
    check(await page.getByLabel(/Message me on WhatsApp/).isChecked(), 'still on after coming back');
    await page.getByLabel(/Message me on WhatsApp/).uncheck();
    await page.locator('.toast', { hasText: 'WhatsApp review notifications off' }).waitFor(WAIT);
  });

  await step('account: a password change needs the current password and keeps us signed in', async () => {
    const form = page.locator('form[aria-label="Change password"]');
    await form.getByLabel('Current password', { exact: true }).fill('not my password');
    await form.getByLabel('New password', { exact: true }).fill('a brand new passphrase');
    await form.getByLabel('Repeat the new password').fill('a brand new passphrase');
    await form.getByRole('button', { name: 'Change password' }).click();
    await form.locator('.field[data-field="current_password"] .field-error').waitFor({ state: 'visible', ...WAIT });
    await form.getByLabel('Current password', { exact: true }).fill(password);
    await form.getByRole('button', { name: 'Change password' }).click();
    await page.getByText('Password changed').waitFor(WAIT);
    password = 'a brand new passphrase';
    await page.getByRole('link', { name: 'Agents' }).click();
    await page.locator('article.agent', { hasText: 'Echo' }).waitFor(WAIT);
  });

  let verifiedProject = '';

  await step('GitHub: Connect GitHub goes through GitHub and lands back on the account screen, connected', async () => {
    await page.getByRole('link', { name: 'Account' }).click();
    const section = githubSection(page);
    const connect = section.getByRole('button', { name: 'Connect GitHub' });
    await connect.waitFor(WAIT);
    check(await section.locator('.github-login').count() === 0, 'not connected yet');
    await connect.click();
    // The tab goes to GitHub's authorize page, which sends it to the server's callback,
    // which sends it back to the console.
    await section.locator('.github-login', { hasText: GITHUB_USER.login }).waitFor(WAIT);
    check(page.url().startsWith(`${base}/#/account`), `back on the account screen (${page.url()})`);
    await page.locator('.toast', { hasText: 'GitHub connected' }).waitFor(WAIT);
    await section.getByRole('button', { name: 'Disconnect GitHub' }).waitFor(WAIT);
    for (const call of ['GET /login/oauth/authorize', 'POST /login/oauth/access_token', 'GET /user']) {
      check(github.log.includes(call), `GitHub saw ${call} (${github.log.join(', ')})`);
    }
    check(github.issued.length === 1, `one authorization (${github.issued.length})`);
    // The state worked once: the same callback again is refused, and nothing changes.
    const { code, state } = github.issued[0];
    const replay = await fetch(`${base}/api/v1/integrations/github/callback?${new URLSearchParams({ code, state })}`, { redirect: 'manual' });
    check(replay.status === 400, `a replayed callback is refused (${replay.status})`);
    await section.scrollIntoViewIfNeeded();
    await shoot(page, 'account-github-desktop-light');
  });

  await step('GitHub: a reload of the landing page keeps the account, without announcing it again', async () => {
    await page.reload();
    await githubSection(page).locator('.github-login', { hasText: GITHUB_USER.login }).waitFor(WAIT);
    // The toast is shown before the section is drawn: none by now means none at all.
    check(await page.locator('.toast', { hasText: 'GitHub connected' }).count() === 0, '"GitHub connected" is not announced again');
  });

  await step('GitHub: a repository the account can push to shows verified access with the login', async () => {
    verifiedProject = await createProject(page, 'Payments API', 'https://github.com/acme/payments');
    const panel = accessPanel(page);
    await panel.locator('.status-access-verified', { hasText: 'verified' }).waitFor(WAIT);
    await panel.locator('dd', { hasText: GITHUB_USER.login }).waitFor(WAIT);
    check(await panel.locator('.access-reason').count() === 0, 'no reason when verified');
    check(github.log.includes('GET /repos/acme/payments'), 'the access was asked of GitHub');
    await panel.scrollIntoViewIfNeeded();
    await shoot(page, 'project-access-desktop-light');
  });

  await step('GitHub: a repository the account cannot see is denied with the reason; Check again re-checks', async () => {
    await createProject(page, 'Ledger', 'https://github.com/acme/ledger');
    const panel = accessPanel(page);
    await panel.locator('.status-access-denied', { hasText: 'denied' }).waitFor(WAIT);
    const reason = await panel.locator('.access-reason').textContent();
    check(/acme\/ledger/.test(reason) && reason.includes(GITHUB_USER.login), `the reason names the repository and the login (${reason})`);
    await panel.getByRole('link', { name: 'connect GitHub' }).waitFor(WAIT);
    await panel.scrollIntoViewIfNeeded();
    await shoot(page, 'project-access-denied-desktop-light');
    // The user is given push on GitHub: Check again verifies it.
    github.grant('acme/ledger', 'push');
    await panel.getByRole('button', { name: 'Check again' }).click();
    await page.locator('.toast', { hasText: 'Repository access: verified' }).waitFor(WAIT);
    await panel.locator('.status-access-verified').waitFor(WAIT);
    check(await panel.locator('.access-reason').count() === 0, 'the reason is gone once verified');
    // Read access only is not enough.
    github.grant('acme/ledger', 'pull');
    await panel.getByRole('button', { name: 'Check again' }).click();
    await panel.locator('.status-access-denied').waitFor(WAIT);
    await panel.locator('.access-reason', { hasText: 'may only read acme/ledger' }).waitFor(WAIT);
  });

  await step('GitHub: Disconnect GitHub offers Connect again, and the verified project is unverified', async () => {
    await page.getByRole('link', { name: 'Account' }).click();
    const section = githubSection(page);
    await section.getByRole('button', { name: 'Disconnect GitHub' }).click();
    await page.locator('.toast', { hasText: 'GitHub disconnected' }).waitFor(WAIT);
    await section.getByRole('button', { name: 'Connect GitHub' }).waitFor(WAIT);
    check(await section.locator('.github-login').count() === 0, 'the login is gone');
    await page.goto(verifiedProject);
    await page.reload();
    const panel = accessPanel(page);
    await panel.locator('.status-access-unverified', { hasText: 'unverified' }).waitFor(WAIT);
    await panel.locator('.access-reason', { hasText: 'disconnected' }).waitFor(WAIT);
  });

  await step('a reload keeps the session and the conversation', async () => {
    await page.goto(`${base}/#/chat`);
    await page.reload();
    await page.locator('.sessions a').first().waitFor(WAIT);
    check(!(await page.locator('#nav').isHidden()), 'still logged in');
    await page.locator('.sessions a', { hasText: 'Please review this diff' }).click();
    await page.locator('table.findings').waitFor(WAIT);
  });

  await step('an expired access token is refreshed without the user noticing', async () => {
    const before = await storedSession(page);
    await page.evaluate(() => {
      const saved = JSON.parse(localStorage.getItem('codesherpa.session'));
      saved.access_token = 'expired.or.garbage';
      localStorage.setItem('codesherpa.session', JSON.stringify(saved));
    });
    await page.getByRole('link', { name: 'Agents' }).click();
    await page.locator('article.agent', { hasText: 'Echo' }).waitFor(WAIT);
    const after = await storedSession(page);
    check(after.refresh_token !== before.refresh_token, 'the refresh token rotated');
  });

  await step('screens at phone width, light and dark', async () => {
    for (const scheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme: scheme });
      await page.setViewportSize({ width: 1280, height: 800 });
      await page.goto(`${base}/#/chat`);
      await page.locator('.sessions a', { hasText: 'Please review this diff' }).click();
      await page.locator('table.findings').waitFor(WAIT);
      if (scheme === 'dark') await shoot(page, 'chat-review-desktop-dark');
      await page.setViewportSize({ width: 390, height: 844 });
      await page.locator('table.findings').scrollIntoViewIfNeeded();
      await shoot(page, `chat-review-phone-${scheme}`);
      await page.goto(`${base}/#/agents`);
      await page.locator('article.agent').first().waitFor(WAIT);
      await shoot(page, `agents-phone-${scheme}`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      check(overflow <= 1, `no sideways scrolling at phone width (${overflow}px)`);
    }
    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  await step('the console works by keyboard', async () => {
    await page.goto(`${base}/#/agents`);
    await page.reload();
    await page.locator('article.agent').first().waitFor(WAIT);
    await page.keyboard.press('Tab');
    const first = await page.evaluate(() => document.activeElement?.textContent);
    check(/Skip to content/.test(first), `first Tab reaches the skip link (${first})`);
    await page.keyboard.press('Enter');
    check(await page.evaluate(() => document.activeElement?.id) === 'main', 'the skip link moves focus to the content');
    await page.getByRole('link', { name: 'Chat' }).press('Enter');
    await page.getByLabel('Message').waitFor(WAIT);
    const focused = await page.evaluate(() => `${document.activeElement?.tagName} ${document.activeElement?.name || document.activeElement?.textContent?.slice(0, 20)}`);
    check(focused === 'TEXTAREA message', `the chat screen focuses the message box (${focused})`);
    await page.keyboard.type('keyboard hello');
    await page.keyboard.press('Control+Enter');
    await page.locator('.bubble.user', { hasText: 'keyboard hello' }).waitFor(WAIT);
    await finished(page);
  });

  await step('logout revokes the refresh token and returns to login', async () => {
    const { refresh_token: refreshToken } = await storedSession(page);
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL(/#\/login$/, WAIT);
    check(await storedSession(page) === null, 'tokens forgotten');
    const response = await fetch(`${base}/api/v1/auth/refresh`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ refresh_token: refreshToken }),
    });
    check(response.status === 401, `the old refresh token is refused (${response.status})`);
    await page.goto(`${base}/#/agents`);
    await page.waitForURL(/#\/login$/, WAIT);
  });

  await step('a refused refresh returns cleanly to the login screen', async () => {
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(/#\/chat/, WAIT);
    await page.evaluate(() => {
      const saved = JSON.parse(localStorage.getItem('codesherpa.session'));
      saved.access_token = 'expired.or.garbage';
      saved.refresh_token = 'revoked.or.garbage';
      localStorage.setItem('codesherpa.session', JSON.stringify(saved));
    });
    await page.getByRole('link', { name: 'Agents' }).click();
    await page.waitForURL(/#\/login$/, WAIT);
    await page.getByText('Your session has ended').waitFor(WAIT);
  });

  await step('no script errors or CSP violations on any screen', async () => {
    check(problems.length === 0, `console errors:\n${problems.join('\n')}`);
  });
}

try {
  await main();
} catch {
  failures = Math.max(failures, 1);
} finally {
  for (const cleanup of cleanups.reverse()) {
    try { await cleanup(); } catch { /* best effort */ }
  }
}
log(failures ? `\nconsole browser tests FAILED (${failures})` : `\nconsole browser tests passed${skipped ? ` (${skipped} skipped)` : ''}; screenshots in ${SHOTS}`);
process.exit(failures ? 1 : 0);
