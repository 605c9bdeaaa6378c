#!/usr/bin/env node
// podmeshd: parse options, wire one logger, run the daemon, stop on SIGTERM/SIGINT.
// Exit codes: 0 stopped cleanly, 1 failed, 2 bad options.

import { readFileSync } from 'node:fs'
import pino from 'pino'
import { parseDaemonOptions, helpText, redactOptions, isOptionsError } from '../lib/config/daemon-options'
import { Daemon } from '../lib/daemon/daemon'
import { notifySystemd } from '../lib/daemon/systemd-notify'

async function main (): Promise<number> {
  let opts
  try {
    opts = parseDaemonOptions({ argv: process.argv.slice(2), env: process.env, readFile: p => readFileSync(p, 'utf8') })
  } catch (e) {
    if (isOptionsError(e)) { process.stderr.write(`podmeshd: ${e.message}\n`); return 2 }
    throw e
  }
  if (opts === 'help') { process.stdout.write(helpText()); return 0 }

  const log = pino({
    level: opts.logLevel,
    base: { component: 'podmeshd', node: opts.nodeName },
    redact: { paths: ['*.etcdPassword', '*.etcdKey', '*.privateKey', 'etcdPassword', 'privateKey'], censor: '[redacted]' }
  })
  log.info({ options: redactOptions(opts) }, 'starting')
  const daemon = new Daemon(opts, log)
  let stopping: Promise<void> | undefined
  const stop = (signal: string): void => {
    if (stopping !== undefined) return
    log.info({ signal, leave: opts.leave }, 'stopping')
    void notifySystemd('STOPPING=1')
    stopping = daemon.stop().then(() => { log.info('stopped'); process.exit(0) }, e => { log.error({ err: e }, 'stop failed'); process.exit(1) })
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  daemon.once('ready', () => { void notifySystemd('READY=1') })
  try {
    await daemon.start()
  } catch (e) {
    log.fatal({ err: e }, 'start failed')
    await daemon.stop({ leave: false }).catch(() => undefined)
    return 1
  }
  return -1 // keep running until a signal
}

main().then(code => { if (code >= 0) process.exit(code) }, e => {
  process.stderr.write(`podmeshd: ${(e as Error).stack ?? String(e)}\n`)
  process.exit(1)
})
