package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The revocation scenario (issue 13): the reused-token run against a proxy
// that holds revokedSessions revoked sessions, none of them the token's,
// next to the same run against a proxy holding none. The check is on every
// request, cache hits included; the target is throughput within 2%.
const (
	scRevoked        = "reused-revoked"
	tgProxyRevoked   = "proxy-revoked"
	revokedSessions  = 10000
	revocationTarget = 0.98
)

// startRevokedProxy starts a cache-on proxy with the Clerk webhook on and
// revokes n sessions through it with signed deliveries, as Clerk would.
func startRevokedProxy(ctx context.Context, bin, dir, upstream, jwksURL, gogc string, n int) (*proc, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	extra := fmt.Sprintf("clerk_webhook:\n  path: /clerk/webhook\n  signing_secret: %q\n  max_token_lifetime: 1h\n",
		"whsec_"+base64.StdEncoding.EncodeToString(key))
	p, err := startProxy(ctx, "proxy-revoked", bin, dir, upstream, jwksURL, 10000, gogc, extra)
	if err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range n {
		id := fmt.Sprintf("msg_bench%06d", i)
		body := fmt.Sprintf(`{"data":{"id":"sess_2revoked%06d","object":"session","status":"revoked"},"object":"event","type":"session.revoked"}`, i)
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		mac := hmac.New(sha256.New, key)
		fmt.Fprintf(mac, "%s.%s.%s", id, ts, body)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url()+"/clerk/webhook", strings.NewReader(body))
		if err != nil {
			p.stop()
			return nil, err
		}
		req.Header.Set("svix-id", id)
		req.Header.Set("svix-timestamp", ts)
		req.Header.Set("svix-signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		if err != nil {
			p.stop()
			return nil, fmt.Errorf("revoke session %d through the webhook: %w", i, err)
		}
	}
	const entries = "hasura_auth_proxy_revoked_entries"
	c, err := counters(ctx, p, entries)
	if err != nil || c[entries] != float64(n) {
		p.stop()
		return nil, fmt.Errorf("proxy-revoked holds %v revoked entries (%v); want %d", c[entries], err, n)
	}
	return p, nil
}

// revocationVerdict compares, round by round, the revoked proxy's reused
// token throughput with the plain proxy's in the same scenario.
func (r *report) revocationVerdict() (verdict, bool) {
	plain, revoked := map[int]float64{}, map[int]float64{}
	for _, x := range r.Runs {
		if x.Scenario != scRevoked {
			continue
		}
		switch x.Target {
		case tgProxy:
			plain[x.Round] = x.RPS
		case tgProxyRevoked:
			revoked[x.Round] = x.RPS
		}
	}
	var ratios []float64
	for round, p := range plain {
		if v, ok := revoked[round]; ok && p > 0 {
			ratios = append(ratios, v/p)
		}
	}
	if len(ratios) == 0 {
		return verdict{}, false
	}
	m := median(ratios)
	lo, hi := ratios[0], ratios[0]
	for _, x := range ratios {
		lo, hi = min(lo, x), max(hi, x)
	}
	return verdict{
		Target:   fmt.Sprintf("reused token with %d sessions revoked: >= %.2fx the proxy without", revokedSessions, revocationTarget),
		Met:      m >= revocationTarget,
		Measured: fmt.Sprintf("%.3fx (rounds %.3f-%.3f)", m, lo, hi),
	}, true
}
