export { Module, StateDictError, type LoadResult } from './module';
export * from './layers';
export * as init from './init';
