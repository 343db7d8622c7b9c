// Package render owns the per-message templates of a route: the cache key
// and the target URL. Templates are Go text/template over a view of the
// message: {{.payload.<field>}} (the payload parsed as JSON), {{.headers.<Name>}},
// {{.route}}, {{.subject}} and {{.message_id}}.
//
// A template that reads something the message does not have is an error
// (missingkey=error), never an empty string: a cache key or URL silently
// missing a part would mix up answers for different requests.
package render
