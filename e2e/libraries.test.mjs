// The GraphQL client libraries of Clerk + Hasura apps, configured as their docs show and with retries on, against
// the real proxy: Apollo Client (HttpLink behind an auth link and a RetryLink, GraphQLWsLink over graphql-ws) and
// urql (@urql/core's Client: fetchExchange behind retryExchange, subscriptionExchange over graphql-ws).
//
// Each library: a query as the token's default role, a role switch through x-hasura-role, an expired token surfaced
// as the library's own GraphQL error with Hasura's code and message, and a subscription that outlives its token:
// at exp the proxy closes with 4403, graphql-ws retries, calls connectionParams again and resubscribes.
// The reconnect gap (from the 4403 close to the next event) is reported as a test diagnostic.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { createClient } from 'graphql-ws';
import {
  ApolloClient,
  ApolloLink,
  CombinedGraphQLErrors,
  HttpLink,
  InMemoryCache,
  gql,
} from '@apollo/client';
import { SetContextLink } from '@apollo/client/link/context';
import { RetryLink } from '@apollo/client/link/retry';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { Client as UrqlClient, fetchExchange, subscriptionExchange } from '@urql/core';
import { retryExchange } from '@urql/exchange-retry';
import { startStage } from './harness.mjs';

const SESSION = 'query { session }';
const TICKS = 'subscription { ticks(n: 100000, intervalMs: 100) { i } }';
const EXPIRED = { code: 'invalid-jwt', message: 'Could not verify JWT: JWTExpired' };
const SHORT_LIFETIME = 3;
const SUBSCRIPTION_TIMEOUT_MS = 45000;

let stage;

before(async () => {
  stage = await startStage();
});

after(async () => {
  await stage?.stop();
}, { timeout: 30000 });

const now = () => Math.floor(Date.now() / 1000);
const mint = (opts) => stage.jwks.mint({ allowedRoles: ['user', 'viewer'], ...opts });
const expiredToken = () => mint({ iat: now() - 600, lifetime: 60 });

/** A graphql-ws client as a Clerk app builds it: connectionParams is a function, so each connection gets a fresh token. */
function wsClient({ lifetime, retryWait, events }) {
  return createClient({
    url: stage.wsURL,
    webSocketImpl: WebSocket,
    connectionParams: async () => ({ headers: { Authorization: `Bearer ${await mint({ lifetime })}` } }),
    retryAttempts: Infinity,
    shouldRetry: () => true,
    ...(retryWait ? { retryWait } : {}),
    on: {
      connected: () => events.push({ connected: Date.now() }),
      closed: (e) => events.push({ closed: e.code, at: Date.now() }),
    },
  });
}

/**
 * Subscribes through subscribe(onNext, onError) and resolves once an event arrives after the socket was closed
 * with 4403 at exp; returns the measured reconnect gap (close to next event).
 */
function surviveExpiry(subscribe, events) {
  return new Promise((resolve, reject) => {
    let stop = () => {};
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`no event after an expiry within ${SUBSCRIPTION_TIMEOUT_MS} ms; socket events ${JSON.stringify(events)}`));
    }, SUBSCRIPTION_TIMEOUT_MS);
    stop = subscribe(
      () => {
        // graphql-ws reports the close before it reconnects: an event after a 4403 close came on a new socket.
        const close = events.find((e) => e.closed === 4403);
        if (!close) return;
        clearTimeout(timer);
        stop();
        resolve({ gapMs: Date.now() - close.at });
      },
      (err) => {
        clearTimeout(timer);
        stop();
        reject(new Error(`subscription failed: ${JSON.stringify(err?.errors ?? err?.message ?? err)}; socket events ${JSON.stringify(events)}`));
      },
    );
  });
}

