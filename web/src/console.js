// The browser console: sign-in with a pasted token, users list with keyset
// pagination, detail, create, edit with optimistic concurrency, delete with
// confirmation, and the protocol lab's page (lab_routes.js). Server-rendered
// HTML over the same UserClient as the gateway.
//
// Security: the token lives only in the server-side session; every POST
// carries the session's synchronizer token (_csrf), compared in constant time.
'use strict';

const crypto = require('node:crypto');
const express = require('express');
const { rateLimit } = require('express-rate-limit');
const { parseInt64, INT64_MAX } = require('./int64');
const { pageBefore } = require('./paging');
const { ServiceError } = require('./service_error');
const { retryAfterSeconds, HTTP_STATUS } = require('./problem');
const views = require('./views');
const { mountLabPages } = require('./lab_routes');

const PAGE_SIZE = 20;
const MAX_PAGE_SIZE = 100;
// What SearchUsers returns at most (API.md).
const MAX_SEARCH_RESULTS = 100;

const newCsrfToken = () => crypto.randomBytes(32).toString('base64url');

function csrfMatches(session, sent) {
  if (!session || typeof session.csrf !== 'string' || typeof sent !== 'string') return false;
  const a = Buffer.from(session.csrf);
  const b = Buffer.from(sent);
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

/** A human sentence for a ServiceError, as the console shows it. */
function describe(err, { id } = {}) {
  switch (err.code) {
    case 'INVALID_ARGUMENT':
      return `Invalid input${err.field ? ` (${err.field})` : ''}: ${err.message}.`;
    case 'UNAUTHENTICATED':
      return 'Your token is no longer accepted. Sign in again.';
    case 'PERMISSION_DENIED':
      return 'Your token is read-only: it may list and view users but not change them.';
    case 'NOT_FOUND':
      return id !== undefined ? `User ${id} does not exist (it may have been deleted).` : 'Not found.';
    case 'CONFLICT':
      return `Conflict: ${err.message}.`;
    case 'RESOURCE_EXHAUSTED':
      return `The service is overloaded right now. Try again in ${retryAfterSeconds(err.retryAfterMs)} s.`;
    case 'UNAVAILABLE':
      return `The service is unavailable (database down, restarting or unreachable). Try again in ${retryAfterSeconds(err.retryAfterMs)} s.`;
    default:
      return 'The service hit an internal error. The details are in the server log.';
  }
}

const TITLES = {
  INVALID_ARGUMENT: 'Invalid input',
  PERMISSION_DENIED: 'Read-only',
  NOT_FOUND: 'Not found',
  CONFLICT: 'Conflict',
  RESOURCE_EXHAUSTED: 'Service busy',
  UNAVAILABLE: 'Service unavailable',
  INTERNAL: 'Something went wrong',
};
const RETRYABLE = new Set(['RESOURCE_EXHAUSTED', 'UNAVAILABLE', 'INTERNAL']);

function createConsole(client, { signinLimit, signinWindowMs, lab }) {
  const router = express.Router();
  router.use(express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 20 }));

  // Renders a page object of views.js inside the layout.
  function page(req, res, status, content) {
    if (!req.session.csrf) req.session.csrf = newCsrfToken();
    const flash = req.session.flash;
    delete req.session.flash;
    res.status(status).type('html').send(String(views.layout({ ...content, session: req.session, csrf: req.session.csrf, flash })));
  }

  // Answers a failed service call with a page; UNAUTHENTICATED signs out.
  function failure(req, res, err, { id } = {}) {
    if (!(err instanceof ServiceError)) throw err;
    if (err.code === 'INTERNAL') req.log.error({ err: err.cause || err }, 'console: internal error');
    if (err.code === 'UNAUTHENTICATED') {
      return req.session.regenerate(() => {
        req.session.csrf = newCsrfToken();
        page(req, res, 401, views.signinPage({ csrf: req.session.csrf, error: describe(err) }));
      });
    }
    const status = HTTP_STATUS[err.code] || 500;
    if (err.retryAfterMs) res.set('Retry-After', String(retryAfterSeconds(err.retryAfterMs)));
    const links = [['/users', 'Back to the users list']];
    // A page that failed for a passing reason can simply be loaded again (a
    // same-site path: one leading slash, never "//host").
    if (req.method === 'GET' && RETRYABLE.has(err.code)) links.unshift([`/${req.originalUrl.replace(/^\/+/, '')}`, 'Try again']);
    return page(req, res, status, views.messagePage({ title: TITLES[err.code] || TITLES.INTERNAL, message: describe(err, { id }), links }));
  }

  // A form that failed for a passing reason (service down or busy) is shown
  // again with the admin's input and the reason, so nothing typed is lost.
  const keepsForm = (err) => err instanceof ServiceError && RETRYABLE.has(err.code);
  // A write that got no answer (timed out, or the connection was lost with
  // it in flight) may or may not have been done: the console says so and
  // shows the record as it is now, never that nothing was saved.
  const outcomeUnknown = (err) => err instanceof ServiceError && err.outcomeUnknown;
  const NO_ANSWER = views.NO_ANSWER;
  // The user as it is now: { user } or { error } (a ServiceError).
  const reread = async (req, id) => {
    try {
      return { user: await client.getUser(req.session.token, id) };
    } catch (err) {
      if (!(err instanceof ServiceError)) throw err;
      return { error: err };
    }
  };
  const retryHeader = (res, err) => {
    if (err.retryAfterMs) res.set('Retry-After', String(retryAfterSeconds(err.retryAfterMs)));
  };

  // Signing out without a signed-in session changes nothing (an expired
  // session, a second tab): no CSRF token needed, just the sign-in page.
  router.post('/signout', (req, res, next) => (req.session.token ? next() : res.redirect(303, '/signin?signed_out=1')));

  // CSRF: every state-changing request carries the session's token.
  router.use((req, res, next) => {
    if (req.method === 'GET' || req.method === 'HEAD') return next();
    if (csrfMatches(req.session, req.body && req.body._csrf)) return next();
    req.log.warn({ path: req.path }, 'console: CSRF token missing or wrong');
    return page(req, res, 403, views.messagePage({
      title: 'Form expired',
      message: 'This form is no longer valid (expired session or a request from another site). Reload the page and try again.',
      links: [['/users', 'Users'], ['/signin', 'Sign in']],
    }));
  });

  const signedIn = (req, res, next) => (req.session.token ? next() : res.redirect(303, '/signin'));
  const adminOnly = (req, res, next) => {
    if (req.session.role === 'admin') return next();
    return page(req, res, 403, views.messagePage({
      title: 'Read-only',
      message: describe(new ServiceError('PERMISSION_DENIED', '')),
      links: [['/users', 'Back to the users list']],
    }));
  };
  // The :id of the path as a positive BigInt, or a 400 page.
  const idParam = (req, res, next) => {
    const id = parseInt64(req.params.id);
    if (id === null || id <= 0n) {
      return page(req, res, 400, views.messagePage({ title: 'Invalid id', message: 'A user id is a positive integer.', links: [['/users', 'Users']] }));
    }
    req.userId = id;
    return next();
  };

  const signinForm = (req, res) => {
    if (req.session.token) return res.redirect(303, '/users');
    const notice = req.query.signed_out === '1' ? 'You are signed out.' : '';
    return page(req, res, 200, views.signinPage({ csrf: req.session.csrf || (req.session.csrf = newCsrfToken()), notice }));
  };
  // The root is the sign-in page for visitors and the users list for the signed in.
  router.get('/', signinForm);
  router.get('/signin', signinForm);

  const signinLimiter = rateLimit({
    windowMs: signinWindowMs,
    limit: signinLimit,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    // Only refused sign-ins count: an admin signing in often is not an attack.
    skipSuccessfulRequests: true,
    handler: (req, res, next, options) => {
      req.log.warn('console: sign-in rate limit reached');
      // When this address's window ends, not a whole window from now.
      const reset = req.rateLimit && req.rateLimit.resetTime ? req.rateLimit.resetTime.getTime() : Date.now() + options.windowMs;
      const seconds = Math.max(1, Math.ceil((reset - Date.now()) / 1000));
      res.set('Retry-After', String(seconds));
      const wait = seconds < 120 ? `${seconds} seconds` : `${Math.ceil(seconds / 60)} minutes`;
      page(req, res, 429, views.signinPage({ csrf: req.session.csrf, error: `Too many refused sign-in attempts from this address. Try again in ${wait}.` }));
    },
  });

  router.post('/signin', signinLimiter, async (req, res) => {
    const token = typeof req.body.token === 'string' ? req.body.token.trim() : '';
    if (!token) return page(req, res, 400, views.signinPage({ csrf: req.session.csrf, error: 'Paste a token first.' }));
    // The cheapest authorised call that also tells the role apart, with no
    // side effect and no I/O: deleting id 0 is refused by role before the id
    // is validated (admin: INVALID_ARGUMENT, reader: PERMISSION_DENIED).
    let role;
    try {
      await client.deleteUser(token, 0n);
      role = 'admin'; // not reached: id 0 is always invalid
    } catch (err) {
      if (!(err instanceof ServiceError)) throw err;
      if (err.code === 'INVALID_ARGUMENT') role = 'admin';
      else if (err.code === 'PERMISSION_DENIED') role = 'reader';
      else if (err.code === 'UNAUTHENTICATED') {
        req.log.info('console: sign-in refused');
        return page(req, res, 401, views.signinPage({ csrf: req.session.csrf, error: 'The service does not accept this token.' }));
      } else {
        return page(req, res, HTTP_STATUS[err.code] || 500, views.signinPage({ csrf: req.session.csrf, error: describe(err) }));
      }
    }
    // A fresh session id on sign-in (no session fixation).
    return req.session.regenerate((err) => {
      if (err) return res.status(500).end();
      req.session.token = token;
      req.session.role = role;
      req.session.csrf = newCsrfToken();
      req.session.flash = role === 'admin' ? 'Signed in as admin.' : 'Signed in with a reader token: the console is read-only.';
      req.log.info({ role }, 'console: signed in');
      return res.redirect(303, '/users');
    });
  });

  router.post('/signout', (req, res) => {
    req.session.destroy(() => {
      res.clearCookie(req.app.get('session cookie name'), { path: '/' });
      res.redirect(303, '/signin?signed_out=1');
    });
  });

  // The users list: ?after=N (users with id > N), ?from=N (jump: id >= N) or
  // ?before=N (the page just below N, for Previous); see paging.js.
  router.get('/users', signedIn, async (req, res) => {
    const q = req.query;
    const limitN = parseInt64(typeof q.limit === 'string' ? q.limit : String(PAGE_SIZE));
    const limit = limitN === null || limitN < 1n ? PAGE_SIZE : Number(limitN > BigInt(MAX_PAGE_SIZE) ? BigInt(MAX_PAGE_SIZE) : limitN);
    const token = req.session.token;
    const list = (afterId, n) => client.listUsers(token, afterId, n);
    const position = (name) => {
      if (typeof q[name] !== 'string' || q[name] === '') return undefined;
      const v = parseInt64(q[name]);
      return v === null || v < 0n ? null : v;
    };
    // A search: ?q= (what the search box sends), by username, one page.
    if (typeof q.q === 'string') {
      const text = q.q.trim();
      const n = Math.min(limit, MAX_SEARCH_RESULTS);
      if (text === '') return page(req, res, 400, views.listPage({ users: [], from: '', limit, q: '', searched: true, error: 'Type the start of a username or e-mail address to search for.' }));
      let users;
      try {
        users = await client.searchUsers(token, text, n);
      } catch (err) {
        if (err instanceof ServiceError && err.code === 'INVALID_ARGUMENT') {
          return page(req, res, 400, views.listPage({ users: [], from: '', limit, q: text, searched: true, error: `Search: ${err.message}.` }));
        }
        return failure(req, res, err);
      }
      let notice;
      if (users.length === 0) notice = `No user's username or e-mail starts with “${text}”.`;
      else if (users.length === n) notice = `The first ${n} users whose username or e-mail starts with “${text}”; type more to narrow it down.`;
      else notice = `${users.length} user${users.length === 1 ? '' : 's'} whose username or e-mail starts with “${text}”.`;
      return page(req, res, 200, views.listPage({ users, from: '', limit, q: text, searched: true, notice }));
    }
    const from = position('from');
    const before = position('before');
    const afterQ = position('after');
    if (from === null || from === 0n) {
      return page(req, res, 400, views.listPage({ users: [], from: q.from, limit, error: `Jump to id: give a whole number from 1 to ${INT64_MAX}.` }));
    }
    if (before === null || afterQ === null) {
      return page(req, res, 400, views.listPage({ users: [], from: '', limit, error: 'This page link is broken; start again from the first page.' }));
    }
    let result;
    let after;
    let first;
    try {
      if (before !== undefined) {
        result = await pageBefore(list, before, limit);
        after = result.after;
        first = result.first;
      } else {
        after = from !== undefined ? from - 1n : (afterQ ?? 0n);
        result = await list(after, limit);
        first = after === 0n;
      }
      // Previous exists when some user precedes the page: one indexed row.
      if (!first) {
        const lowest = (await list(0n, 1)).users[0];
        first = !lowest || (result.users.length > 0 && result.users[0].id <= lowest.id);
      }
    } catch (err) {
      return failure(req, res, err);
    }
    const href = (key, value) => `/users?${key}=${value}&limit=${limit}`;
    const nextHref = result.next_after_id > 0n ? href('after', result.next_after_id) : '';
    let prevHref = '';
    if (!first) prevHref = href('before', result.users.length ? result.users[0].id : (after < INT64_MAX ? after + 1n : after));
    let notice = '';
    if (from !== undefined) {
      if (!result.users.length) notice = `There are no users with id ${from} or above.`;
      else if (result.users[0].id !== from) notice = `There is no user ${from}; the list continues with the next id, ${result.users[0].id}.`;
    }
    return page(req, res, 200, views.listPage({ users: result.users, prevHref, nextHref, from: from ?? '', limit, notice }));
  });

  router.get('/users/new', signedIn, adminOnly, (req, res) => page(req, res, 200, views.createPage({ csrf: req.session.csrf })));

  const formValue = (v) => (typeof v === 'string' ? v : '');

  router.post('/users', signedIn, adminOnly, async (req, res) => {
    const values = { username: formValue(req.body.username).trim(), email: formValue(req.body.email).trim(), full_name: formValue(req.body.full_name) };
    try {
      const user = await client.createUser(req.session.token, values);
      req.session.flash = `User ${user.username} created (#${user.id}).`;
      return res.redirect(303, `/users/${user.id}`);
    } catch (err) {
      if (err instanceof ServiceError && (err.code === 'INVALID_ARGUMENT' || err.code === 'CONFLICT')) {
        const errors = {};
        let error = '';
        if (err.code === 'INVALID_ARGUMENT' && err.field in values) errors[err.field] = `${err.message}.`;
        else if (err.code === 'CONFLICT') {
          // The service's message names the duplicate ("username already exists").
          if (/^username\b/.test(err.message)) errors.username = 'Another user already has this username.';
          else if (/^email\b/.test(err.message)) errors.email = 'Another user already has this e-mail address (compared case-insensitively).';
          else error = 'Another user already has this username or e-mail address (compared case-insensitively).';
        }
        else error = describe(err);
        return page(req, res, HTTP_STATUS[err.code], views.createPage({ csrf: req.session.csrf, values, errors, error }));
      }
      if (outcomeUnknown(err)) {
        // No id to read back: the list tells whether the user exists.
        retryHeader(res, err);
        return page(req, res, HTTP_STATUS[err.code], views.createPage({ csrf: req.session.csrf, values, outcomeUnknown: true }));
      }
      if (keepsForm(err)) {
        retryHeader(res, err);
        return page(req, res, HTTP_STATUS[err.code], views.createPage({ csrf: req.session.csrf, values, error: `Nothing was created. ${describe(err)}` }));
      }
      return failure(req, res, err);
    }
  });

  router.get('/users/:id', signedIn, idParam, async (req, res) => {
    try {
      const user = await client.getUser(req.session.token, req.userId);
      return page(req, res, 200, views.detailPage({ user, role: req.session.role }));
    } catch (err) {
      return failure(req, res, err, { id: req.userId });
    }
  });

  router.get('/users/:id/edit', signedIn, adminOnly, idParam, async (req, res) => {
    try {
      const user = await client.getUser(req.session.token, req.userId);
      return page(req, res, 200, views.editPage({ csrf: req.session.csrf, user, values: user }));
    } catch (err) {
      return failure(req, res, err, { id: req.userId });
    }
  });

  router.post('/users/:id/edit', signedIn, adminOnly, idParam, async (req, res) => {
    const id = req.userId;
    const yours = { email: formValue(req.body.email).trim(), full_name: formValue(req.body.full_name) };
    const version = parseInt64(formValue(req.body.version));
    if (version === null || version < 1n) {
      return page(req, res, 400, views.messagePage({ title: 'Invalid form', message: 'The form lost its version; open the user again.', links: [[`/users/${id}`, 'Open the user']] }));
    }
    try {
      await client.updateUser(req.session.token, id, { ...yours, expected_version: version });
      req.session.flash = 'Changes saved.';
      return res.redirect(303, `/users/${id}`);
    } catch (err) {
      if (!(err instanceof ServiceError)) throw err;
      if (err.code === 'INVALID_ARGUMENT' && (err.field === 'email' || err.field === 'full_name')) {
        const current = await client.getUser(req.session.token, id).catch(() => null);
        const user = { ...(current || { id, username: '' }), version }; // resubmitting keeps the expected version
        return page(req, res, 400, views.editPage({ csrf: req.session.csrf, user, values: yours, errors: { [err.field]: `${err.message}.` } }));
      }
      if (err.code === 'CONFLICT') {
        let current;
        try {
          current = await client.getUser(req.session.token, id);
        } catch (again) {
          return failure(req, res, again, { id });
        }
        if (current.version !== version) {
          // Someone else won: show the fresh values, keep the user's input visible.
          return page(req, res, 409, views.editPage({ csrf: req.session.csrf, user: current, values: current, conflict: { yourVersion: version, yours } }));
        }
        return page(req, res, 409, views.editPage({ csrf: req.session.csrf, user: current, values: yours, errors: { email: 'Another user already has this e-mail address (compared case-insensitively).' } }));
      }
      if (outcomeUnknown(err)) {
        const now = await reread(req, id);
        if (now.error && !RETRYABLE.has(now.error.code)) return failure(req, res, now.error, { id });
        retryHeader(res, err);
        if (now.user) {
          return page(req, res, HTTP_STATUS[err.code], views.editPage({ csrf: req.session.csrf, user: now.user, values: now.user, outcomeUnknown: { yourVersion: version, yours } }));
        }
        const user = { id, username: '', version }; // resubmitting keeps the expected version
        return page(req, res, HTTP_STATUS[err.code], views.editPage({ csrf: req.session.csrf, user, values: yours,
          error: `${NO_ANSWER}, so your changes may or may not have been saved. The user could not be read again either: ${describe(now.error)} Open the user later to see whether they were.` }));
      }
      if (keepsForm(err)) {
        // No second call to a service that just failed (it could time out again).
        retryHeader(res, err);
        const user = { id, username: '', version }; // resubmitting keeps the expected version
        return page(req, res, HTTP_STATUS[err.code], views.editPage({ csrf: req.session.csrf, user, values: yours, error: `Nothing was saved. ${describe(err)}` }));
      }
      return failure(req, res, err, { id });
    }
  });

  router.get('/users/:id/delete', signedIn, adminOnly, idParam, async (req, res) => {
    try {
      const user = await client.getUser(req.session.token, req.userId);
      return page(req, res, 200, views.deletePage({ csrf: req.session.csrf, user }));
    } catch (err) {
      return failure(req, res, err, { id: req.userId });
    }
  });

  router.post('/users/:id/delete', signedIn, adminOnly, idParam, async (req, res) => {
    const id = req.userId;
    try {
      await client.deleteUser(req.session.token, id);
      req.session.flash = `User ${id} deleted.`;
      return res.redirect(303, '/users');
    } catch (err) {
      if (!outcomeUnknown(err)) return failure(req, res, err, { id });
      const now = await reread(req, id);
      if (now.error && now.error.code === 'NOT_FOUND') {
        req.session.flash = `${NO_ANSWER}, but user ${id} no longer exists: it was deleted.`;
        return res.redirect(303, '/users');
      }
      if (now.error && !RETRYABLE.has(now.error.code)) return failure(req, res, now.error, { id });
      retryHeader(res, err);
      if (now.user) {
        return page(req, res, HTTP_STATUS[err.code], views.deletePage({ csrf: req.session.csrf, user: now.user,
          error: `${NO_ANSWER}, so it is not known whether user ${id} was deleted. Read again just now, it still exists.` }));
      }
      return page(req, res, HTTP_STATUS[err.code], views.messagePage({ title: 'Outcome unknown',
        message: `${NO_ANSWER}, so user ${id} may or may not have been deleted. The user could not be read again either: ${describe(now.error)} Open the user later to see whether it still exists.`,
        links: [[`/users/${id}`, 'Open the user'], ['/users', 'Back to the users list']] }));
    }
  });

  // Unknown console pages.
  if (lab) mountLabPages(router, { lab, page, signedIn, adminOnly });

  router.use((req, res) => {
    page(req, res, 404, views.messagePage({ title: 'Not found', message: `There is no page ${req.path}.`, links: [['/users', 'Users']] }));
  });

  // Form bodies over the limit, and anything unexpected.
  router.use((err, req, res, next) => {
    if (res.headersSent) return next(err);
    if (err && err.type === 'entity.too.large') {
      return page(req, res, 413, views.messagePage({ title: 'Too large', message: 'The form is larger than the console accepts (16 KiB).', links: [['/users', 'Users']] }));
    }
    if (err && err.status >= 400 && err.status < 500) {
      return page(req, res, 400, views.messagePage({ title: 'Bad request', message: 'The request could not be read.', links: [['/users', 'Users']] }));
    }
    req.log.error({ err }, 'console: unexpected error');
    return page(req, res, 500, views.messagePage({ title: 'Something went wrong', message: describe(new ServiceError('INTERNAL', '')), links: [['/users', 'Users']] }));
  });

  return router;
}

module.exports = { createConsole, describe };
