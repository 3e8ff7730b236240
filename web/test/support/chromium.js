// Debian's Chromium for the browser tests, driven by playwright-core (no
// browser download).
'use strict';

const CHROMIUM = process.env.POLYCRUD_CHROMIUM || '/usr/bin/chromium';
// Without the background-networking flags Chromium keeps dialling out, which
// a closed network refuses; QUIC and GPU are not needed headless.
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

module.exports = { CHROMIUM, CHROMIUM_ARGS };
