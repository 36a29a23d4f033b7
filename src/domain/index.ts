/** The domain: types, limits, error codes and value rules. No I/O; every layer imports it. */
export * from './errors';
export * from './limits';
export * from './schemas';
export * from './types';
