import type { Database } from '../db/client';
import { isUniqueViolation } from '../db/client';
import { AppError } from '../errors';
import { hashSecret, issueToken, parseToken, secretMatches } from './tokens';

export interface AuthenticatedClient {
  id: string;
  name: string;
  role: string;
}

/** How often a client's last use is written back: a busy client must not cost a write per request. */
const LAST_USED_RESOLUTION_MS = 60_000;
/**
 * How long a verified token is trusted without asking the database again: a webhook must not cost a
 * query per request. A revocation takes effect at once in the process that made it, and within this
 * long everywhere else.
 */
export const TOKEN_CACHE_TTL_MS = 5_000;
const TOKEN_CACHE_MAX_ENTRIES = 1_000;

export function createApiClientService(db: Database, options: { tokenCacheTtlMs?: number } = {}) {
  const cacheTtlMs = options.tokenCacheTtlMs ?? TOKEN_CACHE_TTL_MS;
  /** Verified tokens by their SHA-256 (never the token itself), oldest first. */
  const verified = new Map<string, { client: AuthenticatedClient; expiresAt: number }>();

  async function lookUp(token: string): Promise<AuthenticatedClient | undefined> {
    const parsed = parseToken(token);
    if (!parsed) return undefined;
    const client = await db.apiClient.findUnique({ where: { keyId: parsed.keyId } });
    if (!client || client.revokedAt || !secretMatches(parsed.secret, client.secretHash)) return undefined;
    const now = Date.now();
    if (!client.lastUsedAt || now - client.lastUsedAt.getTime() > LAST_USED_RESOLUTION_MS) {
      // Best effort: a lost update of the last-use time must never fail the request.
      db.apiClient.update({ where: { id: client.id }, data: { lastUsedAt: new Date(now) } }).catch(() => undefined);
    }
    return { id: client.id, name: client.name, role: client.role };
  }

  return {
    /** Creates a client and returns its token: the only time the token can be seen. */
    async create(name: string, role = 'rapidpro'): Promise<{ id: string; name: string; role: string; token: string }> {
      const { token, keyId, secretHash } = issueToken();
      try {
        const client = await db.apiClient.create({ data: { name, role, keyId, secretHash } });
        return { id: client.id, name: client.name, role: client.role, token };
      } catch (error) {
        if (isUniqueViolation(error)) throw new AppError(409, `an active API client named "${name}" already exists`);
        throw error;
      }
    },

    list: () =>
      db.apiClient.findMany({
        orderBy: { createdAt: 'asc' },
        select: { id: true, name: true, role: true, createdAt: true, lastUsedAt: true, revokedAt: true },
      }),

    /** Revokes the active client of that name; false when there is none. */
    async revoke(name: string): Promise<boolean> {
      const { count } = await db.apiClient.updateMany({ where: { name, revokedAt: null }, data: { revokedAt: new Date() } });
      for (const [key, entry] of verified) if (entry.client.name === name) verified.delete(key);
      return count > 0;
    },

    /** The active client the token belongs to, or undefined. Failures are never cached. */
    async authenticate(token: string): Promise<AuthenticatedClient | undefined> {
      const key = hashSecret(token);
      const cached = verified.get(key);
      if (cached && cached.expiresAt > Date.now()) return cached.client;
      verified.delete(key);
      const client = await lookUp(token);
      if (client) {
        if (verified.size >= TOKEN_CACHE_MAX_ENTRIES) verified.delete(verified.keys().next().value!);
        verified.set(key, { client, expiresAt: Date.now() + cacheTtlMs });
      }
      return client;
    },
  };
}

export type ApiClientService = ReturnType<typeof createApiClientService>;
