// What a node's service rules are made of, held in memory and kept current from etcd (issue #11):
// every service under services/ and every pod under pods/, each value checked where read. load()
// reads both folders at one revision; the watch (service-watch.ts) then delivers each change
// from the next revision on, and apply() folds it in — so a change costs what it changes, not a
// re-read of 10,000 services and their pods. A bad value is remembered with why (and forgets the
// good value the key held), until the key is fixed or deleted.
import type { ServiceSpec, PodRecord } from '../service/types'
import type { StoreClient } from './client'
import type { PrefixEvent } from './prefix-watch'
import { podReader } from './pods'
import { serviceReader } from './service-read'
import { podsPrefix, servicesPrefix } from './service-keys'
import { currentRevision } from './service-watch'
import { listValidEntries, parseValid, type ValueReader } from './value-list'

export class ServiceInputs {
  private services = new Map<string, ServiceSpec>()
  private pods = new Map<string, PodRecord>()
  private bad = new Map<string, string>()
  private readonly servicesAt: string
  private readonly podsAt: string
  private readonly serviceReader: ValueReader<string, ServiceSpec>
  private readonly podReader: ValueReader<{ node: string, id: string }, PodRecord>

  constructor (private readonly client: StoreClient, private readonly prefix: string) {
    this.servicesAt = servicesPrefix(prefix)
    this.podsAt = podsPrefix(prefix)
    this.serviceReader = serviceReader(prefix)
    this.podReader = podReader(prefix)
  }

  /** Reads services/ and pods/ whole at one revision, replacing what was held; returns that revision (watch from the next). */
  async load (): Promise<bigint> {
    const revision = await currentRevision(this.client, this.prefix)
    const bad = new Map<string, string>()
    const onBad = (key: string, e: Error): void => { bad.set(key, e.message) }
    const [services, pods] = await Promise.all([
      listValidEntries(this.client, this.servicesAt, this.serviceReader, onBad, revision.toString()),
      listValidEntries(this.client, this.podsAt, this.podReader, onBad, revision.toString())
    ])
    this.services = new Map(services)
    this.pods = new Map(pods)
    this.bad = bad
    return revision
  }

  /** Folds a watch batch in; events of keys outside services/ and pods/ are not ours and are ignored. */
  apply (events: readonly PrefixEvent[]): void {
    for (const e of events) {
      const held = e.key.startsWith(this.servicesAt) ? this.services : e.key.startsWith(this.podsAt) ? this.pods : undefined
      if (held === undefined) continue
      held.delete(e.key)
      this.bad.delete(e.key)
      if (e.type === 'delete') continue
      const onBad = (key: string, err: Error): void => { this.bad.set(key, err.message) }
      if (held === this.services) {
        const v = parseValid(this.serviceReader, e.key, e.value, onBad)
        if (v !== undefined) this.services.set(e.key, v)
      } else {
        const v = parseValid(this.podReader, e.key, e.value, onBad)
        if (v !== undefined) this.pods.set(e.key, v)
      }
    }
  }

  // In no particular order: the ruleset builder and resolveEndpoints order what they read themselves.
  /** The valid services. */
  serviceList (): ServiceSpec[] { return [...this.services.values()] }
  /** The valid pods. */
  podList (): PodRecord[] { return [...this.pods.values()] }
  /** Keys whose value was refused, with why. */
  skipped (): ReadonlyMap<string, string> { return this.bad }
}
