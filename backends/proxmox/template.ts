// The template a profile clones, and the clone's boot disk grown to the profile's size before its first boot.
import type { ResolvedProfile } from '../../common/contract';
import { AGENT_FORMAT, isCloudInitVolume } from '../../common/property-string';
import { PermanentBackendError } from '../contract';
import { bootDisk, driveEntries, GIB, readProperty, type VmConfig } from './drives';
import { isPveError, PveError } from './errors';
import { vmPath, type VmApi } from './vm-api';

/** Throws a PermanentBackendError naming what is wrong with the template (also used by `doctor`). */
export async function validateTemplate(api: VmApi, templateVmid: number): Promise<VmConfig> {
  let config: VmConfig | undefined;
  try {
    config = await api.client.get<VmConfig>(await vmPath(api, templateVmid, '/config'));
  } catch (err) {
    if (isPveError(err, 'not-found')) {
      throw new PermanentBackendError(`template VM ${templateVmid} is missing: ${err.pveMessage}`);
    }
    throw err;
  }
  const problems: string[] = [];
  if (Number(config.template) !== 1) problems.push('it is not a template (qm template)');
  const agent = readProperty(config.agent ?? '0', AGENT_FORMAT);
  if (typeof agent === 'string') problems.push(`its agent setting cannot be read (${agent})`);
  else if (agent.enabled !== '1') problems.push('the QEMU guest agent is not enabled (agent: enabled=1)');
  if (!driveEntries(config).some(([, drive]) => isCloudInitVolume(drive.file))) {
    problems.push('it has no cloud-init drive');
  }
  if (problems.length > 0) {
    throw new PermanentBackendError(`template VM ${templateVmid} cannot be used: ${problems.join('; ')}`);
  }
  return config;
}

/**
 * Grows the clone's boot disk to the profile's `diskGb` (an absolute size) before its first boot, when
 * cloud-init's growpart still extends the root filesystem over it. A retried configure finds the disk
 * at that size already and leaves it: Proxmox accepts an equal size as a no-op, but a task is saved.
 * A size below the template's is refused by Proxmox ("shrinking disks is not supported"), and by us for good.
 */
export async function growBootDisk(
  api: VmApi,
  vmid: number,
  config: VmConfig,
  profile: ResolvedProfile,
  diskGb: number,
): Promise<void> {
  const disk = bootDisk(config);
  if (!disk) {
    throw new PermanentBackendError(
      `profile ${profile.name} sets resources.diskGb, but VM ${vmid} (template ${profile.templateVmid}) has no boot disk`,
    );
  }
  if (disk.sizeBytes === diskGb * GIB) return;
  try {
    const upid = await api.client.put<string>(await vmPath(api, vmid, '/resize'), {
      disk: disk.key,
      size: `${diskGb}G`,
    });
    await api.wait(upid);
  } catch (err) {
    // Only the refused shrink is the profile's fault; any other failure keeps its own text and retry decision.
    if (!(err instanceof PveError) || disk.sizeBytes <= diskGb * GIB) throw err;
    throw new PermanentBackendError(
      `profile ${profile.name} asks for a ${diskGb}G root disk, but template ${profile.templateVmid}'s ` +
        `boot disk (${disk.key}) is ${disk.size}: Proxmox refused to resize it: ${err.pveMessage}`,
    );
  }
}
