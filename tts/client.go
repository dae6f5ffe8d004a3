package tts

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// segment is one text message sent (or queued) whose generation has not
// ended yet: it is sent again after a redial, unless its generation was
// cut after some of its audio was delivered (see EventInterrupted).
type segment struct {
	msg     []byte
	text    string
	trigger bool
}

// Client is a streaming TTS WebSocket client for one call. SendText, Clear
// and Close may be called from any goroutine. Handler methods run on one
// goroutine owned by the Client.
//
// Goroutines: run (dispatches to the Handler and redials), per
// connection readPump and writePump, and per connection retired by Clear
// one that lets it close (retire); Close waits for all of them.
type Client struct {
	cfg ClientConfig
	d   dialect
	h   Handler
	log *slog.Logger
	// secret is cfg.secret(): redacted from every error and log line.
	secret string

	ctx     context.Context // the client's lifetime; cancelled by Close
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	once    sync.Once
	kick    chan struct{} // cap 1: wakes run (new trigger, Clear, SendText after giving up)
	deliver chan struct{} // cap 1 semaphore: held while checking and delivering audio, and by Clear

	mu          sync.Mutex
	conn        *wsConn   // guarded by mu: current connection; nil while (re)dialing
	closed      bool      // guarded by mu
	gaveUp      bool      // guarded by mu: redials exhausted; next SendText redials
	swap        bool      // guarded by mu: Clear retired conn; dial a fresh one
	unspoken    []segment // guarded by mu: sent text whose generation has not ended
	outstanding int       // guarded by mu: flushed/triggered generations not ended
	since       time.Time // guarded by mu: start of the oldest outstanding wait
	audioSeen   bool      // guarded by mu: audio arrived since since
	sendsFinal  bool      // guarded by mu: the service sends isFinal (faseeh: assumed)
}

// Dial validates cfg, connects, sends initConnection and waits for
// connectionInitialized (within cfg.InitTimeout and ctx). ctx bounds only
// the dial; the Client lives until Close.
//
// A refusal by the service is returned as a *Error (wrapping ErrAuth for
// an auth refusal) with the service's code and message; a bad cfg as a
// *FieldError or an error wrapping ErrInvalidConfig.
func Dial(ctx context.Context, cfg ClientConfig, h Handler) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, &FieldError{Field: "handler", Message: "required"}
	}
	cfg = cfg.withDefaults()
	c := &Client{
		cfg:     cfg,
		d:       dialectFor(cfg.Dialect),
		h:       h,
		log:     cfg.Logger.With("tts_url", redactURL(cfg.URL, cfg.APIKey), "dialect", string(cfg.Dialect)),
		kick:    make(chan struct{}, 1),
		deliver: make(chan struct{}, 1),
		secret:  cfg.secret(),
	}
	// Faseeh's seed documents isFinal: trust it from the start.
	c.sendsFinal = c.d.name() == DialectFaseeh
	c.ctx, c.cancel = context.WithCancel(context.Background())
	conn, err := c.dialConn(ctx)
	if err != nil {
		c.cancel()
		c.wg.Wait()
		c.log.Warn("tts: dial failed", "err", err)
		return nil, err
	}
	c.log.Debug("tts: connected")
	c.conn = conn
	c.wg.Add(1)
	go c.run(conn)
	return c, nil
}

// SendText appends text to the service's buffer, exactly as the seeds
// describe: munsit gets flush and try_trigger_generation as given; faseeh
// gets try_trigger_generation = flush || tryTrigger (it has no flush).
//
// It never blocks on the network. While the connection is down the text is
// queued and sent after the redial, together with any text whose
// generation had not started (no text is lost). A generation cut after
// some of its audio was delivered is not sent again (that would repeat
// words already heard): it is reported as EventInterrupted with its text.
// If redials were given up, SendText starts a new round. It returns
// ErrClosed after Close, or ctx.Err().
func (c *Client) SendText(ctx context.Context, text string, flush, tryTrigger bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	msg, err := c.d.textMsg(text, flush, tryTrigger)
	if err != nil {
		return err
	}
	seg := segment{msg: msg, text: text, trigger: c.d.triggers(flush, tryTrigger)}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.unspoken = append(c.unspoken, seg)
	if seg.trigger {
		if c.outstanding == 0 {
			c.since, c.audioSeen = time.Now(), false
		}
		c.outstanding++
	}
	if c.conn != nil {
		c.conn.send(outItem{kind: outText, data: msg})
	}
	wake := seg.trigger || c.gaveUp
	c.mu.Unlock()
	if wake {
		c.wake()
	}
	return nil
}

