package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// subsResult is the idle-subscription memory of one target.
type subsResult struct {
	Target   string  `json:"target"`
	Opened   int     `json:"opened"`
	RSSBefKB int64   `json:"rss_before_kib"`
	RSSAftKB int64   `json:"rss_after_kib"`
	PerSubKB float64 `json:"per_subscription_kib"`
	Error    string  `json:"error,omitempty"`
}

// upstreamSubs asks the stand-in how many subscriptions it holds.
func upstreamSubs(ctx context.Context, up *proc) (int64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, up.url()+"/bench/stats", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var s struct{ Subscriptions int64 }
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return 0, err
	}
	return s.Subscriptions, nil
}

// waitSubs polls the stand-in until it holds want subscriptions.
func waitSubs(ctx context.Context, up *proc, want int64, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		n, err := upstreamSubs(ctx, up)
		if err == nil && n == want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stand-in holds %d subscriptions, want %d (last error %v)", n, want, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// openSub opens one graphql-transport-ws subscription through target and
// leaves it idle; the returned connection is read until it closes.
func openSub(ctx context.Context, target, token string) (*websocket.Conn, error) {
	d := websocket.Dialer{
		Subprotocols:     []string{"graphql-transport-ws"},
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   1024,
		WriteBufferSize:  1024,
	}
	url := "ws://" + target + "/v1/graphql"
	c, resp, err := d.DialContext(ctx, url, http.Header{"Origin": {benchAZP}})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial %s: %w (HTTP %d)", url, err, resp.StatusCode)
		}
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	init := map[string]any{"type": "connection_init", "payload": map[string]any{
		"headers": map[string]string{"Authorization": "Bearer " + token}}}
	if err := c.WriteJSON(init); err != nil {
		_ = c.Close()
		return nil, err
	}
	var ack struct{ Type string }
	if err := c.ReadJSON(&ack); err != nil || ack.Type != "connection_ack" {
		_ = c.Close()
		return nil, fmt.Errorf("connection_init answered %q: %v", ack.Type, err)
	}
	sub := map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{
		"query": "subscription { orders(limit: 10) { id status } }"}}
	if err := c.WriteJSON(sub); err != nil {
		_ = c.Close()
		return nil, err
	}
	_ = c.SetReadDeadline(time.Time{})
	go func() {
		for {
			if _, _, err := c.NextReader(); err != nil {
				return
			}
		}
	}()
	return c, nil
}

// measureSubs opens n idle subscriptions through target (a fresh process,
// pid) and reports (RSS after - RSS before) / n. The stand-in (up) must
// count all n before the second reading. Every socket is closed on return.
func measureSubs(ctx context.Context, name string, target *proc, up *proc, token string, n int) subsResult {
	res := subsResult{Target: name}
	fail := func(err error) subsResult { res.Error = err.Error(); return res }
	base, err := upstreamSubs(ctx, up)
	if err != nil {
		return fail(err)
	}
	// One subscription first so the WebSocket code paths are paged in
	// before the baseline.
	warm, err := openSub(ctx, target.addr, token)
	if err != nil {
		return fail(err)
	}
	if err := waitSubs(ctx, up, base+1, 10*time.Second); err != nil {
		_ = warm.Close()
		return fail(err)
	}
	time.Sleep(500 * time.Millisecond) // settle: no condition to wait on for RSS
	_, res.RSSBefKB, err = memKB(target.pid())
	if err != nil {
		_ = warm.Close()
		return fail(err)
	}

	conns := make([]*websocket.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
		_ = warm.Close()
		_ = waitSubs(ctx, up, base, 15*time.Second)
	}()
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		sem      = make(chan struct{}, 32)
	)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			c, err := openSub(ctx, target.addr, token)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			conns = append(conns, c)
		}()
	}
	wg.Wait()
	res.Opened = len(conns)
	if firstErr != nil {
		return fail(fmt.Errorf("%d of %d opened; first error: %w", len(conns), n, firstErr))
	}
	if err := waitSubs(ctx, up, base+1+int64(n), 30*time.Second); err != nil {
		return fail(err)
	}
	time.Sleep(time.Second)
	_, res.RSSAftKB, err = memKB(target.pid())
	if err != nil {
		return fail(err)
	}
	res.PerSubKB = float64(res.RSSAftKB-res.RSSBefKB) / float64(n)
	return res
}
