package tts

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// outKind is what the writer goroutine writes.
type outKind int

const (
	outText  outKind = iota
	outClose         // closeConnection, then a close frame, then close
)

type outItem struct {
	kind outKind
	data []byte
}

// wsConn is one WebSocket connection to the service with its two pumps:
// readPump (the only reader) and writePump (the only writer), as
// gorilla/websocket requires. Frames go to the Client's run goroutine over
// frames and come back over free, so buffers are reused.
type wsConn struct {
	c  *Client
	ws *websocket.Conn

	frames chan *frame     // readPump → run (unbuffered: wire order)
	free   chan *frame     // run → readPump (holds the two frames)
	done   chan struct{}   // closed when readPump has returned
	wdone  chan struct{}   // closed when writePump has returned
	notify chan struct{}   // cap 1: wakes writePump
	ctx    context.Context // cancelled to abort both pumps
	cancel context.CancelFunc

	mu       sync.Mutex
	queue    []outItem // guarded by mu
	spare    []outItem // guarded by mu (writePump's drained slice, reused)
	closing  bool      // guarded by mu: outClose queued
	firstErr error     // guarded by mu

	// inferred is guarded by Client.mu: a generation on this connection
	// was taken as ended by the quiet period (its audio might yet come).
	inferred bool

	// Delivery state, guarded by the Client's deliver semaphore.
	retired   bool // Clear: nothing more from this conn is delivered
	carry     byte
	hasCarry  bool
	carryRate int
}

// dialConn dials, sends initConnection and waits for connectionInitialized,
// all within cfg.InitTimeout and ctx. On success the pumps run in c.wg.
func (c *Client) dialConn(ctx context.Context) (*wsConn, error) {
	cfg := &c.cfg
	ctx, cancel := context.WithTimeout(ctx, cfg.InitTimeout)
	defer cancel()

	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, ErrInvalidConfig
	}
	header := http.Header{}
	initKey := ""
	if cfg.APIKey != "" {
		switch c.placement() {
		case AuthHeader:
			header.Set("x-api-key", cfg.APIKey)
		case AuthQuery:
			q := u.Query()
			q.Set("x-api-key", cfg.APIKey)
			u.RawQuery = q.Encode()
		case AuthInitMessage:
			initKey = cfg.APIKey
		}
	}
	d := c.d.name()
	dialer := websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		HandshakeTimeout: cfg.InitTimeout,
		ReadBufferSize:   16 << 10,
		WriteBufferSize:  4 << 10,
	}
	ws, resp, err := dialer.DialContext(ctx, u.String(), header)
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			e := &Error{Code: "http_" + strconv.Itoa(resp.StatusCode), Dialect: d, Status: resp.StatusCode,
				Message: "handshake refused: " + resp.Status, kind: ErrNetwork}
			if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
				e.kind = ErrAuth
			}
			return nil, e
		}
		if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
			return nil, networkError(d, "dial timed out", err, c.secret)
		}
		return nil, networkError(d, "dial", err, c.secret)
	}
	stop := context.AfterFunc(ctx, func() { _ = ws.NetConn().SetDeadline(time.Now()) })
	ok := false
	defer func() {
		stop()
		if !ok {
			ws.Close()
		}
	}()
	msg, err := c.d.initMsg(cfg, initKey)
	if err != nil {
		return nil, err
	}
	deadline, _ := ctx.Deadline()
	_ = ws.SetWriteDeadline(deadline)
	if err := ws.WriteMessage(websocket.TextMessage, msg); err != nil {
		return nil, networkError(d, "send initConnection", err, c.secret)
	}
	ws.SetReadLimit(cfg.ReadLimit)
	_ = ws.SetReadDeadline(deadline)
	var f frame
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			if ctx.Err() != nil {
				return nil, networkError(d, "no connectionInitialized within "+cfg.InitTimeout.String(), ctx.Err(), c.secret)
			}
			if errors.Is(err, websocket.ErrReadLimit) {
				return nil, protocolError(d, "message over the read limit of %d bytes", cfg.ReadLimit)
			}
			return nil, networkError(d, "waiting for connectionInitialized", err, c.secret)
		}
		if perr := decodeServerMessage(d, data, &f); perr != nil {
			perr.redactKey(c.secret)
			return nil, perr
		}
		switch f.kind {
		case frameInitialized:
			ok = true
		case frameError:
			f.err.redactKey(c.secret)
			return nil, f.err
		default:
			return nil, protocolError(d, "audio before connectionInitialized")
		}
		if ok {
			break
		}
	}
	if !stop() {
		// The deadline was already forced to now by ctx's end.
		ok = false
		return nil, networkError(d, "no connectionInitialized within "+cfg.InitTimeout.String(), ctx.Err(), c.secret)
	}
	_ = ws.SetReadDeadline(time.Time{})
	_ = ws.SetWriteDeadline(time.Time{})

	wc := &wsConn{
		c:      c,
		ws:     ws,
		frames: make(chan *frame),
		free:   make(chan *frame, 2),
		done:   make(chan struct{}),
		wdone:  make(chan struct{}),
		notify: make(chan struct{}, 1),
	}
	wc.ctx, wc.cancel = context.WithCancel(context.Background())
	wc.free <- new(frame)
	wc.free <- new(frame)
	c.wg.Add(2)
	go wc.readPump()
	go wc.writePump()
	return wc, nil
}

// placement resolves AuthDefault to the dialect's documented default.
func (c *Client) placement() AuthPlacement {
	if c.cfg.Auth != AuthDefault {
		return c.cfg.Auth
	}
	if c.d.name() == DialectMunsit {
		return AuthInitMessage
	}
	return AuthHeader
}

