// `podmeshctl config show`: print the cluster's network config as stored (validated).
import type { StoreClient } from '../store/client'
import { readConfig } from '../store/config-store'
import { type OutputFormat, flatten, formatJson, formatTable } from './output'

export const configShowHelp = 'podmeshctl config show   print the network config (-o json|table)\n'

export async function runConfigShow (client: StoreClient, prefix: string, format: OutputFormat): Promise<string> {
  const config = await readConfig(client, prefix)
  return format === 'json' ? formatJson(config) : formatTable([['FIELD', 'VALUE'], ...flatten(config)])
}
