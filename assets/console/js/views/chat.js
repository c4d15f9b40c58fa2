// Chat: sessions on the side, the conversation, and a composer that streams over `/ws`
// (REST when the socket is down). Chats made elsewhere arrive as `message` frames.

import { get, post, query } from '../api.js';
import { clear, formatTime, h, toast } from '../dom.js';
import { renderMarkdown } from '../markdown.js';
import { renderResult } from '../results.js';
import * as socket from '../socket.js';

export async function chatView(main, route) {
  let sessionId = route.rest[0] || null;
  let running = null; // { requestId, bubble }

  const sessions = h('ul', { class: 'sessions', 'aria-label': 'Chat sessions' });
  const conversation = h('ol', { class: 'conversation', 'aria-live': 'polite', 'aria-label': 'Conversation' });
  const agentSelect = h('select', { name: 'agent_id', 'aria-label': 'Agent' }, h('option', { value: '' }, 'Orchestrator (auto)'));
  const projectSelect = h('select', { name: 'project_id', 'aria-label': 'Project' }, h('option', { value: '' }, 'No project'));
  const message = h('textarea', {
    name: 'message', rows: 3, required: true, 'aria-label': 'Message',
    placeholder: 'Ask a question, or paste a diff or code to review or explain…',
  });
  const codeContext = h('textarea', { name: 'code_context', rows: 6, 'aria-label': 'Code context', placeholder: 'Optional: code or a diff the message is about' });
  const sendButton = h('button', { type: 'submit', class: 'primary' }, 'Send');
  const stopButton = h('button', { type: 'button', class: 'danger', hidden: true, onclick: stop }, 'Stop');
  const connection = h('span', { class: 'connection' });
  const form = h('form', { class: 'composer', onsubmit: submit },
    message,
    h('details', { class: 'context' }, h('summary', {}, 'Code context'), codeContext),
    h('div', { class: 'composer-bar' }, agentSelect, projectSelect, connection, stopButton, sendButton));
  message.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });

  main.append(h('div', { class: 'chat-layout' },
    h('aside', { class: 'sidebar' },
      h('button', { type: 'button', class: 'primary wide', onclick: () => { location.hash = '#/chat'; } }, 'New chat'),
      h('h2', { class: 'sr-only' }, 'Sessions'),
      sessions),
    h('section', { class: 'chat-main', 'aria-label': 'Chat' }, conversation, form)));

  const unsubscribers = [
    socket.onState((open) => {
      connection.textContent = open ? '● live' : '○ offline';
      connection.className = `connection ${open ? 'on' : 'off'}`;
      connection.title = open ? 'Streaming over WebSocket' : 'Reconnecting; messages are sent over REST meanwhile';
    }),
    socket.onBroadcast(onBroadcast),
  ];

  loadChoices();
  loadSessions();
  if (sessionId) loadHistory();
  else showEmpty();
  message.focus();

  function showEmpty() {
    clear(conversation, h('li', { class: 'empty' },
      h('h2', {}, 'What are we working on?'),
      h('p', {}, 'Paste a diff for a Review Monk review, ask Codebase Sherpa to explain code, or ask Doc Sync for documentation. The orchestrator picks the specialist unless you choose one.')));
  }

  async function loadChoices() {
    try {
      const [agents, projects] = await Promise.all([get('/agents?limit=100'), get('/projects?limit=100')]);
      for (const agent of agents.items) agentSelect.append(h('option', { value: agent.id }, agent.name));
      for (const project of projects.items) projectSelect.append(h('option', { value: project.id }, project.name));
    } catch (err) {
      toast(err.message, 'error');
    }
  }

  async function loadSessions() {
    try {
      const page = await get('/chat/sessions?limit=100');
      clear(sessions, page.items.length ? null : h('li', { class: 'muted' }, 'No chats yet.'),
        page.items.map((s) => h('li', {},
          h('a', {
            href: `#/chat/${encodeURIComponent(s.id)}`,
            'aria-current': s.id === sessionId ? 'page' : null,
          },
          h('span', { class: 'title' }, s.title || s.id),
          h('span', { class: 'meta' }, `${s.message_count} · ${formatTime(s.last_activity)}`)))));
    } catch (err) {
      toast(err.message, 'error');
    }
  }

  async function loadHistory() {
    clear(conversation, h('li', { class: 'muted' }, 'Loading…'));
    try {
      // A session reads oldest first; a long one shows its latest 100 turns.
      let page = await get(`/chat${query({ session_id: sessionId, limit: 100 })}`);
      if (page.total > page.items.length) {
        page = await get(`/chat${query({ session_id: sessionId, limit: 100, offset: page.total - 100 })}`);
      }
      clear(conversation);
      for (const chat of [...page.items].sort((a, b) => a.id - b.id)) appendChat(chat);
      if (!page.items.length) showEmpty();
      scrollDown();
    } catch (err) {
      clear(conversation, h('li', { class: 'form-error' }, err.message));
    }
  }

  // Pasted diffs and code keep their columns.
  function userBubble(text) {
    const code = /^(diff --git|@@ |\+\+\+ |--- a\/)/m.test(text) || /^( {4}|\t)\S/m.test(text);
    return h('li', { class: 'bubble user' }, h('div', { class: 'who' }, 'You'), h('div', { class: code ? 'plain code' : 'plain' }, text));
  }

  function answerBubble() {
    const who = h('div', { class: 'who' }, 'CodeSherpa');
    const body = h('div', { class: 'plain streaming' });
    const li = h('li', { class: 'bubble answer' }, who, body);
    return { li, who, body };
  }

  function fillAnswer(bubble, chat) {
    bubble.who.textContent = chat.agent || 'CodeSherpa';
    const details = [chat.provider, chat.model].filter(Boolean).join(' · ');
    if (details) bubble.who.append(h('span', { class: 'meta' }, ` ${details}`));
    if (!chat.complete) bubble.who.append(h('span', { class: 'pill' }, 'stopped'));
    const structured = renderResult(chat.result);
    bubble.body.className = 'answer-body';
    clear(bubble.body, structured || renderMarkdown(chat.response));
  }

  function appendChat(chat) {
    conversation.querySelector('.empty')?.remove();
    conversation.append(userBubble(chat.message));
    const bubble = answerBubble();
    fillAnswer(bubble, chat);
    conversation.append(bubble.li);
  }

  function scrollDown() {
    conversation.scrollTop = conversation.scrollHeight;
  }

  function setRunning(value) {
    running = value;
    stopButton.hidden = !value?.requestId;
    sendButton.disabled = Boolean(value);
  }

  function submit(event) {
    event.preventDefault();
    const text = message.value.trim();
    if (!text || running) return;
    const body = { message: text };
    if (sessionId) body.session_id = sessionId;
    if (agentSelect.value) body.agent_id = Number(agentSelect.value);
    if (projectSelect.value) body.project_id = Number(projectSelect.value);
    if (codeContext.value.trim()) body.code_context = codeContext.value;
    conversation.querySelector('.empty')?.remove();
    conversation.append(userBubble(text));
    const bubble = answerBubble();
    bubble.body.append(h('span', { class: 'thinking' }, 'Thinking…'));
    conversation.append(bubble.li);
    scrollDown();
    message.value = '';
    codeContext.value = '';
    if (socket.isOpen()) sendOverSocket(body, bubble);
    else sendOverRest(body, bubble);
  }

  function sendOverSocket(body, bubble) {
    let text = '';
    const requestId = socket.chat(body, {
      status(frame) {
        if (frame.agent) bubble.who.textContent = frame.agent;
        adoptSession(frame.session_id);
      },
      delta(frame) {
        text += frame.content;
        bubble.body.textContent = text;
        scrollDown();
      },
      response(frame) {
        setRunning(null);
        fillAnswer(bubble, frame.chat);
        adoptSession(frame.chat.session_id);
        loadSessions();
        scrollDown();
      },
      error(frame) {
        setRunning(null);
        bubble.body.className = 'answer-body';
        clear(bubble.body, h('p', { class: 'form-error' }, frame.content || 'The chat failed.'));
        if (text) bubble.body.prepend(h('div', { class: 'plain' }, text));
      },
    });
    setRunning({ requestId, bubble });
  }

  async function sendOverRest(body, bubble) {
    setRunning({ requestId: null, bubble });
    try {
      const chat = await post('/chat', body);
      fillAnswer(bubble, chat);
      adoptSession(chat.session_id);
      loadSessions();
    } catch (err) {
      clear(bubble.body, h('p', { class: 'form-error' }, err.message));
    } finally {
      setRunning(null);
    }
  }

  function stop() {
    if (running?.requestId) socket.cancel(running.requestId);
  }

  // A new chat's session id comes back from the server; keep it without re-rendering.
  function adoptSession(id) {
    if (!id || id === sessionId) return;
    sessionId = id;
    history.replaceState(null, '', `#/chat/${encodeURIComponent(id)}`);
  }

  function onBroadcast(chat) {
    if (chat.session_id === sessionId) {
      appendChat(chat);
      scrollDown();
    } else {
      toast(`New message in “${chat.session_id}” from ${chat.agent || 'CodeSherpa'}`);
    }
    loadSessions();
  }

  // A generation still running goes on; its answer is in the session when we come back.
  return () => unsubscribers.forEach((off) => off());
}
