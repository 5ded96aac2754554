// Lint: typescript-eslint with type-aware rules; the core's size limits; the core imports no adapter.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Folders that talk to the world; the core (src/core) decides without them. */
const ADAPTERS = [
  'docker',
  'dbus',
  'systemd',
  'watch',
  'health',
  'gpu',
  'state',
  'log',
  'preflight',
  'runtime',
  'cli',
  'encodings',
];

export default tseslint.config(
  { ignores: ['dist/', 'build/', 'node_modules/', '.tools/', 'bench/results/', 'test/standin/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      'max-len': ['error', { code: 120, ignoreUrls: true }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      eqeqeq: 'error',
    },
  },
  {
    files: ['src/**/*.ts'],
    rules: {
      'max-lines-per-function': ['error', { max: 60, skipBlankLines: true, skipComments: true }],
    },
  },
  {
    files: ['src/core/**/*.ts'],
    rules: {
      'max-lines': ['error', { max: 300, skipBlankLines: true, skipComments: true }],
      'no-restricted-imports': [
        'error',
        {
          patterns: ADAPTERS.map((a) => ({
            group: [`../${a}/*`],
            message: 'the core decides; adapters act (see DEVELOPERS.md)',
          })),
        },
      ],
    },
  },
  {
    files: ['eslint.config.js'],
    ...tseslint.configs.disableTypeChecked,
  },
);
