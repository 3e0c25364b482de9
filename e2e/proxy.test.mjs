// End-to-end tests of the real hasura-auth-proxy binary, driven by the npm clients Hasura users use: graphql-ws
// (createClient), subscriptions-transport-ws (SubscriptionClient) and graphql-request, with tokens minted by jose.
// The upstream is the fake Hasura (fake-hasura.mjs), which reports the session headers it received, so every
// assertion is about what "Hasura" saw. Expected errors are Hasura's: the messages of
// server/src-lib/Hasura/Server/Auth/JWT.hs and the WebSocket close codes of
// server/src-lib/Hasura/GraphQL/Transport/WebSocket.hs (hasura/graphql-engine).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ClientError, GraphQLClient } from 'graphql-request';
import {
  collectGraphqlWs,
  collectLegacy,
  describeOutcome,
  graphqlWsClient,
  legacyClient,
  waitFor,
  withTimeout,
} from './clients.mjs';
import { ADMIN_SECRET, startStage } from './harness.mjs';

const TICKS = 'subscription Ticks($n: Int!, $ms: Int) { ticks(n: $n, intervalMs: $ms) { i session } }';
const SUB = 'user_2e2eAlice';

const MISSING = "Missing 'Authorization' or 'Cookie' header in JWT authentication mode";
const EXPIRED = 'Could not verify JWT: JWTExpired';
const BAD_SIGNATURE = 'Could not verify JWT: JWSError JWSInvalidSignature';
const ROLE_DENIED = 'Your requested role is not in allowed roles';
const MULTIPLE = 'Could not verify JWT: Multiple JWTs found';

/** Client x-hasura-* headers a hostile client adds; none may reach Hasura, none changes the decision. */
const SPOOF_PAYLOAD = {
  'X-Hasura-User-Id': 'spoofed-user-payload',
  'x-hasura-org-id': 'spoofed-org-payload',
  'X-HASURA-ALLOWED-ROLES': '{admin}',
  'x-hasura-default-role': 'admin',
};
const SPOOF_UPGRADE = {
  'x-hasura-user-id': 'spoofed-user-upgrade',
  'X-Hasura-Org-Id': 'spoofed-org-upgrade',
  'x-hasura-use-backend-only-permissions': 'true',
};

let stage;

before(async () => {
  stage = await startStage();
});

after(async () => {
  await stage?.stop();
}, { timeout: 30000 });

/** The session Hasura must see for a verified token with the given role. */
function trusted(role = 'user', sub = SUB) {
  return { 'x-hasura-admin-secret': ADMIN_SECRET, 'x-hasura-role': role, 'x-hasura-user-id': sub };
}

/** Runs fn; on failure, adds the tail of the proxy's own output to the error so the report says what it did. */
async function withProxyLog(fn) {
  try {
    await fn();
  } catch (err) {
    const log = stage?.logs() ?? '';
    const exited = stage?.exited();
    err.message += `\n--- proxy ${exited ? `exited ${JSON.stringify(exited)}` : 'running'}; last output:\n${log
      .split('\n')
      .slice(-30)
      .join('\n')}`;
    throw err;
  }
}

const bearer = (token) => `Bearer ${token}`;
const now = () => Math.floor(Date.now() / 1000);

// The expiry tests use the real clock of the real binary. LIFETIME (whole seconds; the token's exp is 5 to 6 s away
// when minted) is the time a busy machine gets to open the socket and relay the first event before exp.
// LATE_BOUND_MS only catches a proxy that does not close at exp (it closes on a later event, or never): the proxy's
// expiry timer is exact, but a loaded machine delivers its close late, so exact timing is asserted by the Go tests
// (proxy/ws_test.go TestWebSocketTokenExpiry) with an injected clock.
const LIFETIME = 6;
const LATE_BOUND_MS = 5000;

