// The page of browser.test.mjs: a stand-in for a Clerk single-page app, served from its own origin (a port of its own
// on 127.0.0.1), that talks to the proxy cross-origin the way Clerk's Hasura guide does: fetch with
// `Authorization: Bearer <getToken()>` (a preflighted request) and a graphql-ws subscription whose connectionParams is
// a function returning a fresh token. /token plays Clerk's getToken().
//
// Each check renders one row (name, PASS/FAIL, what the page read) and returns what it read, so the test asserts
// the values and the screenshot shows them.

import http from 'node:http';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { chromium } from 'playwright-core';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { closeServer, listen } from './jwks.mjs';

// graphql-ws's browser build; its package "exports" do not list it, so it is read by path.
const GRAPHQL_WS_UMD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'node_modules/graphql-ws/umd/graphql-ws.min.js');

/** Hasura's JWT-mode errors, code and message, as the page must read them. */
export const EXPECT = {
  missing: { code: 'invalid-headers', message: "Missing 'Authorization' or 'Cookie' header in JWT authentication mode" },
  expired: { code: 'invalid-jwt', message: 'Could not verify JWT: JWTExpired' },
  role: { code: 'access-denied', message: 'Your requested role is not in allowed roles' },
};

const PAGE = String.raw`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hasura-auth-proxy from a browser</title>
<style>
 body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; }
 table { border-collapse: collapse; } td, th { border: 1px solid #bbb; padding: 4px 8px; text-align: left; vertical-align: top; }
 .PASS { background: #d7f5d7; } .FAIL { background: #f8d0d0; } .RUNNING { background: #fff3c4; }
 code { font-size: 12px; }
</style></head>
<body>
<h1>hasura-auth-proxy from a browser</h1>
<p>Page origin <code id="origin"></code>, proxy <code id="proxy"></code>. Every request below is cross-origin and preflighted.</p>
<table><thead><tr><th>check</th><th>result</th><th>what the page read</th></tr></thead><tbody id="rows"></tbody></table>
<script src="/graphql-ws.js"></script>
<script>
const cfg = __CONFIG__;
document.getElementById('origin').textContent = location.origin;
document.getElementById('proxy').textContent = cfg.proxyURL;

function row(name) {
  let tr = document.getElementById('row-' + name);
  if (!tr) {
    tr = document.createElement('tr');
    tr.id = 'row-' + name;
    tr.innerHTML = '<td></td><td></td><td><code></code></td>';
    tr.children[0].textContent = name;
    document.getElementById('rows').appendChild(tr);
  }
  return (state, text) => {
    tr.className = state;
    tr.children[1].textContent = state;
    tr.children[2].firstChild.textContent = text;
  };
}

// Clerk's getToken(): a fresh token from the app's own origin.
async function getToken(kind = 'user', lifetime = 60) {
  const res = await fetch('/token?kind=' + kind + '&lifetime=' + lifetime);
  if (!res.ok) throw new Error('token endpoint: HTTP ' + res.status);
  return res.text();
}

// The Clerk guide's request: fetch with the Bearer token. Returns what a page can read, or the TypeError a
// browser gives when an answer lacks CORS headers.
async function gql({ token, role, body } = {}) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = 'Bearer ' + token;
  if (role) headers['x-hasura-role'] = role;
  try {
    const res = await fetch(cfg.proxyURL + '/v1/graphql', {
      method: 'POST', headers, body: body ?? JSON.stringify({ query: '{ session }' }),
    });
    const json = await res.json();
    const err = json.errors?.[0];
    return { status: res.status, code: err?.extensions?.code, message: err?.message, data: json.data };
  } catch (e) {
    return { fetchError: String(e) };
  }
}

function show(name, got, want) {
  const ok = !got.fetchError && Object.entries(want).every(([k, v]) => got[k] === v);
  row(name)(ok ? 'PASS' : 'FAIL', JSON.stringify(got));
  return { ...got, ok };
}

const checks = {
  async 'allowed query'() {
    const got = await gql({ token: await getToken('user') });
    const session = got.data ? JSON.parse(got.data.session) : {};
    return show('allowed query', { status: got.status, fetchError: got.fetchError, role: session['x-hasura-role'], user: session['x-hasura-user-id'] }, { status: 200, role: 'user' });
  },
  async 'role switch (x-hasura-role)'() {
    const got = await gql({ token: await getToken('viewer'), role: 'viewer' });
    const session = got.data ? JSON.parse(got.data.session) : {};
    return show('role switch (x-hasura-role)', { status: got.status, fetchError: got.fetchError, role: session['x-hasura-role'] }, { status: 200, role: 'viewer' });
  },
  async 'expired token'() {
    return show('expired token', await gql({ token: await getToken('expired') }), { status: 200, ...cfg.expect.expired });
  },
  async 'no token'() {
    return show('no token', await gql({}), { status: 200, ...cfg.expect.missing });
  },
  async 'role not allowed'() {
    return show('role not allowed', await gql({ token: await getToken('user'), role: 'admin' }), { status: 200, ...cfg.expect.role });
  },
  async 'body too large (413)'() {
    const body = JSON.stringify({ query: '{ session }', variables: { pad: 'x'.repeat(cfg.maxBodyBytes) } });
    return show('body too large (413)', await gql({ token: await getToken('user'), body }), { status: 413, code: 'payload-too-large' });
  },
  async 'Hasura down (502)'() {
    return show('Hasura down (502)', await gql({ token: await getToken('user') }), { status: 502, code: 'unexpected', message: 'Hasura is unreachable' });
  },
  // A subscription that outlives two short-lived tokens: at exp the proxy closes the socket with 4403, graphql-ws
  // retries (retries on), calls connectionParams again and resubscribes.
  'subscription across two expiries'() {
    const name = 'subscription across two expiries';
    const set = row(name);
    const closes = [];
    const events = [];
    let settled = false;
    return new Promise((resolve) => {
      const finish = (ok, why) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        dispose();
        client.dispose();
        const got = { ok, why, closes, eventsPerConnection: events };
        set(ok ? 'PASS' : 'FAIL', JSON.stringify(got));
        resolve(got);
      };
      const timer = setTimeout(() => finish(false, 'timed out'), cfg.subscriptionTimeoutMs);
      const client = graphqlWs.createClient({
        url: cfg.wsURL,
        connectionParams: async () => ({ headers: { Authorization: 'Bearer ' + (await getToken('user', cfg.shortLifetime)) } }),
        retryAttempts: Infinity,
        shouldRetry: () => true,
        on: {
          connected: () => events.push(0),
          closed: (e) => closes.push(e.code + ' ' + e.reason),
        },
      });
      set('RUNNING', 'waiting for two expiries');
      const dispose = client.subscribe(
        { query: 'subscription { ticks(n: 100000, intervalMs: 200) { i } }' },
        {
          next: () => {
            events[events.length - 1]++;
            const expiries = closes.filter((c) => c === '4403 token expired').length;
            set('RUNNING', 'connection ' + events.length + ', ' + expiries + ' expiries, closes ' + JSON.stringify(closes));
            if (expiries >= 2 && events.length >= 3 && events[events.length - 1] > 0) finish(true, 'events after the second reconnect');
          },
          error: (e) => finish(false, 'error: ' + (e?.code ?? '') + ' ' + (e?.reason ?? e?.message ?? String(e))),
          complete: () => finish(false, 'completed'),
        },
      );
    });
  },
};
window.runCheck = (name) => checks[name]();
window.checkNames = Object.keys(checks);
</script>
</body></html>
`;

