// The etcd connection: an etcd3 client built from EtcdOptions (TLS files read here, user/password
// auth), and StoreError, the one error type the store layer throws for etcd failures — etcd3's
// errors translated at this boundary, `cause` kept.
import { readFile } from 'node:fs/promises'
import * as etcd3 from 'etcd3'
import type { EtcdOptions } from '../config/etcd-options'
import { MemberHealth } from './member-health'
import { describeTlsFailure } from './tls-failure'

export type StoreClient = etcd3.Etcd3

export type StoreErrorKind =
  | 'unavailable' // etcd unreachable or not answering in time
  | 'auth' // wrong user/password or expired token
  | 'permission' // authenticated but not allowed
  | 'leaseLost' // the lease is gone (expired or revoked)
  | 'tls' // TLS files unreadable, or a handshake no retry cures (tls-failure.ts): not trusted, wrong name, client certificate refused
  | 'closed' // the client was closed
  | 'other'

export class StoreError extends Error {
  readonly code = 'ESTORE'
  readonly kind: StoreErrorKind
  /** What we were doing ("range nodes/", "txn claim node-1"). */
  readonly op: string
  constructor (kind: StoreErrorKind, op: string, message: string, options?: { cause?: unknown }) {
    super(`etcd ${op}: ${message}`, options)
    this.name = 'StoreError'
    this.kind = kind
    this.op = op
  }
}
export const isStoreError = (e: unknown): e is StoreError => e instanceof StoreError

/** Translates whatever etcd3/grpc threw into a StoreError (passes StoreErrors through). */
export function storeError (op: string, e: unknown): StoreError {
  if (e instanceof StoreError) return e
  const msg = e instanceof Error ? e.message : String(e)
  let kind: StoreErrorKind = 'other'
  if (e instanceof etcd3.EtcdLeaseInvalidError) kind = 'leaseLost'
  else if (e instanceof etcd3.EtcdAuthenticationFailedError || e instanceof etcd3.EtcdInvalidAuthTokenError ||
    e instanceof etcd3.GRPCUnauthenticatedError) kind = 'auth'
  else if (e instanceof etcd3.EtcdPermissionDeniedError) kind = 'permission'
  else if (e instanceof etcd3.ClientClosedError) kind = 'closed'
  else if (e instanceof etcd3.GRPCUnavailableError || e instanceof etcd3.GRPCDeadlineExceededError ||
    e instanceof etcd3.GRPCCancelledError || e instanceof etcd3.EtcdWatchStreamEnded ||
    (e instanceof Error && etcd3.isRecoverableError(e))) kind = 'unavailable'
  // grpc calls a refused handshake UNAVAILABLE, like an etcd that is down; it is a setup error.
  const tls = kind === 'unavailable' || kind === 'other' ? describeTlsFailure(msg) : undefined
  if (tls !== undefined) return new StoreError('tls', op, tls.message, { cause: e })
  return new StoreError(kind, op, msg, { cause: e })
}

/** Runs one etcd call, translating its failure. */
export async function storeCall<T> (op: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (e) {
    throw storeError(op, e)
  }
}

export interface ConnectOptions {
  /** Deadline of each unary call; streams (watch, keepalive) have none. Default 5000 ms. */
  callTimeoutMs?: number
  /** How long a member that did not answer is avoided. Default 30 s. */
  quarantineMs?: number
}

/**
 * Builds the etcd3 options from EtcdOptions (reads the TLS files). etcd3's default per-host
 * circuit breaker refuses every call for 5 s after three failures, which turns a one-second etcd
 * restart into seconds of extra outage; podmesh retries at a higher level (watch backoff, lease
 * re-acquire), so each member's policy is `health`'s: run the call, and avoid only a member that
 * has just shown itself silent while another one may answer (member-health.ts).
 */
async function etcdClientOptions (o: EtcdOptions, c: ConnectOptions, health: MemberHealth): Promise<etcd3.IOptions> {
  const timeout = c.callTimeoutMs ?? 5000
  const opts: etcd3.IOptions = {
    hosts: o.endpoints,
    dialTimeout: timeout,
    defaultCallOptions: ctx => (ctx.isStream ? {} : { deadline: Date.now() + timeout }),
    faultHandling: { host: endpoint => health.policy(endpoint) },
    grpcOptions: {
      // Notice a dead etcd under an idle watch stream; etcd's default minimum ping interval is 5 s.
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      // grpc's own reconnect backoff grows to 2 minutes; podmesh wants etcd back within seconds.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 5_000,
      // A full list of a large cluster's records exceeds grpc's 4 MiB default.
      'grpc.max_receive_message_length': 256 * 1024 * 1024
    }
  }
  if (o.caFile !== undefined || o.certFile !== undefined) {
    const read = async (what: string, file: string | undefined): Promise<Buffer | undefined> => {
      if (file === undefined) return undefined
      try {
        return await readFile(file)
      } catch (e) {
        throw new StoreError('tls', 'connect', `cannot read ${what} ${file}: ${(e as Error).message}`, { cause: e })
      }
    }
    const ca = await read('CA file', o.caFile)
    const cert = await read('client certificate', o.certFile)
    const key = await read('client key', o.keyFile)
    // etcd3's type wants a root certificate; grpc treats an absent one as "use the system roots".
    opts.credentials = { rootCertificate: ca as Buffer }
    if (cert !== undefined) opts.credentials.certChain = cert
    if (key !== undefined) opts.credentials.privateKey = key
  }
  if (o.username !== undefined && o.password !== undefined) {
    opts.auth = { username: o.username, password: o.password }
  }
  return opts
}

const healthOf = new WeakMap<StoreClient, MemberHealth>()

/** Connects to etcd; the client is lazy, so the first call reveals an unreachable etcd. */
export async function connectStore (o: EtcdOptions, c: ConnectOptions = {}): Promise<StoreClient> {
  const health = new MemberHealth(o.endpoints, c.quarantineMs)
  const client = new etcd3.Etcd3(await etcdClientOptions(o, c, health))
  healthOf.set(client, health)
  return client
}

/** Which of the client's etcd members it avoids now (undefined for a client not made here). */
export const memberHealth = (client: StoreClient): MemberHealth | undefined => healthOf.get(client)

interface ResettableHost { resetAllServices: () => void }

/**
 * Drops every connection of the client to etcd; the next call dials afresh. For when the
 * node's source address vanished: a TCP connection from it is dead, but nothing tells the
 * socket for minutes (grpc's keepalive notices after 15 s). etcd3 offers no public way, so
 * this reaches its connection pool; returns false (and does nothing) if that shape changed.
 */
export function dropConnections (client: StoreClient): boolean {
  const hosts = (client as unknown as { pool?: { hosts?: unknown } }).pool?.hosts
  if (!Array.isArray(hosts) || !hosts.every((h): h is ResettableHost => typeof (h as Partial<ResettableHost>)?.resetAllServices === 'function')) return false
  for (const h of hosts) h.resetAllServices()
  return true
}
