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
  {
    // shared/ is used by controller and worker and must not depend on them (DESIGN.md, "Dependencies run one way").
    files: ['shared/**/*.ts', 'native/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: ['**/controller/**', '**/worker/**', '**/bench/**', '**/bin/**'] }],
    },
  },
);
