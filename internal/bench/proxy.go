package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

// ServeReverseProxy serves a plain net/http/httputil reverse proxy to
// target on addr until ctx ends. It has no MCP logic at all: benchmarks run
// it beside the gateway, in the same run, to calibrate what a proxy hop
// costs on the machine at hand.
func ServeReverseProxy(ctx context.Context, addr, target string, ready func(net.Addr)) error {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return fmt.Errorf("invalid target URL %q", target)
	}
	p := httputil.NewSingleHostReverseProxy(u)
	p.FlushInterval = -1 // stream SSE responses as they come
	p.ErrorLog = nil
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	if ready != nil {
		ready(ln.Addr())
	}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
