/**
 * Rules shared by strait's HTTP servers (the controller's REST API, the metrics endpoint): what counts as a loopback
 * bind, and which `Host` headers a loopback-bound server answers.
 *
 * A server on 127.0.0.1 is reachable from every web page the operator's browser opens: a page on attacker.example can
 * re-point its own name at 127.0.0.1 (DNS rebinding) and then talk to the server as a same-origin page. The browser
 * still sends `Host: attacker.example`, so a loopback server that answers only loopback names is out of its reach.
 */
import { isIPv4, isIPv6 } from 'node:net';

function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** Whether binding to `host` keeps a server reachable from this machine only. */
export function isLoopbackHost(host: string): boolean {
  const h = unbracket(host.trim().toLowerCase());
  if (h === 'localhost') return true;
  if (isIPv4(h)) return h.startsWith('127.');
  if (isIPv6(h)) return h === '::1' || h === '0:0:0:0:0:0:0:1' || /^::ffff:127\./.test(h);
  return false;
}

/**
 * Whether a loopback-bound server answers a request with this `Host` header: 127.0.0.1, localhost, [::1] or the
 * configured bind host, each with or without a port (any port: a forwarded port changes it, and a port is no proof of
 * anything a DNS-rebinding page could not also send).
 */
export function hostHeaderAllowed(header: string | undefined, boundHost: string): boolean {
  if (header === undefined || header === '') return false;
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::([0-9]{1,5}))?$/.exec(header.trim());
  if (!m) return false;
  const name = unbracket(m[1]!.toLowerCase());
  const allowed = new Set(['127.0.0.1', 'localhost', '::1', unbracket(boundHost.toLowerCase())]);
  return allowed.has(name);
}
