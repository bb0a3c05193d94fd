/**
 * Type-level spelling of "any event type except the ones with a typed metadata shape".
 *
 * TypeScript has no negated types, so `{ eventType: string }` would also accept `'perf.metric'`
 * with any metadata, and a typed client could not catch a malformed performance metric. Instead
 * we build, from the reserved names, a union of template-literal patterns that matches every string
 * except those names (a character trie). A literal such as `'checkout.completed'` matches it;
 * `'perf.metric'` does not, so TypeScript checks that event against its own typed branch.
 */

type IdentifierChar =
  | 'a'
  | 'b'
  | 'c'
  | 'd'
  | 'e'
  | 'f'
  | 'g'
  | 'h'
  | 'i'
  | 'j'
  | 'k'
  | 'l'
  | 'm'
  | 'n'
  | 'o'
  | 'p'
  | 'q'
  | 'r'
  | 's'
  | 't'
  | 'u'
  | 'v'
  | 'w'
  | 'x'
  | 'y'
  | 'z'
  | '0'
  | '1'
  | '2'
  | '3'
  | '4'
  | '5'
  | '6'
  | '7'
  | '8'
  | '9'
  | '_'
  | '.';

type FirstChar<S extends string> = S extends `${infer Head}${string}` ? Head : never;
type RestAfter<S extends string, Head extends string> = S extends `${Head}${infer Rest}` ? Rest : never;

/** Every string starting with `Prefix` that does not complete to one of `Reserved`. */
export type StringExcept<Reserved extends string, Prefix extends string = ''> =
  | ('' extends Reserved ? never : Prefix extends '' ? never : Prefix)
  | `${Prefix}${Exclude<IdentifierChar, FirstChar<Reserved>>}${string}`
  | { [Head in FirstChar<Reserved>]: StringExcept<RestAfter<Reserved, Head>, `${Prefix}${Head}`> }[FirstChar<Reserved>];