describe('graphql-transport-ws through the proxy (graphql-ws createClient)', () => {
  test('a verified subscription reaches Hasura with trusted headers only', { timeout: 20000 }, () =>
    withProxyLog(async () => {
      const { hasura, jwks } = stage;
      const token = await jwks.mint({ sub: SUB });
      const firstRecord = hasura.records.ws.length;
      const c = graphqlWsClient({
        url: stage.wsURL,
        connectionParams: async () => ({ headers: { Authorization: bearer(token), ...SPOOF_PAYLOAD } }),
        headers: SPOOF_UPGRADE,
      });
      try {
        const res = await collectGraphqlWs(
          c.client,
          { query: TICKS, variables: { n: 3, ms: 150 } },
          { count: 3, timeoutMs: 10000 },
        );
        assert.equal(res.error, undefined, `subscription failed: ${describeOutcome(res.error)}`);
        assert.deepEqual(
          res.events.map((e) => e.data.ticks.i),
          [1, 2, 3],
        );
        for (const e of res.events) assert.deepEqual(JSON.parse(e.data.ticks.session), trusted());
        assert.equal(c.sockets[0].socket.protocol, 'graphql-transport-ws', 'proxy echoes the subprotocol');

        const recs = hasura.wsRecordsFrom(firstRecord);
        assert.equal(recs.length, 1, 'exactly one upstream socket');
        const [rec] = recs;
        assert.equal(rec.protocol, 'graphql-transport-ws');
        assert.deepEqual(rec.upgradeHeaders, trusted(), 'upgrade request to Hasura carries exactly the trusted headers');
        assert.deepEqual(rec.initHeaders, trusted(), 'rewritten connection_init payload.headers are the trusted ones');
        assert.equal(rec.initCount, 1, 'one connection_init upstream');
        // Hasura pings every 250 ms, so the first ping went out before the third tick and reached the client ahead
        // of it; the pong it answered travels back concurrently with this test, so it is waited for.
        assert.ok(
          c.sockets[0].messages.some((m) => m.type === 'ping'),
          'client saw the relayed ping',
        );
        await waitFor(() => rec.pongs >= 1, 10000, "the client's pong to reach Hasura through the proxy");
      } finally {
        await c.dispose();
      }
    }),
  );

  test('a token on the upgrade request (no payload headers) is used when the payload has none', { timeout: 15000 }, () =>
    withProxyLog(async () => {
      const { hasura, jwks } = stage;
      const token = await jwks.mint({ sub: SUB });
      const firstRecord = hasura.records.ws.length;
      const c = graphqlWsClient({ url: stage.wsURL, headers: { Authorization: bearer(token) } });
      try {
        const res = await collectGraphqlWs(c.client, { query: 'subscription { session }' });
        assert.equal(res.error, undefined, `subscription failed: ${describeOutcome(res.error)}`);
        assert.deepEqual(JSON.parse(res.events[0].data.session), trusted());
        const [rec] = hasura.wsRecordsFrom(firstRecord);
        assert.deepEqual(rec.upgradeHeaders, trusted());
        assert.deepEqual(rec.initHeaders, trusted());
      } finally {
        await c.dispose();
      }
    }),
  );

  test('expired token: close 4403 {"server_error_msg":"4403: Forbidden"} and Hasura is never dialled', { timeout: 15000 }, () =>
    withProxyLog(async () => {
      const { hasura, jwks } = stage;
      const token = await jwks.mint({ iat: now() - 600, lifetime: 300 });
      const firstRecord = hasura.records.ws.length;
      const c = graphqlWsClient({
        url: stage.wsURL,
        connectionParams: { headers: { Authorization: bearer(token) } },
      });
      try {
        const res = await collectGraphqlWs(c.client, { query: TICKS, variables: { n: 1 } });
        assert.equal(res.events.length, 0);
        assert.equal(res.error?.code, 4403, `client saw ${describeOutcome(res.error)}`);
        assert.equal(res.error?.reason, '{"server_error_msg":"4403: Forbidden"}');
        assert.equal(hasura.records.ws.length, firstRecord, 'no upstream socket for a failed init');
      } finally {
        await c.dispose();
      }
    }),
  );

  test('the socket is closed with 4403 "token expired" at exp', { timeout: 30000 }, () =>
    withProxyLog(async () => {
      const { hasura, jwks } = stage;
      const iat = now();
      const exp = iat + LIFETIME;
      const token = await jwks.mint({ iat, lifetime: LIFETIME });
      const firstRecord = hasura.records.ws.length;
      const c = graphqlWsClient({ url: stage.wsURL, connectionParams: { headers: { Authorization: bearer(token) } } });
      try {
        const res = await collectGraphqlWs(
          c.client,
          { query: TICKS, variables: { n: 1000, ms: 100 } },
          { timeoutMs: 20000 },
        );
        const close = c.sockets[0].close;
        assert.ok(res.events.length > 0, `events flowed before exp (client saw ${describeOutcome(res.error)})`);
        assert.equal(res.error?.code, 4403, `client saw ${describeOutcome(res.error)}`);
        assert.equal(res.error?.reason, 'token expired');
        const late = close.at - exp * 1000;
        assert.ok(late >= -250, `closed ${-late} ms before exp`);
        assert.ok(late <= LATE_BOUND_MS, `closed ${late} ms after exp; want at most ${LATE_BOUND_MS} ms`);
        const [rec] = hasura.wsRecordsFrom(firstRecord);
        await withTimeout(rec.closed, 10000, 'the upstream socket to be closed too');
      } finally {
        await c.dispose();
      }
    }),
  );

  test('role selection through x-hasura-role in connectionParams', { timeout: 15000 }, () =>
    withProxyLog(async () => {
      const { hasura, jwks } = stage;
      const token = await jwks.mint({ sub: SUB, allowedRoles: ['user', 'viewer'] });
      const ok = graphqlWsClient({
        url: stage.wsURL,
        connectionParams: { headers: { Authorization: bearer(token), 'X-Hasura-Role': 'viewer' } },
      });
      try {
        const res = await collectGraphqlWs(ok.client, { query: 'subscription { session }' });
        assert.equal(res.error, undefined, `subscription failed: ${describeOutcome(res.error)}`);
        assert.deepEqual(JSON.parse(res.events[0].data.session), trusted('viewer'));
      } finally {
        await ok.dispose();
      }
      const firstRecord = hasura.records.ws.length;
      const denied = graphqlWsClient({
        url: stage.wsURL,
        connectionParams: { headers: { Authorization: bearer(token), 'x-hasura-role': 'editor' } },
      });
      try {
        const res = await collectGraphqlWs(denied.client, { query: 'subscription { session }' });
        assert.equal(res.error?.code, 4403, `client saw ${describeOutcome(res.error)}`);
        assert.equal(hasura.records.ws.length, firstRecord, 'no upstream socket for a denied role');
      } finally {
        await denied.dispose();
      }
    }),
  );

  test('spoofed x-hasura-role: admin or a wrong x-hasura-admin-secret never reach Hasura', { timeout: 15000 }, () =>
    withProxyLog(async () => {
      const { hasura, jwks } = stage;
      const token = await jwks.mint({ sub: SUB });
      const firstRecord = hasura.records.ws.length;
      for (const spoof of [{ 'x-hasura-role': 'admin' }, { 'X-Hasura-Admin-Secret': 'guessed-secret' }]) {
        const c = graphqlWsClient({
          url: stage.wsURL,
          connectionParams: { headers: { Authorization: bearer(token), ...spoof } },
        });
        try {
          const res = await collectGraphqlWs(c.client, { query: 'subscription { session }' });
          assert.equal(res.events.length, 0, `${Object.keys(spoof)[0]}: got data ${JSON.stringify(res.events)}`);
          assert.equal(res.error?.code, 4403, `${Object.keys(spoof)[0]}: client saw ${describeOutcome(res.error)}`);
        } finally {
          await c.dispose();
        }
      }
      assert.equal(hasura.records.ws.length, firstRecord, 'Hasura was never dialled');
    }),
  );
});

