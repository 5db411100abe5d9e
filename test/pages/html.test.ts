import { escapeHtml, html, urlWith } from '../../src/pages/html';

describe('html templates', () => {
  it('escapes every interpolated value, and only those', () => {
    const value = `<script>alert("x")</script> & 'quotes'`;
    expect(html`<p title="${value}">${value}</p>`.value).toBe(
      '<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;quotes&#39;">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;quotes&#39;</p>',
    );
    expect(escapeHtml('&amp;')).toBe('&amp;amp;');
  });

  it('nests templates as markup, joins lists, and drops false, null and undefined', () => {
    const items = ['a<b', 'c'].map((item) => html`<li>${item}</li>`);
    expect(html`<ul>${items}</ul>${false}${null}${undefined}${0}`.value).toBe('<ul><li>a&lt;b</li><li>c</li></ul>0');
  });

  it('builds links without empty parameters', () => {
    expect(urlWith('/admin/optouts', { status: 'failed', q: '', page: 2, from: undefined })).toBe('/admin/optouts?status=failed&page=2');
    expect(urlWith('/admin/optouts', { q: 'a&b=c' })).toBe('/admin/optouts?q=a%26b%3Dc');
    expect(urlWith('/admin', {})).toBe('/admin');
  });
});
