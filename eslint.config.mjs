// Lint rules: typescript-eslint's recommended set, no floating promises, no Node in workflow code, and nothing
// but Node in the guest runner.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      '.tools/**',
      'coverage/**',
      'jest.config.js',
      'jest.cluster.config.js',
      'jest.qemu.config.js',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { project: './tsconfig.json', tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    // Workflow code runs in Temporal's deterministic sandbox: no Node builtins, no I/O libraries.
    files: [
      'workflows/**/*.ts',
      'common/contract.ts',
      'common/states.ts',
      'common/duration.ts',
      'common/snapshot-names.ts',
    ],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*'], message: 'Workflow code cannot import Node modules.' },
            {
              group: ['fs', 'path', 'os', 'child_process', 'crypto', 'http', 'net'],
              message: 'Workflow code cannot import Node modules.',
            },
            {
              group: ['execa', 'pino', 'yaml', '@temporalio/client', '@temporalio/worker', '@temporalio/activity'],
              message: 'Workflow code must stay deterministic.',
            },
            {
              group: ['**/activities', '**/backends/*', '**/worker/*', '**/cli/*'],
              allowTypeImports: true,
              message: 'Import activities type-only.',
            },
          ],
        },
      ],
    },
  },
  {
    // The guest runner ships as dist/guest/*.js alone: Node builtins and its sibling modules at run time,
    // the host's types (../common/...) only type-only, which the compiler erases.
    files: ['guest/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^\\.\\./common/',
              allowTypeImports: true,
              message: 'The guest runs without the host: import from common/ with `import type` only.',
            },
            {
              regex: '^(?!node:|\\./[^/]+$|\\.\\./common/)',
              message: 'The guest runs with Node builtins (node:…) and its sibling guest/ modules only.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['examples/**/*.js', 'test/**/*.js'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: {
        require: 'readonly',
        process: 'readonly',
        Buffer: 'readonly',
        console: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        __dirname: 'readonly',
        __filename: 'readonly',
        module: 'writable',
        URL: 'readonly',
        fetch: 'readonly',
        AbortSignal: 'readonly',
      },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
