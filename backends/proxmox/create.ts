// Builds the Proxmox backend from the worker's config: the token secret comes from the env, the file or a file path.
import { readFileSync } from 'node:fs';
import type { AgentlabConfig } from '../../common/config';
import { PermanentBackendError } from '../contract';
import { ProxmoxBackend } from './backend';
import { ProxmoxClient } from './client';

export function createProxmoxBackend(config: AgentlabConfig): ProxmoxBackend {
  const pve = config.proxmox;
  if (!pve) throw new PermanentBackendError(`${config.source}: worker.backends has proxmox but no proxmox: section`);
  const tokenSecret =
    pve.tokenSecret ?? (pve.tokenSecretFile ? readFileSync(pve.tokenSecretFile, 'utf8').trim() : undefined);
  if (!tokenSecret) {
    throw new PermanentBackendError(
      'no Proxmox token secret: set AGENTLAB_PROXMOX_TOKEN_SECRET, proxmox.tokenSecretFile or proxmox.tokenSecret',
    );
  }
  const client = new ProxmoxClient({
    url: pve.url,
    tokenId: pve.tokenId,
    tokenSecret,
    caFile: pve.caFile,
    fingerprint: pve.fingerprint,
  });
  return new ProxmoxBackend({
    client,
    // The node this worker serves (its task queue); proxmox.node only where the Proxmox name differs.
    node: pve.node ?? config.node,
    vmidRange: config.vmidRange,
    storage: pve.storage,
    snippetsDir: pve.snippetsDir,
    snippetStorage: pve.snippetStorage,
    bridge: pve.bridge,
    cloneMode: pve.cloneMode,
    cloneConcurrency: pve.cloneConcurrency,
    temporal: config.temporal,
  });
}
