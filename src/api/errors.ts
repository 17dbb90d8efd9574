/**
 * The body of every answer of the API that is not a success (src/util/http.ts sends them): what
 * went wrong for people (`message`), and for programs a `code` that says the same as kubectl's
 * Status reasons do. A client decides on the code, never on the words, which may change.
 * Plain types, and no schema: the CLI reads them without loading the schema library, and the
 * server sends them from its error handlers (src/util/http.ts), which no response schema covers.
 */

/** The code of each status the API answers with; a status not listed is BadRequest or InternalError. */
const CODE_OF_STATUS = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  409: 'Conflict',
  413: 'RequestEntityTooLarge',
  415: 'UnsupportedMediaType',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
} as const;

export type ErrorCode = (typeof CODE_OF_STATUS)[keyof typeof CODE_OF_STATUS];

export function errorCode(status: number): ErrorCode {
  return CODE_OF_STATUS[status as keyof typeof CODE_OF_STATUS] ?? (status >= 500 ? 'InternalError' : 'BadRequest');
}

export interface ErrorBody {
  /** The kind of failure as people read it ("Not Found", "Conflict"...). */
  error: string;
  code: ErrorCode;
  message: string;
  /** The fields at fault, when a request failed its schema. */
  details?: { path: string; message: string }[];
  /** The object at fault: the Job whose spec an apply would change (Conflict). */
  object?: { kind: string; name: string };
}
