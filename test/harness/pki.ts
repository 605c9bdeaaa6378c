// A throwaway PKI for TLS tests, made with openssl in a directory the caller owns: CAs, and
// certificates they sign for a server (with the subjectAltNames given) or a client. EC P-256
// keys, valid one day: nothing here is meant to outlive the run.
import { execFile } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']

export interface Ca { name: string, certFile: string, keyFile: string }
export interface Cert { certFile: string, keyFile: string }

/** A self-signed CA `<name>.pem`/`<name>.key` in dir. */
export async function makeCa (dir: string, name: string): Promise<Ca> {
  const certFile = join(dir, `${name}.pem`); const keyFile = join(dir, `${name}.key`)
  await run('openssl', ['req', '-x509', ...EC, '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', `/CN=podmesh-test-${name}`])
  return { name, certFile, keyFile }
}

/**
 * A certificate `<name>.pem`/`<name>.key` signed by `ca`: a server's (`san` like
 * ['IP:192.0.2.1', 'DNS:etcd.example']) or a client's (CN `cn`, which etcd may map to a user).
 */
export async function issueCert (dir: string, ca: Ca, name: string, o: { use: 'server', san: string[] } | { use: 'client', cn: string }): Promise<Cert> {
  const certFile = join(dir, `${name}.pem`); const keyFile = join(dir, `${name}.key`)
  const csr = join(dir, `${name}.csr`); const ext = join(dir, `${name}.ext`)
  await run('openssl', ['req', ...EC, '-keyout', keyFile, '-out', csr, '-subj', `/CN=${o.use === 'client' ? o.cn : name}`])
  await writeFile(ext, o.use === 'server'
    ? `subjectAltName=${o.san.join(',')}\nextendedKeyUsage=serverAuth\n`
    : 'extendedKeyUsage=clientAuth\n')
  await run('openssl', ['x509', '-req', '-in', csr, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-CAcreateserial', '-out', certFile, '-days', '1', '-extfile', ext])
  return { certFile, keyFile }
}
