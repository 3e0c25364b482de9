// End-to-end tests of revocation: Clerk-shaped webhook events signed with the real `svix` npm package (the library
// Clerk's webhooks are signed and verified with) are delivered to the real binary's clerk_webhook.path; the revoked
// session's tokens are then refused over HTTP and its live subscription is closed.

import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { ClientError, GraphQLClient } from 'graphql-request';
import { Webhook } from 'svix';
import { graphqlWsClient, withTimeout } from './clients.mjs';
import { startStage } from './harness.mjs';

const SECRET = `whsec_${randomBytes(24).toString('base64')}`;
const PATH = '/clerk/webhook';
const REVOKED = 'Could not verify JWT: the session was revoked';
const TICKS = 'subscription Ticks($n: Int!, $ms: Int) { ticks(n: $n, intervalMs: $ms) { i session } }';

let stage;

before(async () => {
  stage = await startStage({
    extraConfig: {
      yaml: `clerk_webhook:\n  path: ${JSON.stringify(PATH)}\n  signing_secret: ${JSON.stringify(SECRET)}\n  max_token_lifetime: 1h\n`,
    },
  });
});

after(async () => {
  await stage?.stop();
}, { timeout: 30000 });

/** A Clerk webhook event body (the shape of Clerk's session.* and user.deleted events). */
function clerkEvent(type, data) {
  return JSON.stringify({
    data,
    event_attributes: { http_request: { client_ip: '192.0.2.1', user_agent: 'e2e' } },
    instance_id: 'ins_2e2e',
    object: 'event',
    timestamp: Date.now(),
    type,
  });
}

function sessionData(id, userId, status) {
  const t = Date.now();
  return {
    abandon_at: t + 30 * 86400_000,
    actor: null,
    client_id: 'client_2e2e',
    created_at: t - 3600_000,
    expire_at: t + 7 * 86400_000,
    id,
    last_active_at: t,
    object: 'session',
    status,
    updated_at: t,
    user_id: userId,
  };
}

/** Delivers body to the proxy as Svix does: svix-id, svix-timestamp, svix-signature made by the svix package. */
async function deliver(body, { secret = SECRET, id = `msg_${randomUUID()}`, at = new Date(), signature } = {}) {
  const sig = signature ?? new Webhook(secret).sign(id, at, body);
  const res = await fetch(stage.proxyURL + PATH, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'svix-id': id,
      'svix-timestamp': String(Math.floor(at.getTime() / 1000)),
      'svix-signature': sig,
    },
    body,
  });
  return { status: res.status, body: await res.text(), id };
}

/** The error message the proxy answers a query with token with, or undefined when it was forwarded. */
async function queryError(token) {
  const client = new GraphQLClient(`${stage.proxyURL}/v1/graphql`, { headers: { Authorization: `Bearer ${token}` } });
  try {
    await client.request('{ session }');
    return undefined;
  } catch (err) {
    if (err instanceof ClientError) return err.response.errors?.[0]?.message;
    throw err;
  }
}

