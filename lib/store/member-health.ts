// Which etcd members one client avoids for a while. A member that let a call run into its
// deadline, refused it for want of a leader, or left a watch stream silent is *suspect* for a
// quarantine (10 s by default). etcd3's connection pool asks each member's fault policy before it
// uses the member; the policy built here declines a suspect member, and the pool then tries the
// next one, so the retry of a call, a reopened watch and the next lease keepalive go to a member
// that answers. A partitioned or frozen member keeps its TCP connections open and answers
// nothing: without this, each new call has a one-in-N chance of landing on it again and waiting
// out its deadline. When every member is suspect none is avoided: trying them all is then the
// least bad choice (a single-member etcd that restarts is the common case).
import { EventEmitter } from 'node:events'
import * as etcd3 from 'etcd3'

type HostPolicy = NonNullable<NonNullable<etcd3.IOptions['faultHandling']>['host']>

/** The pool's name for a member: its endpoint without the scheme ("10.0.0.1:2379"). */
export const memberName = (endpoint: string): string => endpoint.replace(/^https?:\/\//, '')

/** Thrown by the policy of an avoided member; the pool moves on to the next member. */
export class MemberAvoidedError extends Error {
  constructor (readonly member: string) {
    super(`etcd member ${member} is avoided for now (it did not answer in time)`)
    this.name = 'MemberAvoidedError'
  }
}

/** Errors that say "this member cannot serve now", as opposed to "your request is wrong". */
export function isMemberSilence (e: unknown): boolean {
  if (e instanceof etcd3.GRPCDeadlineExceededError || e instanceof etcd3.GRPCUnavailableError) return true
  const msg = e instanceof Error ? e.message : ''
  return /no leader|request timed out|leader changed|too many requests|not capable/i.test(msg)
}

export interface MemberSuspicion { member: string, why: string, untilMs: number }

export interface MemberHealthEvents {
  suspect: [MemberSuspicion]
}

export class MemberHealth extends EventEmitter<MemberHealthEvents> {
  private readonly suspectUntil = new Map<string, number>()
  readonly members: readonly string[]

  constructor (endpoints: readonly string[], readonly quarantineMs = 30_000, private readonly now: () => number = Date.now) {
    super()
    this.members = endpoints.map(memberName)
  }

  /** Avoid `member` (an endpoint or a pool name) for the quarantine. */
  suspect (member: string, why: string): void {
    const name = memberName(member)
    if (!this.members.includes(name)) return
    const untilMs = this.now() + this.quarantineMs
    this.suspectUntil.set(name, untilMs)
    this.emit('suspect', { member: name, why, untilMs })
  }

  isSuspect (member: string): boolean {
    const until = this.suspectUntil.get(memberName(member))
    return until !== undefined && until > this.now()
  }

  /** Suspect, and some other member is not: send the call elsewhere. */
  isAvoided (member: string): boolean {
    const name = memberName(member)
    return this.isSuspect(name) && this.members.some(m => m !== name && !this.isSuspect(m))
  }

  /** etcd3's per-host fault policy for `endpoint`. */
  policy (endpoint: string): ReturnType<HostPolicy> {
    const name = memberName(endpoint)
    return {
      execute: async (fn: (ctx: { signal: AbortSignal }) => unknown) => {
        if (this.isAvoided(name)) throw new MemberAvoidedError(name)
        try {
          return await fn({ signal: new AbortController().signal })
        } catch (e) {
          if (isMemberSilence(e)) this.suspect(name, e instanceof Error ? e.message : String(e))
          throw e
        }
      }
    } as unknown as ReturnType<HostPolicy>
  }
}
