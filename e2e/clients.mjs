// Thin wrappers around the real npm clients (graphql-ws, subscriptions-transport-ws) that add what a test needs and
// a browser app does not: extra headers on the upgrade request (to try spoofing there too), a record of every socket
// the client opened and how it closed, and bounded waits.

import { createClient } from 'graphql-ws';
import { SubscriptionClient } from 'subscriptions-transport-ws';
import WebSocket from 'ws';

/**
 * Returns a WebSocket implementation (the `ws` package) that sends `headers` on the upgrade request and records each
 * socket it opens: {protocol, closed: Promise<{code, reason, at}>, messages: parsed server messages}.
 */
export function recordingWebSocket({ headers } = {}) {
  const sockets = [];
  class RecordingWebSocket extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols, { headers: headers ?? {} });
      const entry = { socket: this, messages: [], close: undefined, error: undefined };
      // The clients drop their own error handler before closing a socket that is still connecting; without this
      // listener the 'error' of that abort is thrown (uncaught) and 'close' is never emitted.
      this.on('error', (err) => {
        entry.error = err.message;
      });
      entry.closed = new Promise((resolve) => {
        this.once('close', (code, reason) => {
          entry.close = { code, reason: String(reason), at: Date.now() };
          resolve(entry.close);
        });
      });
      this.on('message', (data) => {
        try {
          entry.messages.push(JSON.parse(String(data)));
        } catch {
          entry.messages.push({ unparsable: String(data) });
        }
      });
      sockets.push(entry);
    }
  }
  return { Impl: RecordingWebSocket, sockets };
}

/** Rejects after ms with a message naming what was awaited (what may be a function, called at the timeout). */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${ms} ms waiting for ${typeof what === 'function' ? what() : what}`)),
      ms,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Polls cond() every 20 ms until it is truthy; rejects after ms. */
export async function waitFor(cond, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await cond();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * A graphql-ws client (graphql-transport-ws) as an app would make it, with connectionParams as given and no retries,
 * so a close reaches the subscriber as an error carrying the close code.
 */
export function graphqlWsClient({ url, connectionParams, headers }) {
  const ws = recordingWebSocket({ headers });
  const client = createClient({
    url,
    webSocketImpl: ws.Impl,
    connectionParams,
    lazy: true,
    retryAttempts: 0,
    // A bound for a stalled proxy, not a speed expectation: on a busy machine the ack can take seconds.
    connectionAckWaitTimeout: 10000,
  });
  return { client, sockets: ws.sockets, dispose: () => client.dispose() };
}

/**
 * A subscriptions-transport-ws SubscriptionClient (legacy graphql-ws protocol) with connectionParams as given.
 * connectionErrors collects the payloads of connection_error messages; acks counts connection_ack.
 */
export function legacyClient({ url, connectionParams, headers }) {
  const ws = recordingWebSocket({ headers });
  const state = { connectionErrors: [], acks: 0 };
  const client = new SubscriptionClient(
    url,
    {
      connectionParams,
      reconnect: false,
      timeout: 10000,
      // The client aborts a socket that is not open after minTimeout (default 1 s, too short for a busy machine),
      // and reports that to no running operation: the subscription would just hang until its test timed out.
      minTimeout: 10000,
      connectionCallback: (error) => {
        if (error) state.connectionErrors.push(error);
        else state.acks++;
      },
    },
    ws.Impl,
  );
  // close() only clears the client's timers when it still holds a socket; after the server closed the socket its
  // keep-alive check interval would keep running (and keep node alive), so clear them all explicitly.
  const dispose = () => {
    client.close();
    client.clearCheckConnectionInterval();
    client.clearMaxConnectTimeout();
    client.clearTryReconnectTimeout();
    client.clearInactivityTimeout();
  };
  return { client, sockets: ws.sockets, state, dispose };
}

/**
 * Subscribes through a graphql-ws client and collects events until `count` arrived (then unsubscribes), the
 * subscription completes or fails. Resolves {events, error, completed}; rejects after timeoutMs.
 */
export function collectGraphqlWs(client, payload, { count = Infinity, timeoutMs = 10000 } = {}) {
  const events = [];
  let unsubscribe = () => {};
  const done = new Promise((resolve) => {
    unsubscribe = client.subscribe(payload, {
      next: (value) => {
        events.push(value);
        if (events.length >= count) {
          unsubscribe();
          resolve({ events, error: undefined, completed: false });
        }
      },
      error: (error) => resolve({ events, error, completed: false }),
      complete: () => resolve({ events, error: undefined, completed: true }),
    });
  });
  return withTimeout(done, timeoutMs, () => `graphql-ws subscription (${events.length} events so far)`).finally(() =>
    unsubscribe(),
  );
}

/**
 * Subscribes through a SubscriptionClient and collects events like collectGraphqlWs. The legacy client never
 * reports a closed socket to a running operation, so `closed` (a promise) also ends the wait.
 */
export function collectLegacy(client, payload, { count = Infinity, timeoutMs = 10000, closed } = {}) {
  const events = [];
  let subscription;
  const done = new Promise((resolve) => {
    subscription = client.request(payload).subscribe({
      next: (value) => {
        events.push(value);
        if (events.length >= count) resolve({ events, error: undefined, completed: false, closed: undefined });
      },
      error: (error) => resolve({ events, error, completed: false, closed: undefined }),
      complete: () => resolve({ events, error: undefined, completed: true, closed: undefined }),
    });
    closed?.then((close) => resolve({ events, error: undefined, completed: false, closed: close }));
  });
  return withTimeout(done, timeoutMs, () => `legacy subscription (${events.length} events so far)`).finally(() =>
    subscription?.unsubscribe(),
  );
}

/** A short description of what a client reported: a close event, a socket error, or anything else. */
export function describeOutcome(value) {
  if (value === undefined) return 'nothing';
  if (value && typeof value === 'object' && 'code' in value && 'reason' in value) {
    return `close ${value.code} ${JSON.stringify(String(value.reason))}`;
  }
  if (value && typeof value === 'object' && (value.error || value.message)) {
    return `error: ${value.error?.message ?? value.message}`;
  }
  if (Array.isArray(value)) return `GraphQL errors: ${JSON.stringify(value)}`;
  return JSON.stringify(value);
}
