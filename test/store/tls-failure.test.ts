// Naming a failed TLS handshake from grpc's text: the messages below are what grpc-js and Node
// printed against a real etcd (test/store/client-tls.test.ts and test/lab/etcd-tls.test.ts
// produce them live); what is not a TLS setup error must stay unnamed, so it is retried.
import t from 'tap'
import { describeTlsFailure, type TlsProblem } from '../../lib/store/tls-failure'

const grpc = (last: string): string => `14 UNAVAILABLE: No connection established. Last error: ${last} (2026-12-01T10:31:56.532Z). Resolution note: `

const cases: Array<{ name: string, message: string, problem: TlsProblem | undefined, says?: RegExp }> = [
  {
    name: 'no client certificate (or one from another CA): etcd answers with a TLS alert',
    message: grpc('80FCA9DE377F0000:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number 42\n'),
    problem: 'clientRefused',
    says: /etcd refused the client certificate \(alert "bad certificate"\).*--etcd-cert\/--etcd-key/
  },
  {
    name: 'TLS 1.3 "certificate required" alert',
    message: grpc('error:0A00045C:SSL routines::tlsv13 alert certificate required:SSL alert number 116'),
    problem: 'clientRefused',
    says: /alert "certificate required"/
  },
  {
    name: 'server certificate from a CA we do not trust',
    message: grpc('Error: unable to verify the first certificate'),
    problem: 'serverUntrusted',
    says: /^TLS: certificate verify failed: etcd's server certificate is not signed by a CA in --etcd-ca .*\(unable to verify the first certificate\)$/
  },
  {
    name: 'self-signed server certificate',
    message: grpc('Error: self-signed certificate'),
    problem: 'serverUntrusted',
    says: /certificate verify failed/
  },
  {
    name: 'server certificate for another IP',
    message: grpc("Error [ERR_TLS_CERT_ALTNAME_INVALID]: Hostname/IP does not match certificate's altnames: IP: 127.0.0.1 is not in the cert's list: 192.0.2.99"),
    problem: 'serverName',
    says: /^TLS: etcd's server certificate does not name the host dialed \(Hostname\/IP does not match certificate's altnames: IP: 127\.0\.0\.1 is not in the cert's list: 192\.0\.2\.99\); its subjectAltName must hold/
  },
  {
    name: 'server certificate for another DNS name',
    message: grpc("Error [ERR_TLS_CERT_ALTNAME_INVALID]: Hostname/IP does not match certificate's altnames: Host: localhost. is not cert's CN: server"),
    problem: 'serverName',
    says: /Host: localhost\. is not cert's CN: server/
  },
  { name: 'expired server certificate', message: grpc('Error: certificate has expired'), problem: 'serverExpired', says: /validity period/ },
  { name: 'TLS spoken to a plain-http etcd', message: grpc('error:0A00010B:SSL routines::wrong version number'), problem: 'notTls', says: /does not answer TLS/ },
  // Not TLS setup errors: an etcd that is down or restarting is worth waiting for.
  { name: 'connection refused', message: grpc('connect ECONNREFUSED 192.0.2.1:2379'), problem: undefined },
  { name: 'reset during the handshake', message: grpc('Client network socket disconnected before secure TLS connection was established'), problem: undefined },
  { name: 'deadline', message: '4 DEADLINE_EXCEEDED: Deadline exceeded after 5.001s', problem: undefined }
]

for (const c of cases) {
  t.test(c.name, async t => {
    const got = describeTlsFailure(c.message)
    t.equal(got?.problem, c.problem)
    if (c.says !== undefined) t.match(got?.message, c.says)
    if (got !== undefined) t.notMatch(got.message, /Resolution note|2026-12-01T/, 'grpc\'s trailer is not repeated')
  })
}
