package proxy

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseTrustedProxies(t *testing.T) {
	tests := []struct {
		name    string
		list    []string
		wantErr string
	}{
		{"empty", nil, ""},
		{"cidrs and addresses", []string{"10.0.0.0/8", "192.168.1.7", "::1", "fd00::/8"}, ""},
		{"unmasked cidr is masked", []string{"10.1.2.3/8"}, ""},
		{"garbage", []string{"10.0.0.0/8", "proxy.internal"}, `server.trusted_proxies[1]: "proxy.internal" is neither`},
		{"bad mask", []string{"10.0.0.0/33"}, `server.trusted_proxies[0]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTrustedProxies("server.trusted_proxies", tt.list)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("err = %v; want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v; want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestClientIP(t *testing.T) {
	tests := []struct {
		name    string
		trusted []string
		peer    string
		xff     []string
		want    string
	}{
		{"no trust: peer, whatever XFF says", nil, "127.0.0.2:5000", []string{"1.2.3.4"}, "127.0.0.2"},
		{"untrusted peer ignores XFF", []string{"10.0.0.0/8"}, "127.0.0.2:5000", []string{"1.2.3.4"}, "127.0.0.2"},
		{"trusted peer without XFF", []string{"127.0.0.0/8"}, "127.0.0.2:5000", nil, "127.0.0.2"},
		{"trusted peer, one entry", []string{"127.0.0.1"}, "127.0.0.1:5000", []string{"203.0.113.9"}, "203.0.113.9"},
		{"right-most untrusted wins over spoofed left entries", []string{"127.0.0.1", "10.0.0.0/8"},
			"127.0.0.1:5000", []string{"6.6.6.6, 203.0.113.9, 10.1.1.1"}, "203.0.113.9"},
		{"several header lines read right to left", []string{"127.0.0.1", "10.0.0.0/8"},
			"127.0.0.1:5000", []string{"6.6.6.6", "203.0.113.9", "10.2.2.2"}, "203.0.113.9"},
		{"malformed entry stops at the last good address", []string{"127.0.0.1", "10.0.0.0/8"},
			"127.0.0.1:5000", []string{"203.0.113.9, garbage, 10.3.3.3"}, "10.3.3.3"},
		{"all trusted: left-most", []string{"127.0.0.1", "10.0.0.0/8"},
			"127.0.0.1:5000", []string{"10.9.9.9, 10.3.3.3"}, "10.9.9.9"},
		{"ipv6 peer", nil, "[::1]:5000", nil, "::1"},
		{"ipv4-mapped peer is unmapped", []string{"127.0.0.1"}, "[::ffff:127.0.0.1]:5000", []string{"198.51.100.1"}, "198.51.100.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp, err := ParseTrustedProxies("server.trusted_proxies", tt.trusted)
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest("GET", "/v1/graphql", nil)
			r.RemoteAddr = tt.peer
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := tp.ClientIP(r).String(); got != tt.want {
				t.Errorf("ClientIP = %s; want %s", got, tt.want)
			}
		})
	}
}

func TestServerConfigValidatesTrustedProxies(t *testing.T) {
	c := DefaultServerConfig()
	c.TrustedProxies = []string{"10.0.0.0/8", "not-an-ip"}
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "server.trusted_proxies[1]") {
		t.Fatalf("Validate() = %v; want an error naming server.trusted_proxies[1]", err)
	}
	c.TrustedProxies = []string{"10.0.0.0/8"}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() = %v; want nil", err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.1.1.1:1"
	r.Header.Set("X-Forwarded-For", "192.0.2.1")
	if got := c.Trusted().ClientIP(r).String(); got != "192.0.2.1" {
		t.Errorf("Trusted().ClientIP = %s; want 192.0.2.1", got)
	}
}
