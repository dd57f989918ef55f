import { createRemoteJWKSet, errors, jwtVerify } from 'jose';
import type { JWTPayload } from 'jose';
import { ServerError } from './errors.js';

export interface AuthOptions {
  /** HS256 shared secret (e.g. Supabase's JWT secret). */
  readonly secret?: string;
  /** A JWKS URL for RS256/ES256 tokens (e.g. `https://<project>.supabase.co/auth/v1/.well-known/jwks.json`). */
  readonly jwksUrl?: string;
  /** Required `iss`, when set. */
  readonly issuer?: string;
  /** Required `aud`, when set (Supabase uses `authenticated`). */
  readonly audience?: string;
  /** Tolerated clock skew in seconds. Default 5. */
  readonly clockToleranceSeconds?: number;
  /** The clock, in ms since the epoch (for tests). */
  readonly now?: () => number;
}

export interface Identity {
  /** The user id: the token's `sub`. */
  readonly userId: string;
  readonly claims: JWTPayload;
}

export type Authenticator = (authorization: string | undefined) => Promise<Identity>;

/**
 * Verifies bearer tokens. The user comes only from a verified token's
 * `sub`; `alg: none` and any algorithm other than the configured ones are
 * refused.
 */
export function createAuthenticator(options: AuthOptions): Authenticator {
  if (!options.secret && !options.jwksUrl) throw new Error('auth needs a secret (HS256) or a jwksUrl');
  const key = options.secret ? new TextEncoder().encode(options.secret) : undefined;
  const jwks = options.jwksUrl ? createRemoteJWKSet(new URL(options.jwksUrl)) : undefined;
  const algorithms = key ? ['HS256'] : ['RS256', 'ES256', 'EdDSA'];
  return async (authorization) => {
    // The scheme is case-insensitive (RFC 7235); the token is one token68.
    const token = /^Bearer +([A-Za-z0-9._~+/=-]+)$/i.exec(authorization ?? '')?.[1];
    if (!token) throw new ServerError('unauthorized', 'no bearer token: send "Authorization: Bearer <JWT>"');
    const verifyOptions = {
      algorithms,
      // A token that never expires is refused: a leaked one would work for ever.
      requiredClaims: ['exp', 'sub'],
      clockTolerance: options.clockToleranceSeconds ?? 5,
      ...(options.issuer ? { issuer: options.issuer } : {}),
      ...(options.audience ? { audience: options.audience } : {}),
      ...(options.now ? { currentDate: new Date(options.now()) } : {}),
    };
    let payload: JWTPayload;
    try {
      payload = key ? (await jwtVerify(token, key, verifyOptions)).payload : (await jwtVerify(token, jwks as ReturnType<typeof createRemoteJWKSet>, verifyOptions)).payload;
    } catch (error) {
      if (error instanceof errors.JWTExpired) throw new ServerError('token_expired', 'the token has expired; refresh it through the app and retry with the new one');
      if (jwks && !isTokenProblem(error)) {
        // The key set could not be fetched or read: the server's problem, not the token's.
        throw new ServerError('internal', 'the server could not check the token against its key set; retry later', { cause: error });
      }
      const why = error instanceof Error ? error.message : 'unknown reason';
      throw new ServerError('token_invalid', `the token was refused (${why}); do not retry with it: get a new token from the app, signing in again if needed`);
    }
    if (typeof payload.sub !== 'string' || payload.sub.length === 0 || payload.sub.length > 1024) {
      throw new ServerError('token_invalid', 'the token has no usable "sub" claim (the user id); issue tokens that name the user in "sub"');
    }
    return { userId: payload.sub, claims: payload };
  };
}

/** Failures that say the token is bad; anything else (a key set that cannot be fetched or parsed) is the server's. */
function isTokenProblem(error: unknown): boolean {
  return (
    error instanceof errors.JWSSignatureVerificationFailed ||
    error instanceof errors.JWSInvalid ||
    error instanceof errors.JWTInvalid ||
    error instanceof errors.JWTClaimValidationFailed ||
    error instanceof errors.JOSEAlgNotAllowed ||
    error instanceof errors.JOSENotSupported ||
    error instanceof errors.JWKSNoMatchingKey ||
    error instanceof errors.JWKSMultipleMatchingKeys ||
    error instanceof errors.JWKInvalid
  );
}
