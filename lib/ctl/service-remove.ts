// `podmeshctl service remove NAME`: the service and the cluster IPs and node ports it holds go
// in one etcd transaction; every node drops its rules on the next pass.
import type { StoreClient } from '../store/client'
import { removeService } from '../store/services'
import { type OutputFormat, formatJson, formatTable } from './output'

export const serviceRemoveHelp = 'podmeshctl service remove NAME   delete a service, freeing its cluster IPs and node ports\n'

export async function runServiceRemove (client: StoreClient, prefix: string, name: string, format: OutputFormat): Promise<string> {
  const removed = await removeService(client, prefix, name)
  if (format === 'json') return formatJson(removed)
  return formatTable([['SERVICE', 'RECORD', 'FREED'], [name, removed.service ? 'deleted' : '-', removed.claims.join(',') || '-']])
}
