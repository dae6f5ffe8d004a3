package tts

import (
	"errors"
	"math/rand/v2"
	"time"
)

// redial dials until it succeeds, the client closes (nil), or the
// attempts of this outage run out; then it reports EventRedialFailed and
// waits for SendText (or Clear) to ask for another round. A swap (faseeh
// Clear) dials at once and reports nothing unless that dial fails, which
// makes it an outage like any other.
func (c *Client) redial(swapped bool) *wsConn {
	attempts := max(c.cfg.MaxRedials, 0)
	if swapped {
		attempts = max(attempts, 1)
	}
	report := !swapped
	for round := 0; ; round++ {
		var lastErr error
		for i := 0; i < attempts; i++ {
			if !(swapped && round == 0 && i == 0) && !c.sleep(c.backoff(i)) {
				return nil
			}
			conn, err := c.dialConn(c.ctx)
			if err == nil {
				c.mu.Lock()
				if c.closed {
					c.mu.Unlock()
					conn.shutdown(true)
					conn.wait()
					return nil
				}
				for _, s := range c.unspoken {
					conn.send(outItem{kind: outText, data: s.msg})
				}
				c.conn, c.gaveUp, c.audioSeen, c.since = conn, false, false, time.Now()
				c.mu.Unlock()
				if report {
					c.log.Info("tts: reconnected", "attempt", i+1)
					c.h.Event(Event{Kind: EventReconnected})
				}
				return conn
			}
			if c.ctx.Err() != nil {
				return nil
			}
			c.log.Warn("tts: redial failed", "attempt", i+1, "err", err)
			lastErr = err
			if !report {
				report = true
				c.h.Event(Event{Kind: EventDisconnected, Err: err})
			}
			if errors.Is(err, ErrAuth) {
				break // retrying a refused key is pointless
			}
		}
		if lastErr == nil {
			lastErr = networkError(c.d.name(), "redial disabled (MaxRedials < 0)", nil, "")
		}
		select { // forget wake-ups from before giving up
		case <-c.kick:
		default:
		}
		c.mu.Lock()
		c.gaveUp = true
		c.mu.Unlock()
		c.h.Event(Event{Kind: EventRedialFailed, Err: lastErr})
		select {
		case <-c.ctx.Done():
			return nil
		case <-c.kick:
		}
		attempts, report = max(c.cfg.MaxRedials, 1), true
	}
}

// backoff is RedialBackoff·2^attempt, capped at RedialMaxBackoff, ±50%.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.cfg.RedialBackoff
	for i := 0; i < attempt && d < c.cfg.RedialMaxBackoff; i++ {
		d *= 2
	}
	d = min(d, c.cfg.RedialMaxBackoff)
	return d/2 + time.Duration(rand.Int64N(int64(d)+1))
}

func (c *Client) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.ctx.Done():
		return false
	}
}
