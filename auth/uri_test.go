package auth

import "testing"

// TestIsURI checks the RFC 3986 "URI" rule that Network.URI.parseURI (and
// so jose's StringOrURI) applies to values containing ":".
func TestIsURI(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"https://clerk.example.com", true},
		{"https://clerk.example.com/", true},
		{"https://clerk.example.com:443/path?q=1#frag", true},
		{"https://user:pw@host:8080/a/b", true},
		{"http://[::1]:3000/x", true},
		{"http://[v7.fe80::a+en1]/", true},
		{"urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66", true},
		{"user:2abc", true},
		{"mailto:a@b.c", true},
		{"x:", true},
		{"a+b-c.d:x", true},
		{"https://h/%7Euser", true},
		{"my issuer: clerk", false},
		{"user 2:abc", false},
		{":x", false},
		{"1a:x", false},
		{"a_b:x", false},
		{"https://host:port/", false},
		{"https://a@b@c/", false},
		{"http://[::1/", false},
		{"http://[::1]x/", false},
		{"http://[fe80::1%25en0]/", false},
		{"http://[1.2.3.4]/", false},
		{"https://h/a b", false},
		{"https://h/%7", false},
		{"https://h/%zz", false},
		{"https://h/#a#b", false},
		{"https://exämple.com", false},
		{"https://h/<x>", false},
		{"x:y\"z", false},
	}
	for _, tt := range tests {
		if got := isURI(tt.s); got != tt.want {
			t.Errorf("isURI(%q) = %v; want %v", tt.s, got, tt.want)
		}
	}
}
