/**
 * Every advisory lock id the service takes, in one place so no two jobs ever share one by accident.
 * Any constants shared by all instances of the service on one database will do; these must not
 * change between versions that may run side by side (a rolling deploy), or the two would not
 * exclude each other.
 */
export const ADVISORY_LOCKS = {
  /** Session lock: serialises concurrent start-ups' migrations. */
  migrations: 7_316_001,
  /** Transaction lock: serialises creating and dropping daily partitions across instances. */
  partitions: 7_316_002,
  /** Session lock: one retention run at a time across instances. */
  retention: 7_316_003,
} as const;