describe('graphql-ws legacy protocol through the proxy (subscriptions-transport-ws)', () => {
  test('a verified subscription reaches Hasura with trusted headers only', { timeout: 20000 }, () =>
    withProxyLog(async () => {
      const { hasura, jwks } = stage;
      const token = await jwks.mint({ sub: SUB });
      const firstRecord = hasura.records.ws.length;
      // SubscriptionClient sends "start" right behind connection_init, before any ack: the proxy must hold it.
      const c = legacyClient({
        url: stage.wsURL,
        connectionParams: { headers: { Authorization: bearer(token), ...SPOOF_PAYLOAD } },
        headers: SPOOF_UPGRADE,
      });
      try {
        const res = await collectLegacy(
          c.client,
          { query: TICKS, variables: { n: 3, ms: 150 } },
          { count: 3, timeoutMs: 10000, closed: c.sockets[0].closed },
        );
        assert.deepEqual(c.state.connectionErrors, [], 'no connection_error');
        assert.equal(res.closed, undefined, `socket closed: ${describeOutcome(res.closed)}`);
        assert.equal(res.error, undefined, `subscription failed: ${describeOutcome(res.error)}`);
        assert.deepEqual(
          res.events.map((e) => e.data.ticks.i),
          [1, 2, 3],
        );
        for (const e of res.events) assert.deepEqual(JSON.parse(e.data.ticks.session), trusted());
        assert.equal(c.state.acks, 1, 'one connection_ack');
        assert.equal(c.sockets[0].socket.protocol, 'graphql-ws', 'proxy echoes the legacy subprotocol');
        assert.ok(
          c.sockets[0].messages.some((m) => m.type === 'ka'),
          'Hasura ka keep-alives are relayed',
        );
        const recs = hasura.wsRecordsFrom(firstRecord);
        assert.equal(recs.length, 1, 'exactly one upstream socket');
        assert.equal(recs[0].protocol, 'graphql-ws');
        assert.deepEqual(recs[0].upgradeHeaders, trusted());
        assert.deepEqual(recs[0].initHeaders, trusted());
        assert.equal(recs[0].initCount, 1);
      } finally {
        c.dispose();
      }
    }),
  );

  // [name, payload headers, upgrade request headers, expected connection_error payload]
  const failures = [
    ['expired token', async (j) => ({ Authorization: bearer(await j.mint({ iat: now() - 600, lifetime: 300 })) }), null, EXPIRED],
    ['token signed by an unknown key', async (j) => ({ Authorization: bearer(await j.mintWithForeignKey()) }), null, BAD_SIGNATURE],
    ['no token', async () => ({}), null, MISSING],
    ['role not allowed', async (j) => ({ Authorization: bearer(await j.mint()), 'x-hasura-role': 'editor' }), null, ROLE_DENIED],
    [
      'token in the payload and on the upgrade request',
      async (j) => ({ Authorization: bearer(await j.mint()) }),
      async (j) => ({ Authorization: bearer(await j.mint()) }),
      MULTIPLE,
    ],
  ];
  for (const [name, makeHeaders, makeUpgradeHeaders, message] of failures) {
    test(`${name}: connection_error "${message}", close 4400, Hasura never dialled`, { timeout: 15000 }, () =>
      withProxyLog(async () => {
        const { hasura, jwks } = stage;
        const firstRecord = hasura.records.ws.length;
        const c = legacyClient({
          url: stage.wsURL,
          connectionParams: { headers: await makeHeaders(jwks) },
          headers: makeUpgradeHeaders ? await makeUpgradeHeaders(jwks) : undefined,
        });
        try {
          const close = await withTimeout(c.sockets[0].closed, 10000, 'the proxy to close the socket');
          const seen = `connection_error payloads ${JSON.stringify(c.state.connectionErrors)}, ${describeOutcome(close)}`;
          assert.deepEqual(c.state.connectionErrors, [message], seen);
          assert.equal(c.state.acks, 0);
          assert.equal(close.code, 4400, seen);
          assert.equal(hasura.records.ws.length, firstRecord, 'no upstream socket for a failed init');
        } finally {
          c.dispose();
        }
      }),
    );
  }

  test('at exp the proxy sends connection_error and closes', { timeout: 30000 }, () =>
    withProxyLog(async () => {
      const { hasura, jwks } = stage;
      const iat = now();
      const exp = iat + LIFETIME;
      const token = await jwks.mint({ iat, lifetime: LIFETIME });
      const firstRecord = hasura.records.ws.length;
      const c = legacyClient({ url: stage.wsURL, connectionParams: { headers: { Authorization: bearer(token) } } });
      try {
        const res = await collectLegacy(
          c.client,
          { query: TICKS, variables: { n: 1000, ms: 100 } },
          { timeoutMs: 20000, closed: c.sockets[0].closed },
        );
        const seen = `connection_error payloads ${JSON.stringify(c.state.connectionErrors)}, ${describeOutcome(res.closed)}`;
        assert.ok(res.events.length > 0, `events flowed before exp (${seen})`);
        assert.ok(res.closed, `the socket was closed (${seen})`);
        assert.equal(c.state.connectionErrors.length, 1, seen);
        const late = res.closed.at - exp * 1000;
        assert.ok(late >= -250, `closed ${-late} ms before exp`);
        assert.ok(late <= LATE_BOUND_MS, `closed ${late} ms after exp; want at most ${LATE_BOUND_MS} ms`);
        const [rec] = hasura.wsRecordsFrom(firstRecord);
        await withTimeout(rec.closed, 10000, 'the upstream socket to be closed too');
      } finally {
        c.dispose();
      }
    }),
  );
});

