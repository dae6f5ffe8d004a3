package main

import (
	"context"
	"log/slog"
	"time"
)

// drainer is the part of *bridge.Server a fleet node drains with.
type drainer interface {
	Drain(ctx context.Context) error
}

// drainShare is the part of -shutdown-timeout a fleet node's calls get to
// end by themselves (their bots hang up) before the rest of the timeout
// ends them with reason "shutdown".
const drainShare = 0.75

// drainFirst puts a drain in front of the shutdown of a fleet node: it
// returns a context that ends once parent has ended (the signal) and b has
// drained (its calls ended, or drainShare of timeout passed), and the time
// left for the shutdown proper. While b drains, the HTTP server keeps
// serving: /healthz answers 503 "draining", new calls go to other nodes, the
// calls held here stay reachable. stop releases the drain if parent never
// ends; it must be called.
func drainFirst(parent context.Context, b drainer, timeout time.Duration, log *slog.Logger) (ctx context.Context, left time.Duration, stop func()) {
	drainFor := time.Duration(float64(timeout) * drainShare)
	ctx, cancel := context.WithCancel(context.Background())
	stopAfter := context.AfterFunc(parent, func() {
		defer cancel()
		log.Info("draining", "for", drainFor)
		dctx, dcancel := context.WithTimeout(context.Background(), drainFor)
		defer dcancel()
		if err := b.Drain(dctx); err != nil {
			log.Info("drain time over; ending the calls left")
		}
	})
	return ctx, timeout - drainFor, func() {
		stopAfter()
		cancel()
	}
}
