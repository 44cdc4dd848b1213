/**
 * Why a TLS connection to a cluster fails, in plain words and with the config field to change. librdkafka reports
 * every failed connection to the application as "broker transport failure"; the reason is only in its log text, and
 * that text misleads: a host name the broker's certificate does not carry is reported as "broker certificate could
 * not be verified, verify that ssl.ca.location is correctly configured". So once a TLS cluster cannot be reached,
 * strait looks for itself: it reads the configured files (is the client certificate expired, does the key belong to
 * it) and makes one TLS handshake with Node's TLS stack, the same CA, certificate and key, and the same host name
 * check as librdkafka (`ssl.endpoint.identification.algorithm` https, its default). The outcome comes as OpenSSL
 * verification codes and TLS alert codes, never as text to parse.
 */
import { readFileSync, statSync } from 'node:fs';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { isIP } from 'node:net';
import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import type { ClientProps } from '../config';
import { fieldPath } from '../errors';

export interface TlsDiagnosis {
  /** the cause in plain words (no secret: paths, names and dates only) */
  cause: string;
  /** the config field to look at, e.g. `clusters.a.properties["ssl.ca.location"]` */
  field: string;
}

/** Whether a cluster's connections use TLS (`security.protocol` SSL or SASL_SSL). */
export function usesTls(props: ClientProps): boolean {
  const protocol = String(props['security.protocol'] ?? 'plaintext').toLowerCase();
  return protocol === 'ssl' || protocol === 'sasl_ssl';
}

// OpenSSL X509_V_ERR_* names as Node reports them (socket.authorizationError): the chain does not lead to a trusted CA
const UNTRUSTED = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
]);

// TLS alerts a broker sends when it refuses the client's certificate (RFC 8446 section 6.2, as OpenSSL names them)
const CLIENT_CERT_REFUSED = new Set([
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED',
  'ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE',
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE',
  'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED',
]);

function names(cert: X509Certificate | undefined): string {
  if (cert === undefined) return 'unknown';
  return cert.subjectAltName ?? cert.subject.replace(/\n/g, ', ');
}

function subjectOf(cert: X509Certificate): string {
  return cert.subject.replace(/\n/g, ', ');
}

function issuerOf(cert: X509Certificate): string {
  return cert.issuer.replace(/\n/g, ', ');
}

interface Material {
  ca?: string;
  cert?: string;
  key?: string;
  passphrase?: string;
  /** a PKCS#12 key store (ssl.keystore.location) instead of a PEM certificate and key */
  pfx?: Buffer;
}

