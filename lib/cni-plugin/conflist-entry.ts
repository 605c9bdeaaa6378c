// The podmesh plugin's entry in the conflist podmeshd writes: last, after the plugins that give
// the pod its interface and addresses, so its prevResult carries them. Pure.
import { DEFAULT_POD_DIR } from './net-config'

export interface PodmeshPluginConf {
  type: 'podmesh'
  /** The spool podmeshd reads (the daemon's own setting, so both sides name one dir). */
  podDir: string
}

export const podmeshPluginEntry = (podDir: string = DEFAULT_POD_DIR): PodmeshPluginConf => ({ type: 'podmesh', podDir })
