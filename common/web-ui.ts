// Links into the Temporal Web UI: the one place its URL scheme for a workflow is spelled out.

/**
 * The Web UI page of a workflow, e.g. http://127.0.0.1:8233/namespaces/default/workflows/job-1. Any
 * user:password in the configured base is dropped: the link is printed and written into VM descriptions.
 */
export function workflowWebUiUrl(temporal: { uiUrl: string; namespace: string }, workflowId: string): string {
  const base = new URL(temporal.uiUrl);
  base.username = '';
  base.password = '';
  const root = base.toString().replace(/\/+$/, '');
  return `${root}/namespaces/${encodeURIComponent(temporal.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}
