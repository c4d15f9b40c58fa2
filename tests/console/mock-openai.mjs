// A stand-in for an OpenAI-compatible Chat Completions server (the wire format the
// product's `openai` provider speaks: server-sent `chat.completion.chunk`s, then [DONE]).
// It lets the browser test control what "the model" says: a slow answer to stop, and an
// answer full of XSS payloads.

import http from 'node:http';

export const XSS_ANSWER = [
  'Payloads follow.\n\n',
  'Image: <img src=x onerror="window.__xss = \'img\'">\n\n',
  'Script: <script>window.__xss = \'script\'</script>\n\n',
  'Markdown link: [click me](javascript:window.__xss=\'md-link\')\n\n',
  'Markdown image: ![tracker](http://127.0.0.1:9/pixel.png)\n\n',
  'HTML link: <a href="javascript:window.__xss=\'html-link\'" id="evil">evil link</a>\n\n',
  'SVG: <svg onload="window.__xss=\'svg\'"><circle r="5"/></svg>\n\n',
  '```rust\nfn main() { println!("safe code block"); }\n```\n',
];

function lastUserMessage(body) {
  const messages = Array.isArray(body.messages) ? body.messages : [];
  const user = messages.filter((m) => m.role === 'user').pop();
  return typeof user?.content === 'string' ? user.content : JSON.stringify(user?.content ?? '');
}

function chunk(content) {
  return `data: ${JSON.stringify({
    id: 'chatcmpl-mock', object: 'chat.completion.chunk', created: 0, model: 'mock',
    choices: [{ index: 0, delta: { content }, finish_reason: null }],
  })}\n\n`;
}

export function startMock() {
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (part) => { raw += part; });
    req.on('end', async () => {
      if (req.method !== 'POST' || !req.url.endsWith('/chat/completions')) {
        res.writeHead(404).end();
        return;
      }
      const prompt = lastUserMessage(JSON.parse(raw || '{}'));
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
      let closed = false;
      res.on('close', () => { closed = true; });
      const pieces = /slow/i.test(prompt)
        ? Array.from({ length: 80 }, (_, i) => `word${i} `)
        : XSS_ANSWER;
      const pause = /slow/i.test(prompt) ? 150 : 20;
      for (const piece of pieces) {
        if (closed) return;
        res.write(chunk(piece));
        await new Promise((resolve) => setTimeout(resolve, pause));
      }
      res.write(`data: ${JSON.stringify({ id: 'chatcmpl-mock', object: 'chat.completion.chunk', created: 0, model: 'mock', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], usage: { prompt_tokens: 10, completion_tokens: pieces.length, total_tokens: 10 + pieces.length } })}\n\n`);
      res.end('data: [DONE]\n\n');
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${server.address().port}/v1` }));
  });
}
