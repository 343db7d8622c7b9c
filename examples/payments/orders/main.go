// Command orders is the payments example's order service: it places an
// order every --every through Breakwater's sync path with a 1s deadline and
// prints how each was answered (captured, queued by the stub, or an error),
// how long it took, and the breaker's hint when it is open.
//
//	go run ./examples/payments/orders --nats nats://127.0.0.1:4223
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/breakwater-dev/breakwater/host/client"
)

func main() {
	url := flag.String("nats", "nats://127.0.0.1:4223", "NATS URL of the runtime")
	every := flag.Duration("every", 200*time.Millisecond, "time between orders")
	count := flag.Int("count", 300, "orders to place")
	deadline := flag.Duration("deadline", time.Second, "deadline of each order's payment")
	flag.Parse()
	nc, err := nats.Connect(*url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "connect:", err)
		os.Exit(1)
	}
	defer nc.Close()
	c, err := client.New(nc)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	late := 0
	for i := 1; i <= *count; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), *deadline)
		t0 := time.Now()
		res, err := c.Call(ctx, "payments", fmt.Appendf(nil, `{"order":%d,"amount":42}`, i), client.WithID(fmt.Sprintf("order-%d", i)))
		took := time.Since(t0)
		cancel()
		if took > *deadline {
			late++
		}
		var ce *client.CallError
		switch {
		case errors.As(err, &ce):
			fmt.Printf("order %4d  %6.0fms  ERROR %d %s: %s\n", i, ms(took), ce.Status, ce.Kind, ce.Message)
		case err != nil:
			fmt.Printf("order %4d  %6.0fms  NO ANSWER: %v\n", i, ms(took), err)
		default:
			note := ""
			if res.ErrorKind != "" {
				note = "  (" + res.ErrorKind + ")"
			}
			fmt.Printf("order %4d  %6.0fms  %-7s %s%s\n", i, ms(took), res.Outcome, bytes.TrimSpace(res.Payload), note)
		}
		time.Sleep(*every)
	}
	fmt.Printf("%d orders, %d answered after the %v deadline\n", *count, late, *deadline)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
