// A stand-in for Hasura GraphQL Engine built from the real npm GraphQL servers, so the e2e suite can assert exactly
// which session headers "Hasura" received through the proxy.
//
// One HTTP server on an ephemeral 127.0.0.1 port serves:
// - GET  /healthz     -> 200 "OK" (the proxy's readiness probe checks it)
// - POST /v1/graphql  -> executes the query; the session is every x-hasura-* request header (lower-case names)
// - WebSocket upgrades on /v1/graphql, routed like Hasura routes them: Sec-WebSocket-Protocol exactly
//   "graphql-transport-ws" goes to graphql-ws (useServer), anything else to subscriptions-transport-ws
//   (SubscriptionServer, subprotocol "graphql-ws"). The session is Hasura's merge: connection_init payload.headers,
//   overridden by the x-hasura-* headers of the upgrade request.
// Like a Hasura with HASURA_GRAPHQL_ADMIN_SECRET set, every request and socket must carry the right
// x-hasura-admin-secret, or it is refused (HTTP: access-denied body; graphql-transport-ws: close 4403 with Hasura's
// JSON reason; graphql-ws: connection_error). Hasura-style keep-alives are sent on both protocols so that the relay of
// server-initiated messages (and the client's pongs) is exercised too.
//
// Everything seen is recorded in `records` (tokens are never stored: only whether an Authorization header came).

import http from 'node:http';
import {
  GraphQLInt,
  GraphQLNonNull,
  GraphQLObjectType,
  GraphQLSchema,
  GraphQLString,
  execute,
  graphql,
  subscribe,
} from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { SubscriptionServer } from 'subscriptions-transport-ws';
import { WebSocketServer } from 'ws';
import { closeServer, listen } from './jwks.mjs';

/** Paths Hasura accepts WebSocket upgrades on. */
const WS_PATHS = new Set(['/v1/graphql', '/v1alpha1/graphql', '/v1beta1/relay']);

const ADMIN_SECRET_ERROR = 'invalid x-hasura-admin-secret/x-hasura-access-key';

/** Returns the x-hasura-* entries of a header object, names lower-cased. */
export function hasuraHeaders(headers) {
  const out = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    const lower = name.toLowerCase();
    if (lower.startsWith('x-hasura-')) out[lower] = Array.isArray(value) ? value.join(',') : String(value);
  }
  return out;
}

/** Lower-cases the names of a connection_init payload.headers object (Hasura treats them case-insensitively). */
function lowerNames(headers) {
  const out = {};
  if (headers && typeof headers === 'object') {
    for (const [name, value] of Object.entries(headers)) out[name.toLowerCase()] = value;
  }
  return out;
}

/** Hasura's WebSocket session: payload headers first, the upgrade request's headers override them. */
function wsSession(upgradeHeaders, initHeaders) {
  return { ...hasuraHeaders(initHeaders), ...hasuraHeaders(upgradeHeaders) };
}

