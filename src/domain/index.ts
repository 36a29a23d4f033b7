/**
 * The domain barrel: types, limits, error codes and the zod value rules. No I/O. Workflow code
 * imports the modules it needs directly instead (this re-exports zod's schemas; lint refuses it there).
 */
export * from './errors';
export * from './limits';
export * from './schemas';
export * from './types';
