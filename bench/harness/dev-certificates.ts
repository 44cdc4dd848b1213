/**
 * Certificates for `strait dev up --tls`, made on the spot with the openssl command line (no network): a CA, one
 * broker certificate every node presents (subject alternative names 127.0.0.1 and localhost, so clients that verify
 * the host name accept it), and a client certificate for mTLS. Keys are EC P-256 in unencrypted PKCS#8 PEM, which
 * librdkafka, Node and Kafka's PEM key stores (KIP-651) all read. The tests also issue odd certificates here (another
 * CA, a name the brokers do not have, an expired client certificate) to provoke the usual mistakes.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StraitError } from '../../shared/errors';

export interface CertificateAuthority {
  /** PEM certificate: what clients put in ssl.ca.location */
  certificate: string;
  key: string;
}

export interface IssuedCertificate {
  certificate: string;
  key: string;
}

export interface IssueOptions {
  /** the subject's common name; mTLS principals are `User:CN=<cn>` unless the broker maps them */
  cn: string;
  /** subjectAltName entries, e.g. ['IP:127.0.0.1', 'DNS:localhost'] */
  altNames?: string[];
  usage: 'server' | 'client';
  /** validity in days (default 825); with `expired`, the certificate's validity ended a day ago */
  days?: number;
  expired?: boolean;
}

/** The names every harness broker certificate carries: clients connect to 127.0.0.1 (or localhost). */
export const BROKER_ALT_NAMES = ['IP:127.0.0.1', 'DNS:localhost'];

function openssl(args: string[], what: string, cwd?: string): void {
  const r = spawnSync('openssl', args, { encoding: 'utf8', ...(cwd !== undefined ? { cwd } : {}) });
  if (r.error !== undefined) throw new StraitError('STRAIT_DEV_MISSING_TOOL', 'openssl was not found; install openssl (e.g. apt-get install -y openssl)');
  if (r.status !== 0) throw new StraitError('STRAIT_DEV_START_FAILED', `${what} failed: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' ')}`);
}

function newKey(file: string): void {
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file], `making the key ${file}`);
}

/** A self-signed CA in `dir` (`<name>-ca.pem`, `<name>-ca.key`). */
export function makeCertificateAuthority(dir: string, name = 'strait-dev'): CertificateAuthority {
  mkdirSync(dir, { recursive: true });
  const key = join(dir, `${name}-ca.key`);
  const certificate = join(dir, `${name}-ca.pem`);
  newKey(key);
  openssl(
    [
      'req',
      '-x509',
      '-new',
      '-key',
      key,
      '-out',
      certificate,
      '-days',
      '3650',
      '-subj',
      `/CN=${name} CA`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    `making the CA ${certificate}`,
  );
  return { certificate, key };
}

/**
 * A certificate signed by `ca`, in `dir` as `<file>.pem` and `<file>.key`. An expired one is signed through
 * `openssl ca`, the only openssl 3.0 command that takes explicit start and end dates.
 */
export function issueCertificate(ca: CertificateAuthority, dir: string, file: string, opts: IssueOptions): IssuedCertificate {
  mkdirSync(dir, { recursive: true });
  const key = join(dir, `${file}.key`);
  const certificate = join(dir, `${file}.pem`);
  const csr = join(dir, `${file}.csr`);
  const ext = join(dir, `${file}.ext`);
  newKey(key);
  openssl(['req', '-new', '-key', key, '-out', csr, '-subj', `/CN=${opts.cn}`], `making the request ${csr}`);
  writeFileSync(
    ext,
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      `extendedKeyUsage=${opts.usage === 'server' ? 'serverAuth,clientAuth' : 'clientAuth'}`,
      ...(opts.altNames && opts.altNames.length > 0 ? [`subjectAltName=${opts.altNames.join(',')}`] : []),
      '',
    ].join('\n'),
  );
  if (opts.expired) {
    const db = join(dir, `${file}-ca-db`);
    mkdirSync(join(db, 'new'), { recursive: true });
    writeFileSync(join(db, 'index.txt'), '');
    writeFileSync(join(db, 'serial'), `${Date.now().toString(16).padStart(16, '0')}\n`);
    const cnf = join(db, 'ca.cnf');
    writeFileSync(
      cnf,
      [
        '[ca]',
        'default_ca=dev',
        '[dev]',
        `dir=${db}`,
        'database=$dir/index.txt',
        'new_certs_dir=$dir/new',
        'serial=$dir/serial',
        'default_md=sha256',
        'policy=any',
        'unique_subject=no',
        'copy_extensions=none',
        '[any]',
        'commonName=supplied',
        '',
      ].join('\n'),
    );
    const day = 24 * 3600 * 1000;
    const stamp = (t: number) => `${new Date(t).toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;
    openssl(
      [
        'ca',
        '-batch',
        '-config',
        cnf,
        '-cert',
        ca.certificate,
        '-keyfile',
        ca.key,
        '-in',
        csr,
        '-out',
        certificate,
        '-extfile',
        ext,
        '-startdate',
        stamp(Date.now() - 30 * day),
        '-enddate',
        stamp(Date.now() - day),
        '-notext',
      ],
      `signing ${certificate}`,
    );
  } else {
    openssl(
      [
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        ca.certificate,
        '-CAkey',
        ca.key,
        '-CAcreateserial',
        '-out',
        certificate,
        '-days',
        String(opts.days ?? 825),
        '-sha256',
        '-extfile',
        ext,
      ],
      `signing ${certificate}`,
    );
  }
  return { certificate, key };
}

/** Kafka's PEM key store: the private key, then the certificate chain (leaf first). */
export function pemKeyStore(file: string, cert: IssuedCertificate, ca: CertificateAuthority): string {
  writeFileSync(file, [readFileSync(cert.key, 'utf8'), readFileSync(cert.certificate, 'utf8'), readFileSync(ca.certificate, 'utf8')].join(''));
  return file;
}
