// One pino logger for the worker process; Temporal's own logs are routed through it.
import pino, { type Logger } from 'pino';

export function createLogger(name: string): Logger {
  return pino({ name, level: process.env.AGENTLAB_LOG_LEVEL ?? 'info' });
}
