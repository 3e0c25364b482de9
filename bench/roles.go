package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/internal/fake"
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

// newStandIn is the benchmark's Hasura: internal/fake's stand-in answering
// successBody to every query and OK on /healthz, keeping no records, and
// holding idle subscriptions on either WebSocket protocol, which GET
// /bench/stats counts.
func newStandIn() http.Handler {
	h := fake.NewHasura(fake.WithBody(successBody), fake.WithEvents(0, 0), fake.WithRecordLimit(0))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /bench/stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]int64{"subscriptions": h.Subscriptions(), "sockets": int64(h.OpenSockets())})
	})
	mux.Handle("/", h.Handler())
	return mux
}
