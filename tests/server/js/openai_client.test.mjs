// rocforge serve through the official `openai` npm client (node:test).
// Usage: node --test openai_client.test.mjs   with ROCFORGE_BIN and ROCFORGE_MODEL set (run.sh does it).
//
// The server is started on a free port (--port 0; the port is read from its first stderr line)
// and is always killed: in after(), on exit, and by the kernel if this process dies
// (--die-with-parent).
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const BIN = process.env.ROCFORGE_BIN;
const MODEL = process.env.ROCFORGE_MODEL;
const API_KEY = 'js-test-key';

let server;
let client;
let baseURL;

function startServer() {
  return new Promise((resolve, reject) => {
    const args = ['serve', '-m', MODEL, '--port', '0', '--parallel', '8', '-c', '256', '-t', '1',
      '--api-key', API_KEY, '--die-with-parent'];
    const child = spawn(BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    const timer = setTimeout(() => reject(new Error('server did not start:\n' + err)), 30000);
    child.stderr.on('data', (d) => {
      err += d.toString();
      const m = err.match(/listening on http:\/\/([0-9.]+):(\d+)/);
      if (m && err.includes('ready')) {
        clearTimeout(timer);
        resolve({ child, url: `http://${m[1]}:${m[2]}` });
      }
    });
    child.on('exit', (code) => reject(new Error(`server exited (${code}):\n${err}`)));
  });
}

function killServer() {
  if (server && server.exitCode === null) server.kill('SIGKILL');
}
process.on('exit', killServer);

before(async () => {
  const s = await startServer();
  server = s.child;
  baseURL = s.url;
  client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: API_KEY, maxRetries: 0, timeout: 60000 });
});

after(async () => {
  if (!server || server.exitCode !== null) return;
  const exited = new Promise((r) => server.once('exit', r));
  server.kill('SIGTERM');  // graceful shutdown path
  const t = setTimeout(killServer, 5000);
  await exited;
  clearTimeout(t);
});

const greedy = { temperature: 0, max_tokens: 24 };

test('models lists the loaded model', async () => {
  const list = await client.models.list();
  const ids = [];
  for await (const m of list) ids.push(m.id);
  assert.deepEqual(ids, ['stories260K']);
});

test('completions, non-streaming', async () => {
  const r = await client.completions.create({ model: 'stories260K', prompt: 'Once upon a time', ...greedy });
  assert.equal(r.object, 'text_completion');
  assert.equal(r.choices.length, 1);
  assert.ok(r.choices[0].text.length > 0);
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  assert.ok(r.usage.prompt_tokens > 0);
  assert.ok(r.usage.completion_tokens > 0 && r.usage.completion_tokens <= 24);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
});

test('completions, streaming equals non-streaming', async () => {
  const req = { model: 'stories260K', prompt: 'The little dog', ...greedy };
  const full = await client.completions.create(req);
  const stream = await client.completions.create({ ...req, stream: true });
  let text = '';
  let chunks = 0;
  let finish = null;
  for await (const c of stream) {
    chunks++;
    text += c.choices[0]?.text ?? '';
    if (c.choices[0]?.finish_reason) finish = c.choices[0].finish_reason;
  }
  assert.equal(text, full.choices[0].text);
  assert.equal(finish, full.choices[0].finish_reason);
  assert.ok(chunks > 3, `only ${chunks} chunks`);
});

test('chat, non-streaming and streaming agree; usage in the stream', async () => {
  const req = { model: 'stories260K', messages: [{ role: 'system', content: 'You tell stories.' },
    { role: 'user', content: 'Tell me about a cat.' }], ...greedy };
  const full = await client.chat.completions.create(req);
  assert.equal(full.object, 'chat.completion');
  assert.equal(full.choices[0].message.role, 'assistant');
  const content = full.choices[0].message.content;
  assert.ok(content.length > 0);

  const stream = await client.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let role = null;
  let usage = null;
  let finish = null;
  for await (const c of stream) {
    if (c.usage) usage = c.usage;
    const ch = c.choices[0];
    if (!ch) continue;
    if (ch.delta.role) role = ch.delta.role;
    text += ch.delta.content ?? '';
    if (ch.finish_reason) finish = ch.finish_reason;
  }
  assert.equal(role, 'assistant');
  assert.equal(text, content);
  assert.equal(finish, full.choices[0].finish_reason);
  assert.deepEqual(usage.completion_tokens, full.usage.completion_tokens);
  assert.deepEqual(usage.prompt_tokens, full.usage.prompt_tokens);
});

test('max_tokens gives finish_reason length; stop gives stop', async () => {
  const r = await client.completions.create({ model: 'x', prompt: 'Once upon a time', temperature: 0, max_tokens: 5 });
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 5);
  const long = await client.completions.create({ model: 'x', prompt: 'Once upon a time', temperature: 0, max_tokens: 30 });
  const word = long.choices[0].text.slice(8, 12);
  const cut = await client.completions.create({ model: 'x', prompt: 'Once upon a time', temperature: 0, max_tokens: 30, stop: [word] });
  assert.equal(cut.choices[0].finish_reason, 'stop');
  assert.equal(cut.choices[0].text, long.choices[0].text.slice(0, long.choices[0].text.indexOf(word)));
});

test('sampling parameters and seed are honoured', async () => {
  const req = { model: 'x', prompt: 'Once upon a time', max_tokens: 30, temperature: 1.0, top_p: 0.9, top_k: 40,
    min_p: 0.01, presence_penalty: 0.5, frequency_penalty: 0.5 };
  const a = await client.completions.create({ ...req, seed: 1234 });
  const b = await client.completions.create({ ...req, seed: 1234 });
  const c = await client.completions.create({ ...req, seed: 98765 });
  assert.equal(a.choices[0].text, b.choices[0].text);
  assert.notEqual(a.choices[0].text, c.choices[0].text);
});

test('errors arrive as OpenAI errors with the right status', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'x', messages: [] }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === 'messages');
  await assert.rejects(client.completions.create({ model: 'x', prompt: 'a', temperature: 7 }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'temperature');
  const bad = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: 'wrong', maxRetries: 0 });
  await assert.rejects(bad.models.list(), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
});

test('16 concurrent streams equal their solo runs; all KV blocks freed', async () => {
  const prompts = Array.from({ length: 16 }, (_, i) => `Once upon a time there was a ${['cat', 'dog', 'bird', 'fish'][i % 4]} number ${i}.`);
  const run = async (p) => {
    const s = await client.completions.create({ model: 'x', prompt: p, ...greedy, stream: true });
    let t = '';
    for await (const c of s) t += c.choices[0]?.text ?? '';
    return t;
  };
  const solo = [];
  for (const p of prompts) solo.push(await run(p));
  const together = await Promise.all(prompts.map(run));
  assert.deepEqual(together, solo);
  const metrics = await (await fetch(`${baseURL}/metrics`, { headers: { Authorization: `Bearer ${API_KEY}` } })).text();
  assert.match(metrics, /^rocforge_kv_blocks_used 0$/m);
  assert.match(metrics, /^rocforge_active_sequences 0$/m);
});
