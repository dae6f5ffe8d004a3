package bridge

import (
	"bufio"
	"net"
	"net/http"
	"sync"
)

// tunnels are the bot WebSockets this node forwards to other nodes. The
// reverse proxy hijacks their connections, so neither http.Server.Shutdown
// nor the calls' teardown ends them: Server.Shutdown closes them, which ends
// the proxy's copy goroutines. The zero value is ready.
type tunnels struct {
	mu sync.Mutex
	// The following fields are guarded by mu.
	conns  map[*tunnelConn]struct{}
	closed bool
}

// add tracks c; after closeAll it closes c at once.
func (ts *tunnels) add(c *tunnelConn) {
	ts.mu.Lock()
	if ts.closed {
		ts.mu.Unlock()
		_ = c.Conn.Close()
		return
	}
	if ts.conns == nil {
		ts.conns = make(map[*tunnelConn]struct{})
	}
	ts.conns[c] = struct{}{}
	ts.mu.Unlock()
}

func (ts *tunnels) remove(c *tunnelConn) {
	ts.mu.Lock()
	delete(ts.conns, c)
	ts.mu.Unlock()
}

// closeAll closes every tunnel and any hijacked later. It returns how many
// were open.
func (ts *tunnels) closeAll() int {
	ts.mu.Lock()
	ts.closed = true
	conns := ts.conns
	ts.conns = nil
	ts.mu.Unlock()
	for c := range conns {
		_ = c.Conn.Close()
	}
	return len(conns)
}

// tunnelConn is a hijacked client connection that leaves its tunnels when
// closed.
type tunnelConn struct {
	net.Conn
	ts   *tunnels
	once sync.Once
}

func (c *tunnelConn) Close() error {
	c.once.Do(func() { c.ts.remove(c) })
	return c.Conn.Close()
}

// tunnelWriter is the ResponseWriter of a forwarded WebSocket upgrade: it
// hands the reverse proxy a tracked connection when it hijacks.
type tunnelWriter struct {
	http.ResponseWriter
	ts *tunnels
}

func (w *tunnelWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	tc := &tunnelConn{Conn: conn, ts: w.ts}
	w.ts.add(tc)
	return tc, brw, nil
}

// Unwrap lets http.ResponseController reach the connection's deadlines.
func (w *tunnelWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