// setErr records the first error of the connection.
func (wc *wsConn) setErr(err error) {
	wc.mu.Lock()
	if wc.firstErr == nil {
		wc.firstErr = err
	}
	wc.mu.Unlock()
}

func (wc *wsConn) err() error {
	wc.mu.Lock()
	defer wc.mu.Unlock()
	return wc.firstErr
}

// send queues an item for writePump. It never blocks.
func (wc *wsConn) send(it outItem) {
	wc.mu.Lock()
	if !wc.closing {
		wc.queue = append(wc.queue, it)
		if it.kind == outClose {
			wc.closing = true
		}
	}
	wc.mu.Unlock()
	select {
	case wc.notify <- struct{}{}:
	default:
	}
}

// shutdown ends the connection: gracefully (closeConnection and a close
// frame after what is queued) or at once. It does not wait; see wait.
func (wc *wsConn) shutdown(graceful bool) {
	if graceful {
		wc.send(outItem{kind: outClose})
		return
	}
	wc.cancel()
}

// wait waits for both pumps, forcing them down if a graceful close stalls.
func (wc *wsConn) wait() {
	select {
	case <-wc.wdone:
	case <-time.After(wc.c.cfg.WriteTimeout + time.Second):
		wc.cancel()
		<-wc.wdone
	}
	wc.cancel()
	wc.ws.Close() // unblocks readPump
	<-wc.done
}

// retireGrace bounds how long a connection retired by Clear is given to
// close (see retire).
const retireGrace = 2 * time.Second

// retire ends a connection retired by Clear without losing what was sent
// on it: the writer sends what is queued (munsit's clear, closeConnection,
// the close frame) and the reader keeps reading, discarding, until the
// service closes, retireGrace passes or ctx ends. Closing at once could
// reset the connection while the service's audio sits unread, and a reset
// may discard the clear before the service reads it.
func (wc *wsConn) retire(ctx context.Context) {
	t := time.NewTimer(retireGrace)
	defer t.Stop()
drain:
	for {
		select {
		case f := <-wc.frames:
			wc.free <- f
		case <-wc.done:
			break drain
		case <-t.C:
			break drain
		case <-ctx.Done():
			break drain
		}
	}
	wc.cancel()
	<-wc.wdone
	wc.ws.Close()
	<-wc.done
}

// readPump is the connection's only reader.
func (wc *wsConn) readPump() {
	defer wc.c.wg.Done()
	defer close(wc.done)
	cfg := &wc.c.cfg
	d := wc.c.d.name()
	ws := wc.ws
	ws.SetReadLimit(cfg.ReadLimit)
	wait := 2 * cfg.PingInterval
	ws.SetPongHandler(func(string) error {
		return ws.SetReadDeadline(time.Now().Add(wait))
	})
	var raw []byte
	for {
		var f *frame
		select {
		case f = <-wc.free:
		case <-wc.ctx.Done():
			return
		}
		_ = ws.SetReadDeadline(time.Now().Add(wait))
		_, r, err := ws.NextReader()
		if err == nil {
			raw, err = readAll(r, raw[:0])
		}
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				err = protocolError(d, "message over the read limit of %d bytes", cfg.ReadLimit)
			} else {
				err = networkError(d, "read", err, wc.c.secret)
			}
			wc.setErr(err)
			wc.cancel() // stops writePump
			return
		}
		f.perr = decodeServerMessage(d, raw, f)
		f.perr.redactKey(wc.c.secret)
		f.err.redactKey(wc.c.secret)
		select {
		case wc.frames <- f:
		case <-wc.ctx.Done():
			return
		}
	}
}

// readAll appends r's content to buf, growing it only when needed.
func readAll(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			nb := make([]byte, len(buf), max(4096, 2*cap(buf)))
			copy(nb, buf)
			buf = nb
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// writePump is the connection's only writer: text, keepalive pings and
// the close all go through it.
func (wc *wsConn) writePump() {
	defer wc.c.wg.Done()
	defer close(wc.wdone)
	closeSent := false
	defer func() {
		if !closeSent {
			wc.ws.Close() // unblocks readPump; after a close frame it waits for the peer's
		}
	}()
	cfg := &wc.c.cfg
	d := wc.c.d.name()
	ws := wc.ws
	tick := time.NewTicker(cfg.PingInterval)
	defer tick.Stop()
	fail := func(what string, err error) {
		wc.setErr(networkError(d, what, err, wc.c.secret))
		wc.cancel()
	}
	for {
		select {
		case <-wc.ctx.Done():
			return
		case <-tick.C:
			if err := ws.WriteControl(websocket.PingMessage, []byte("k"), time.Now().Add(cfg.WriteTimeout)); err != nil {
				fail("ping", err)
				return
			}
			continue
		case <-wc.notify:
		}
		wc.mu.Lock()
		items := wc.queue
		wc.queue = wc.spare[:0]
		wc.mu.Unlock()
		for i, it := range items {
			deadline := time.Now().Add(cfg.WriteTimeout)
			var err error
			switch it.kind {
			case outText:
				_ = ws.SetWriteDeadline(deadline)
				err = ws.WriteMessage(websocket.TextMessage, it.data)
			case outClose:
				_ = ws.SetWriteDeadline(deadline)
				if err = ws.WriteMessage(websocket.TextMessage, wc.c.d.closeMsg()); err == nil {
					err = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), deadline)
				}
				wc.setErr(net.ErrClosed)
				closeSent = err == nil
				if !closeSent {
					wc.cancel()
				}
				return
			}
			items[i] = outItem{}
			if err != nil {
				fail("write", err)
				return
			}
		}
		wc.mu.Lock()
		wc.spare = items[:0]
		wc.mu.Unlock()
	}
}
