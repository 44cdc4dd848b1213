#!/usr/bin/env node
// Runs as the root package's `install` script, after npm has built node-rdkafka's librdkafka. npm builds
// dependencies while the root's `preinstall` (scripts/system-deps.sh) may still be installing the Debian headers,
// so librdkafka's configure can miss them (it does not fail: it builds without zstd, SASL or SSL). This checks the
// features librdkafka was built with and, when one strait needs is missing while its headers are now present,
// rebuilds node-rdkafka once. If a feature is still missing it fails with the exact package to install.
'use strict';
const { spawnSync } = require('node:child_process');

const NEEDED = {
  zstd: 'libzstd-dev',
  lz4: 'liblz4-dev',
  snappy: 'libsnappy-dev',
  gzip: 'zlib1g-dev',
  ssl: 'libssl-dev',
  sasl_scram: 'libssl-dev',
  sasl_plain: 'libssl-dev',
  sasl_gssapi: 'libsasl2-dev',
};

function features() {
  // a fresh process each time: node-rdkafka's binding is loaded once per process
  const r = spawnSync(process.execPath, ['-e', "process.stdout.write(require('node-rdkafka').features.join(','))"], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cannot load node-rdkafka: ${r.stderr.trim()}`);
  return new Set(r.stdout.split(','));
}

function missing() {
  const have = features();
  return Object.keys(NEEDED).filter((f) => !have.has(f));
}

let lacking = missing();
if (lacking.length > 0) {
  process.stderr.write(`strait: node-rdkafka's librdkafka was built without ${lacking.join(', ')}; rebuilding it now that the system headers are installed\n`);
  const r = spawnSync('npm', ['rebuild', 'node-rdkafka', '--foreground-scripts'], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) {
    process.stderr.write('strait: npm rebuild node-rdkafka failed\n');
    process.exit(1);
  }
  lacking = missing();
}
if (lacking.length > 0) {
  const pkgs = [...new Set(lacking.map((f) => NEEDED[f]))];
  process.stderr.write(
    `strait: librdkafka still lacks ${lacking.join(', ')}: run 'apt-get install -y ${pkgs.join(' ')}' and then 'npm rebuild node-rdkafka'\n`,
  );
  process.exit(1);
}
process.stderr.write(`strait: librdkafka features ok (${Object.keys(NEEDED).join(', ')})\n`);
