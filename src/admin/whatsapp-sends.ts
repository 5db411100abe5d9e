/**
 * What the staff pages read of the WhatsApp template sends. The WhatsApp proxy records every send
 * (contract: recipient, template, language, status, message id, error, duration) and its store
 * provides this reader as `deps.whatsappSends`; until it does, the page says that sends are not recorded.
 */
export interface WhatsappSendRecord {
  id: string;
  sentAt: Date;
  /** E.164, with its `+`. */
  recipient: string;
  template: string;
  language: string;
  /** The HTTP status the companion answered RapidPro with. */
  status: number;
  messageId: string | null;
  error: string | null;
  durationMs: number;
}

export interface WhatsappSendFilter {
  /** sent: a 2xx answer; failed: anything else. */
  outcome?: 'sent' | 'failed';
  template?: string;
  /** Digits of the recipient's number. */
  recipient?: string;
  sentFrom?: Date;
  sentBefore?: Date;
}

export interface WhatsappSendLog {
  /** Newest first. */
  list(filter: WhatsappSendFilter, page: { offset: number; limit: number }): Promise<{ total: number; rows: WhatsappSendRecord[] }>;
}