function hasAuthorization(headers) {
  return Object.keys(headers ?? {}).some((n) => n.toLowerCase() === 'authorization');
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function buildSchema() {
  const sessionJSON = (ctx) => JSON.stringify(ctx.session);
  const Tick = new GraphQLObjectType({
    name: 'Tick',
    fields: {
      i: { type: new GraphQLNonNull(GraphQLInt) },
      session: { type: new GraphQLNonNull(GraphQLString) },
    },
  });
  return new GraphQLSchema({
    query: new GraphQLObjectType({
      name: 'query_root',
      fields: {
        session: {
          type: new GraphQLNonNull(GraphQLString),
          description: 'The session (x-hasura-* headers) this request reached Hasura with, as JSON.',
          resolve: (_root, _args, ctx) => sessionJSON(ctx),
        },
      },
    }),
    subscription: new GraphQLObjectType({
      name: 'subscription_root',
      fields: {
        ticks: {
          type: new GraphQLNonNull(Tick),
          description: 'Emits n events, intervalMs apart, each carrying the session.',
          args: {
            n: { type: new GraphQLNonNull(GraphQLInt) },
            intervalMs: { type: GraphQLInt, defaultValue: 20 },
          },
          subscribe: async function* ticks(_root, { n, intervalMs }, ctx) {
            for (let i = 1; i <= n; i++) {
              await sleep(intervalMs);
              yield { ticks: { i, session: sessionJSON(ctx) } };
            }
          },
        },
        session: {
          type: new GraphQLNonNull(GraphQLString),
          description: 'Emits the session once, then completes.',
          subscribe: async function* session(_root, _args, ctx) {
            yield { session: sessionJSON(ctx) };
          },
        },
      },
    }),
  });
}

/**
 * Starts the fake Hasura.
 * @param {{adminSecret?: string, keepAliveMs?: number}} [opts] adminSecret: required on every request and socket
 *   when set. keepAliveMs: period of the Hasura-style keep-alives ("ka" / protocol ping), 0 disables.
 */
export async function startFakeHasura({ adminSecret, keepAliveMs = 250, cors = false } = {}) {
  const schema = buildSchema();
  const records = { http: [], ws: [] };
  const checkSecret = (session) => adminSecret === undefined || session['x-hasura-admin-secret'] === adminSecret;

  const server = http.createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    if (cors && req.headers.origin) {
      // Hasura's default corsMiddleware (HASURA_GRAPHQL_CORS_DOMAIN "*"): the proxy must replace these, not repeat them.
      res.setHeader('access-control-allow-origin', req.headers.origin);
      res.setHeader('access-control-allow-credentials', 'true');
      res.setHeader('access-control-allow-methods', 'GET,POST,PUT,PATCH,DELETE,OPTIONS');
      if (req.method === 'OPTIONS') {
        records.preflights = (records.preflights ?? 0) + 1;
        res.setHeader('access-control-max-age', '1728000');
        res.setHeader('access-control-allow-headers', req.headers['access-control-request-headers'] ?? '');
        res.writeHead(204);
        res.end();
        return;
      }
    }
    if (req.method === 'GET' && path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('OK');
      return;
    }
    if (req.method === 'POST' && path === '/v1/graphql') {
      handleGraphQL(req, res);
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: 'resource does not exist', path: '$', code: 'not-found' }));
  });

  const sendJSON = (res, value) => {
    const body = JSON.stringify(value);
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };

  async function handleGraphQL(req, res) {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const session = hasuraHeaders(req.headers);
    const record = { path: req.url, session, hasAuthorization: hasAuthorization(req.headers) };
    records.http.push(record);
    if (!checkSecret(session)) {
      sendJSON(res, { errors: [{ message: ADMIN_SECRET_ERROR, extensions: { path: '$', code: 'access-denied' } }] });
      return;
    }
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      sendJSON(res, { errors: [{ message: 'invalid JSON body', extensions: { path: '$', code: 'invalid-json' } }] });
      return;
    }
    const result = await graphql({
      schema,
      source: body.query,
      variableValues: body.variables,
      operationName: body.operationName,
      contextValue: { session },
    });
    sendJSON(res, result);
  }

  // Records one accepted socket; `closed` settles when the socket closes, whoever closes it.
  function trackSocket(socket, request, protocol) {
    const record = {
      protocol,
      path: new URL(request.url, 'http://x').pathname,
      upgradeHeaders: hasuraHeaders(request.headers),
      upgradeHasAuthorization: hasAuthorization(request.headers),
      initCount: 0,
      initHeaders: undefined,
      initPayloadKeys: undefined,
      initHasAuthorization: undefined,
      session: undefined,
      accepted: false,
      pongs: 0,
      openedAt: Date.now(),
      closedAt: undefined,
      close: undefined,
    };
    record.closed = new Promise((resolve) => {
      socket.once('close', (code, reason) => {
        record.closedAt = Date.now();
        record.close = { code, reason: String(reason) };
        resolve(record.close);
      });
    });
    socket.on('message', (data) => {
      try {
        if (JSON.parse(String(data)).type === 'pong') record.pongs++;
      } catch {
        // not JSON: the protocol libraries answer it themselves
      }
    });
    records.ws.push(record);
    return record;
  }

  function noteInit(record, payload) {
    record.initCount++;
    const headers = lowerNames(payload?.headers);
    record.initPayloadKeys = Object.keys(payload ?? {});
    record.initHasAuthorization = hasAuthorization(headers);
    delete headers.authorization;
    delete headers.cookie;
    record.initHeaders = headers;
  }

  // graphql-transport-ws (the graphql-ws library), as Hasura's newer protocol.
  const modern = new WebSocketServer({ noServer: true });
  const modernServer = useServer(
    {
      schema,
      execute,
      subscribe,
      onConnect: (ctx) => {
        const record = ctx.extra.request.record;
        noteInit(record, ctx.connectionParams);
        record.session = wsSession(ctx.extra.request.headers, ctx.connectionParams?.headers);
        if (!checkSecret(record.session)) {
          // Hasura's close reason (encodeServerErrorMsg, WebSocket/Protocol.hs); the close the library then
          // attempts with its own bare "Forbidden" is a no-op on a socket already closing.
          ctx.extra.socket.close(4403, JSON.stringify({ server_error_msg: '4403: Forbidden' }));
          return false;
        }
        record.accepted = true;
        if (keepAliveMs > 0) {
          const { socket } = ctx.extra;
          const timer = setInterval(() => {
            if (socket.readyState === socket.OPEN) {
              socket.send(JSON.stringify({ type: 'ping', payload: { message: 'keepalive' } }));
            }
          }, keepAliveMs);
          socket.once('close', () => clearInterval(timer));
        }
        return true;
      },
      context: (ctx) => ({ session: ctx.extra.request.record.session }),
    },
    modern,
    0, // no WebSocket-level pings: Hasura uses protocol-level ones, sent above
  );

  // graphql-ws (subscriptions-transport-ws), Hasura's legacy protocol and its fallback.
  const legacy = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => (protocols.has('graphql-ws') ? 'graphql-ws' : false),
  });
  const legacyServer = new SubscriptionServer(
    {
      schema,
      execute,
      subscribe,
      keepAlive: keepAliveMs > 0 ? keepAliveMs : undefined,
      onConnect: (payload, socket, connectionContext) => {
        const record = socket.record;
        noteInit(record, payload);
        record.session = wsSession(connectionContext.request.headers, payload?.headers);
        if (!checkSecret(record.session)) throw new Error(ADMIN_SECRET_ERROR);
        record.accepted = true;
        return { session: record.session };
      },
    },
    legacy,
  );

  server.on('upgrade', (request, socket, head) => {
    const path = new URL(request.url, 'http://x').pathname;
    if (!WS_PATHS.has(path)) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const wanted = request.headers['sec-websocket-protocol'];
    const target = typeof wanted === 'string' && wanted.trim() === 'graphql-transport-ws' ? modern : legacy;
    target.handleUpgrade(request, socket, head, (ws) => {
      // Record the socket before the protocol server sees it. graphql-ws passes {socket, request} as ctx.extra,
      // so its record hangs on the request; subscriptions-transport-ws hands onConnect the socket.
      if (target === modern) request.record = trackSocket(ws, request, 'graphql-transport-ws');
      else ws.record = trackSocket(ws, request, 'graphql-ws');
      target.emit('connection', ws, request);
    });
  });
  await listen(server);
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    records,
    wsRecordsFrom: (index) => records.ws.slice(index),
    close: async () => {
      for (const ws of modern.clients) ws.terminate();
      for (const ws of legacy.clients) ws.terminate();
      await modernServer.dispose().catch(() => {});
      legacyServer.close();
      await closeServer(server);
    },
  };
}
