// Persistent workspaces on the local backend: a directory per workspace under the data dir, bound at /workspace
// in the sandbox that holds it. Nothing of the user's: the data dir is agentlab's, and the sandbox sees only this.
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { WORKSPACE_NAME_PATTERN, type WorkspaceRef } from '../../common/workspace';
import { PermanentBackendError, type VmRef, type WorkspaceStorage } from '../contract';

/** The mark on a workspace's folder: the workflow that created it, and when. */
interface WorkspaceMark {
  workflowId: string;
  name: string;
  sizeGb: number;
  createdAt: string;
}

/** What a sandbox's folder records of the workspace attached to it. */
export interface AttachedWorkspace {
  name: string;
  /** The host directory the sandbox sees at /workspace. */
  path: string;
}

export const workspacesRoot = (dataDir: string): string => join(dataDir, 'workspaces');

export interface LocalWorkspaceHooks {
  dataDir: string;
  /** The sandbox's folder, once its owner mark matches (else PermanentBackendError). */
  ownedSandboxDir(vm: VmRef): Promise<string | undefined>;
  /** Powers the sandbox off: after a detach nothing of it may still write into the workspace. */
  stop(vm: VmRef): Promise<void>;
  /** Fault injection: waits before an attach or detach (tests crash the worker meanwhile). */
  delay(): Promise<void>;
}

export class LocalWorkspaces implements WorkspaceStorage {
  constructor(private readonly hooks: LocalWorkspaceHooks) {}

  private folder(name: string): string {
    // The name becomes a path: only the workspace-name syntax, so it never leaves the workspaces folder.
    if (!WORKSPACE_NAME_PATTERN.test(name))
      throw new PermanentBackendError(`invalid workspace name ${JSON.stringify(name)}`);
    return join(workspacesRoot(this.hooks.dataDir), name);
  }

  private async mark(name: string): Promise<WorkspaceMark | undefined> {
    try {
      return JSON.parse(await fs.readFile(join(this.folder(name), 'owner.json'), 'utf8')) as WorkspaceMark;
    } catch {
      return undefined;
    }
  }

  async create(workspace: WorkspaceRef): Promise<void> {
    const existing = await this.mark(workspace.name);
    if (existing) {
      if (existing.workflowId === workspace.workflowId) return; // a retried create
      throw new PermanentBackendError(
        `workspace folder ${this.folder(workspace.name)} belongs to ${existing.workflowId}`,
      );
    }
    const root = workspacesRoot(this.hooks.dataDir);
    await fs.mkdir(root, { recursive: true, mode: 0o700 });
    // Staged, then renamed into place: a crash never leaves a half-made workspace under the real name.
    const staging = await fs.mkdtemp(join(root, `.creating-${workspace.name}-`));
    try {
      await fs.mkdir(join(staging, 'data'), { mode: 0o755 });
      const mark: WorkspaceMark = {
        workflowId: workspace.workflowId,
        name: workspace.name,
        sizeGb: workspace.sizeGb,
        createdAt: new Date().toISOString(),
      };
      await fs.writeFile(join(staging, 'owner.json'), JSON.stringify(mark));
      await fs.rename(staging, this.folder(workspace.name));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      // Someone else's rename won: ours only if the mark says so.
      if ((await this.mark(workspace.name))?.workflowId !== workspace.workflowId) throw err;
    } finally {
      await fs.rm(staging, { recursive: true, force: true });
    }
  }

  async delete(workspace: WorkspaceRef): Promise<void> {
    const mark = await this.mark(workspace.name);
    const folder = this.folder(workspace.name);
    if (!mark) {
      const leftover = await fs.stat(folder).then(
        () => true,
        () => false,
      );
      if (leftover) throw new PermanentBackendError(`workspace folder ${folder} carries no mark: not deleting it`);
      return;
    }
    if (mark.workflowId !== workspace.workflowId) {
      throw new PermanentBackendError(`workspace folder ${folder} belongs to ${mark.workflowId}`);
    }
    // Renamed away first: a crash half-way through the removal leaves no workspace that looks whole.
    const doomed = join(workspacesRoot(this.hooks.dataDir), `.deleting-${workspace.name}-${Date.now()}`);
    await fs.rename(folder, doomed);
    await fs.rm(doomed, { recursive: true, force: true });
  }

  async attach({ vmid, owner }: VmRef, workspace: WorkspaceRef): Promise<void> {
    await this.hooks.delay();
    const mark = await this.mark(workspace.name);
    if (mark?.workflowId !== workspace.workflowId) {
      throw new PermanentBackendError(`workspace ${workspace.name} has no storage on this host`);
    }
    const dir = await this.hooks.ownedSandboxDir({ vmid, owner });
    if (!dir) throw new PermanentBackendError(`sandbox ${vmid} does not exist`);
    const attached: AttachedWorkspace = { name: workspace.name, path: join(this.folder(workspace.name), 'data') };
    await fs.writeFile(join(dir, 'workspace.json'), JSON.stringify(attached));
  }

  async detach({ vmid, owner }: VmRef, workspace: WorkspaceRef): Promise<void> {
    const dir = await this.hooks.ownedSandboxDir({ vmid, owner });
    if (!dir) return; // no sandbox, nothing attached
    const attached = await readAttachedWorkspace(dir);
    if (!attached) return;
    await this.hooks.delay();
    if (attached.name !== workspace.name) {
      throw new PermanentBackendError(`sandbox ${vmid} has workspace ${attached.name}, not ${workspace.name}`);
    }
    await this.hooks.stop({ vmid, owner });
    await fs.rm(join(dir, 'workspace.json'), { force: true });
  }
}

/** The workspace attached to the sandbox in `sandboxDir`, if any. */
export async function readAttachedWorkspace(sandboxDir: string): Promise<AttachedWorkspace | undefined> {
  try {
    return JSON.parse(await fs.readFile(join(sandboxDir, 'workspace.json'), 'utf8')) as AttachedWorkspace;
  } catch {
    return undefined;
  }
}
