// See global-setup.mjs.
export { globalTeardown as default } from './global-teardown.ts'