/** Reads the files (or inline PEM) the properties name; a problem with one of them is the diagnosis. */
function material(alias: string, props: ClientProps): { material: Material; problem?: TlsDiagnosis } {
  const field = (name: string) => fieldPath(['clusters', alias, 'properties', name]);
  const out: Material = {};
  const read = (name: string, what: string): string | TlsDiagnosis | undefined => {
    const inline = props[name.replace(/\.location$/, '.pem')];
    if (typeof inline === 'string') return inline;
    const path = props[name];
    // 'probe': librdkafka looks for the system's CA store; Node's default CAs stand in for it
    if (path === undefined || (name === 'ssl.ca.location' && path === 'probe')) return undefined;
    try {
      if (statSync(String(path)).isDirectory()) return undefined; // a CA directory (c_rehash layout): librdkafka's business
      return readFileSync(String(path), 'utf8');
    } catch (e) {
      return { cause: `cannot read the ${what} file ${String(path)} (${(e as NodeJS.ErrnoException).code ?? 'error'})`, field: field(name) };
    }
  };
  const values = [read('ssl.ca.location', 'CA certificate'), read('ssl.certificate.location', 'client certificate'), read('ssl.key.location', 'client key')];
  const problem = values.find((v): v is TlsDiagnosis => typeof v === 'object');
  if (problem !== undefined) return { material: out, problem };
  const [ca, cert, key] = values as (string | undefined)[];
  if (ca !== undefined) out.ca = ca;
  if (cert !== undefined) out.cert = cert;
  if (key !== undefined) out.key = key;
  if (props['ssl.key.password'] !== undefined) out.passphrase = String(props['ssl.key.password']);
  const store = props['ssl.keystore.location'];
  if (store !== undefined && out.cert === undefined) {
    try {
      out.pfx = readFileSync(String(store));
    } catch (e) {
      return {
        material: out,
        problem: {
          cause: `cannot read the key store file ${String(store)} (${(e as NodeJS.ErrnoException).code ?? 'error'})`,
          field: field('ssl.keystore.location'),
        },
      };
    }
    if (props['ssl.keystore.password'] !== undefined) out.passphrase = String(props['ssl.keystore.password']);
  }
  if (out.cert !== undefined) {
    let x: X509Certificate;
    try {
      x = new X509Certificate(out.cert);
    } catch {
      return { material: out, problem: { cause: 'the client certificate is not a PEM certificate', field: field('ssl.certificate.location') } };
    }
    const now = Date.now();
    if (Date.parse(x.validTo) < now) {
      return {
        material: out,
        problem: {
          cause: `the client certificate (${subjectOf(x)}) expired on ${new Date(x.validTo).toISOString()}; the broker refuses it`,
          field: field('ssl.certificate.location'),
        },
      };
    }
    if (Date.parse(x.validFrom) > now) {
      return {
        material: out,
        problem: {
          cause: `the client certificate (${subjectOf(x)}) is valid only from ${new Date(x.validFrom).toISOString()}`,
          field: field('ssl.certificate.location'),
        },
      };
    }
    if (out.key !== undefined) {
      try {
        if (!x.checkPrivateKey(createPrivateKey({ key: out.key, ...(out.passphrase !== undefined ? { passphrase: out.passphrase } : {}) }))) {
          return {
            material: out,
            problem: { cause: `the client key does not belong to the client certificate (${subjectOf(x)})`, field: field('ssl.key.location') },
          };
        }
      } catch {
        return {
          material: out,
          problem: { cause: 'the client key cannot be read (not a PEM private key, or ssl.key.password does not open it)', field: field('ssl.key.location') },
        };
      }
    }
  }
  return { material: out };
}

