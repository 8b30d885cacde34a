import { fileURLToPath } from 'node:url'

/** The project's root folder, whether this code runs from src/ (tsx, tests) or bundled in dist/ (npm start). */
export const projectRoot = fileURLToPath(new URL('..', import.meta.url))
