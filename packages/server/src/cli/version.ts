/** Reported in HELLO, /status and the start-up lines. */
export const KVMP_VERSION = '0.1.0';