describe('Clerk webhook signed with svix', () => {
  test('session.revoked: the session is refused, another session of the user is not', { timeout: 15000 }, async () => {
    const { jwks } = stage;
    const revoked = await jwks.mint({ sub: 'user_2e2eRev', claims: { sid: 'sess_2e2eRevoked' } });
    const other = await jwks.mint({ sub: 'user_2e2eRev', claims: { sid: 'sess_2e2eOther' } });
    assert.equal(await queryError(revoked), undefined, 'allowed before the event (and now in the token cache)');
    const res = await deliver(clerkEvent('session.revoked', sessionData('sess_2e2eRevoked', 'user_2e2eRev', 'revoked')));
    assert.equal(res.status, 200, res.body);
    assert.equal(await queryError(revoked), REVOKED);
    assert.equal(await queryError(other), undefined);
    // Svix redelivers with the same id: acknowledged.
    const again = await deliver(clerkEvent('session.revoked', sessionData('sess_2e2eRevoked', 'user_2e2eRev', 'revoked')), {
      id: res.id,
    });
    assert.equal(again.status, 200, again.body);
  });

  test('user.deleted: every token of the user is refused', { timeout: 15000 }, async () => {
    const token = await jwks().mint({ sub: 'user_2e2eDeleted', claims: { sid: 'sess_2e2eAny' } });
    assert.equal(await queryError(token), undefined);
    const res = await deliver(clerkEvent('user.deleted', { deleted: true, id: 'user_2e2eDeleted', object: 'user' }));
    assert.equal(res.status, 200, res.body);
    assert.equal(await queryError(token), REVOKED);
  });

  test('session.ended closes the live graphql-transport-ws subscription with 4403 "session revoked"', { timeout: 20000 }, async () => {
    const token = await jwks().mint({ sub: 'user_2e2eLive', claims: { sid: 'sess_2e2eLive' }, lifetime: 600 });
    const c = graphqlWsClient({ url: stage.wsURL, connectionParams: { headers: { Authorization: `Bearer ${token}` } } });
    try {
      let first;
      const firstEvent = new Promise((resolve) => (first = resolve));
      const ended = new Promise((resolve) => {
        c.client.subscribe(
          { query: TICKS, variables: { n: 10000, ms: 100 } },
          { next: () => first(), error: (error) => resolve(error), complete: () => resolve(undefined) },
        );
      });
      await withTimeout(firstEvent, 10000, 'the first subscription event');
      const res = await deliver(clerkEvent('session.ended', sessionData('sess_2e2eLive', 'user_2e2eLive', 'ended')));
      assert.equal(res.status, 200, res.body);
      const answered = Date.now();
      const error = await withTimeout(ended, 10000, 'the subscription to be closed');
      assert.equal(error?.code, 4403, `closed with ${error?.code} ${error?.reason}`);
      assert.equal(error?.reason, 'session revoked');
      assert.ok(Date.now() - answered < 5000, `closed ${Date.now() - answered} ms after the webhook answered`);
    } finally {
      await c.dispose();
    }
  });

  test('bad deliveries are refused and revoke nothing', { timeout: 15000 }, async () => {
    const token = await jwks().mint({ sub: 'user_2e2eSafe', claims: { sid: 'sess_2e2eSafe' } });
    const body = clerkEvent('session.revoked', sessionData('sess_2e2eSafe', 'user_2e2eSafe', 'revoked'));
    const other = `whsec_${randomBytes(24).toString('base64')}`;
    const cases = [
      ['signed with another secret', { secret: other }, 401],
      ['timestamp 10 minutes old', { at: new Date(Date.now() - 600_000) }, 401],
      ['no signature', { signature: '' }, 401],
    ];
    for (const [name, opts, want] of cases) {
      const res = await deliver(body, opts);
      assert.equal(res.status, want, `${name}: ${res.body}`);
    }
    const malformed = await deliver('not json');
    assert.equal(malformed.status, 400, malformed.body);
    const get = await fetch(stage.proxyURL + PATH);
    assert.equal(get.status, 405);
    assert.equal(await queryError(token), undefined, 'still allowed');
    // Several signatures, as during a secret rotation: any one may match.
    const id = `msg_${randomUUID()}`;
    const at = new Date();
    const both = `${new Webhook(other).sign(id, at, body)} ${new Webhook(SECRET).sign(id, at, body)}`;
    const rotated = await deliver(body, { id, at, signature: both });
    assert.equal(rotated.status, 200, rotated.body);
    assert.equal(await queryError(token), REVOKED);
  });

  test('other event types are acknowledged and ignored', { timeout: 10000 }, async () => {
    const res = await deliver(clerkEvent('user.created', { id: 'user_2e2eNew', object: 'user' }));
    assert.equal(res.status, 200, res.body);
    assert.match(res.body, /ignored/);
  });
});

function jwks() {
  return stage.jwks;
}
