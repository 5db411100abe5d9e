import { decideAccess, hostedDomainHint, identityFromUserinfo } from '../../src/auth/access';
import { hasRole } from '../../src/auth/staff';
import { safeReturnTo } from '../../src/auth/guard';

const rules = { domains: ['programme.example.org'], adminEmails: ['boss@gmail.com'] };

describe('who may sign in', () => {
  it.each([
    ['a verified account of the domain', { email: 'jane@programme.example.org', email_verified: true, hd: 'programme.example.org' }, { allowed: true, configuredAdmin: false }],
    ['a verified ADMIN_EMAILS address', { email: 'Boss@Gmail.com', email_verified: true }, { allowed: true, configuredAdmin: true }],
    ['"true" as a string', { email: 'jane@programme.example.org', email_verified: 'true', hd: 'programme.example.org' }, { allowed: true }],
    ['an unverified address', { email: 'jane@programme.example.org', email_verified: false, hd: 'programme.example.org' }, { allowed: false }],
    ['a missing email_verified', { email: 'jane@programme.example.org', hd: 'programme.example.org' }, { allowed: false }],
    ['the domain in the address but not in hd', { email: 'jane@programme.example.org', email_verified: true }, { allowed: false }],
    ['another Workspace', { email: 'jane@other.example.org', email_verified: true, hd: 'other.example.org' }, { allowed: false }],
    ['a sub-domain of the domain', { email: 'x@evil.programme.example.org', email_verified: true, hd: 'evil.programme.example.org' }, { allowed: false }],
    ['no email', { email_verified: true, hd: 'programme.example.org' }, { allowed: false }],
    ['garbage', 'not an object', { allowed: false }],
  ])('%s', (_case, userinfo, expected) => {
    expect(decideAccess(identityFromUserinfo(userinfo), rules)).toMatchObject(expected);
  });

  it('hints Google at the domain unless an ADMIN_EMAILS address lies outside it', () => {
    expect(hostedDomainHint(rules)).toBeUndefined();
    expect(hostedDomainHint({ domains: ['a.org'], adminEmails: ['x@a.org'] })).toBe('a.org');
    expect(hostedDomainHint({ domains: ['a.org', 'b.org'], adminEmails: [] })).toBe('*');
    expect(hostedDomainHint({ domains: [], adminEmails: ['x@a.org'] })).toBeUndefined();
  });

  it('orders roles viewer < operator < admin', () => {
    expect(hasRole({ role: 'operator' }, 'viewer')).toBe(true);
    expect(hasRole({ role: 'operator' }, 'operator')).toBe(true);
    expect(hasRole({ role: 'operator' }, 'admin')).toBe(false);
  });

  it('returns after sign-in only to a staff page of this site', () => {
    expect(safeReturnTo('/admin/optouts?status=failed')).toBe('/admin/optouts?status=failed');
    expect(safeReturnTo('/admin')).toBe('/admin');
    expect(safeReturnTo('//evil.example/admin')).toBe('/admin');
    expect(safeReturnTo('/administrator')).toBe('/admin');
    expect(safeReturnTo(undefined)).toBe('/admin');
  });
});
