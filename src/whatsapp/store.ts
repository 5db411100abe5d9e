import type { Database } from '../db/client';
import type { WhatsappApi, WhatsappSend } from '../generated/prisma/client';

export type { WhatsappApi, WhatsappSend };

/** One send as it is recorded: see WhatsappSend in prisma/schema.prisma for the meaning of each field. */
export type WhatsappSendRecord = Omit<WhatsappSend, 'id'>;

export function createWhatsappSendStore(db: Database) {
  return {
    record: async (send: WhatsappSendRecord): Promise<void> => {
      await db.whatsappSend.create({ data: send, select: { id: true } });
    },
  };
}

export type WhatsappSendStore = ReturnType<typeof createWhatsappSendStore>;
