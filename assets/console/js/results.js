// The specialists' structured answers (`chat.result`), drawn as tables and lists. Every
// value is untrusted text; only prose fields go through the Markdown sanitiser.

import { h } from './dom.js';
import { highlight, languageOf, renderMarkdown } from './markdown.js';

const SEVERITIES = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW'];

/** An element for `result`, or null when it has no known shape (the text answer is shown). */
export function renderResult(result) {
  if (!result || typeof result !== 'object') return null;
  if (Array.isArray(result.findings)) return renderReview(result);
  if (typeof result.explanation === 'string') return renderExplanation(result);
  return null;
}

function renderReview(review) {
  const findings = [...review.findings].sort(
    (a, b) => SEVERITIES.indexOf(a.severity) - SEVERITIES.indexOf(b.severity),
  );
  return h('section', { class: 'result review', 'aria-label': 'Code review' },
    h('div', { class: 'review-head' },
      h('span', { class: 'pill' }, `Quality ${review.quality_score}/10`),
      h('span', { class: `pill risk-${String(review.security_risk).toLowerCase()}` }, `Security risk: ${review.security_risk}`),
      h('span', { class: 'pill' }, `${findings.length} finding${findings.length === 1 ? '' : 's'}`)),
    renderMarkdown(review.summary),
    findings.length
      ? h('div', { class: 'table-wrap' },
        h('table', { class: 'findings' },
          h('thead', {}, h('tr', {},
            h('th', { scope: 'col' }, 'Severity'),
            h('th', { scope: 'col' }, 'Location'),
            h('th', { scope: 'col' }, 'Issue'),
            h('th', { scope: 'col' }, 'Suggestion'),
            h('th', { scope: 'col' }, 'Fix'))),
          h('tbody', {}, findings.map(findingRow))))
      : h('p', { class: 'muted' }, 'No issues found.'));
}

function findingRow(finding) {
  let fix = null;
  if (finding.code_fix && finding.code_fix.trim()) {
    const code = h('code', {}, finding.code_fix);
    highlight(code, languageOf(finding.file));
    fix = h('pre', { class: 'fix' }, code);
  }
  return h('tr', {},
    h('td', { 'data-label': 'Severity' }, h('span', { class: `severity sev-${String(finding.severity).toLowerCase()}` }, finding.severity)),
    h('td', { 'data-label': 'Location' }, h('code', { class: 'location' }, `${finding.file}:${finding.line}`)),
    h('td', { 'data-label': 'Issue' }, finding.issue),
    h('td', { 'data-label': 'Suggestion' }, finding.suggestion),
    h('td', { 'data-label': 'Fix' }, fix || h('span', { class: 'muted' }, '—')));
}

function renderExplanation(result) {
  const concepts = Array.isArray(result.key_concepts) ? result.key_concepts : [];
  const steps = Array.isArray(result.learning_steps) ? result.learning_steps : [];
  return h('section', { class: 'result explanation', 'aria-label': 'Explanation' },
    renderMarkdown(result.explanation),
    concepts.length ? [
      h('h4', {}, 'Key concepts'),
      h('dl', { class: 'concepts' }, concepts.map((c) => [h('dt', {}, c.term), h('dd', {}, c.definition)])),
    ] : null,
    result.analogy ? [h('h4', {}, 'Analogy'), h('p', {}, result.analogy)] : null,
    steps.length ? [h('h4', {}, 'Learning steps'), h('ol', { class: 'steps' }, steps.map((s) => h('li', {}, s)))] : null);
}
