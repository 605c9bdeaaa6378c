// The last desired state, kept while its inputs stay the same. Pure (no I/O, no clock).
// desiredState is a function of (config, node records, this node's identity, known path MTUs)
// alone — never of the kernel — so a pass whose inputs are the very objects of the previous pass
// (a resync with no etcd change: the watcher hands out a new map only when a record changes) gets
// the previous result back instead of re-deriving thousands of peers and routes. Drift repair is
// untouched: it comes from reading the kernel, and the kernel is still read on every resync.

import type { NetworkConfig } from '../config/network'
import type { NodeRecord } from '../store/node-record'
import { desiredState, type Desired, type LocalIdentity } from './desired'

interface Inputs {
  config: NetworkConfig
  nodes: ReadonlyMap<string, NodeRecord>
  self: LocalIdentity
  pathMtus: ReadonlyMap<string, number>
}

export class DesiredMemo {
  private last: { inputs: Inputs, desired: Desired } | undefined

  /** desiredState(config, nodes, { ...self, pathMtus }), recomputed only when an input is another object. */
  of (inputs: Inputs): Desired {
    const l = this.last
    if (l !== undefined && l.inputs.config === inputs.config && l.inputs.nodes === inputs.nodes &&
      l.inputs.self === inputs.self && l.inputs.pathMtus === inputs.pathMtus) return l.desired
    const desired = desiredState(inputs.config, inputs.nodes.values(), { ...inputs.self, pathMtus: inputs.pathMtus })
    this.last = { inputs, desired }
    return desired
  }
}
