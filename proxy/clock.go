package proxy

import "time"

// now is Options.Now, or time.Now.
func (h *Handler) now() time.Time {
	if h.opts.Now != nil {
		return h.opts.Now()
	}
	return time.Now()
}

// afterFunc is Options.AfterFunc, or time.AfterFunc.
func (h *Handler) afterFunc(d time.Duration, f func()) (stop func() bool) {
	if h.opts.AfterFunc != nil {
		return h.opts.AfterFunc(d, f)
	}
	return time.AfterFunc(d, f).Stop
}
