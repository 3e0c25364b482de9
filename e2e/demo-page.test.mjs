// The demo's own page in a real browser: `hasura-auth-proxy demo` is started as a newcomer would start it, the page
// it prints first is opened in headless Chromium, and every request row must show what it promises (the allowed
// session, each refusal with Hasura's code and message) and the live subscription must survive a token expiry.
// The screenshot is saved to e2e/artifacts/demo-page.png.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { launchChromium } from './browser-page.mjs';
import { childEnv, proxyBinary } from './harness.mjs';

const ARTIFACTS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'artifacts');
const START_TIMEOUT_MS = 60000;

let tmpDir;
let child;
let output = '';
let browser;
let pageURL;

before(async () => {
  tmpDir = await mkdtemp(path.join(os.tmpdir(), 'hap-e2e-demo-'));
  const bin = await proxyBinary(tmpDir);
  child = spawn(bin, ['demo', '-listen', '127.0.0.1:0', '-ops-listen', '127.0.0.1:0'], {
    env: childEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  child.stderr.resume();
  pageURL = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no page URL within ${START_TIMEOUT_MS} ms:\n${output}`)), START_TIMEOUT_MS);
    child.stdout.on('data', (chunk) => {
      output += chunk;
      const m = /^Open (http:\/\/127\.0\.0\.1:\d+) in a browser/m.exec(output);
      if (m && output.includes('Press Ctrl-C to stop.')) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.exited.then((e) => reject(new Error(`demo exited ${JSON.stringify(e)}:\n${output}`)));
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  if (child && child.exitCode === null) {
    child.kill('SIGINT');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
    await child.exited;
    clearTimeout(timer);
  }
  if (tmpDir) await rm(tmpDir, { recursive: true, force: true });
}, { timeout: 30000 });

test('the demo page shows the allowed query, each refusal and a subscription surviving an expiry', { timeout: 90000 }, async () => {
  const { page } = browser;
  assert.ok(output.trimStart().startsWith(`Open ${pageURL}`), 'the page is the first thing the demo prints');
  await page.goto(pageURL);
  try {
    await page.waitForFunction(
      () =>
        document.querySelectorAll('#rows tr').length === 4 &&
        [...document.querySelectorAll('#rows tr')].every((tr) => tr.className !== 'wait') &&
        Number(document.getElementById('sub-expiries').textContent) >= 1 &&
        document.getElementById('sub-state').className === 'ok',
      null,
      { timeout: 60000, polling: 250 },
    );
  } finally {
    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'demo-page.png'), fullPage: true });
  }
  const rows = await page.$$eval('#rows tr', (trs) => trs.map((tr) => [tr.id, tr.className, tr.children[1].textContent]));
  const want = {
    'check-allowed': '"x-hasura-role":"user"',
    'check-role': "code access-denied: Your requested role is not in allowed roles",
    'check-missing': "code invalid-headers: Missing 'Authorization' or 'Cookie' header in JWT authentication mode",
    'check-expired': 'code invalid-jwt: Could not verify JWT: JWTExpired',
  };
  for (const [id, cls, text] of rows) {
    assert.equal(cls, 'ok', `${id}: ${text}`);
    assert.ok(text.includes(want[id]), `${id}: ${text}; want it to include ${want[id]}`);
  }
  const log = await page.textContent('#log');
  assert.match(log, /closed: 4403 token expired/);
});
