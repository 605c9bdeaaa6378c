#!/usr/bin/env node
// podmeshd: parse options, wire one logger, run the daemon, stop on SIGTERM/SIGINT.
// Exit statuses (lib/daemon/exit-status.ts, docs/operations.md): 0 stopped cleanly, 1 failed,
// 2 bad options, 3 this node's key or MAC is another node's, 4 this node's subnet was taken.

import { readFileSync } from 'node:fs'
import { parseDaemonOptions, helpText, redactOptions, isOptionsError } from '../lib/config/daemon-options'
import { Daemon } from '../lib/daemon/daemon'
import { createLogger } from '../lib/daemon/logger'
import { notifySystemd } from '../lib/daemon/systemd-notify'
import { Watchdog, watchdogPeriodMs } from '../lib/daemon/watchdog'
import { STALL_INTERVALS } from '../lib/daemon/loop-health'
import { EXIT_STATUS, type ExitStatus } from '../lib/daemon/exit-status'
import { isIdentityClaimedError } from '../lib/daemon/identity-claim'

async function main (): Promise<number> {
  let opts
  try {
    opts = parseDaemonOptions({ argv: process.argv.slice(2), env: process.env, readFile: p => readFileSync(p, 'utf8') })
  } catch (e) {
    if (isOptionsError(e)) { process.stderr.write(`podmeshd: ${e.message}\n`); return EXIT_STATUS.badOptions }
    throw e
  }
  if (opts === 'help') { process.stdout.write(helpText()); return 0 }

  const log = createLogger({ level: opts.logLevel, nodeName: opts.nodeName })
  log.info({ options: redactOptions(opts) }, 'starting')
  const daemon = new Daemon(opts, log)
  let stopping: Promise<void> | undefined
  // A fatal stop never decommissions, even with --leave: the node did not choose to go.
  const stop = (why: string, status: number = EXIT_STATUS.ok): void => {
    if (stopping !== undefined) return
    const leave = opts.leave && status === EXIT_STATUS.ok
    log.info({ why, leave, status }, 'stopping')
    void notifySystemd('STOPPING=1')
    stopping = daemon.stop({ leave }).then(() => { log.info('stopped'); process.exit(status) }, e => { log.error({ err: e }, 'stop failed'); process.exit(EXIT_STATUS.failed) })
  }
  // The message also goes to stderr: it says what to do (e.g. which state-dir files to remove).
  const fatal = (error: Error, status: ExitStatus): void => {
    if (stopping !== undefined) return
    log.fatal({ err: error, status }, 'cannot go on')
    process.stderr.write(`podmeshd: ${error.message}\n`)
    stop('fatal', status)
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  daemon.on('fatal', ({ status, error }) => fatal(error, status))
  daemon.once('ready', () => { void notifySystemd('READY=1') })
  const watchdogMs = watchdogPeriodMs(process.env, process.pid)
  if (watchdogMs !== undefined) {
    if (watchdogMs <= STALL_INTERVALS * opts.resyncIntervalMs) log.warn({ watchdogMs, resyncIntervalMs: opts.resyncIntervalMs }, `WatchdogSec should exceed ${STALL_INTERVALS}x the resync interval, or a slow but live loop gets restarted`)
    const watchdog = new Watchdog(watchdogMs, () => { void notifySystemd('WATCHDOG=1') })
    daemon.on('passEnded', () => watchdog.passEnded(Date.now()))
  }
  try {
    await daemon.start()
  } catch (e) {
    // Refused: the stop (already under way if the refusal came from the watch) exits 3.
    if (isIdentityClaimedError(e)) { fatal(e, EXIT_STATUS.identityTaken); return -1 }
    log.fatal({ err: e }, 'start failed')
    process.stderr.write(`podmeshd: start failed: ${(e as Error).message}\n`)
    await daemon.stop({ leave: false }).catch(() => undefined)
    return EXIT_STATUS.failed
  }
  return -1 // keep running until a signal
}

main().then(code => { if (code >= 0) process.exit(code) }, e => {
  process.stderr.write(`podmeshd: ${(e as Error).stack ?? String(e)}\n`)
  process.exit(1)
})
