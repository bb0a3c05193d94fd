import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { type CitusNodes, createCitusDatabase, dropCitusDatabase } from './support/citus-cluster.ts';

// The harness itself, before any suite trusts it: only in the `citus` project (TEST_CITUS=1), whose
// global setup starts the cluster.
describe.runIf(process.env.TEST_DB_KIND === 'citus')('the Citus test cluster', () => {
  const name = `telemetry_citus_check_${randomBytes(4).toString('hex')}`;
  const rowCount = 20;
  let nodes: CitusNodes;
  let sql: postgres.Sql;

  beforeAll(async () => {
    nodes = inject('citusNodes');
    sql = postgres(await createCitusDatabase(nodes, name), { max: 1, onnotice: () => {} });
    await sql`create table items (key int not null, label text not null)`;
    await sql`select create_distributed_table('items', 'key')`;
    const rows = Array.from({ length: rowCount }, (_, index) => ({ key: index + 1, label: `item ${index + 1}` }));
    await sql`insert into items ${sql(rows)}`;
  });

  afterAll(async () => {
    await sql?.end({ timeout: 5 });
    if (nodes) await dropCitusDatabase(nodes, name);
  });

  test('a new database knows the coordinator and both workers, and only the workers hold shards', async () => {
    const registered = await sql<{ port: number; holdsShards: boolean }[]>`
      select nodeport as port, shouldhaveshards as "holdsShards" from pg_dist_node
      where isactive and noderole = 'primary' order by nodeport`;
    const expected = [{ port: nodes.coordinator, holdsShards: false }, ...nodes.workers.map((port) => ({ port, holdsShards: true }))].sort(
      (a, b) => a.port - b.port,
    );
    expect(registered).toEqual(expected);
  });

  test("a distributed table's shards and rows are on the workers, spread over both", async () => {
    const shards = await sql<{ shardName: string; port: number }[]>`
      select shard_name as "shardName", nodeport as port from citus_shards where table_name = 'items'::regclass`;
    expect(new Set(shards.map((shard) => shard.port))).toEqual(new Set(nodes.workers));

    // Counted on each worker's own copy of the database, in the shard tables themselves.
    const rowsByWorker = await Promise.all(
      nodes.workers.map(async (port) => {
        const worker = postgres(`postgres://postgres@127.0.0.1:${port}/${name}`, { max: 1, onnotice: () => {} });
        try {
          let rows = 0;
          for (const shard of shards.filter((candidate) => candidate.port === port)) {
            const [row] = await worker<{ count: number }[]>`select count(*)::int as count from ${worker(shard.shardName)}`;
            rows += row?.count ?? 0;
          }
          return rows;
        } finally {
          await worker.end({ timeout: 5 });
        }
      }),
    );
    expect(rowsByWorker.every((rows) => rows > 0)).toBe(true);
    expect(rowsByWorker.reduce((sum, rows) => sum + rows, 0)).toBe(rowCount);
  });

  test('a query by the distribution column is routed to one shard, one without it goes to every shard', async () => {
    const planOf = async (statement: string, parameters: (number | string)[]) =>
      (await sql.unsafe<{ 'QUERY PLAN': string }[]>(statement, parameters)).map((row) => row['QUERY PLAN']).join('\n');
    expect(await planOf('explain select label from items where key = $1', [7])).toContain('Task Count: 1');
    const [shardCount] = await sql<{ count: number }[]>`select count(*)::int as count from citus_shards where table_name = 'items'::regclass`;
    expect(await planOf('explain select label from items where label = $1', ['item 7'])).toContain(`Task Count: ${shardCount?.count}`);
    expect(shardCount?.count).toBeGreaterThan(1);
  });

  test('dropping the database removes it from every node', async () => {
    await sql.end({ timeout: 5 });
    await dropCitusDatabase(nodes, name);
    for (const port of [nodes.coordinator, ...nodes.workers]) {
      const admin = postgres(`postgres://postgres@127.0.0.1:${port}/postgres`, { max: 1, onnotice: () => {} });
      try {
        const found = await admin`select 1 from pg_database where datname = ${name}`;
        expect(found).toHaveLength(0);
      } finally {
        await admin.end({ timeout: 5 });
      }
    }
  });
});
