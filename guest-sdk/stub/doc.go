// Package stub makes a module a stub generator: importing it adds the bw_stub
// export (ABI v1) to the module, and Handle registers the function it runs.
//
// The host calls bw_stub when a route's fallback serves a stub: the payload
// and headers returned stand in for the target's response.
//
//	func init() {
//		stub.Handle(func(in *guest.Input) guest.Stub {
//			return guest.Stub{
//				Payload: []byte(`{"status":"temporarily unavailable"}`),
//				Headers: map[string]string{"Content-Type": "application/json", "X-Stub": "true"},
//			}
//		})
//	}
package stub
