// Proves the e2e harness itself, without the proxy: the real clients against the fake Hasura, and the JWKS server
// against jose's own verifier. If this file fails, proxy.test.mjs results mean nothing.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { GraphQLClient } from 'graphql-request';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import {
  collectGraphqlWs,
  collectLegacy,
  graphqlWsClient,
  legacyClient,
  waitFor,
  withTimeout,
} from './clients.mjs';
import { startFakeHasura } from './fake-hasura.mjs';
import { HASURA_NAMESPACE, KID, startJwks } from './jwks.mjs';

const SECRET = 'e2e-fake-admin-secret';
const TICKS = 'subscription T($n: Int!, $ms: Int) { ticks(n: $n, intervalMs: $ms) { i session } }';

let hasura;
let jwks;
let wsURL;

before(async () => {
  hasura = await startFakeHasura({ adminSecret: SECRET, keepAliveMs: 100 });
  jwks = await startJwks({ issuer: 'https://e2e.clerk.accounts.dev' });
  wsURL = `${hasura.url.replace('http', 'ws')}/v1/graphql`;
});

after(async () => {
  await hasura?.close();
  await jwks?.close();
}, { timeout: 30000 });

describe('fake Hasura over HTTP', () => {
  test('healthz answers 200 OK', async () => {
    const res = await fetch(`${hasura.url}/healthz`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'OK');
  });

  test('a query reports the x-hasura-* headers it received, lower-cased', async () => {
    const client = new GraphQLClient(`${hasura.url}/v1/graphql`, {
      headers: { 'X-Hasura-Admin-Secret': SECRET, 'X-Hasura-Role': 'user', 'x-hasura-user-id': 'u1', Other: 'x' },
    });
    const data = await client.request('{ session }');
    assert.deepEqual(JSON.parse(data.session), {
      'x-hasura-admin-secret': SECRET,
      'x-hasura-role': 'user',
      'x-hasura-user-id': 'u1',
    });
    assert.equal(hasura.records.http.at(-1).session['x-hasura-role'], 'user');
  });

  test('a wrong admin secret is refused like Hasura refuses it', async () => {
    const res = await fetch(`${hasura.url}/v1/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-hasura-admin-secret': 'nope' },
      body: JSON.stringify({ query: '{ session }' }),
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), {
      errors: [
        {
          message: 'invalid x-hasura-admin-secret/x-hasura-access-key',
          extensions: { path: '$', code: 'access-denied' },
        },
      ],
    });
  });
});

describe('fake Hasura over graphql-transport-ws (graphql-ws createClient)', () => {
  test('ticks carry the merged session; upgrade headers override payload headers', async () => {
    const before = hasura.records.ws.length;
    const c = graphqlWsClient({
      url: wsURL,
      connectionParams: async () => ({
        headers: { 'X-Hasura-Admin-Secret': SECRET, 'X-Hasura-Role': 'payload-role', 'x-hasura-org-id': 'o1' },
      }),
      headers: { 'x-hasura-role': 'upgrade-role', 'x-hasura-user-id': 'u2' },
    });
    try {
      const res = await collectGraphqlWs(c.client, { query: TICKS, variables: { n: 3, ms: 120 } }, { count: 3 });
      assert.equal(res.error, undefined);
      assert.deepEqual(
        res.events.map((e) => e.data.ticks.i),
        [1, 2, 3],
      );
      const session = JSON.parse(res.events[0].data.ticks.session);
      assert.deepEqual(session, {
        'x-hasura-admin-secret': SECRET,
        'x-hasura-role': 'upgrade-role',
        'x-hasura-user-id': 'u2',
        'x-hasura-org-id': 'o1',
      });
      const [rec] = hasura.wsRecordsFrom(before);
      assert.equal(rec.protocol, 'graphql-transport-ws');
      assert.equal(c.sockets[0].socket.protocol, 'graphql-transport-ws');
      assert.deepEqual(rec.upgradeHeaders, { 'x-hasura-role': 'upgrade-role', 'x-hasura-user-id': 'u2' });
      assert.equal(rec.initHeaders['x-hasura-role'], 'payload-role');
      assert.equal(rec.initCount, 1);
      assert.ok(
        c.sockets[0].messages.some((m) => m.type === 'ping'),
        'client saw a Hasura-style keep-alive ping',
      );
      // The pong answering it may still be on its way to the server.
      await waitFor(() => rec.pongs >= 1, 10000, 'the client to answer a keep-alive ping');
    } finally {
      await c.dispose();
    }
  });

  test('the session subscription emits once and completes', async () => {
    const c = graphqlWsClient({ url: wsURL, connectionParams: { headers: { 'x-hasura-admin-secret': SECRET } } });
    try {
      const res = await collectGraphqlWs(c.client, { query: 'subscription { session }' });
      assert.equal(res.completed, true);
      assert.equal(res.events.length, 1);
      assert.equal(JSON.parse(res.events[0].data.session)['x-hasura-admin-secret'], SECRET);
    } finally {
      await c.dispose();
    }
  });

  test('a wrong admin secret closes the socket with 4403 Forbidden', async () => {
    const c = graphqlWsClient({ url: wsURL, connectionParams: { headers: { 'x-hasura-admin-secret': 'nope' } } });
    try {
      const res = await collectGraphqlWs(c.client, { query: TICKS, variables: { n: 1 } });
      assert.equal(res.events.length, 0);
      assert.equal(res.error?.code, 4403);
      assert.equal(res.error?.reason, '{"server_error_msg":"4403: Forbidden"}');
    } finally {
      await c.dispose();
    }
  });
});

describe('fake Hasura over graphql-ws (subscriptions-transport-ws SubscriptionClient)', () => {
  test('ticks carry the merged session and keep-alives arrive', async () => {
    const before = hasura.records.ws.length;
    const c = legacyClient({
      url: wsURL,
      connectionParams: { headers: { 'x-hasura-admin-secret': SECRET, 'x-hasura-role': 'user' } },
      headers: { 'X-Hasura-User-Id': 'u3' },
    });
    try {
      const res = await collectLegacy(
        c.client,
        { query: TICKS, variables: { n: 2, ms: 150 } },
        { count: 2, closed: c.sockets[0].closed },
      );
      assert.equal(res.error, undefined);
      assert.equal(res.closed, undefined);
      assert.deepEqual(JSON.parse(res.events[1].data.ticks.session), {
        'x-hasura-admin-secret': SECRET,
        'x-hasura-role': 'user',
        'x-hasura-user-id': 'u3',
      });
      assert.equal(c.state.acks, 1);
      assert.equal(c.sockets[0].socket.protocol, 'graphql-ws');
      assert.ok(
        c.sockets[0].messages.some((m) => m.type === 'ka'),
        'client saw a ka keep-alive',
      );
      const [rec] = hasura.wsRecordsFrom(before);
      assert.equal(rec.protocol, 'graphql-ws');
      assert.equal(rec.accepted, true);
    } finally {
      c.dispose();
    }
  });

  test('a wrong admin secret gets connection_error', async () => {
    const c = legacyClient({ url: wsURL, connectionParams: { headers: { 'x-hasura-admin-secret': 'nope' } } });
    try {
      await waitFor(() => c.state.connectionErrors.length > 0, 5000, 'connection_error');
      assert.deepEqual(c.state.connectionErrors[0], { message: 'invalid x-hasura-admin-secret/x-hasura-access-key' });
      assert.equal(c.state.acks, 0);
    } finally {
      c.dispose();
    }
  });

  test('the server records when the client goes away', async () => {
    const before = hasura.records.ws.length;
    const c = legacyClient({ url: wsURL, connectionParams: { headers: { 'x-hasura-admin-secret': SECRET } } });
    await waitFor(() => c.state.acks === 1, 5000, 'connection_ack');
    c.dispose();
    const [rec] = hasura.wsRecordsFrom(before);
    const close = await withTimeout(rec.closed, 5000, 'server-side close');
    assert.equal(typeof close.code, 'number');
  });
});

describe('JWKS stand-in', () => {
  test('serves the key that verifies minted Clerk-shaped tokens', async () => {
    const token = await jwks.mint({ lifetime: 120, allowedRoles: ['user', 'editor'] });
    assert.equal(decodeProtectedHeader(token).kid, KID);
    const keys = createRemoteJWKSet(new URL(jwks.jwksUrl));
    const { payload } = await jwtVerify(token, keys, { issuer: jwks.issuer, algorithms: ['RS256'] });
    assert.equal(payload.exp - payload.iat, 120);
    assert.equal(payload.nbf, payload.iat - 5);
    assert.equal(payload.azp, jwks.azp);
    assert.equal(payload.sub, 'user_2e2eTestUser');
    assert.deepEqual(payload[HASURA_NAMESPACE], {
      'x-hasura-user-id': 'user_2e2eTestUser',
      'x-hasura-default-role': 'user',
      'x-hasura-allowed-roles': ['user', 'editor'],
    });
  });

  test('tokens signed with the unpublished key and expired tokens do not verify', async () => {
    const keys = createRemoteJWKSet(new URL(jwks.jwksUrl));
    await assert.rejects(jwtVerify(await jwks.mintWithForeignKey(), keys), { code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
    const now = Math.floor(Date.now() / 1000);
    await assert.rejects(jwtVerify(await jwks.mint({ iat: now - 120, lifetime: 60 }), keys), {
      code: 'ERR_JWT_EXPIRED',
    });
  });
});
