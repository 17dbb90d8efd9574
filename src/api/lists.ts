/**
 * The one shape of every answer that lists things (GET /v1/jobs, /v1/nodes, /v1/tokens...):
 * `{ items }`, with what a listing adds beside it (a page's cursor, the path listed). Routes
 * answer with ListOf's schema, clients read ListAnswer.
 */
import { Type, type TProperties, type TSchema } from 'typebox';

export interface ListAnswer<T> {
  items: T[];
}

/** The schema of a ListAnswer of `item`, with `more` properties beside `items`. */
export function ListOf<Item extends TSchema, More extends TProperties = {}>(item: Item, more: More = {} as More) {
  return Type.Object({ ...more, items: Type.Array(item) });
}
