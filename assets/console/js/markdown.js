// Markdown from models and files is untrusted: it is parsed by marked (raw HTML escaped
// to text), then everything passes DOMPurify (no scripts, no event handlers, no `javascript:` URLs, no images or
// forms) before it reaches the page; highlighting works on the sanitised text only.

import { Marked } from '../vendor/marked/marked.esm.js';
import DOMPurify from '../vendor/dompurify/purify.es.mjs';
import hljs from '../vendor/highlight/core.min.js';
import bash from '../vendor/highlight/languages/bash.min.js';
import css from '../vendor/highlight/languages/css.min.js';
import diff from '../vendor/highlight/languages/diff.min.js';
import go from '../vendor/highlight/languages/go.min.js';
import ini from '../vendor/highlight/languages/ini.min.js';
import java from '../vendor/highlight/languages/java.min.js';
import javascript from '../vendor/highlight/languages/javascript.min.js';
import json from '../vendor/highlight/languages/json.min.js';
import python from '../vendor/highlight/languages/python.min.js';
import rust from '../vendor/highlight/languages/rust.min.js';
import sql from '../vendor/highlight/languages/sql.min.js';
import typescript from '../vendor/highlight/languages/typescript.min.js';
import xml from '../vendor/highlight/languages/xml.min.js';
import yaml from '../vendor/highlight/languages/yaml.min.js';

const languages = { bash, css, diff, go, ini, java, javascript, json, python, rust, sql, typescript, xml, yaml };
for (const [name, grammar] of Object.entries(languages)) hljs.registerLanguage(name, grammar);
hljs.registerAliases(['sh', 'shell', 'zsh'], { languageName: 'bash' });
hljs.registerAliases(['toml'], { languageName: 'ini' });
hljs.registerAliases(['html'], { languageName: 'xml' });
hljs.registerAliases(['patch'], { languageName: 'diff' });
hljs.configure({ ignoreUnescapedHTML: true });

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);

// Raw HTML in a model's answer is shown as the text it is, never parsed: the sanitiser
// below then only ever sees markup that marked itself produced.
const marked = new Marked({
  gfm: true,
  breaks: false,
  renderer: { html: ({ text }) => escapeHtml(text) },
});

const PURIFY = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ['img', 'picture', 'video', 'audio', 'source', 'style', 'form', 'input', 'button', 'textarea', 'select', 'iframe', 'object', 'embed'],
  FORBID_ATTR: ['style', 'srcset'],
  ALLOW_DATA_ATTR: false,
  RETURN_DOM_FRAGMENT: true,
};

// Links open in a new tab without giving it this page (and only http(s)/mailto survive).
DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName !== 'A') return;
  const href = node.getAttribute('href') || '';
  if (!/^(https?:|mailto:|#)/i.test(href)) {
    node.removeAttribute('href');
    return;
  }
  node.setAttribute('target', '_blank');
  node.setAttribute('rel', 'noopener noreferrer nofollow');
});

/** Highlights one code element in place (its text only; the result is hljs's own spans). */
export function highlight(code, language) {
  const lang = language && hljs.getLanguage(language) ? language : null;
  if (lang) code.classList.add(`language-${lang}`);
  if (lang || code.textContent.length < 20000) hljs.highlightElement(code);
}

/** Renders untrusted Markdown into a sanitised element. */
export function renderMarkdown(text) {
  const container = document.createElement('div');
  container.className = 'markdown';
  const html = marked.parse(String(text ?? ''), { async: false });
  container.append(DOMPurify.sanitize(html, PURIFY));
  for (const code of container.querySelectorAll('pre code')) {
    const language = [...code.classList].find((c) => c.startsWith('language-'))?.slice(9);
    code.className = '';
    highlight(code, language);
  }
  return container;
}

/** The highlight.js language for a file path, if one is bundled. */
export function languageOf(path) {
  const ext = String(path).split('.').pop().toLowerCase();
  const byExt = {
    rs: 'rust', py: 'python', js: 'javascript', mjs: 'javascript', cjs: 'javascript', jsx: 'javascript',
    ts: 'typescript', tsx: 'typescript', go: 'go', java: 'java', json: 'json', sql: 'sql',
    yml: 'yaml', yaml: 'yaml', toml: 'ini', ini: 'ini', sh: 'bash', bash: 'bash', css: 'css',
    html: 'xml', xml: 'xml', svg: 'xml', diff: 'diff', patch: 'diff',
  };
  return byExt[ext] || null;
}
