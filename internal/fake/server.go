package fake

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// server serves one stand-in on an ephemeral 127.0.0.1 port.
type server struct {
	srv  *http.Server
	done chan error
}

// listen serves h on 127.0.0.1:0 and returns the server and its base URL.
func listen(h http.Handler) (*server, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	s := &server{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       time.Minute,
		},
		done: make(chan error, 1),
	}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return s, "http://" + ln.Addr().String(), nil
}

// close stops accepting, waits up to 5 s for requests in flight, then
// closes what is left. The stand-ins release their held requests first.
func (s *server) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close()
	}
	return <-s.done
}
