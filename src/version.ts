/** The release, defined at build time (scripts/build.mjs); "0.0.0-dev" when run from the sources. */
export const VERSION = process.env.KLM_VERSION ?? '0.0.0-dev';
