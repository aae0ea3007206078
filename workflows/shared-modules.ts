// Evaluated once in the worker's shared V8 context, before any workflow (PRELOADED_WORKFLOW_MODULES): zod's
// modules are then shared, frozen, by every cached workflow instead of evaluated again for each.
import { z } from 'zod';

// zod records its default locale and memoizer in its global config when it builds its first schema: build
// one now, while that config can still be written (the shared copy is frozen once this module has run).
z.object({ preload: z.string() });

export { z };
