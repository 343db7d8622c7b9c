// Command stub-template is a stub generator module: it answers with a JSON
// document built from a template in its config, filled with fields of the
// request.
//
// Config:
//
//	{
//	  "template": {"status": "temporarily unavailable", "price": 0, "route": "{{route}}"},
//	  "copy": ["name", "id"],
//	  "content_type": "application/json"
//	}
//
// where:
//
//   - template (required) is a JSON object. Every string value in it, at any
//     depth, that is exactly "{{route}}", "{{subject}}" or "{{message_id}}"
//     is replaced by that field of the request.
//   - copy lists top-level keys of the request payload (a JSON object) whose
//     values are copied, unchanged, into the stub under the same key,
//     overriding the template. Keys the payload lacks are left out (or keep
//     their template value); a payload that is not a JSON object copies
//     nothing.
//   - content_type (default "application/json") is the stub's Content-Type
//     header.
//
// Every stub also carries the header X-Stub: true. The document's keys are
// sorted, so the same request always gives the same bytes. With the config
// above, a request {"name": "widget", "id": 7, "qty": 2} on route "catalog"
// gets:
//
//	{"id":7,"name":"widget","price":0,"route":"catalog","status":"temporarily unavailable"}
package main
