import type { SQL } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import type { PostgresDatabase, QueryOptions, SqlRunner } from '../../db/database.ts';

// Statements as the database gets them, and their plans: for the Citus plan-shape tests and
// `npm run bench:citus` (no test framework imported here, so the benchmark can use it).

/** A statement as the database got it: its text and parameters. */
export interface RecordedStatement {
  text: string;
  params: unknown[];
}

const dialect = new PgDialect();

/** `runner`, recording into `statements` every statement it runs (as Drizzle sends it). */
export function recordingRunner(statements: RecordedStatement[], runner: SqlRunner): SqlRunner {
  return {
    rows<Row>(query: SQL, options?: QueryOptions): Promise<Row[]> {
      const { sql: text, params } = dialect.sqlToQuery(query);
      statements.push({ text, params });
      return runner.rows<Row>(query, options);
    },
  };
}

/** A statement's plan as EXPLAIN prints it (nothing is run): on Citus, its distributed steps. */
export async function explainPlan(db: PostgresDatabase, { text, params }: RecordedStatement): Promise<string> {
  const lines = await db.client.unsafe<{ 'QUERY PLAN': string }[]>(`explain ${text}`, params as never[]);
  return lines.map((line) => line['QUERY PLAN']).join('\n');
}

/** The task count of every distributed step of a Citus plan (one task: routed to one shard). */
export const taskCounts = (plan: string): number[] => [...plan.matchAll(/Task Count: (\d+)/g)].map((match) => Number(match[1]));
