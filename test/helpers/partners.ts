/** The partner credentials tests give the companion: none may ever reach a log line (see logs.ts). */
export const PARTNER_SECRETS = {
  rapidproToken: 'rapidpro-secret',
  openhimUsername: 'companion',
  openhimPassword: 'openhim-secret',
  dhis2Token: 'd2pat_secret',
  whatsappToken: 'whatsapp-secret',
} as const;

export const OPENHIM_ROUTE = 'POST /ws/rest/v1/nc/optout';
export const CONTACTS_ROUTE = 'GET /api/v2/contacts.json';

/** Settings for a companion whose RapidPro and OpenHIM are the fake partner at `url`. */
export function openhimEnvironment(url: string): Record<string, string> {
  return {
    RAPIDPRO_URL: url,
    RAPIDPRO_TOKEN: PARTNER_SECRETS.rapidproToken,
    DHIS2_MODE: 'openhim',
    OPENHIM_URL: url,
    OPENHIM_USERNAME: PARTNER_SECRETS.openhimUsername,
    OPENHIM_PASSWORD: PARTNER_SECRETS.openhimPassword,
  };
}
