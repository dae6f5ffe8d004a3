package sip

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestBotDialerQueryAndRedaction(t *testing.T) {
	got := make(chan url.Values, 1)
	auth := make(chan string, 2)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.Query()
		u, p, _ := r.BasicAuth()
		auth <- u + ":" + p
		c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		c.Close()
	}))
	defer hs.Close()
	base := "ws://bot:hunter2@" + strings.TrimPrefix(hs.URL, "http://") + "/calls?token=s3cr3t&keep=1"
	d, err := NewBotDialer(base)
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{"hunter2", "s3cr3t"} {
		if strings.Contains(d.String(), leak) {
			t.Errorf("String() %q leaks %q", d.String(), leak)
		}
	}
	if !strings.Contains(d.String(), "keep=1") {
		t.Errorf("String() %q dropped a harmless parameter", d.String())
	}
	conn, err := d.Dial(context.Background(), BotCall{CallID: "c1", From: "sip:alice@example.com", To: "sip:bot@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	q := <-got
	if a := <-auth; a != "bot:hunter2" {
		t.Errorf("Basic auth %q, want the URL's userinfo", a)
	}
	for k, want := range map[string]string{"call_id": "c1", "from": "sip:alice@example.com", "to": "sip:bot@example.com", "listen": "pcm_16000", "token": "s3cr3t", "keep": "1"} {
		if q.Get(k) != want {
			t.Errorf("query %s=%q, want %q", k, q.Get(k), want)
		}
	}

	// A URL that sets listen keeps it.
	d2, _ := NewBotDialer(strings.Replace(hs.URL, "http", "ws", 1) + "/?listen=pcm_8000")
	conn, err = d2.Dial(context.Background(), BotCall{CallID: "c2"})
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	<-auth
	if q := <-got; q.Get("listen") != "pcm_8000" {
		t.Errorf("listen %q, want the URL's pcm_8000", q.Get("listen"))
	}
}

func TestBotDialerErrors(t *testing.T) {
	for _, bad := range []string{"http://bot/", "ws://", "::", "bot:5000"} {
		if _, err := NewBotDialer(bad); !errors.Is(err, ErrBadBotURL) {
			t.Errorf("%q: %v, want ErrBadBotURL", bad, err)
		}
	}

	// Refused: 403. The error names the status but no secret.
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusForbidden)
	}))
	defer hs.Close()
	d, _ := NewBotDialer("ws://u:pw-secret@" + strings.TrimPrefix(hs.URL, "http://") + "/?api_key=k-secret")
	_, err := d.Dial(context.Background(), BotCall{CallID: "c"})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "403") {
		t.Fatalf("refused: %v, want ErrUnavailable naming 403", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Fatalf("error leaks a secret: %v", err)
	}

	// Silent: a TCP listener that never answers the handshake times out.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	d, _ = NewBotDialer("ws://" + l.Addr().String() + "/?token=t-secret")
	d.Timeout = 200 * time.Millisecond
	start := time.Now()
	_, err = d.Dial(context.Background(), BotCall{CallID: "c"})
	if !errors.Is(err, ErrUnavailable) || strings.Contains(err.Error(), "t-secret") {
		t.Fatalf("silent bot: %v", err)
	}
	if e := time.Since(start); e > 5*time.Second {
		t.Fatalf("silent bot took %v, want about the 200 ms timeout", e)
	}
	l.Close()
	if c, ok := <-accepted; ok {
		c.Close()
	}
}
