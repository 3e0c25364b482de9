// A stand-in for Clerk's Frontend API JWKS endpoint and for Clerk's JWT templates.
//
// startJwks() generates an RS256 key pair with `jose` (the library Clerk's own SDK uses), serves the public half at
// /.well-known/jwks.json with kid "ins_e2e" on an ephemeral 127.0.0.1 port, and mints tokens shaped like the ones a
// Clerk "hasura" JWT template produces: iss, sub, azp, iat, nbf = iat - 5, exp, jti and the
// https://hasura.io/jwt/claims namespace with x-hasura-user-id, x-hasura-default-role and x-hasura-allowed-roles.

import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';

/** The kid the served key carries, in Clerk's `ins_...` style. */
export const KID = 'ins_e2e';

/** The claims namespace Hasura reads by default. */
export const HASURA_NAMESPACE = 'https://hasura.io/jwt/claims';

/**
 * Starts the JWKS server.
 * @param {{issuer: string, azp?: string}} opts issuer every minted token carries and the default azp.
 * @returns {Promise<{url: string, jwksUrl: string, issuer: string, fetches: () => number,
 *   mint: (o?: MintOptions) => Promise<string>, mintWithForeignKey: (o?: MintOptions) => Promise<string>,
 *   close: () => Promise<void>}>}
 */
export async function startJwks({ issuer, azp = 'http://localhost:3000' }) {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: KID, alg: 'RS256', use: 'sig' };
  const body = JSON.stringify({ keys: [jwk] });
  // A second key that is never published: tokens signed with it carry the right kid but a wrong signature.
  const foreign = await generateKeyPair('RS256');

  let fetches = 0;
  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/.well-known/jwks.json') {
      fetches++;
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=300' });
      res.end(body);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
  });
  await listen(server);
  const url = `http://127.0.0.1:${server.address().port}`;

  /**
   * @typedef {object} MintOptions
   * @property {string} [sub] Clerk user id, also x-hasura-user-id (default user_2e2eTestUser).
   * @property {number} [lifetime] seconds from iat to exp (default 60).
   * @property {number} [iat] issued-at, seconds since the epoch (default now).
   * @property {string} [defaultRole] x-hasura-default-role (default "user").
   * @property {string[]} [allowedRoles] x-hasura-allowed-roles (default ["user"]).
   * @property {Record<string, string>} [hasuraClaims] extra claims inside the namespace.
   * @property {Record<string, unknown>} [claims] extra top-level claims (override the defaults).
   * @property {string} [issuer] iss (default the server's issuer).
   * @property {string} [azp] azp (default the server's azp).
   */
  const build = (opts = {}) => {
    const iat = opts.iat ?? Math.floor(Date.now() / 1000);
    const sub = opts.sub ?? 'user_2e2eTestUser';
    const payload = {
      azp: opts.azp ?? azp,
      [HASURA_NAMESPACE]: {
        'x-hasura-user-id': sub,
        'x-hasura-default-role': opts.defaultRole ?? 'user',
        'x-hasura-allowed-roles': opts.allowedRoles ?? ['user'],
        ...(opts.hasuraClaims ?? {}),
      },
      ...(opts.claims ?? {}),
    };
    return new SignJWT(payload)
      .setProtectedHeader({ alg: 'RS256', kid: KID, typ: 'JWT' })
      .setIssuer(opts.issuer ?? issuer)
      .setSubject(sub)
      .setIssuedAt(iat)
      .setNotBefore(iat - 5)
      .setExpirationTime(iat + (opts.lifetime ?? 60))
      .setJti(randomUUID());
  };

  return {
    url,
    jwksUrl: `${url}/.well-known/jwks.json`,
    issuer,
    azp,
    fetches: () => fetches,
    mint: (opts) => build(opts).sign(privateKey),
    mintWithForeignKey: (opts) => build(opts).sign(foreign.privateKey),
    close: () => closeServer(server),
  };
}

/** Listens on an ephemeral 127.0.0.1 port. */
export function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Closes a server and every connection it still holds. */
export function closeServer(server) {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections?.();
  });
}
