export { Module, StateDictError, type LoadResult } from './module';
export * from './layers';
export * as init from './init';
export * from './llama';
export * from './roberta';
export * from './lora';
