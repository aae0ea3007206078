// `agentlab doctor` for the qemu backend: what the worker's start would refuse (tools, the image), and which
// accelerator its VMs get. Never probes KVM itself: a failing probe costs 15 s, and the worker's answer is kept.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import execa from 'execa';
import type { AgentlabConfig } from '../../common/config';
import { qemuRoot } from '../../backends/qemu/vm-dir';
import type { DoctorCheck } from './doctor-temporal';

const TOOLS: Record<string, string> = {
  'qemu-system-x86_64': 'qemu-system-x86',
  'qemu-img': 'qemu-utils',
  genisoimage: 'genisoimage',
  mmdebstrap: 'mmdebstrap',
};

export async function qemuChecks(config: AgentlabConfig): Promise<DoctorCheck[]> {
  const missing: string[] = [];
  for (const tool of Object.keys(TOOLS)) {
    const found = await execa('sh', ['-c', `command -v ${tool}`], { reject: false, timeout: 10_000 });
    if (found.exitCode !== 0) missing.push(tool);
  }
  // mmdebstrap only builds the image: with qemu.imageDir set it is not needed.
  const needed = missing.filter((tool) => tool !== 'mmdebstrap' || !config.qemu.imageDir);
  const checks: DoctorCheck[] = [
    needed.length === 0
      ? { name: 'qemu tools', status: 'ok', detail: Object.keys(TOOLS).join(', ') }
      : {
          name: 'qemu tools',
          status: 'fail',
          detail: `not installed: ${needed.join(', ')}`,
          fix: `apt-get install ${[...new Set(needed.map((tool) => TOOLS[tool]))].join(' ')}`,
        },
  ];
  const imageDir = config.qemu.imageDir;
  if (!imageDir) {
    const detail = 'qemu.imageDir unset: the worker builds the image or takes it from .tools/guest-image at start';
    checks.push({ name: 'qemu image', status: 'ok', detail });
  } else if (existsSync(join(imageDir, 'image.json'))) {
    checks.push({ name: 'qemu image', status: 'ok', detail: imageDir });
  } else {
    const fix = 'point qemu.imageDir at the directory scripts/build-guest-image.sh prints';
    checks.push({ name: 'qemu image', status: 'fail', detail: `${imageDir} has no image.json`, fix });
  }
  checks.push(acceleratorCheck(config));
  return checks;
}

function acceleratorCheck(config: AgentlabConfig): DoctorCheck {
  if (config.qemu.accelerator !== 'auto') {
    return { name: 'qemu accelerator', status: 'ok', detail: `${config.qemu.accelerator} (qemu.accelerator)` };
  }
  try {
    const cached = JSON.parse(readFileSync(join(qemuRoot(config.dataDir), 'accelerator.json'), 'utf8')) as {
      accelerator: string;
      reason: string;
    };
    // TCG works everywhere, only slowly: worth a warning, not a failure.
    const status = cached.accelerator === 'kvm' ? 'ok' : 'warn';
    return { name: 'qemu accelerator', status, detail: `${cached.accelerator}: ${cached.reason}` };
  } catch {
    return { name: 'qemu accelerator', status: 'skip', detail: 'not probed yet: the worker probes KVM at its start' };
  }
}