/** What one handshake with the first bootstrap broker showed; undefined when it went through (TLS is not the problem). */
function handshake(alias: string, bootstrap: string, props: ClientProps, m: Material, timeoutMs: number): Promise<TlsDiagnosis | undefined> {
  const field = (name: string) => fieldPath(['clusters', alias, 'properties', name]);
  const first = bootstrap.split(',')[0]!;
  const colon = first.lastIndexOf(':');
  const host = first.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  const port = Number(first.slice(colon + 1));
  const checkHost = String(props['ssl.endpoint.identification.algorithm'] ?? 'https').toLowerCase() !== 'none';
  const verify = String(props['enable.ssl.certificate.verification'] ?? 'true') !== 'false';
  const options: ConnectionOptions = {
    host,
    port,
    // verification is judged below from authorizationError, with the broker's certificate at hand
    rejectUnauthorized: false,
    ...(isIP(host) === 0 ? { servername: host } : {}),
    ...(m.ca !== undefined ? { ca: m.ca } : {}),
    ...(m.cert !== undefined ? { cert: m.cert } : {}),
    ...(m.key !== undefined ? { key: m.key } : {}),
    ...(m.passphrase !== undefined ? { passphrase: m.passphrase } : {}),
    ...(m.pfx !== undefined ? { pfx: m.pfx } : {}),
    ...(checkHost ? {} : { checkServerIdentity: () => undefined }),
  };
  return new Promise((res) => {
    let socket: TLSSocket | undefined;
    let secured = false;
    let peer: X509Certificate | undefined;
    const done = (d: TlsDiagnosis | undefined) => {
      clearTimeout(timer);
      socket?.destroy();
      res(d);
    };
    // After a TLS 1.3 handshake the broker judges the client certificate and answers with an alert or keeps the
    // connection open; a quiet second means it accepted.
    const timer = setTimeout(() => done(undefined), timeoutMs);
    try {
      socket = connect(options);
    } catch {
      return done(undefined); // Node cannot load the material; librdkafka's own message stands
    }
    socket.on('secureConnect', () => {
      secured = true;
      const s = socket!;
      const raw = s.getPeerX509Certificate();
      peer = raw;
      const code = s.authorized ? undefined : String(s.authorizationError);
      if (code !== undefined && verify) {
        if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
          return done({
            cause: `hostname mismatch: the broker's certificate is for ${names(raw)}, not for '${host}'; connect by a name the certificate carries (or have the certificate reissued with '${host}')`,
            field: fieldPath(['clusters', alias, 'bootstrap']),
          });
        }
        if (code === 'CERT_HAS_EXPIRED') {
          return done({
            cause: `the broker's certificate (${raw ? subjectOf(raw) : 'unknown'}) expired on ${raw ? new Date(raw.validTo).toISOString() : 'an earlier date'}`,
            field: fieldPath(['clusters', alias, 'bootstrap']),
          });
        }
        if (UNTRUSTED.has(code)) {
          const location = props['ssl.ca.location'];
          const where =
            location === 'probe'
              ? "the system's trusted CAs (ssl.ca.location: probe)"
              : location !== undefined
                ? `the CA in ${String(location)}`
                : props['ssl.ca.pem'] !== undefined
                  ? 'the CA in ssl.ca.pem'
                  : "the system's trusted CAs (no ssl.ca.location is set)";
          return done({
            cause: `certificate verify failed: the broker's certificate (${raw ? subjectOf(raw) : 'unknown'}, issued by ${raw ? issuerOf(raw) : 'unknown'}) is not signed by ${where}`,
            field: field('ssl.ca.location'),
          });
        }
        return done({
          cause: `certificate verify failed (${code}) for the broker's certificate (${raw ? subjectOf(raw) : 'unknown'})`,
          field: field('ssl.ca.location'),
        });
      }
      // read on, so an alert the broker sends about the client certificate arrives as an error
      s.resume();
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      const code = e.code ?? '';
      if (CLIENT_CERT_REFUSED.has(code)) {
        if (m.pfx !== undefined) {
          return done({
            cause: 'the broker refused the client certificate of the key store: it is not signed by a CA the broker trusts, expired, or revoked',
            field: field('ssl.keystore.location'),
          });
        }
        if (m.cert === undefined) {
          return done({
            cause: 'the broker requires a client certificate (mTLS) and none is configured; set ssl.certificate.location and ssl.key.location',
            field: field('ssl.certificate.location'),
          });
        }
        const x = new X509Certificate(m.cert);
        return done({
          cause: `the broker refused the client certificate (${subjectOf(x)}, issued by ${issuerOf(x)}): it is not signed by a CA the broker trusts, or the broker revoked it`,
          field: field('ssl.certificate.location'),
        });
      }
      if (!secured && (code === 'ECONNRESET' || code.startsWith('ERR_SSL_'))) {
        return done({
          cause: `the broker at ${first} did not complete a TLS handshake (${code}); is ${first} a TLS listener (security.protocol ${String(props['security.protocol'])})?`,
          field: field('security.protocol'),
        });
      }
      done(undefined);
    });
    socket.on('close', () => {
      if (secured && peer !== undefined) return; // closed after an accepted handshake: not TLS
      done(undefined);
    });
  });
}

/**
 * The cause of a failed connection to a TLS cluster, or undefined when TLS is not it (the handshake goes through,
 * or the broker cannot be reached at all). `bootstrap` is the cluster's bootstrap; the first broker is asked.
 */
export async function diagnoseTls(alias: string, bootstrap: string, props: ClientProps, timeoutMs = 3000): Promise<TlsDiagnosis | undefined> {
  if (!usesTls(props)) return undefined;
  const { material: m, problem } = material(alias, props);
  if (problem !== undefined) return problem;
  return handshake(alias, bootstrap, props, m, timeoutMs);
}
