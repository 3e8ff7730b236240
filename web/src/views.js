// Server-rendered HTML of the console. Every interpolated value is escaped by
// the `html` tag unless it is itself an Html fragment; no inline script or
// style, so the Content-Security-Policy can forbid both.
'use strict';

class Html {
  constructor(text) {
    this.text = text;
  }
  toString() {
    return this.text;
  }
}

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escape = (s) => String(s).replace(/[&<>"']/g, (c) => ESCAPES[c]);

function render(value) {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map(render).join('');
  return escape(value);
}

/** Tagged template: interpolations are escaped, Html fragments and arrays of them are not. */
function html(strings, ...values) {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1];
  return new Html(out);
}

const time = (ms) => new Date(Number(ms)).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');

function layout({ title, session, csrf, flash, body, head = '' }) {
  const signedIn = Boolean(session && session.token);
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · polycrud console</title>
<link rel="stylesheet" href="/assets/console.css">
<link rel="icon" href="/assets/favicon.svg" type="image/svg+xml">
${head}</head>
<body>
<header class="top">
  <a class="brand" href="${signedIn ? '/users' : '/signin'}">polycrud console</a>
  ${signedIn ? html`<nav aria-label="Main">
    <a href="/users">Users</a>
    ${session.role === 'admin' ? html`<a href="/users/new">New user</a> <a href="/lab">Protocol lab</a>` : ''}
    <span class="role role-${session.role}" title="${session.role === 'admin' ? 'This token may change users' : 'This token can only read'}">${session.role === 'admin' ? 'admin' : 'reader (read-only)'}</span>
    <form method="post" action="/signout" class="inline">
      <input type="hidden" name="_csrf" value="${csrf}">
      <button type="submit" class="link">Sign out</button>
    </form>
  </nav>` : ''}
</header>
<main id="main">
${flash ? html`<p class="flash" role="status">${flash}</p>` : ''}
${body}
</main>
</body>
</html>
`;
}

// How a page starts to say that a write got no answer (timed out, or the
// connection was lost with it in flight), so its outcome is unknown.
const NO_ANSWER = 'The service did not answer';

function errorBox(message) {
  return message ? html`<div class="error" role="alert">${message}</div>` : '';
}

function signinPage({ csrf, error, notice }) {
  return {
    title: 'Sign in',
    body: html`<section class="card narrow">
<h1>Sign in</h1>
${notice ? html`<p class="flash" role="status">${notice}</p>` : ''}
${errorBox(error)}
<form method="post" action="/signin">
  <input type="hidden" name="_csrf" value="${csrf}">
  <label for="token">Bearer token</label>
  <input id="token" name="token" type="password" autocomplete="off" required maxlength="4096" aria-describedby="token-help" autofocus>
  <p id="token-help" class="help">Paste an admin token for full access or a reader token for a read-only console
  (<code>.polycrud/admin-token</code> of the local stack). It stays on the server, in your session.</p>
  <button type="submit">Sign in</button>
</form>
</section>`,
  };
}

function userRows(users) {
  return users.map((u) => html`<tr>
  <td data-label="Id"><a href="/users/${u.id}">${u.id}</a></td>
  <td data-label="Username"><a href="/users/${u.id}">${u.username}</a></td>
  <td data-label="E-mail">${u.email}</td>
  <td data-label="Full name">${u.full_name}</td>
  <td data-label="Version">${u.version}</td>
</tr>`);
}

// The users list (keyset pages in id order) or, with `q`, the users whose
// username or e-mail starts with q (by username, no pages).
function listPage({ users, prevHref, nextHref, from, error, notice, limit, q = '', searched = false }) {
  return {
    title: searched ? `Users: ${q}` : 'Users',
    body: html`<section class="card">
<div class="title-row">
  <h1>Users</h1>
  <form method="get" action="/users" class="search" role="search" aria-label="Search users">
    <label for="q">Search</label>
    <input id="q" name="q" type="search" value="${q}" maxlength="254" placeholder="start of a username or e-mail" title="The start of a username or e-mail address (any case)" autocomplete="off" autocapitalize="none" spellcheck="false" required>
    <button type="submit">Search</button>
  </form>
  <form method="get" action="/users" class="jump" role="search" aria-label="Jump to an id">
    <label for="from">Jump to id</label>
    <input id="from" name="from" type="number" min="1" step="1" inputmode="numeric" value="${from}" required>
    <input type="hidden" name="limit" value="${limit}">
    <button type="submit">Go</button>
  </form>
</div>
${errorBox(error)}
${notice ? html`<p class="notice" role="status">${notice}</p>` : ''}
${users.length === 0 && !error && !notice ? html`<p class="empty">No users here.</p>` : ''}
${users.length > 0 ? html`<div class="table-wrap"><table>
<caption class="visually-hidden">${searched ? 'Matching users by username' : 'Users in id order'}</caption>
<thead><tr><th scope="col">Id</th><th scope="col">Username</th><th scope="col">E-mail</th><th scope="col">Full name</th><th scope="col">Version</th></tr></thead>
<tbody>${userRows(users)}</tbody>
</table></div>` : ''}
${searched ? html`<p><a href="/users">All users in id order</a></p>` : html`<nav class="pager" aria-label="Pages">
  ${prevHref ? html`<a rel="prev" href="${prevHref}">← Previous</a>` : html`<span class="disabled" aria-disabled="true">← Previous</span>`}
  ${nextHref ? html`<a rel="next" href="${nextHref}">Next →</a>` : html`<span class="disabled" aria-disabled="true">Next →</span>`}
</nav>`}
</section>`,
  };
}

function detailPage({ user, role }) {
  return {
    title: `User ${user.id}`,
    body: html`<section class="card">
<h1>${user.username} <span class="muted">#${user.id}</span></h1>
<dl class="fields">
  <dt>Id</dt><dd>${user.id}</dd>
  <dt>Username</dt><dd>${user.username}</dd>
  <dt>E-mail</dt><dd>${user.email}</dd>
  <dt>Full name</dt><dd>${user.full_name}</dd>
  <dt>Version</dt><dd>${user.version}</dd>
  <dt>Created</dt><dd><time datetime="${new Date(Number(user.created_at_ms)).toISOString()}">${time(user.created_at_ms)}</time></dd>
  <dt>Updated</dt><dd><time datetime="${new Date(Number(user.updated_at_ms)).toISOString()}">${time(user.updated_at_ms)}</time></dd>
</dl>
<p class="actions">
  ${role === 'admin' ? html`<a class="button" href="/users/${user.id}/edit">Edit</a>
  <a class="button danger" href="/users/${user.id}/delete">Delete…</a>` : html`<span class="muted">Read-only token: no changes possible.</span>`}
  <a href="/users?from=${user.id}">Show in list</a>
</p>
</section>`,
  };
}

function field({ id, label, value, error, type = 'text', attrs = '', help }) {
  const describedBy = [error ? `${id}-error` : '', help ? `${id}-help` : ''].filter(Boolean).join(' ');
  return html`<div class="field${error ? ' invalid' : ''}">
  <label for="${id}">${label}</label>
  <input id="${id}" name="${id}" type="${type}" value="${value}" ${new Html(attrs)}${error ? new Html(' aria-invalid="true"') : ''}${describedBy ? html` aria-describedby="${describedBy}"` : ''}>
  ${help ? html`<p id="${id}-help" class="help">${help}</p>` : ''}
  ${error ? html`<p id="${id}-error" class="field-error">${error}</p>` : ''}
</div>`;
}

function createPage({ csrf, values = {}, errors = {}, error, outcomeUnknown }) {
  return {
    title: 'New user',
    body: html`<section class="card narrow">
<h1>New user</h1>
${errorBox(error)}
${outcomeUnknown ? html`<div class="error" role="alert">${NO_ANSWER}, so user ${values.username} may or may not have been created.
  Check the <a href="/users">users list</a> (new users come last) before creating it again; if it was created, its username is now taken.</div>` : ''}
<form method="post" action="/users" novalidate>
  <input type="hidden" name="_csrf" value="${csrf}">
  ${field({ id: 'username', label: 'Username', value: values.username, error: errors.username, attrs: 'required maxlength="32" autocomplete="off" autocapitalize="none"', help: '3-32 characters: a-z, 0-9, _ . -; cannot be changed later' })}
  ${field({ id: 'email', label: 'E-mail', value: values.email, error: errors.email, type: 'email', attrs: 'required maxlength="254"' })}
  ${field({ id: 'full_name', label: 'Full name', value: values.full_name, error: errors.full_name, attrs: 'required maxlength="128"' })}
  <p class="actions"><button type="submit">Create user</button> <a href="/users">Cancel</a></p>
</form>
</section>`,
  };
}

function editPage({ csrf, user, values, errors = {}, error, conflict, outcomeUnknown }) {
  return {
    title: `Edit user ${user.id}`,
    body: html`<section class="card narrow">
<h1>Edit ${user.username || 'user'} <span class="muted">#${user.id}</span></h1>
${errorBox(error)}
${conflict ? html`<div class="conflict" role="alert">
  <h2>Someone else changed this user meanwhile</h2>
  <p>You edited version ${conflict.yourVersion}; the current version is ${user.version}. Nothing was saved.
  The form below now holds the current values; your changes were:</p>
  <dl class="fields">
    <dt>Your e-mail</dt><dd>${conflict.yours.email}</dd>
    <dt>Your full name</dt><dd>${conflict.yours.full_name}</dd>
  </dl>
  <p>Apply them again to the current values and save, or cancel.</p>
</div>` : ''}
${outcomeUnknown ? html`<div class="conflict" role="alert">
  <h2>Your changes may or may not have been saved</h2>
  <p>${NO_ANSWER}, so it is not known whether your changes were saved. Read again just now, the user is at version ${user.version}
  (you edited version ${outcomeUnknown.yourVersion}); the form below holds its current values. Your changes were:</p>
  <dl class="fields">
    <dt>Your e-mail</dt><dd>${outcomeUnknown.yours.email}</dd>
    <dt>Your full name</dt><dd>${outcomeUnknown.yours.full_name}</dd>
  </dl>
  <p>If the current values are not yours, apply them again and save, or cancel.</p>
</div>` : ''}
<form method="post" action="/users/${user.id}/edit" novalidate>
  <input type="hidden" name="_csrf" value="${csrf}">
  <input type="hidden" name="version" value="${user.version}">
  <p class="help">${user.username ? html`Username <strong>${user.username}</strong> (cannot be changed) · ` : ''}version ${user.version}</p>
  ${field({ id: 'email', label: 'E-mail', value: values.email, error: errors.email, type: 'email', attrs: 'required maxlength="254"' })}
  ${field({ id: 'full_name', label: 'Full name', value: values.full_name, error: errors.full_name, attrs: 'required maxlength="128"' })}
  <p class="actions"><button type="submit">Save changes</button> <a href="/users/${user.id}">Cancel</a></p>
</form>
</section>`,
  };
}

function deletePage({ csrf, user, error }) {
  return {
    title: `Delete user ${user.id}`,
    body: html`<section class="card narrow">
<h1>Delete ${user.username}?</h1>
${errorBox(error)}
<p>This removes user <strong>${user.username}</strong> (#${user.id}, ${user.email}) for good. Ids are never reused.</p>
<form method="post" action="/users/${user.id}/delete">
  <input type="hidden" name="_csrf" value="${csrf}">
  <p class="actions"><button type="submit" class="danger">Delete user ${user.id}</button> <a href="/users/${user.id}">Cancel</a></p>
</form>
</section>`,
  };
}

// The protocol lab: the form, the run now (who runs what), the live charts
// and the results table (drawn by /assets/lab.js from the run's events), and
// the wire view. `info` is lab_routes.labInfo().
function labPage({ info, csrf }) {
  const running = info.running;
  return {
    title: 'Protocol lab',
    head: html`<link rel="stylesheet" href="/assets/vendor/uplot/uPlot.min.css">
<script src="/assets/vendor/uplot/uPlot.iife.min.js" defer></script>
<script src="/assets/lab.js" defer></script>
`,
    body: html`<section class="card lab" id="lab" data-csrf="${csrf}">
<h1>Protocol lab</h1>
<p>Runs the project's load generator against this server, one protocol after the other, each with the same
operation, connections and duration, and draws requests per second and latency as it goes. One comparison
runs at a time; it loads the server for everyone while it runs.</p>
<noscript><p class="error">The live charts need JavaScript. Programs can run the same comparison with
<code>GET /api/v1/lab/compare</code>.</p></noscript>
<p id="lab-status" class="notice" role="status">${running
    ? `Running now: ${running.who}, ${running.protocols.join(', ')}, ${running.op}, ${running.seconds} s each, started ${time(running.started_at_ms)}.`
    : 'No comparison is running.'}</p>
<form id="lab-form" class="lab-form" method="get" action="/lab">
<fieldset><legend>Protocols</legend>
${info.protocols.map((p) => html`<label class="check${p.available ? '' : ' unavailable'}"><input type="checkbox" name="protocols" value="${p.protocol}" data-title="${p.title}"${p.available ? html` checked` : html` disabled`}> ${p.title}${p.available ? '' : html` <small>(${p.reason})</small>`}</label>`)}
</fieldset>
<label for="lab-op">Operation</label>
<select id="lab-op" name="op">${info.operations.map((o) => html`<option value="${o.op}"${o.op === 'get' ? html` selected` : ''}>${o.title}</option>`)}</select>
<label for="lab-seconds">Seconds per protocol</label>
<input id="lab-seconds" name="seconds" type="number" min="${info.limits.seconds[0]}" max="${info.limits.seconds[1]}" value="5" required>
<label for="lab-connections">Connections</label>
<input id="lab-connections" name="connections" type="number" min="${info.limits.connections[0]}" max="${info.limits.connections[1]}" value="16" required>
<button type="submit" id="lab-run">Run the comparison</button>
</form>
<div id="lab-error" class="error" role="alert" hidden></div>
<h2>Requests per second</h2>
<div id="lab-throughput" class="chart" aria-label="Requests per second of each protocol over its run"></div>
<h2>Latency (p50 solid, p99 dashed, ms)</h2>
<div id="lab-latency" class="chart" aria-label="p50 and p99 latency of each protocol over its run"></div>
<h2>Results</h2>
<div class="table-wrap"><table id="lab-results">
<thead><tr><th scope="col">Protocol</th><th scope="col">Requests/s</th><th scope="col">p50 ms</th><th scope="col">p99 ms</th><th scope="col">Bytes per call</th><th scope="col">Server CPU per call (microseconds)</th><th scope="col">Errors</th></tr></thead>
<tbody></tbody>
</table></div>
</section>
<section class="card lab" id="wire">
<h2>On the wire: one GetUser</h2>
<p>The same GetUser, made by each protocol's client through a recording relay, byte by byte: what the client
sent and what the server answered, with each part decoded. Tokens are masked.</p>
<form id="wire-form" class="lab-form" method="get" action="/lab">
<label for="wire-id">User id</label>
<input id="wire-id" name="id" type="number" min="1" value="1" required>
<button type="submit" id="wire-run">Capture the checked protocols</button>
</form>
<div id="wire-error" class="error" role="alert" hidden></div>
<div id="wire-sizes"></div>
<div id="wire-out"></div>
</section>`,
  };
}

function messagePage({ title, message, links = [] }) {
  return {
    title,
    body: html`<section class="card narrow">
<h1>${title}</h1>
<div class="error" role="alert">${message}</div>
<p class="actions">${links.map(([href, text]) => html`<a href="${href}">${text}</a> `)}</p>
</section>`,
  };
}

module.exports = { NO_ANSWER, html, Html, layout, signinPage, listPage, detailPage, createPage, editPage, deletePage, labPage, messagePage };
