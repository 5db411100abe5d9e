import fs from 'node:fs';
import path from 'node:path';
import { CONFIG_VARIABLES, ConfigError, checkStaffSignIn, loadConfig, missingOptoutSettings, missingSignInSettings, missingWhatsappSettings } from '../src/config';

describe('configuration', () => {
  it('has the contract defaults when nothing is set', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 3000,
      databaseUrl: 'postgresql://postgres@127.0.0.1:5432/companion',
      redis: { url: 'redis://127.0.0.1:6379' },
      dhis2: { mode: 'openhim' },
      optouts: { maxAttempts: 12, backoffMs: 30000, maxBackoffMs: 6 * 3600 * 1000 },
    });
    expect(Object.isFrozen(config.dhis2.openhim)).toBe(true);
  });

  it('takes an empty variable as unset, as .env.example says', () => {
    const blank = Object.fromEntries([...CONFIG_VARIABLES].map((name) => [name, name === 'PORT' ? ' ' : '']));
    expect(loadConfig(blank)).toEqual(loadConfig({}));
  });

  it('names each invalid variable on a line of its own', () => {
    const error = (() => {
      try {
        loadConfig({ PORT: 'eighty', OPTOUT_MAX_ATTEMPTS: '0', DHIS2_MODE: 'fax', RAPIDPRO_URL: 'not a url' });
      } catch (caught) {
        return caught as ConfigError;
      }
      throw new Error('loadConfig accepted an invalid environment');
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.problems.map((line) => line.split(':')[0]).sort()).toEqual(['DHIS2_MODE', 'OPTOUT_MAX_ATTEMPTS', 'PORT', 'RAPIDPRO_URL']);
  });

  it('prepares the hot statements unless DATABASE_PREPARED_STATEMENTS says not to', () => {
    expect(loadConfig({}).databasePreparedStatements).toBe(true);
    expect(loadConfig({ DATABASE_PREPARED_STATEMENTS: 'false' }).databasePreparedStatements).toBe(false);
    expect(() => loadConfig({ DATABASE_PREPARED_STATEMENTS: 'sometimes' })).toThrow(/DATABASE_PREPARED_STATEMENTS/);
  });

  it('checks DHIS2_DATA_ELEMENTS is a JSON object of UIDs', () => {
    expect(() => loadConfig({ DHIS2_DATA_ELEMENTS: '{nope' })).toThrow(/DHIS2_DATA_ELEMENTS: must be a JSON object/);
    expect(() => loadConfig({ DHIS2_DATA_ELEMENTS: '{"msisdn":"x"}' })).toThrow(/DHIS2_DATA_ELEMENTS/);
    expect(loadConfig({ DHIS2_DATA_ELEMENTS: '{"msisdn":"a3kGcGDCuk6"}' }).dhis2.tracker.dataElements).toEqual({ msisdn: 'a3kGcGDCuk6' });
  });

  it('lists the opt-out settings still missing, per DHIS2 mode', () => {
    // RapidPro's are not needed to submit opt-outs that carry their contact fields.
    expect(missingOptoutSettings(loadConfig({}))).toEqual(['OPENHIM_URL', 'OPENHIM_USERNAME', 'OPENHIM_PASSWORD']);
    const tracker = loadConfig({ DHIS2_MODE: 'tracker', DHIS2_URL: 'http://d2', DHIS2_USERNAME: 'u' });
    expect(missingOptoutSettings(tracker)).toEqual(['DHIS2_TOKEN (or DHIS2_USERNAME and DHIS2_PASSWORD)', 'DHIS2_PROGRAM', 'DHIS2_PROGRAM_STAGE']);
  });

  it('reads OPENHIM_SWT_WHATSAPP and OPENHIM_SWT_SMS as positive integers, 7 and 1 by default', () => {
    expect(loadConfig({}).dhis2.openhim.swt).toEqual({ whatsapp: 7, sms: 1 });
    expect(loadConfig({ OPENHIM_SWT_WHATSAPP: '1', OPENHIM_SWT_SMS: '2' }).dhis2.openhim.swt).toEqual({ whatsapp: 1, sms: 2 });
    for (const bad of ['0', '-1', '1.5', 'seven']) {
      expect(() => loadConfig({ OPENHIM_SWT_WHATSAPP: bad })).toThrow(/^OPENHIM_SWT_WHATSAPP: /);
      expect(() => loadConfig({ OPENHIM_SWT_SMS: bad })).toThrow(/^OPENHIM_SWT_SMS: /);
    }
  });

  it('requires the Google sign-in settings and SESSION_SECRET in production where the staff pages are served, one line each', () => {
    const withoutSignIn = loadConfig({ NODE_ENV: 'production' });
    const problems = (() => {
      try {
        checkStaffSignIn(withoutSignIn);
      } catch (caught) {
        return (caught as ConfigError).problems;
      }
      throw new Error('checkStaffSignIn accepted production without sign-in settings');
    })();
    const required = 'required when NODE_ENV=production to serve the staff pages (serve --role web or all)';
    expect(problems).toEqual([
      `GOOGLE_CLIENT_ID: ${required}`,
      `GOOGLE_CLIENT_SECRET: ${required}`,
      `SESSION_SECRET: ${required}`,
      `PUBLIC_URL: ${required}`,
      `ADMIN_GOOGLE_DOMAINS (or ADMIN_EMAILS): ${required}`,
    ]);
    const production = loadConfig({
      NODE_ENV: 'production',
      GOOGLE_CLIENT_ID: 'id',
      GOOGLE_CLIENT_SECRET: 'secret',
      SESSION_SECRET: 'x'.repeat(32),
      PUBLIC_URL: 'https://companion.example.org/',
      ADMIN_GOOGLE_DOMAINS: ' Programme.Example.org , other.example.org',
      ADMIN_EMAILS: 'Boss@Gmail.com',
    });
    expect(() => checkStaffSignIn(production)).not.toThrow();
    expect(production.staffSignIn).toMatchObject({
      publicUrl: 'https://companion.example.org',
      domains: ['programme.example.org', 'other.example.org'],
      adminEmails: ['boss@gmail.com'],
      google: { authorizationUrl: 'https://accounts.google.com/o/oauth2/v2/auth' },
    });
    // In development the staff pages say what is missing instead (PUBLIC_URL may then be left out).
    expect(() => checkStaffSignIn(loadConfig({}))).not.toThrow();
    expect(missingSignInSettings(loadConfig({ GOOGLE_CLIENT_ID: 'id', GOOGLE_CLIENT_SECRET: 's', ADMIN_EMAILS: 'a@b.org' }))).toEqual(['SESSION_SECRET']);
  });

  it('checks the sign-in settings it is given', () => {
    expect(() => loadConfig({ SESSION_SECRET: 'short' })).toThrow(/SESSION_SECRET: must be at least 32 characters/);
    expect(() => loadConfig({ ADMIN_EMAILS: 'boss@gmail.com, not-an-address' })).toThrow(/ADMIN_EMAILS: must be email addresses/);
    expect(() => loadConfig({ ADMIN_GOOGLE_DOMAINS: 'https://example.org' })).toThrow(/ADMIN_GOOGLE_DOMAINS: must be domain names/);
    expect(() => loadConfig({ GOOGLE_TOKEN_URL: 'ftp://x' })).toThrow(/GOOGLE_TOKEN_URL/);
  });

  it('has WhatsApp defaults: the Cloud API on graph.facebook.com, English, 10 s', () => {
    expect(loadConfig({}).whatsapp).toEqual({
      api: 'cloud',
      url: 'https://graph.facebook.com',
      apiVersion: 'v26.0',
      phoneNumberId: undefined,
      token: undefined,
      namespace: undefined,
      defaultLanguage: 'en',
      timeoutMs: 10000,
      contactCheck: true,
    });
    // As in a copied .env.example: empty means unset.
    expect(loadConfig({ WHATSAPP_API_VERSION: '', WHATSAPP_DEFAULT_LANGUAGE: '' }).whatsapp).toMatchObject({ apiVersion: 'v26.0', defaultLanguage: 'en' });
    expect(loadConfig({ WHATSAPP_API: 'onprem' }).whatsapp.url).toBeUndefined();
    expect(loadConfig({ WHATSAPP_CONTACT_CHECK: 'false' }).whatsapp.contactCheck).toBe(false);
    expect(() => loadConfig({ WHATSAPP_CONTACT_CHECK: 'maybe' })).toThrow(/WHATSAPP_CONTACT_CHECK/);
  });

  it('reads numbers without a country code in DEFAULT_COUNTRY: ZA unless set, a known ISO 3166 alpha-2 code', () => {
    expect(loadConfig({}).defaultCountry).toBe('ZA');
    expect(loadConfig({ DEFAULT_COUNTRY: '' }).defaultCountry).toBe('ZA');
    expect(loadConfig({ DEFAULT_COUNTRY: ' mz ' }).defaultCountry).toBe('MZ');
    expect(() => loadConfig({ DEFAULT_COUNTRY: 'XX' })).toThrow(/DEFAULT_COUNTRY: must be an ISO 3166 alpha-2 country code/);
    expect(() => loadConfig({ DEFAULT_COUNTRY: 'ZAF' })).toThrow(/DEFAULT_COUNTRY/);
  });

  it('names invalid WhatsApp settings', () => {
    const env = { WHATSAPP_API: 'twilio', WHATSAPP_API_VERSION: '26', WHATSAPP_PHONE_NUMBER_ID: '+27820001001', WHATSAPP_DEFAULT_LANGUAGE: 'English', WHATSAPP_TIMEOUT_MS: '0' };
    expect(() => loadConfig(env)).toThrow(ConfigError);
    try {
      loadConfig(env);
    } catch (error) {
      expect((error as ConfigError).problems.map((line) => line.split(':')[0]).sort()).toEqual(Object.keys(env).sort());
    }
  });

  it('lists the WhatsApp settings still missing, per API', () => {
    expect(missingWhatsappSettings(loadConfig({}))).toEqual(['WHATSAPP_TOKEN', 'WHATSAPP_PHONE_NUMBER_ID']);
    expect(missingWhatsappSettings(loadConfig({ WHATSAPP_TOKEN: 't', WHATSAPP_PHONE_NUMBER_ID: '1065' }))).toEqual([]);
    expect(missingWhatsappSettings(loadConfig({ WHATSAPP_API: 'onprem', WHATSAPP_TOKEN: 't' }))).toEqual(['WHATSAPP_URL', 'WHATSAPP_NAMESPACE']);
  });

  it('documents every variable in .env.example, and nothing else', () => {
    const example = fs.readFileSync(path.join(__dirname, '..', '.env.example'), 'utf8');
    // A variable may be commented out (NODE_ENV: a copied .env must not override the image's).
    const documented = [...example.matchAll(/^(?:# )?([A-Z][A-Z0-9_]*)=/gm)].map((match) => match[1]);
    expect([...documented].sort()).toEqual([...CONFIG_VARIABLES].sort());
    // Each group of variables (lines between blank lines) opens with a comment that explains it.
    for (const group of example.split(/\n\s*\n/).filter((block) => /^[A-Z]/m.test(block))) {
      expect(group.trimStart().startsWith('#')).toBe(true);
    }
  });
});
