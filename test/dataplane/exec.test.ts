// Children never inherit podmesh's secrets: real processes print the environment they got.

import t from 'tap'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { run, runDaemonizing } from '../../lib/dataplane/exec'

const SECRETS = { PODMESH_ETCD_PASSWORD: 'hunter2-env', PODMESH_ETCD_USERNAME: 'podmesh-user-env', ETCDCTL_PASSWORD: 'hunter3-env', SOME_API_TOKEN: 'tok' }

t.test('children get no podmesh settings and no secret-looking variables', async t => {
  const saved = { ...process.env }
  Object.assign(process.env, SECRETS)
  t.teardown(() => { for (const k of Object.keys(SECRETS)) { if (saved[k] === undefined) delete process.env[k]; else process.env[k] = saved[k] } })
  const dir = await mkdtemp(join(tmpdir(), 'podmesh-exec-'))
  t.teardown(async () => await rm(dir, { recursive: true, force: true }))

  const { stdout } = await run('env', [])
  // A daemonizing child (the wireguard-go path), given an explicit env as startWireguardGo does.
  const file = join(dir, 'env')
  await runDaemonizing('sh', ['-c', `env > ${file}`], { env: { ...process.env } })
  const daemonized = await readFile(file, 'utf8')

  for (const [name, got] of [['run', stdout], ['runDaemonizing', daemonized]] as const) {
    t.match(got, /^PATH=/m, `${name}: the rest of the environment is passed`)
    for (const [k, v] of Object.entries(SECRETS)) {
      t.notMatch(got, new RegExp(`^${k}=`, 'm'), `${name}: no ${k}`)
      t.notMatch(got, v, `${name}: no value of ${k}`)
    }
  }
})
