// Key prefixes that land on each of the 4 shards of the default split (checked in
// test/fault/failpoints.test.ts), so tests can make transactions span every shard.
export const SHARD_PREFIXES = ['\x05', 'DENT\xa0', 'a', '\u00e9'] as const;

export const onEveryShard = (suffix: string): string[] => SHARD_PREFIXES.map((p) => p + suffix);
