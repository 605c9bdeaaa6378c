// The shape of a flag that podmeshd and podmeshctl share: one declaration gives both CLIs the
// name, the environment variable, the help text and the default. Pure data.

export interface SharedFlag {
  /** Without the leading "--". */
  flag: string
  /** The environment variable read when the flag is absent. */
  env: string
  /** 'list': comma-separated text (or a JSON array in podmeshd's --config file). */
  kind: 'string' | 'list'
  /** The value's placeholder in usage lines. */
  arg: string
  help: string
  /** As shown in --help. */
  default?: string
  /** Never printed in logs, dumps or error messages. */
  secret?: boolean
}
