/** JSON of anything, never throwing (a cycle or a BigInt in an app's value becomes its string form). */
export function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
