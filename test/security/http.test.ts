import { gzipSync } from 'node:zlib';
import { optoutWebhook, startTestApp, type TestApp } from '../helpers/app';
import { FakeGoogle, signInEnv } from '../helpers/google';
import { rawPost } from '../helpers/raw-http';

/**
 * Attacks over HTTP itself: compressed bodies that are not what they claim, upstream answers that
 * cannot be handed back, and X-Forwarded-For from anyone.
 */

let google: FakeGoogle;
let app: TestApp;

beforeAll(async () => {
  google = await new FakeGoogle().start();
  app = await startTestApp({ env: signInEnv(google) });
});
afterAll(async () => {
  await app?.stop();
  await google?.stop();
});

const GARBAGE = Buffer.from('this is not compressed at all');
const FORM = 'application/x-www-form-urlencoded';

describe('a body whose Content-Encoding does not match it', () => {
  const cases = [
    { encoding: 'gzip', body: GARBAGE, status: 400 },
    { encoding: 'deflate', body: GARBAGE, status: 400 },
    { encoding: 'br', body: GARBAGE, status: 400 },
    // A gzip stream cut short: zlib's "unexpected end of file".
    { encoding: 'gzip', body: gzipSync(JSON.stringify(optoutWebhook())).subarray(0, 12), status: 400 },
    { encoding: 'compress', body: GARBAGE, status: 415 },
    { encoding: 'x-made-up', body: GARBAGE, status: 415 },
  ];

  it.each(cases)('is a $status on the API ($encoding)', async ({ encoding, body, status }) => {
    const response = await rawPost(`${app.baseUrl}/api/v1/optouts`, body, {
      'content-type': 'application/json',
      'content-encoding': encoding,
      authorization: `Token ${app.token}`,
    });
    expect(response.status).toBe(status);
    expect(response.body).toEqual({ error: status === 400 ? 'invalid request body' : 'unsupported content encoding' });
  });

  it.each(cases)('is a $status on the staff forms, before signing in ($encoding)', async ({ encoding, body, status }) => {
    for (const path of ['/admin/optouts', '/auth/logout']) {
      const response = await rawPost(`${app.baseUrl}${path}`, body, { 'content-type': FORM, 'content-encoding': encoding });
      expect({ path, status: response.status }).toEqual({ path, status });
    }
  });

  it('still reads a body that is what its Content-Encoding says', async () => {
    const response = await rawPost(`${app.baseUrl}/api/v1/optouts`, gzipSync(JSON.stringify(optoutWebhook())), {
      'content-type': 'application/json',
      'content-encoding': 'gzip',
      authorization: `Token ${app.token}`,
    });
    expect(response.status).toBe(202);
  });
});
