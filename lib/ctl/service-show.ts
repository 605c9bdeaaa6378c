// `podmeshctl service show NAME`: one service as stored, field by field (or JSON).
import type { StoreClient } from '../store/client'
import { getService } from '../store/service-read'
import { type OutputFormat, flatten, formatJson, formatTable } from './output'
import { portText } from './service-list'
import { selectorText } from '../service/selector'

export const serviceShowHelp = 'podmeshctl service show NAME   one service as stored\n'

export async function runServiceShow (client: StoreClient, prefix: string, name: string, format: OutputFormat): Promise<string> {
  const s = await getService(client, prefix, name)
  if (format === 'json') return formatJson(s)
  const { ports, selector, ...rest } = s
  return formatTable([['FIELD', 'VALUE'], ...flatten(rest), ['ports', ports.map(portText).join(',')], ['selector', selectorText(selector)]])
}
