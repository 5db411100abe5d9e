import { AppError } from '../../src/errors';
import { parseOrThrow } from '../../src/http/validate';
import { templateBodySchema, templateQuerySchema, templateRequestFrom } from '../../src/whatsapp/schemas';

function resolve(body: unknown, query: Record<string, unknown> = {}) {
  return templateRequestFrom(parseOrThrow(templateBodySchema, body), parseOrThrow(templateQuerySchema, query), { language: 'en', country: 'ZA' });
}

function problems(body: unknown, query: Record<string, unknown> = {}) {
  try {
    resolve(body, query);
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    return (error as AppError).details;
  }
  throw new Error('the request was accepted');
}

/** The paths of the problems a schema reports for a value it refuses. */
function refusedPaths(schema: Parameters<typeof parseOrThrow>[0], value: unknown) {
  try {
    parseOrThrow(schema, value);
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    return (error as AppError).details?.map((detail) => detail.path);
  }
  throw new Error('the value was accepted');
}

const template = { name: 'appointment_reminder' };

describe('the recipient', () => {
  it.each([
    ['to in E.164', { to: '+27820001001' }],
    ['to as digits', { to: '27820001001' }],
    ['to as a JSON number', { to: 27820001001 }],
    ['to with spaces and dashes', { to: '+27 82-000 1001' }],
    ['to as a whatsapp: URN', { to: 'whatsapp:27820001001' }],
    ['to as a tel: URN', { to: 'tel:+27820001001' }],
    ['contact.urn whatsapp:', { contact: { urn: 'whatsapp:27820001001' } }],
    ['contact.urn tel:', { contact: { urn: 'tel:+27820001001' } }],
    ['to before contact.urn', { to: '+27820001001', contact: { urn: 'tel:+27829999999' } }],
    ['to when contact.urn is another scheme', { to: '+27820001001', contact: { urn: 'telegram:12345678' } }],
    ['to with the trunk prefix (0) after the country code', { to: '+27 (0)82 000 1001' }],
    ['to with 00 for +', { to: '0027 82 000 1001' }],
    ['to copied with direction marks around it', { to: '\u202a+27 82 000 1001\u202c' }],
    ['to as a national number of DEFAULT_COUNTRY', { to: '082 000 1001' }],
    ['to as a national number without its trunk 0', { to: '820001001' }],
    ['to as a JSON number without its trunk 0', { to: 820001001 }],
    ['contact.urn tel: without its country code', { contact: { urn: 'tel:0820001001' } }],
  ])('comes from %s, normalised to E.164', (_case, body) => {
    expect(resolve({ ...body, template }).to).toBe('+27820001001');
  });

  it.each([
    ['nothing', {}, [{ path: 'to', message: expect.stringMatching(/required/) }]],
    ['a to that is not a number', { to: 'Jane' }, [{ path: 'to', message: expect.stringMatching(/E\.164/) }]],
    ['an empty to', { to: '' }, [{ path: 'to', message: expect.stringMatching(/E\.164/) }]],
    ['a number valid in no region', { to: '+999 123' }, [{ path: 'to', message: expect.stringMatching(/^is not a valid phone number in any region/) }]],
    ['a number valid neither in ZA nor with a country code', { to: '12345' }, [{ path: 'to', message: expect.stringMatching(/in ZA nor with a country code/) }]],
    ['a whatsapp: URN valid nowhere', { contact: { urn: 'whatsapp:999123' } }, [{ path: 'contact.urn', message: expect.stringMatching(/in any region/) }]],
    ['a contact.urn of another scheme', { contact: { urn: 'telegram:12345678' } }, [{ path: 'contact.urn', message: expect.stringMatching(/whatsapp: or tel:/) }]],
    ['a tel: URN without a number', { contact: { urn: 'tel:abc' } }, [{ path: 'contact.urn', message: expect.stringMatching(/E\.164/) }]],
  ])('is refused for %s', (_case, body, expected) => {
    expect(problems({ ...body, template })).toEqual(expected);
  });
});

describe('the template', () => {
  const to = '+27820001001';

  it('comes from the body, with the default language and no parameters', () => {
    expect(resolve({ to, template: { name: 'hello_world' }, contact: { uuid: '5d76d86b-3bb9-4d5a-b822-c9d86f5d8e4f' } })).toEqual({
      to,
      name: 'hello_world',
      language: 'en',
      params: [],
      contactUuid: '5d76d86b-3bb9-4d5a-b822-c9d86f5d8e4f',
    });
  });

  it('comes from the query, a single param too', () => {
    expect(resolve({ to }, { template: 'hello_world', language: 'pt_BR', param: 'Joana' })).toMatchObject({
      name: 'hello_world',
      language: 'pt_BR',
      params: ['Joana'],
    });
    expect(resolve({ to }, { template: 'hello_world', param: ['A', 'B'] }).params).toEqual(['A', 'B']);
  });

  it('takes each field from the body before the query', () => {
    const body = { to, template: { name: 'from_body', params: ['body'] } };
    expect(resolve(body, { template: 'from_query', language: 'fr', param: ['query'] })).toMatchObject({
      name: 'from_body',
      language: 'fr',
      params: ['body'],
    });
  });

  it('takes an empty or null language (a flow field the contact lacks) as not given, and null template parts as absent', () => {
    expect(resolve({ to, template: { name: 'x', language: '' } }, { language: '' }).language).toBe('en');
    expect(resolve({ to, template: { name: 'x', language: null } }, { language: 'fr' }).language).toBe('fr');
    expect(resolve({ to, template: { name: 'x', language: '' } }, { language: 'fr' }).language).toBe('fr');
    expect(resolve({ to, template: { name: 'x', params: null } }, { param: ['q'] }).params).toEqual(['q']);
    expect(resolve({ to, template: null }, { template: 'from_query' }).name).toBe('from_query');
  });

  it('turns numeric parameters into text', () => {
    expect(resolve({ to, template: { name: 'hello_world', params: [42, 'x'] } }).params).toEqual(['42', 'x']);
  });

  it.each([
    ['no name anywhere', { to }, {}, [{ path: 'template.name', message: expect.stringMatching(/required/) }]],
    ['no name and no recipient', {}, {}, [{ path: 'to', message: expect.any(String) }, { path: 'template.name', message: expect.any(String) }]],
  ])('is refused for %s', (_case, body, query, expected) => {
    expect(problems(body, query)).toEqual(expected);
  });

  it.each([
    ['a name with capitals', { to, template: { name: 'Hello World' } }, 'template.name'],
    ['a language that is not a code', { to, template: { name: 'x', language: 'English' } }, 'template.language'],
    ['an empty parameter', { to, template: { name: 'x', params: ['ok', ''] } }, 'template.params.1'],
    ['a parameter that is an object', { to, template: { name: 'x', params: [{}] } }, 'template.params.0'],
    ['a parameter over 1024 characters', { to, template: { name: 'x', params: ['y'.repeat(1025)] } }, 'template.params.0'],
  ])('refuses %s in the body', (_case, body, path) => {
    expect(refusedPaths(templateBodySchema, body)).toEqual([path]);
  });

  it.each([
    ['a template name with capitals', { template: 'Hello' }, 'template'],
    ['a repeated template name', { template: ['a', 'b'] }, 'template'],
    ['a language that is not a code', { language: 'English' }, 'language'],
    ['an empty param', { param: ['a', ''] }, 'param.1'],
  ])('refuses %s in the query', (_case, query, path) => {
    expect(refusedPaths(templateQuerySchema, query)).toEqual([path]);
  });
});
