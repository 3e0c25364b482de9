package main

// The demo's browser page: a stand-in for a Clerk app on an origin of its
// own. It gets tokens from the demo issuer (Clerk's getToken()) and calls the
// proxy cross-origin as Clerk's Hasura guide does (fetch with Authorization:
// Bearer, so every request is preflighted), shows the allowed query and
// each refusal with the code and message it read from Hasura's JSON, and
// runs a graphql-transport-ws subscription that fetches a fresh short-lived
// token for every connection (connectionParams as a function), so it
// survives each expiry: the proxy closes with 4403 at exp and the page
// reconnects.

import (
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
)

// demoPageTTL is the lifetime of the page's subscription tokens: short, so
// an expiry and the reconnect happen while one watches.
const demoPageTTL = 15 * time.Second

// demoLiveOperation is the operation name of the page's subscription; the
// Hasura stand-in streams it until the client stops instead of sending
// three events.
const demoLiveOperation = "Live"

// demoPage serves the page; proxy and issuer are base URLs.
type demoPage struct {
	proxy, issuer string
}

// demoPageConfig is the page's configuration, embedded as JSON.
type demoPageConfig struct {
	Proxy     string                       `json:"proxy"`
	WebSocket string                       `json:"ws"`
	Issuer    string                       `json:"issuer"`
	ShortTTL  string                       `json:"shortTTL"`
	Operation string                       `json:"operation"`
	Expect    map[string]map[string]string `json:"expect"`
}

func (p demoPage) handler() http.Handler {
	cfg := demoPageConfig{
		Proxy:     p.proxy,
		WebSocket: "ws" + strings.TrimPrefix(p.proxy, "http") + "/v1/graphql",
		Issuer:    p.issuer,
		ShortTTL:  demoPageTTL.String(),
		Operation: demoLiveOperation,
		Expect: map[string]map[string]string{
			"role":    {"code": auth.CodeAccessDenied, "message": auth.ErrRoleNotAllowed.Message},
			"missing": {"code": auth.CodeInvalidHeaders, "message": auth.ErrMissingToken.Message},
			"expired": {"code": auth.ErrExpired.Code, "message": auth.ErrExpired.Message},
		},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_ = demoPageTemplate.Execute(w, cfg)
	})
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	return mux
}

