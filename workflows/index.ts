// The workflow bundle's entry point: every workflow type the worker registers.
export { jobWorkflow } from './job-workflow';
export { reconcileWorkflow } from './reconcile-workflow';
export { admissionWorkflow } from './admission-workflow';
export { workspaceWorkflow } from './workspace-workflow';
