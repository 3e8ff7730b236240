// A minimal HTTP "browser" for console tests: a cookie jar, no redirects
// followed, and the CSRF token read from the last page's forms.
'use strict';

class Session {
  /** fetch: the global fetch or a stand-in (support/tls_fetch.js for a private CA). */
  constructor(base, { fetch: fetchImpl = fetch } = {}) {
    this.base = base;
    this.fetch = fetchImpl;
    this.cookies = new Map();
    this.csrf = '';
  }

  async request(method, path, { form, headers = {} } = {}) {
    const h = { ...headers };
    if (this.cookies.size) h.Cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    let body;
    if (form) {
      body = new URLSearchParams(form).toString();
      h['Content-Type'] = 'application/x-www-form-urlencoded';
    }
    const res = await this.fetch(this.base + path, { method, headers: h, body, redirect: 'manual' });
    const setCookies = typeof res.headers.getSetCookie === 'function' ? res.headers.getSetCookie()
      : (res.headers.get('set-cookie') ? [res.headers.get('set-cookie')] : []);
    for (const c of setCookies) {
      const [pair] = c.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (!value || /expires=Thu, 01 Jan 1970/i.test(c)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    const text = await res.text();
    const m = /name="_csrf" value="([^"]+)"/.exec(text);
    if (m) this.csrf = m[1];
    return { status: res.status, headers: res.headers, text, setCookies, location: res.headers.get('location') };
  }

  get(path, opts) {
    return this.request('GET', path, opts);
  }

  /** POSTs a form with the current CSRF token (unless form._csrf is given). */
  post(path, form = {}, opts = {}) {
    return this.request('POST', path, { ...opts, form: { _csrf: this.csrf, ...form } });
  }

  async signIn(token) {
    await this.get('/signin');
    const r = await this.post('/signin', { token });
    // Like a browser: load the page signed in (it carries the new CSRF token).
    if (r.status === 303) await this.get(r.location);
    return r;
  }
}

module.exports = { Session };
