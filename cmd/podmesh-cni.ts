#!/usr/bin/env node
// The podmesh CNI plugin (`"type": "podmesh"`, installed as /usr/lib/cni/podmesh): reads the CNI
// environment and the network config on stdin, reports the pod to the node's spool (which
// podmeshd publishes), prints the result or the CNI error object. Exit 0 on success, 1 on error.
import { readFileSync } from 'node:fs'
import { runPlugin } from '../lib/cni-plugin/command'
import { readPodReport, removePodReport, writePodReport } from '../lib/dataplane/pod-spool'

function stdin (): string {
  // VERSION needs no config: not waiting on a stdin nobody closes (a runtime's probe, a shell).
  if (process.env.CNI_COMMAND === 'VERSION') return ''
  try {
    return readFileSync(0, 'utf8')
  } catch {
    return '' // no stdin (VERSION by hand): the config checks say what is missing
  }
}

const out = runPlugin(process.env, stdin(), { write: writePodReport, remove: removePodReport, read: readPodReport })
if (out.stdout !== '') process.stdout.write(out.stdout + '\n')
process.exitCode = out.exitCode
