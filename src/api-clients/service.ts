import type { Database } from '../db/client';
import { isUniqueViolation } from '../db/client';
import { AppError } from '../errors';
import { issueToken, parseToken, secretMatches } from './tokens';

export interface AuthenticatedClient {
  id: string;
  name: string;
  role: string;
}

/** How often a client's last use is written back: a busy client must not cost a write per request. */
const LAST_USED_RESOLUTION_MS = 60_000;

export function createApiClientService(db: Database) {
  return {
    /** Creates a client and returns its token: the only time the token can be seen. */
    async create(name: string, role = 'rapidpro'): Promise<{ id: string; name: string; role: string; token: string }> {
      const { token, keyId, secretHash } = issueToken();
      try {
        const client = await db.apiClient.create({ data: { name, role, keyId, secretHash } });
        return { id: client.id, name: client.name, role: client.role, token };
      } catch (error) {
        if (isUniqueViolation(error)) throw new AppError(409, `an API client named "${name}" already exists`);
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
      return count > 0;
    },

    /** The active client the token belongs to, or undefined. */
    async authenticate(token: string): Promise<AuthenticatedClient | undefined> {
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
    },
  };
}

export type ApiClientService = ReturnType<typeof createApiClientService>;
