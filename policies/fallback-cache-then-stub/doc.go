// Command fallback-cache-then-stub is a fallback policy module: serve the
// cached value when there is one, else a stub when the route has a stub
// generator, else park the message on the dead-letter stream.
//
// Config:
//
//	{
//	  "has_stub": true   // the route has a stub generator (default false)
//	}
package main
