// Routes of the protocol lab (lab.js): the API under /api/v1/lab for
// programs (bearer token, admin), and the console's /lab page with the
// session-authenticated stream and wire capture its script uses.
'use strict';

const crypto = require('node:crypto');
const express = require('express');
const { admissionError, bearerToken, queryOf } = require('./gateway');
const { HTTP_STATUS, sendJsonText, sendProblem, sendServiceError, retryAfterSeconds } = require('./problem');
const { LabError, LAB_PROTOCOLS, OPERATIONS, LIMITS, parseCompare, streamRun, streamError, tokenTag } = require('./lab');
const views = require('./views');

function sendLabError(res, err) {
  if (!(err instanceof LabError)) throw err;
  const status = HTTP_STATUS[err.code] || 500;
  if (err.retryAfterMs) res.set('Retry-After', String(retryAfterSeconds(err.retryAfterMs)));
  return sendProblem(res, status, err.code, err.message, err.field);
}

// The user id of a wire capture: a positive whole number (default 1).
function wireId(params) {
  const text = params.get('id') || '1';
  if (!/^[1-9][0-9]{0,17}$/.test(text)) throw new LabError('INVALID_ARGUMENT', 'id must be a positive whole number', { field: 'id' });
  return text;
}

/** What the lab offers here: protocols (null or why not), operations, limits and the run now. */
function labInfo(lab) {
  return {
    protocols: Object.entries(lab.availability()).map(([protocol, unavailable]) => ({
      protocol, title: LAB_PROTOCOLS[protocol], available: unavailable === null, reason: unavailable })),
    operations: Object.entries(OPERATIONS).map(([op, { title }]) => ({ op, title })),
    limits: { seconds: [LIMITS.minSeconds, LIMITS.maxSeconds], connections: [LIMITS.minConnections, LIMITS.maxConnections] },
    running: lab.status(),
  };
}

// Runs a comparison for a JSON client: the results once all protocols ran.
function answerWhenDone(res, run) {
  res.once('close', () => {
    if (!res.writableFinished) run.stop();
  });
  run.once('done', ({ results }) => {
    if (!res.destroyed) sendJsonText(res, 200, JSON.stringify({ results }));
  });
}

/** /api/v1/lab: compare (JSON, or server-sent events when asked for), status, wire. Admin only. */
function createLabApi(lab, client) {
  const router = express.Router();
  router.use(async (req, res, next) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.set('Allow', 'GET, HEAD');
      return sendProblem(res, 405, 'INVALID_ARGUMENT', 'the lab answers GET only');
    }
    try {
      const refused = await admissionError(client, req, 'admin');
      if (refused) return sendServiceError(res, refused, req.log);
    } catch (err) {
      return next(err);
    }
    return next();
  });
  router.get('/compare', (req, res) => {
    const token = bearerToken(req);
    try {
      const request = parseCompare(queryOf(req));
      const run = lab.start(request, { who: `${tokenTag(token)} (API, ${req.ip})`, token });
      if (req.accepts(['application/json', 'text/event-stream']) === 'text/event-stream') {
        return streamRun(req, res, run, lab.status());
      }
      return answerWhenDone(res, run);
    } catch (err) {
      return sendLabError(res, err);
    }
  });
  router.get('/status', (req, res) => sendJsonText(res, 200, JSON.stringify(labInfo(lab))));
  router.get('/wire', async (req, res) => {
    try {
      const params = queryOf(req);
      const doc = await lab.wire(params.get('protocol') || '', wireId(params), bearerToken(req));
      return sendJsonText(res, 200, JSON.stringify(doc));
    } catch (err) {
      return sendLabError(res, err);
    }
  });
  return router;
}

const csrfEqual = (a, b) => typeof a === 'string' && typeof b === 'string' && a.length === b.length &&
  crypto.timingSafeEqual(Buffer.from(a), Buffer.from(b));

/**
 * The console's lab: /lab (the page), /lab/events (a comparison as
 * server-sent events; the page's CSRF token in the query, since an
 * EventSource sends no form), /lab/status and /lab/wire (JSON for the
 * page's script). `page`, `signedIn` and `adminOnly` are the console's.
 */
function mountLabPages(router, { lab, page, signedIn, adminOnly }) {
  router.get('/lab', signedIn, adminOnly, (req, res) => {
    // This page alone runs a script: its own, from /assets.
    res.setHeader('Content-Security-Policy', "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
      "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
    page(req, res, 200, views.labPage({ info: labInfo(lab), csrf: req.session.csrf || '' }));
  });
  router.get('/lab/events', (req, res) => {
    if (!req.session.token) return streamError(res, 401, new LabError('UNAUTHENTICATED', 'sign in first'));
    if (req.session.role !== 'admin') return streamError(res, 403, new LabError('PERMISSION_DENIED', 'the lab is for admins'));
    const params = queryOf(req);
    if (!csrfEqual(params.get('csrf'), req.session.csrf)) {
      req.log.warn('console: lab stream without the page\'s CSRF token');
      return streamError(res, 403, new LabError('PERMISSION_DENIED', 'this page has expired: reload it'));
    }
    try {
      const run = lab.start(parseCompare(params), { who: `${tokenTag(req.session.token)} (console, ${req.ip})`, token: req.session.token });
      return streamRun(req, res, run, lab.status());
    } catch (err) {
      if (!(err instanceof LabError)) throw err;
      return streamError(res, HTTP_STATUS[err.code] || 500, err);
    }
  });
  const adminJson = (req, res, next) => {
    if (!req.session.token) return sendProblem(res, 401, 'UNAUTHENTICATED', 'sign in first');
    if (req.session.role !== 'admin') return sendProblem(res, 403, 'PERMISSION_DENIED', 'the lab is for admins');
    return next();
  };
  router.get('/lab/status', adminJson, (req, res) => sendJsonText(res, 200, JSON.stringify(labInfo(lab))));
  router.get('/lab/wire', adminJson, async (req, res) => {
    try {
      const params = queryOf(req);
      return sendJsonText(res, 200, JSON.stringify(await lab.wire(params.get('protocol') || '', wireId(params), req.session.token)));
    } catch (err) {
      return sendLabError(res, err);
    }
  });
}

module.exports = { createLabApi, mountLabPages, labInfo };
