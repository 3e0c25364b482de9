package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// The stand-in Hasura's fixed success answer: any other response body is
// counted as an error (auth failures are HTTP 200 with errors).
const successBody = `{"data":{"orders":[{"id":1,"total":"9.99","status":"paid"},{"id":2,"total":"19.50","status":"shipped"}]}}`

// graphqlBody is what every load request posts.
const graphqlBody = `{"query":"query Orders($limit: Int!) { orders(limit: $limit, order_by: {created_at: desc}) { id total status } }","variables":{"limit":10},"operationName":"Orders"}`

// Child roles run in their own processes (this binary re-executed), so the
// load generator's CPU and GC never count against them, and each has its
// own RSS. The parent passes the listening socket as fd 3.
const (
	roleUpstream  = "upstream"
	roleBare      = "bare"
	roleBareTuned = "bare-tuned"
)

// runRole serves one child role until SIGTERM or the parent's death.
func runRole(role, target string) error {
	ln, err := net.FileListener(os.NewFile(3, "listener"))
	if err != nil {
		return err
	}
	var h http.Handler
	switch role {
	case roleUpstream:
		h = newStandIn()
	case roleBare:
		u, err := url.Parse(target)
		if err != nil {
			return err
		}
		// The ceiling: a bare, untuned reverse proxy with the default
		// transport and no authentication.
		h = httputil.NewSingleHostReverseProxy(u)
	case roleBareTuned:
		u, err := url.Parse(target)
		if err != nil {
			return err
		}
		// For reference only: the same bare proxy with enough idle
		// upstream connections (the default transport keeps 2 per host,
		// so under 32 concurrent requests it keeps dialling).
		rp := httputil.NewSingleHostReverseProxy(u)
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 256
		rp.Transport = tr
		h = rp
	default:
		return errors.New("unknown role " + role)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// standIn is a fast Hasura: POST /v1/graphql answers successBody, /healthz
// answers OK, and WebSocket upgrades speak just enough of
// graphql-transport-ws (and graphql-ws) to hold idle subscriptions, which
// GET /bench/stats counts.
type standIn struct {
	subs    atomic.Int64
	sockets atomic.Int64
	up      websocket.Upgrader
}

func newStandIn() *standIn {
	return &standIn{up: websocket.Upgrader{
		Subprotocols:    []string{"graphql-transport-ws", "graphql-ws"},
		ReadBufferSize:  1024,
		WriteBufferSize: 1024,
		CheckOrigin:     func(*http.Request) bool { return true },
	}}
}

func (s *standIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case websocket.IsWebSocketUpgrade(r):
		s.serveWS(w, r)
	case r.URL.Path == "/healthz":
		_, _ = io.WriteString(w, "OK")
	case r.URL.Path == "/bench/stats":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]int64{"subscriptions": s.subs.Load(), "sockets": s.sockets.Load()})
	default:
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(successBody)))
		_, _ = io.WriteString(w, successBody)
	}
}

func (s *standIn) serveWS(w http.ResponseWriter, r *http.Request) {
	c, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	s.sockets.Add(1)
	var mine int64
	defer func() {
		s.subs.Add(-mine)
		s.sockets.Add(-1)
		_ = c.Close()
	}()
	for {
		var m struct {
			Type string `json:"type"`
			ID   string `json:"id"`
		}
		if err := c.ReadJSON(&m); err != nil {
			return
		}
		switch m.Type {
		case "connection_init":
			if err := c.WriteJSON(map[string]string{"type": "connection_ack"}); err != nil {
				return
			}
		case "subscribe", "start":
			mine++
			s.subs.Add(1)
		case "complete", "stop":
			if mine > 0 {
				mine--
				s.subs.Add(-1)
			}
		case "ping":
			if err := c.WriteJSON(map[string]string{"type": "pong"}); err != nil {
				return
			}
		}
	}
}
