package proxy

import (
	"encoding/hex"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
)

// accessLog writes one line per request. Nothing is built when the level is
// off.
func (h *Handler) accessLog(r *http.Request, x *exchange, status int, d time.Duration) {
	ce := h.log.Check(zapcore.InfoLevel, "request")
	if ce == nil {
		return
	}
	fields := make([]zap.Field, 0, 12)
	fields = append(fields,
		zap.String("request_id", x.rid),
		zap.String("method", r.Method),
		zap.String("path", truncatePath(r.URL.Path)),
		zap.Int("status", status),
		zap.Duration("duration", d),
		zap.String("endpoint", x.endpoint),
	)
	switch {
	case x.session != nil:
		fields = append(fields, zap.String("auth", x.session.Result), zap.String("role", x.session.Role))
		if h.opts.LogUserID && x.session.UserID != "" {
			fields = append(fields, zap.String("user_id", x.session.UserID))
		}
	case x.authErr != nil:
		fields = append(fields, zap.String("auth", auth.ResultDenied), zap.String("reason", x.authErr.Reason))
		if x.authErr.Detail != "" {
			fields = append(fields, zap.String("detail", x.authErr.Detail))
		}
	}
	if x.upErr != "" {
		fields = append(fields, zap.String("error", x.upErr))
	}
	fields = append(fields, x.extra...)
	ce.Write(fields...)
}

func truncatePath(p string) string {
	if len(p) > 256 {
		return p[:256] + "…"
	}
	return p
}

// requestID keeps a well-formed client X-Request-Id (1-128 of
// [A-Za-z0-9._:-]) and otherwise makes a new random one.
func requestID(in string) string {
	if n := len(in); n > 0 && n <= 128 {
		ok := true
		for i := 0; i < n && ok; i++ {
			c := in[i]
			ok = c == '.' || c == '_' || c == ':' || c == '-' ||
				('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
		}
		if ok {
			return in
		}
	}
	var b [16]byte
	a, c := rand.Uint64(), rand.Uint64()
	for i := 0; i < 8; i++ {
		b[i] = byte(a >> (8 * i))
		b[8+i] = byte(c >> (8 * i))
	}
	return hex.EncodeToString(b[:])
}

// copyBufferSize is the size of the reverse proxy's copy buffers.
const copyBufferSize = 32 << 10

// bufferPool lends the reverse proxy copy buffers. It pools array pointers:
// Put converts the slice back to the pointer of its array, which (unlike
// storing &v) allocates nothing.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { return new([copyBufferSize]byte) }}}
}

func (b *bufferPool) Get() []byte { return b.p.Get().(*[copyBufferSize]byte)[:] }

func (b *bufferPool) Put(v []byte) {
	if cap(v) >= copyBufferSize {
		b.p.Put((*[copyBufferSize]byte)(v[:copyBufferSize]))
	}
}
