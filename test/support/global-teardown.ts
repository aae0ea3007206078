// Stops the shared Temporal dev server.
export default async function globalTeardown(): Promise<void> {
  await globalThis.agentlabTestEnv?.teardown();
}