// Clear is barge-in: it empties the service's text buffer and stops the
// current generation. After Clear returns, no audio of text sent before it
// reaches Handler.Audio, and no GenerationEnd is reported for it.
//
// It does so by construction, whatever the service does after it reads the
// clear (answer late, keep streaming, answer pings from its read loop): the
// connection is retired, so nothing more read from it is delivered, and a
// fresh one is dialed at once; text sent meanwhile waits for it. Munsit is
// first sent {"type":"clear"} on the old connection, for the service's
// sake (its seed defines it), then both dialects get closeConnection and a
// close frame. Faseeh has no clear message. When nothing can be in flight
// (no text since the last clear or end, and every generation on the
// connection ended with isFinal, not by inference) the connection is kept:
// munsit then only gets the clear.
//
// Clear never waits on the network. It waits for a Handler.Audio call in
// progress to return (so a blocking Audio must be unblocked by the
// caller, e.g. by cancelling the context its Write waits on); ctx bounds
// that wait.
func (c *Client) Clear(ctx context.Context) error {
	select {
	case c.deliver <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-c.deliver }()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	idle := len(c.unspoken) == 0 && c.outstanding == 0
	c.unspoken, c.outstanding, c.audioSeen = nil, 0, false
	conn := c.conn
	keep := conn != nil && idle && !conn.inferred
	if conn != nil && !keep {
		conn.retired = true
		conn.hasCarry = false
		c.conn, c.swap = nil, true
	}
	c.mu.Unlock()
	if conn != nil {
		if m := c.d.clearMsg(); m != nil {
			conn.send(outItem{kind: outText, data: m})
		}
		if !keep {
			conn.shutdown(true) // closeConnection after the clear
		}
	}
	c.wake()
	return nil
}

// Close sends closeConnection, closes the connection and waits for every
// goroutine of the Client. It is idempotent and always returns nil. It must
// not be called from a Handler method, and a Handler blocked in Audio must
// be unblocked for it to return.
func (c *Client) Close() error {
	c.once.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		c.cancel()
		c.wg.Wait()
		c.log.Debug("tts: closed")
	})
	return nil
}

func (c *Client) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// run owns the connection's lifecycle and every Handler call.
func (c *Client) run(conn *wsConn) {
	defer c.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		err := c.serve(conn, timer)
		c.mu.Lock()
		swapped := c.swap
		c.swap = false
		if c.conn == conn {
			c.conn = nil
		}
		c.mu.Unlock()
		// Graceful (closeConnection) on Close and on a swap; a lost
		// connection is just torn down. A swapped one closes in the
		// background while the fresh one is dialed.
		if swapped && c.ctx.Err() == nil {
			conn.shutdown(true)
			old := conn
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				old.retire(c.ctx)
			}()
		} else {
			conn.shutdown(swapped || c.ctx.Err() != nil)
			conn.wait()
		}
		if c.ctx.Err() != nil {
			return
		}
		if !swapped {
			c.log.Warn("tts: connection lost", "err", err)
			c.h.Event(Event{Kind: EventDisconnected, Err: err})
			c.interrupted()
		}
		if conn = c.redial(swapped); conn == nil {
			return
		}
	}
}

var errSwapped = errors.New("tts: connection retired by Clear")

// serve dispatches conn's frames to the Handler until conn ends, the
// client closes, or a Clear retires it.
func (c *Client) serve(conn *wsConn, timer *time.Timer) error {
	c.arm(timer)
	for {
		select {
		case <-c.ctx.Done():
			return ErrClosed
		case f := <-conn.frames:
			c.handle(conn, f, timer)
			conn.free <- f
		case <-conn.done:
			if err := conn.err(); err != nil {
				var e *Error
				if errors.As(err, &e) && errors.Is(e, ErrProtocol) {
					c.h.Event(Event{Kind: EventError, Err: e})
				}
				return err
			}
			return networkError(c.d.name(), "connection closed", nil, "")
		case <-c.kick:
			c.mu.Lock()
			retired := c.conn != conn
			c.mu.Unlock()
			if retired {
				return errSwapped
			}
			c.arm(timer)
		case <-timer.C:
			c.mu.Lock()
			c.sendsFinal = false // it did not, this time: infer from now on
			c.mu.Unlock()
			c.endGeneration(true)
			c.arm(timer)
		}
	}
}

