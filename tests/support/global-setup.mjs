// Jest require()s a .ts global setup, which breaks on ESM; an .mjs is import()ed, and tsx
// (NODE_OPTIONS=--import tsx) loads the TypeScript behind it.
export { globalSetup as default } from './global-setup.ts'
