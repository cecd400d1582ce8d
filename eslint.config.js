// @ts-check
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import importX from 'eslint-plugin-import-x';
import globals from 'globals';
import { builtinModules } from 'node:module';
import tseslint from 'typescript-eslint';

/** Imports each layer may never make (docs/architecture.md, "Layers"). */
const appBans = {
  paths: [
    { name: 'electron', message: 'app/ runs in plain Node: Electron belongs in main/.' },
    { name: 'react', message: 'app/ is UI-free: React belongs in renderer/.' },
  ],
  patterns: [
    { group: ['**/main/**', '**/renderer/**'], message: 'app/ never imports main/ or renderer/.' },
    { group: ['react-dom', 'react-dom/*', 'electron/*'], message: 'app/ stays Electron- and React-free.' },
  ],
};

/** renderer/ runs in the browser: React, its own code and app/'s browser-safe API and schema, nothing else. */
const rendererBans = {
  paths: [{ name: 'electron', message: 'renderer/ talks to Electron only through the preload transport.' }],
  patterns: [
    {
      group: ['node:*', ...builtinModules, ...builtinModules.map((name) => `${name}/*`)],
      message: 'renderer/ runs in the browser: no Node built-ins.',
    },
    {
      regex: String.raw`^(\.\./)+app/(?!api/|config/schema\.js$|config/problems\.js$)`,
      message: 'renderer/ may import only app/api, app/config/schema and app/config/problems (browser-safe).',
    },
    { group: ['**/main/**', 'electron/*'], message: 'renderer/ never imports main/ or Electron.' },
  ],
};

/** main/ runs in Electron's main process and preload: app/ and electron, never renderer/ (shared types live in app/api/). */
const mainBans = {
  paths: [
    {
      name: 'electron',
      importNames: ['ipcMain', 'ipcRenderer'],
      message: 'Only the typed wrappers (main/ipc.ts, main/bridge.ts) touch IPC.',
    },
    { name: 'react', message: 'main/ has no UI code: React belongs in renderer/.' },
  ],
  patterns: [
    {
      group: ['**/renderer/**'],
      message: 'main/ never imports renderer/, not even types: what both sides share lives in app/api/.',
    },
    { group: ['react-dom', 'react-dom/*'], message: 'main/ has no UI code.' },
  ],
};

/** Raw IPC calls outside the typed wrappers: only they touch ipcMain, ipcRenderer and webContents.send. */
const rawIpcSyntax = [
  {
    selector: "Property[key.name='shell'][value.value=true]",
    message: 'Subprocesses never go through a shell.',
  },
  {
    selector: 'CallExpression[callee.object.name=/^(ipcMain|ipcRenderer)$/]',
    message: 'Only the typed wrappers (main/ipc.ts, main/bridge.ts) touch IPC.',
  },
  {
    selector: 'CallExpression[callee.object.property.name=/^(ipcMain|ipcRenderer)$/]',
    message: 'Only the typed wrappers (main/ipc.ts, main/bridge.ts) touch IPC.',
  },
  {
    selector: "CallExpression[callee.property.name='send'][callee.object.property.name='webContents']",
    message: 'Only main/ipc.ts sends to a window (webContents.send).',
  },
];

export default tseslint.config(
  {
    ignores: [
      'node_modules/',
      'dist/',
      'native/build/',
      'out/',
      '.vite/',
      'coverage/',
      'test/fixtures/insecure-electron/',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: { ...globals.node },
      parserOptions: {
        // One tsconfig per runtime; each file is linted with the types of the runtime it runs in.
        project: [
          './tsconfig.test.json',
          './tsconfig.web.json',
          './tsconfig.main.json',
          './tsconfig.forge.json',
        ],
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test's test()/describe() return promises the runner itself awaits.
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] },
          ],
        },
      ],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': [
        'error',
        {
          selector: "Property[key.name='shell'][value.value=true]",
          message: 'Subprocesses never go through a shell.',
        },
      ],
    },
  },
  {
    // No import cycles anywhere, type-only ones included: a cycle is a layer that is not one.
    files: ['**/*.{ts,tsx}'],
    plugins: { 'import-x': importX },
    settings: {
      'import-x/extensions': ['.ts', '.tsx', '.js', '.mjs', '.cjs'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts', '.tsx'] },
      'import-x/resolver-next': [
        createTypeScriptImportResolver({
          noWarnOnMultipleProjects: true,
          project: ['./tsconfig.test.json', './tsconfig.web.json', './tsconfig.main.json'],
        }),
      ],
    },
    rules: { 'import-x/no-cycle': ['error', { ignoreExternal: true }] },
  },
  { files: ['app/**/*.ts'], rules: { 'no-restricted-imports': ['error', appBans] } },
  {
    // The engine asks for privileged ports through the PrivilegedBinder it is given (app/host.ts passes the
    // helper's); it reaches the addon only through app/native/.
    files: ['app/engine/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          ...appBans,
          patterns: [
            ...appBans.patterns,
            {
              group: ['**/helper/**'],
              message: 'app/engine/ never imports app/helper/: it is given a binder.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['renderer/**/*.{ts,tsx}'],
    languageOptions: { globals: { ...globals.browser } },
    rules: { 'no-restricted-imports': ['error', rendererBans] },
  },
  {
    files: ['main/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', mainBans],
      'no-restricted-syntax': ['error', ...rawIpcSyntax],
    },
  },
  {
    // The typed IPC wrappers and the preload that hands ipcRenderer to one of them.
    files: ['main/ipc.ts', 'main/bridge.ts', 'main/preload.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', { ...mainBans, paths: mainBans.paths.slice(1) }],
      'no-restricted-syntax': ['error', rawIpcSyntax[0]],
    },
  },
  {
    // The Electron seam: the entry imports the whole module to hand it over; electron.ts names its type.
    files: ['main/main.ts', 'main/electron.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', { ...mainBans, paths: mainBans.paths.slice(1) }],
    },
  },
  { files: ['eslint.config.js', '**/*.cjs', '**/*.mjs'], ...tseslint.configs.disableTypeChecked },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  prettier,
);