// handle processes one frame on the run goroutine.
func (c *Client) handle(conn *wsConn, f *frame, timer *time.Timer) {
	if f.perr != nil {
		c.log.Warn("tts: bad message from service", "err", f.perr)
		c.h.Event(Event{Kind: EventError, Err: f.perr})
		c.deliver <- struct{}{}
		conn.hasCarry = false
		<-c.deliver
		return
	}
	switch f.kind {
	case frameInitialized:
		return // a repeat is harmless
	case frameError:
		c.log.Warn("tts: service error", "code", f.err.Code, "message", f.err.Message)
		c.mu.Lock()
		c.sendsFinal = false // a failed generation may never send isFinal
		c.mu.Unlock()
		c.h.Event(Event{Kind: EventError, Err: f.err})
		c.arm(timer)
		return
	}
	// frameAudio.
	c.deliver <- struct{}{}
	if conn.retired {
		<-c.deliver
		return // audio of a cleared generation
	}
	pcm := f.pcm
	if len(pcm) > 0 {
		if conn.hasCarry {
			if conn.carryRate == f.rate {
				f.buf[0] = conn.carry
				pcm = f.buf[:1+len(pcm)]
			}
			conn.hasCarry = false
		}
		if len(pcm)%2 == 1 {
			conn.carry, conn.hasCarry, conn.carryRate = pcm[len(pcm)-1], true, f.rate
			pcm = pcm[:len(pcm)-1]
		}
		if len(pcm) > 0 {
			c.h.Audio(pcm, f.rate)
		}
	}
	if f.final {
		conn.hasCarry = false // a generation's dangling byte has no partner
	}
	<-c.deliver
	c.mu.Lock()
	if len(f.pcm) > 0 {
		c.audioSeen = true
		c.since = time.Now()
	}
	if f.final {
		c.sendsFinal = true
	}
	c.mu.Unlock()
	if f.final {
		c.endGeneration(false)
	}
	c.arm(timer)
}

// endGeneration reports the end of the oldest outstanding generation, or
// of every outstanding one when inferred by the timer (the service was
// quiet: whatever it was asked for has been said), one GenerationEnd per
// generation, in order. It forgets their text. The calls are made under
// the deliver semaphore, so a Clear either precedes them (and they are not
// made) or waits for them.
func (c *Client) endGeneration(inferred bool) {
	c.deliver <- struct{}{}
	defer func() { <-c.deliver }()
	c.mu.Lock()
	if c.outstanding == 0 {
		c.mu.Unlock()
		return
	}
	n := 1
	if inferred {
		n = c.outstanding
		if c.conn != nil {
			c.conn.inferred = true
		}
	}
	n = min(n, c.outstanding)
	for range n {
		c.dropOldest()
	}
	c.since, c.audioSeen = time.Now(), false
	c.mu.Unlock()
	for range n {
		c.h.GenerationEnd()
	}
}

// dropOldest forgets the oldest outstanding generation: its text up to and
// including its trigger. It returns that text. Called with mu held and
// outstanding > 0.
func (c *Client) dropOldest() string {
	c.outstanding--
	var b strings.Builder
	for i, s := range c.unspoken {
		b.WriteString(s.text)
		if s.trigger {
			c.unspoken = c.unspoken[i+1:]
			break
		}
	}
	return b.String()
}

// interrupted handles the generation a lost connection cut: when some of
// the oldest outstanding generation's audio was delivered, it is not sent
// again; the Handler gets EventInterrupted with its text, then its
// GenerationEnd (the audio it did deliver plays to its end). Called on the
// run goroutine after the connection ended.
func (c *Client) interrupted() {
	c.deliver <- struct{}{}
	defer func() { <-c.deliver }()
	c.mu.Lock()
	if c.outstanding == 0 || !c.audioSeen {
		c.mu.Unlock()
		return
	}
	text := c.dropOldest()
	c.since, c.audioSeen = time.Now(), false
	c.mu.Unlock()
	c.log.Warn("tts: generation cut mid-way; not spoken again", "bytes", len(text))
	c.h.Event(Event{Kind: EventInterrupted, Text: text,
		Err: networkError(c.d.name(), "connection lost during the generation", nil, "")})
	c.h.GenerationEnd()
}

// arm sets timer to the moment the oldest outstanding generation is taken
// as ended: QuietPeriod after its last audio, FirstAudioTimeout after its
// trigger if no audio came. When the service sends isFinal (faseeh's seed
// says it does; munsit once one was seen) the quiet period is only a
// safety net of FirstAudioTimeout.
func (c *Client) arm(timer *time.Timer) {
	c.mu.Lock()
	on := c.outstanding > 0
	var at time.Time
	if c.audioSeen {
		quiet := c.cfg.QuietPeriod
		if c.sendsFinal {
			quiet = max(quiet, c.cfg.FirstAudioTimeout)
		}
		at = c.since.Add(quiet)
	} else {
		at = c.since.Add(c.cfg.FirstAudioTimeout)
	}
	c.mu.Unlock()
	timer.Stop()
	select { // Go ≥1.23 timers need no drain, but a stale tick must not fire
	case <-timer.C:
	default:
	}
	if on {
		timer.Reset(time.Until(at))
	}
}
