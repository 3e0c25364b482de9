package proxy

import (
	"context"
	"errors"
	"sync"
)

// CloseWebSockets closes every proxied WebSocket with 1001 (going away) on
// both sides, refuses new upgrades with 503, and waits until their handlers
// have finished. When ctx ends first, the remaining connections are cut
// without a close handshake and ctx's error is returned. Call it during
// shutdown alongside http.Server.Shutdown, which does not track hijacked
// connections.
func (h *Handler) CloseWebSockets(ctx context.Context) error {
	if h.websockets == nil {
		return nil
	}
	return h.websockets.closeAll(ctx)
}

func (p *wsProxy) closeAll(ctx context.Context) error {
	p.mu.Lock()
	p.closing = true
	conns := make([]*wsConn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	// In parallel: a stop may wait for a slow client to take its close.
	var stops sync.WaitGroup
	for _, c := range conns {
		stops.Add(1)
		go func() {
			defer stops.Done()
			c.stop(causeShutdown())
		}()
	}
	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		stops.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	p.mu.Lock()
	for c := range p.conns {
		c.kill()
	}
	p.mu.Unlock()
	<-done
	return ctx.Err()
}

var (
	errShuttingDown = errors.New("shutting down")
	errTooMany      = errors.New("too many connections")
)

func (p *wsProxy) register(c *wsConn) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing {
		return errShuttingDown
	}
	if len(p.conns) >= p.cfg.MaxConnections {
		return errTooMany
	}
	p.conns[c] = struct{}{}
	p.wg.Add(1)
	return nil
}

func (p *wsProxy) unregister(c *wsConn) {
	p.untrack(c)
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	p.wg.Done()
}
