// The Proxmox API paths of the `qm` commands scripts/create_template.sh prints: test/deployment.test.ts
// checks each printed command against the schema of the path it stands for.

/** `qm <verb>` is a POST to this path on the node's API (qm is a CLI over the same handlers). */
export const QM_COMMAND_PATHS = {
  create: '/nodes/{node}/qemu',
  set: '/nodes/{node}/qemu/{vmid}/config',
  template: '/nodes/{node}/qemu/{vmid}/template',
} as const;
