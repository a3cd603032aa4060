// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Layers only look down (docs/architecture.md): for each folder of lib/, the lib/ folders it may
 * not import from. A lower layer that needs something from a higher one declares a port.
 */
const LAYERS = ['core', 'transport', 'checkpoint', 'supervision', 'resilience', 'actor', 'worker', 'pipeline', 'cluster', 'observe', 'adapters', 'testing', 'cli'];
/** @type {Record<string, string[]>} folder -> the folders it may import from */
const MAY_IMPORT = {
  core: [],
  transport: ['core'],
  checkpoint: ['core'],
  supervision: ['core'],
  resilience: ['core'],
  actor: ['core', 'resilience'],
  worker: ['core', 'transport', 'checkpoint', 'resilience', 'actor'],
  pipeline: ['core', 'transport', 'checkpoint', 'supervision', 'resilience', 'actor', 'worker'],
  cluster: ['core', 'transport', 'checkpoint', 'supervision', 'resilience', 'actor', 'worker', 'pipeline'],
  observe: ['core', 'transport', 'checkpoint', 'supervision', 'resilience', 'actor', 'worker', 'pipeline', 'cluster'],
  'adapters/nats': ['core', 'transport', 'resilience', 'cluster'],
  'adapters/redis': ['core', 'checkpoint'],
  testing: ['core', 'transport', 'checkpoint', 'supervision', 'resilience', 'actor', 'worker', 'pipeline', 'cluster'],
};
const layerRules = Object.entries(MAY_IMPORT).map(([folder, allowed]) => {
  const up = folder.includes('/') ? '\\.\\./\\.\\./' : '\\.\\./';
  const denied = LAYERS.filter((l) => l !== folder.split('/')[0] && !allowed.includes(l));
  const rules = denied.length === 0 ? {} : {
    'no-restricted-imports': ['error', {
      patterns: [{ regex: `^${up}(${denied.join('|')})(/|$)`, message: `lib/${folder} may import only from ${allowed.map((a) => `lib/${a}`).join(', ') || 'itself'} (layers only look down; see docs/architecture.md).` }],
    }],
  };
  return { files: [`lib/${folder}/**/*.ts`], rules };
});

export default tseslint.config(
  { ignores: ['node_modules/**', '.warden/**', 'dist/**', '.scratch/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-globals': ['error',
        { name: 'setTimeout', message: 'Use the injected Clock (lib/core/clock.ts).' },
        { name: 'setInterval', message: 'Use the injected Clock (lib/core/clock.ts).' }],
      'no-restricted-properties': ['error',
        { object: 'Date', property: 'now', message: 'Use the injected Clock (lib/core/clock.ts).' }],
    },
  },
  {
    // Only the real clock, the composition roots, tests and benchmarks may touch wall time.
    files: ['lib/core/clock.ts', 'test/**', 'scenarios/**', 'chaos/**', 'docs/**'],
    rules: { 'no-restricted-globals': 'off', 'no-restricted-properties': 'off' },
  },
  ...layerRules,
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { ...tseslint.configs.disableTypeChecked.languageOptions, globals: { process: 'readonly', console: 'readonly' } },
  },
);
