// Command classify-json-error is a classify policy module: it judges the
// target's answer by its status and, for a 2xx, by an error field in its
// JSON body, so that a 200 saying {"error": "quota exceeded"} is a failure,
// and a status the route lists (a 409 on an idempotent create) a success.
//
// Rules, in order:
//
//  1. A status listed in success_statuses: success.
//  2. A 2xx whose body is a JSON object with error_field set to anything
//     but null, false, "", [] or {}: a failure, retryable or permanent as
//     body_errors says. The reason names the field and quotes the start of
//     its value (at most 64 bytes of its JSON).
//  3. Any other 2xx (no such field, a body that is not a JSON object): success.
//  4. 408, 429 and 5xx: a retryable failure.
//  5. Any other status (1xx, 3xx, 4xx, above 599): a permanent failure.
//
// An answer without a status (ResponseStatus 0: a NATS target) is judged by
// rule 2 only: a failure when its body reports an error, else a success.
//
// Config (every field optional):
//
//	{
//	  "error_field": "error",        // the top-level key of the body that reports an error (default "error")
//	  "success_statuses": [409],     // statuses that are a success whatever the body (default none)
//	  "body_errors": "retryable"     // verdict on a body error: "retryable" (default) or "permanent"
//	}
package main