describe('HTTP through the proxy (graphql-request)', () => {
  const graphqlURL = () => `${stage.proxyURL}/v1/graphql`;

  test('a verified query reaches Hasura as the token user, spoofed headers dropped', { timeout: 10000 }, () =>
    withProxyLog(async () => {
      const token = await stage.jwks.mint({ sub: SUB });
      const client = new GraphQLClient(graphqlURL(), {
        headers: {
          Authorization: bearer(token),
          'X-Hasura-User-Id': 'spoofed-user',
          'x-hasura-org-id': 'spoofed-org',
          'x-hasura-use-backend-only-permissions': 'true',
        },
      });
      const data = await client.request('query { session }');
      assert.deepEqual(JSON.parse(data.session), trusted());
    }),
  );

  test('no token: Hasura invalid-headers error with HTTP 200, Hasura not reached', { timeout: 10000 }, () =>
    withProxyLog(async () => {
      const firstRecord = stage.hasura.records.http.length;
      const expected = { errors: [{ message: MISSING, extensions: { path: '$', code: 'invalid-headers' } }] };
      const client = new GraphQLClient(graphqlURL());
      const err = await client.request('query { session }').then(
        () => assert.fail('query without a token succeeded'),
        (e) => e,
      );
      assert.ok(err instanceof ClientError, `not a GraphQL error: ${err}`);
      assert.equal(err.response.status, 200);
      assert.deepEqual(err.response.errors, expected.errors);

      const res = await fetch(graphqlURL(), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: 'query { session }' }),
      });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
      assert.deepEqual(await res.json(), expected);
      assert.equal(stage.hasura.records.http.length, firstRecord, 'Hasura was not reached');
    }),
  );

  test('role selection: allowed role is used, a role outside allowed roles is access-denied', { timeout: 10000 }, () =>
    withProxyLog(async () => {
      const token = await stage.jwks.mint({ sub: SUB, allowedRoles: ['user', 'viewer'] });
      const viewer = new GraphQLClient(graphqlURL(), {
        headers: { Authorization: bearer(token), 'x-hasura-role': 'viewer' },
      });
      assert.deepEqual(JSON.parse((await viewer.request('query { session }')).session), trusted('viewer'));

      const firstRecord = stage.hasura.records.http.length;
      const editor = new GraphQLClient(graphqlURL(), {
        headers: { Authorization: bearer(token), 'X-Hasura-Role': 'editor' },
      });
      const err = await editor.request('query { session }').then(
        () => assert.fail('a role outside allowed roles was accepted'),
        (e) => e,
      );
      assert.ok(err instanceof ClientError, `not a GraphQL error: ${err}`);
      assert.equal(err.response.status, 200);
      assert.deepEqual(err.response.errors, [
        { message: ROLE_DENIED, extensions: { path: '$', code: 'access-denied' } },
      ]);
      assert.equal(stage.hasura.records.http.length, firstRecord, 'Hasura was not reached');
    }),
  );

  test('expired and badly signed tokens get Hasura invalid-jwt errors', { timeout: 10000 }, () =>
    withProxyLog(async () => {
      for (const [token, message] of [
        [await stage.jwks.mint({ iat: now() - 600, lifetime: 300 }), EXPIRED],
        [await stage.jwks.mintWithForeignKey(), BAD_SIGNATURE],
      ]) {
        const res = await fetch(graphqlURL(), {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: bearer(token) },
          body: JSON.stringify({ query: 'query { session }' }),
        });
        assert.equal(res.status, 200);
        assert.deepEqual(await res.json(), {
          errors: [{ message, extensions: { path: '$', code: 'invalid-jwt' } }],
        });
      }
    }),
  );
});

describe('proxy process', () => {
  test('is still running after the suite', () => {
    assert.equal(stage.exited(), undefined, `proxy exited: ${JSON.stringify(stage.exited())}`);
  });

  test('readyz stays 200', { timeout: 15000 }, async () => {
    const res = await fetch(`${stage.opsURL}/readyz`, { signal: AbortSignal.timeout(10000) });
    assert.equal(res.status, 200);
  });
});
