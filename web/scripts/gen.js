#!/usr/bin/env node
// Generates the Thrift client code (thrift --gen js:node) from
// ../idl/polycrud.thrift into web/gen/ (git-ignored). Skips the compiler when
// gen/.stamp holds the SHA-256 of the current IDL, so it is cheap to run
// before every start and test.
'use strict';

const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const WEB_DIR = path.resolve(__dirname, '..');
const IDL = path.resolve(WEB_DIR, '..', 'idl', 'polycrud.thrift');
const OUT = path.join(WEB_DIR, 'gen');
const STAMP = path.join(OUT, '.stamp');
const FILES = ['UserService.js', 'polycrud_types.js'];

function main(argv) {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(
      'Usage: node scripts/gen.js [--force]\n\n' +
        'Generates web/gen/ from idl/polycrud.thrift with `thrift --gen js:node`\n' +
        '(Debian thrift-compiler 0.17, matching npm thrift@0.17.0). Does nothing when\n' +
        'web/gen/.stamp matches the IDL, unless --force is given.\n');
    return 0;
  }
  const digest = crypto.createHash('sha256').update(fs.readFileSync(IDL)).digest('hex');
  const upToDate =
    !argv.includes('--force') &&
    fs.existsSync(STAMP) &&
    fs.readFileSync(STAMP, 'utf8').trim() === digest &&
    FILES.every((f) => fs.existsSync(path.join(OUT, f)));
  if (upToDate) return 0;
  // Generate into a fresh folder, then swap it in, so a failed run never
  // leaves half a gen/ behind.
  const tmp = fs.mkdtempSync(path.join(WEB_DIR, '.gen-'));
  try {
    execFileSync('thrift', ['--gen', 'js:node', '-out', tmp, IDL], { stdio: 'inherit' });
    fs.writeFileSync(path.join(tmp, '.stamp'), digest + '\n');
    fs.rmSync(OUT, { recursive: true, force: true });
    fs.renameSync(tmp, OUT);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (err.code === 'ENOENT') {
      process.stderr.write('gen: the thrift compiler is not installed (./polycrud setup installs it)\n');
    } else {
      process.stderr.write(`gen: thrift --gen js:node failed: ${err.message}\n`);
    }
    return 1;
  }
  process.stdout.write(`gen: generated ${path.relative(process.cwd(), OUT) || OUT}/ from ${path.basename(IDL)}\n`);
  return 0;
}

process.exitCode = main(process.argv.slice(2));
