import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'build/', 'node_modules/', '.strait/', 'coverage/', '.tap/'] },
  eslint.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-require-imports': 'off',
      'no-constant-condition': ['error', { checkLoops: false }],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
    },
  },
  {
    // the install-time scripts are plain CommonJS run by npm before anything is built
    files: ['scripts/**/*.js'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', process: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  // Dependencies run one way (DESIGN.md): bin/ -> controller/, worker/, bench/ -> shared/ -> native/.
  {
    // shared/ is used by controller and worker and must not depend on them, nor on the bench or the command line
    files: ['shared/**/*.ts', 'native/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/controller/**', '**/controller', '**/worker/**', '**/worker', '**/bench/**', '**/bench', '**/bin/**', '**/bin'],
              message: 'shared/ and native/ import neither controller/, worker/, bench/ nor bin/ (DESIGN.md, dependencies run one way)',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['controller/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/worker/**', '**/bench/**', '**/bin/**'],
              message: 'the controller imports neither worker/, bench/ nor bin/: what both need lives in shared/ (DESIGN.md)',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['worker/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/controller/**', '**/bench/**', '**/bin/**'],
              message: 'the worker imports neither controller/, bench/ nor bin/: what both need lives in shared/ (DESIGN.md)',
            },
          ],
        },
      ],
    },
  },
  {
    // the bench measures the product (it may use controller/ and worker/), but the command line sits above it
    files: ['bench/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/bin/**'], message: 'bench/ does not import bin/: bin/ parses arguments and hands over to the bench (DESIGN.md)' }] },
      ],
    },
  },
);