describe('Apollo Client (HttpLink + auth link + RetryLink, GraphQLWsLink)', () => {
  let token;
  let client;
  const events = [];
  let ws;

  before(async () => {
    token = await mint({});
    // Clerk's guide: the auth link puts `Bearer ${await getToken()}` on every request.
    const auth = new SetContextLink(async (prev) => ({ headers: { ...prev.headers, authorization: `Bearer ${await token}` } }));
    const retry = new RetryLink({ delay: { initial: 100, max: 1000 }, attempts: { max: 3 } });
    const http = new HttpLink({ uri: `${stage.proxyURL}/v1/graphql` });
    ws = wsClient({ lifetime: SHORT_LIFETIME, events });
    const link = ApolloLink.split(
      ({ query }) => query.definitions.some((d) => d.kind === 'OperationDefinition' && d.operation === 'subscription'),
      new GraphQLWsLink(ws),
      ApolloLink.from([retry, auth, http]),
    );
    client = new ApolloClient({ link, cache: new InMemoryCache(), defaultOptions: { query: { fetchPolicy: 'no-cache' } } });
  });

  after(async () => {
    client?.stop();
    await ws?.dispose();
  });

  test('query as the default role', { timeout: 15000 }, async () => {
    const { data } = await client.query({ query: gql(SESSION) });
    assert.equal(JSON.parse(data.session)['x-hasura-role'], 'user');
  });

  test('role switch through x-hasura-role in the operation context', { timeout: 15000 }, async () => {
    const { data } = await client.query({ query: gql(SESSION), context: { headers: { 'x-hasura-role': 'viewer' } } });
    assert.equal(JSON.parse(data.session)['x-hasura-role'], 'viewer');
  });

  test('an expired token is an Apollo CombinedGraphQLErrors with Hasura\'s code and message', { timeout: 15000 }, async () => {
    const saved = token;
    token = expiredToken();
    try {
      await assert.rejects(client.query({ query: gql(SESSION) }), (err) => {
        assert.ok(CombinedGraphQLErrors.is(err), `not a GraphQL error: ${err}`);
        assert.deepEqual({ code: err.errors[0].extensions?.code, message: err.errors[0].message }, EXPIRED);
        return true;
      });
    } finally {
      token = saved;
    }
  });

  test('a subscription outlives its token (graphql-ws default retryWait)', { timeout: 60000 }, async (t) => {
    const { gapMs } = await surviveExpiry((next, error) => {
      const sub = client.subscribe({ query: gql(TICKS) }).subscribe({
        next: (r) => (r.error ? error(r.error) : next()),
        error,
      });
      return () => sub.unsubscribe();
    }, events);
    t.diagnostic(`reconnect gap ${gapMs} ms (default retryWait: 1 s + 0.3-3 s random on the first retry)`);
  });
});

describe('urql (@urql/core Client: retryExchange + fetchExchange, subscriptionExchange)', () => {
  let token;
  let client;
  const events = [];
  let ws;

  before(async () => {
    token = await mint({});
    ws = wsClient({ lifetime: SHORT_LIFETIME, events, retryWait: () => new Promise((r) => setTimeout(r, 100)) });
    client = new UrqlClient({
      url: `${stage.proxyURL}/v1/graphql`,
      requestPolicy: 'network-only',
      // urql sends short queries as GET by default; Hasura's /v1/graphql takes POST.
      preferGetMethod: false,
      fetchOptions: () => ({ headers: { authorization: `Bearer ${token}` } }),
      exchanges: [
        retryExchange({ initialDelayMs: 100, maxDelayMs: 1000, maxNumberAttempts: 3 }),
        fetchExchange,
        subscriptionExchange({
          forwardSubscription: (request) => ({
            subscribe: (sink) => ({ unsubscribe: ws.subscribe({ ...request, query: request.query ?? '' }, sink) }),
          }),
        }),
      ],
    });
  });

  after(async () => {
    await ws?.dispose();
  });

  test('query as the default role', { timeout: 15000 }, async () => {
    const res = await client.query(SESSION, {}).toPromise();
    assert.equal(res.error, undefined, `${res.error}`);
    assert.equal(JSON.parse(res.data.session)['x-hasura-role'], 'user');
  });

  test('role switch through x-hasura-role in fetchOptions', { timeout: 15000 }, async () => {
    const res = await client
      .query(SESSION, {}, { fetchOptions: { headers: { authorization: `Bearer ${token}`, 'x-hasura-role': 'viewer' } } })
      .toPromise();
    assert.equal(res.error, undefined, `${res.error}`);
    assert.equal(JSON.parse(res.data.session)['x-hasura-role'], 'viewer');
  });

  test('an expired token is a urql CombinedError with Hasura\'s code and message', { timeout: 15000 }, async () => {
    const saved = token;
    token = await expiredToken();
    try {
      const res = await client.query(SESSION, {}).toPromise();
      assert.ok(res.error, 'no error');
      assert.equal(res.error.networkError, undefined, `network error: ${res.error.networkError}`);
      const [e] = res.error.graphQLErrors;
      assert.deepEqual({ code: e?.extensions?.code, message: e?.message }, EXPIRED);
    } finally {
      token = saved;
    }
  });

  test('a subscription outlives its token (retryWait 100 ms)', { timeout: 60000 }, async (t) => {
    const { gapMs } = await surviveExpiry((next, error) => {
      const sub = client.subscription(TICKS, {}).subscribe((r) => (r.error ? error(r.error) : next()));
      return () => sub.unsubscribe();
    }, events);
    t.diagnostic(`reconnect gap ${gapMs} ms with retryWait 100 ms`);
  });
});