/**
 * Serves the page, graphql-ws's browser build and a token endpoint on a 127.0.0.1 port of its own.
 * @param {{proxyURL: string, wsURL: string, jwks: any, maxBodyBytes: number, shortLifetime: number,
 *   subscriptionTimeoutMs: number}} opts
 */
export async function startPage(opts) {
  const umd = await readFile(GRAPHQL_WS_UMD);
  const config = {
    proxyURL: opts.proxyURL,
    wsURL: opts.wsURL,
    maxBodyBytes: opts.maxBodyBytes,
    shortLifetime: opts.shortLifetime,
    subscriptionTimeoutMs: opts.subscriptionTimeoutMs,
    expect: EXPECT,
  };
  // </script> cannot occur in JSON.stringify output of these values, but escape "<" anyway.
  const html = PAGE.replace('__CONFIG__', JSON.stringify(config).replace(/</g, '\\u003c'));
  const tokensIssued = { count: 0 };
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(html);
    } else if (url.pathname === '/graphql-ws.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(umd);
    } else if (url.pathname === '/token') {
      const kind = url.searchParams.get('kind');
      const lifetime = Number(url.searchParams.get('lifetime') ?? 60);
      const now = Math.floor(Date.now() / 1000);
      const mintOpts = {
        user: { lifetime },
        viewer: { lifetime, allowedRoles: ['user', 'viewer'] },
        expired: { iat: now - 600, lifetime: 60 },
      }[kind];
      if (!mintOpts) {
        res.writeHead(400).end('unknown kind');
        return;
      }
      tokensIssued.count++;
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
      res.end(await opts.jwks.mint(mintOpts));
    } else {
      res.writeHead(404).end();
    }
  });
  await listen(server);
  return {
    url: `http://127.0.0.1:${server.address().port}/`,
    tokensIssued,
    close: () => closeServer(server),
  };
}

/** The browser: Debian's Chromium unless CHROMIUM_PATH says otherwise. */
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/**
 * Launches headless Chromium with a fresh profile; close() also removes the profile. Fails (never skips) when the
 * browser is missing: CI installs it (.ci/run).
 */
export async function launchChromium() {
  if (!existsSync(CHROMIUM)) throw new Error(`no browser at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM_PATH)`);
  const profile = await mkdtemp(path.join(os.tmpdir(), 'hap-chromium-'));
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1200, height: 800 },
      timeout: 60000,
    });
    const page = context.pages()[0] ?? (await context.newPage());
    return {
      page,
      close: async () => {
        await context.close();
        await rm(profile, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(profile, { recursive: true, force: true });
    throw err;
  }
}
