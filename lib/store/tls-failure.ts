// Names a failed TLS handshake with etcd. grpc reports every one of them as "14 UNAVAILABLE: No
// connection established. Last error: …" with Node's or OpenSSL's text inside — the same code as
// an etcd that is down — so the only trace of the cause is that text; it is read here, once, at
// the store's boundary, and turned into what the operator must fix. Only failures that no retry
// cures are named (a certificate not trusted, a name mismatch, a refused client certificate, a
// non-TLS endpoint); a connection reset during the handshake stays "unavailable". Pure.

export type TlsProblem = 'serverName' | 'serverUntrusted' | 'serverExpired' | 'clientRefused' | 'notTls'

export interface TlsFailure { problem: TlsProblem, message: string }

/** The part of a grpc message that came from the socket: after "Last error:", without grpc's trailer. */
function socketError (grpcMessage: string): string {
  const at = grpcMessage.indexOf('Last error:')
  const tail = at < 0 ? grpcMessage : grpcMessage.slice(at + 'Last error:'.length)
  return tail.replace(/\s*\(\d{4}-\d\d-\d\dT[^)]*\)/, '').replace(/\.?\s*Resolution note:.*$/s, '').replace(/^\s*Error(?: \[[A-Z_]+\])?:\s*/, '').trim()
}

const CLIENT_FLAGS = '--etcd-cert/--etcd-key (PODMESH_ETCD_CERT/PODMESH_ETCD_KEY)'
const CA_FLAG = '--etcd-ca (PODMESH_ETCD_CA; without it, the system CAs)'

/** What went wrong in a TLS handshake with etcd, or undefined when the message is not one of those. */
export function describeTlsFailure (grpcMessage: string): TlsFailure | undefined {
  const detail = socketError(grpcMessage)
  if (/ERR_TLS_CERT_ALTNAME_INVALID|does not match certificate's altnames/i.test(grpcMessage)) {
    return {
      problem: 'serverName',
      message: `TLS: etcd's server certificate does not name the host dialed (${detail}); ` +
        'its subjectAltName must hold the endpoint\'s IP address or DNS name as written in --etcd-endpoints'
    }
  }
  if (/certificate has expired|certificate is not yet valid/i.test(grpcMessage)) {
    return { problem: 'serverExpired', message: `TLS: etcd's server certificate is outside its validity period (${detail})` }
  }
  if (/unable to verify the first certificate|unable to get local issuer certificate|self[- ]signed certificate|certificate signature failure|unable to get issuer certificate/i.test(grpcMessage)) {
    return {
      problem: 'serverUntrusted',
      message: `TLS: certificate verify failed: etcd's server certificate is not signed by a CA in ${CA_FLAG} (${detail})`
    }
  }
  const alert = /alert (bad certificate|certificate required|unknown ca|certificate unknown|certificate expired|certificate revoked|unsupported certificate|access denied)/i.exec(grpcMessage)
  if (alert !== null) {
    return {
      problem: 'clientRefused',
      message: `TLS: etcd refused the client certificate (alert "${(alert[1] ?? '').toLowerCase()}"): none was given, or it is not signed by a CA ` +
        `etcd trusts (etcd's --trusted-ca-file), or it has expired; set ${CLIENT_FLAGS}`
    }
  }
  if (/wrong version number|packet length too long|unknown protocol|http_request/i.test(grpcMessage)) {
    return { problem: 'notTls', message: `TLS: the etcd endpoint does not answer TLS (${detail}); is it plain http://?` }
  }
  return undefined
}
