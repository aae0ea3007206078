// Keeps a long backend call visible to Temporal: heartbeats while it runs, so a dead worker is noticed fast.
import { Context } from '@temporalio/activity';

export async function withHeartbeat<T>(work: () => Promise<T>, intervalMs = 1000): Promise<T> {
  const context = Context.current();
  context.heartbeat();
  const timer = setInterval(() => context.heartbeat(), intervalMs);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}