// demoPageTemplate is the page. html/template escapes the configuration
// for the <script> context.
var demoPageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hasura-auth-proxy demo</title>
<style>
 body { font: 15px/1.45 system-ui, sans-serif; margin: 24px; max-width: 1100px; }
 table { border-collapse: collapse; width: 100%; } td, th { border: 1px solid #bbb; padding: 5px 8px; text-align: left; vertical-align: top; }
 .ok { background: #d7f5d7; } .bad { background: #f8d0d0; } .wait { background: #fff3c4; }
 code, pre { font-size: 13px; } pre { background: #f4f4f4; padding: 8px; max-height: 16em; overflow: auto; }
</style></head>
<body>
<h1>hasura-auth-proxy demo, from a browser</h1>
<p>This page (<code id="origin"></code>) plays a Clerk app on its own origin. It asks the token issuer
(<code id="issuer"></code>, playing Clerk's <code>getToken()</code>) for tokens and calls the proxy
(<code id="proxy"></code>) cross-origin with <code>Authorization: Bearer</code>, so every request is a CORS preflight
plus the request. A refusal without CORS headers would show up here as <code>TypeError: Failed to fetch</code>.</p>

<h2>Requests</h2>
<table><thead><tr><th>request</th><th>what the page read</th></tr></thead><tbody id="rows"></tbody></table>
<p><button id="again">Run again</button></p>

<h2>Live subscription</h2>
<p>graphql-transport-ws through the proxy. Each connection gets a fresh token valid <span id="ttl"></span>
(<code>connectionParams</code> as a function): at <code>exp</code> the proxy closes the socket with
<code>4403</code> and the page reconnects with a new token.</p>
<table><tbody>
<tr><th>state</th><td id="sub-state" class="wait">connecting</td></tr>
<tr><th>connection</th><td id="sub-conn">0</td></tr>
<tr><th>events received</th><td id="sub-events">0</td></tr>
<tr><th>token expiries survived</th><td id="sub-expiries">0</td></tr>
<tr><th>last event</th><td><code id="sub-last"></code></td></tr>
</tbody></table>
<pre id="log"></pre>

<script>
const cfg = {{.}};
document.getElementById('origin').textContent = location.origin;
document.getElementById('issuer').textContent = cfg.issuer;
document.getElementById('proxy').textContent = cfg.proxy;
document.getElementById('ttl').textContent = cfg.shortTTL;
const $ = (id) => document.getElementById(id);
const log = (s) => { $('log').textContent = new Date().toLocaleTimeString() + '  ' + s + '\n' + $('log').textContent; };

async function getToken(params) {
  const res = await fetch(cfg.issuer + '/token?' + new URLSearchParams(params));
  if (!res.ok) throw new Error('token issuer: HTTP ' + res.status);
  return (await res.text()).trim();
}

async function gql(token, role) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = 'Bearer ' + token;
  if (role) headers['X-Hasura-Role'] = role;
  try {
    const res = await fetch(cfg.proxy + '/v1/graphql', { method: 'POST', headers, body: JSON.stringify({ query: '{ session }' }) });
    return { status: res.status, body: await res.json() };
  } catch (e) {
    return { error: String(e) };
  }
}

const refused = (want) => (r) => {
  const e = r.body && r.body.errors && r.body.errors[0];
  return { ok: !!e && e.extensions.code === want.code && e.message === want.message,
           text: e ? 'HTTP ' + r.status + ', code ' + e.extensions.code + ': ' + e.message : (r.error || JSON.stringify(r.body)) };
};
const checks = [
  ['allowed', 'Allowed: alice, role user', async () => gql(await getToken({ user: 'alice', role: 'user' })), (r) => {
    const s = r.body && r.body.data && r.body.data.session;
    return { ok: !!s && s['x-hasura-role'] === 'user', text: s ? 'HTTP ' + r.status + ', Hasura saw ' + JSON.stringify(s) : (r.error || JSON.stringify(r.body)) };
  }],
  ['role', 'Refused: X-Hasura-Role: admin, not in the token\'s allowed roles', async () => gql(await getToken({ user: 'alice', role: 'user' }), 'admin'), refused(cfg.expect.role)],
  ['missing', 'Refused: no token', async () => gql(), refused(cfg.expect.missing)],
  ['expired', 'Refused: an expired token (ttl=-1m)', async () => gql(await getToken({ user: 'alice', role: 'user', ttl: '-1m' })), refused(cfg.expect.expired)],
];

async function runChecks() {
  const rows = $('rows');
  rows.textContent = '';
  for (const [id, label, run, judge] of checks) {
    const tr = rows.insertRow();
    tr.id = 'check-' + id;
    tr.insertCell().textContent = label;
    const td = tr.insertCell();
    td.textContent = 'running';
    tr.className = 'wait';
    let v;
    try { v = judge(await run()); } catch (e) { v = { ok: false, text: String(e) }; }
    td.textContent = v.text;
    tr.className = v.ok ? 'ok' : 'bad';
  }
}
$('again').onclick = runChecks;
runChecks();

let conn = 0, events = 0, expiries = 0;
async function connect() {
  conn++;
  $('sub-conn').textContent = conn;
  let token;
  try {
    token = await getToken({ user: 'alice', role: 'user', ttl: cfg.shortTTL });
  } catch (e) {
    log('getToken failed: ' + e + '; retrying');
    setTimeout(connect, 2000);
    return;
  }
  const ws = new WebSocket(cfg.ws, 'graphql-transport-ws');
  ws.onopen = () => ws.send(JSON.stringify({ type: 'connection_init', payload: { headers: { Authorization: 'Bearer ' + token } } }));
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.type === 'connection_ack') {
      log('connection ' + conn + ': acknowledged, subscribing');
      ws.send(JSON.stringify({ type: 'subscribe', id: '1', payload: { operationName: cfg.operation, query: 'subscription ' + cfg.operation + ' { session }' } }));
    } else if (m.type === 'ping') {
      ws.send(JSON.stringify({ type: 'pong' }));
    } else if (m.type === 'next') {
      events++;
      $('sub-events').textContent = events;
      $('sub-last').textContent = JSON.stringify(m.payload.data);
      $('sub-state').textContent = expiries > 0 ? 'live, survived ' + expiries + ' expir' + (expiries > 1 ? 'ies' : 'y') : 'live, waiting for the token to expire';
      $('sub-state').className = expiries > 0 ? 'ok' : 'wait';
    } else if (m.type === 'error') {
      log('error: ' + JSON.stringify(m.payload));
    }
  };
  ws.onclose = (e) => {
    log('connection ' + conn + ' closed: ' + e.code + ' ' + e.reason);
    if (e.code === 4403) {
      expiries++;
      $('sub-expiries').textContent = expiries;
    }
    $('sub-state').textContent = 'reconnecting with a fresh token';
    setTimeout(connect, 500);
  };
}
connect();
</script>
</body></html>
`))
