package proxy

// OpenWebSockets is the number of client WebSockets this Handler holds open.
// A configuration reload keeps a replaced Handler until it reaches zero, so
// that shutdown can still close them.
func (h *Handler) OpenWebSockets() int {
	if h.websockets == nil {
		return 0
	}
	p := h.websockets
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}
