import { hash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * API tokens look like `cmp_<key id>_<secret>`. The key id finds the client's row; only a SHA-256
 * of the secret is stored, and it is compared in constant time.
 */
const TOKEN_PATTERN = /^cmp_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export interface IssuedToken {
  token: string;
  keyId: string;
  secretHash: string;
}

export function hashSecret(secret: string): string {
  return hash('sha256', secret, 'hex');
}

export function issueToken(): IssuedToken {
  const keyId = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { token: `cmp_${keyId}_${secret}`, keyId, secretHash: hashSecret(secret) };
}

export function parseToken(token: string): { keyId: string; secret: string } | undefined {
  const match = TOKEN_PATTERN.exec(token);
  return match ? { keyId: match[1]!, secret: match[2]! } : undefined;
}

export function secretMatches(secret: string, storedHash: string): boolean {
  const given = Buffer.from(hashSecret(secret), 'hex');
  const stored = Buffer.from(storedHash, 'hex');
  return given.length === stored.length && timingSafeEqual(given, stored);
}
