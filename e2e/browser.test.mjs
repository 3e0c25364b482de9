// A real browser against the real proxy: headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core;
// nothing here downloads a browser) opens a page on another origin that does what a Clerk app does (browser-page.mjs),
// so every request is a CORS preflight plus the request. A refusal the proxy writes without CORS headers reaches the
// page as "TypeError: Failed to fetch" instead of Hasura's error, and fails its check.
//
// The fake Hasura answers with Hasura's default CORS headers too, so a proxy that repeated them instead of replacing
// them would fail as well (browsers refuse a repeated Access-Control-Allow-Origin).
//
// The screenshot of the page, with every check, is saved to e2e/artifacts/browser.png (for CI to keep; ignored by git).
// CHROMIUM_PATH overrides the browser; the test fails, and is never skipped, when there is none.

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { EXPECT, launchChromium, startPage } from './browser-page.mjs';
import { startStage } from './harness.mjs';

const E2E_DIR = path.dirname(fileURLToPath(import.meta.url));
const ARTIFACTS = path.join(E2E_DIR, 'artifacts');
const MAX_BODY_BYTES = 8192;

let stage;
let page;
let browser;
let site;

before(async () => {
  stage = await startStage({ extraConfig: { server: { max_body_bytes: MAX_BODY_BYTES } }, hasuraOptions: { cors: true } });
  site = await startPage({
    proxyURL: stage.proxyURL,
    wsURL: stage.wsURL,
    jwks: stage.jwks,
    maxBodyBytes: MAX_BODY_BYTES,
    shortLifetime: 4,
    subscriptionTimeoutMs: 60000,
  });
  browser = await launchChromium();
  page = browser.page;
  await page.goto(site.url);
});

after(async () => {
  await browser?.close();
  await site?.close();
  await stage?.stop();
}, { timeout: 30000 });

const run = (name) => page.evaluate((n) => window.runCheck(n), name);

/** Adds the proxy's last output to a failure. */
async function withProxyLog(fn) {
  try {
    await fn();
  } catch (err) {
    err.message += `\n--- proxy output:\n${(stage?.logs() ?? '').split('\n').slice(-20).join('\n')}`;
    throw err;
  }
}

describe('a browser page on another origin (headless Chromium)', () => {
  test('is on another origin than the proxy', () => {
    assert.notEqual(new URL(site.url).origin, new URL(stage.proxyURL).origin);
  });

  test('allowed query through a preflighted fetch', { timeout: 30000 }, () =>
    withProxyLog(async () => {
      const got = await run('allowed query');
      assert.equal(got.fetchError, undefined, 'the browser refused the answer (CORS)');
      assert.equal(got.status, 200);
      assert.equal(got.role, 'user');
      assert.equal(stage.hasura.records.preflights ?? 0, 0, 'preflights are answered by the proxy, never forwarded');
    }),
  );

  test('role switch through x-hasura-role', { timeout: 30000 }, () =>
    withProxyLog(async () => {
      const got = await run('role switch (x-hasura-role)');
      assert.equal(got.fetchError, undefined, 'the browser refused the answer (CORS)');
      assert.equal(got.role, 'viewer');
    }),
  );

  for (const [name, want] of [
    ['expired token', EXPECT.expired],
    ['no token', EXPECT.missing],
    ['role not allowed', EXPECT.role],
  ]) {
    test(`${name}: the page reads Hasura's ${want.code} error`, { timeout: 30000 }, () =>
      withProxyLog(async () => {
        const got = await run(name);
        assert.equal(got.fetchError, undefined, 'the browser refused the proxy\'s refusal (no CORS headers on it)');
        assert.deepEqual({ status: got.status, code: got.code, message: got.message }, { status: 200, ...want });
      }),
    );
  }

  test('413 from the proxy is readable', { timeout: 30000 }, () =>
    withProxyLog(async () => {
      const got = await run('body too large (413)');
      assert.equal(got.fetchError, undefined, 'the browser refused the 413 (no CORS headers on it)');
      assert.equal(got.status, 413);
      assert.equal(got.code, 'payload-too-large');
    }),
  );

  test('a graphql-ws subscription survives two token expiries with connectionParams as a function', { timeout: 90000 }, () =>
    withProxyLog(async () => {
      const got = await run('subscription across two expiries');
      assert.ok(got.ok, `subscription: ${JSON.stringify(got)}`);
      assert.ok(got.closes.filter((c) => c === '4403 token expired').length >= 2, `closes ${JSON.stringify(got.closes)}`);
    }),
  );

  // Last: it stops the fake Hasura.
  test('502 when Hasura is down is readable', { timeout: 30000 }, () =>
    withProxyLog(async () => {
      await stage.hasura.close();
      const got = await run('Hasura down (502)');
      assert.equal(got.fetchError, undefined, 'the browser refused the 502 (no CORS headers on it)');
      assert.equal(got.status, 502);
      assert.equal(got.message, 'Hasura is unreachable');
    }),
  );

  test('screenshot: every check passed', { timeout: 30000 }, async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'browser.png'), fullPage: true });
    const states = await page.$$eval('#rows tr', (trs) => trs.map((tr) => [tr.children[0].textContent, tr.className]));
    assert.equal(states.length, 8, `rows ${JSON.stringify(states)}`);
    for (const [name, state] of states) assert.equal(state, 'PASS', `${name} is ${state}`);
  });
});
