/**
 * Every /api webhook route (POST, token-authenticated). The hostile-input and authentication tests
 * run against each route listed here: a new webhook route is covered by adding one line.
 */
export const WEBHOOK_ROUTES: readonly string[] = ['/api/v1/optouts', '/api/v1/whatsapp/templates'];
