export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

/** Options of the logging subscriber (structured-clonable). */
export interface LoggingOptions {
  /** Lifecycle lines are `debug`; failures and timeouts `warn`. Default `info`. */
  readonly level?: LogLevel;
  /** File descriptor written to (JSON lines, pino format). Default 2 (stderr). */
  readonly fd?: number;
}
