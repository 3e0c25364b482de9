package proxy

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestHasuraCloseReason follows encodeServerErrorMsg in Hasura's
// server/src-lib/Hasura/GraphQL/Transport/WebSocket/Protocol.hs: the
// ServerErrorMsg record as JSON (hasuraJSON drops the "un" prefix of
// unServerErrorMsg and snake-cases the rest), the text escaped as aeson does.
func TestHasuraCloseReason(t *testing.T) {
	long := strings.Repeat("é", 60)
	tests := []struct {
		code int
		text string
		want string
	}{
		{4403, "Forbidden", `{"server_error_msg":"4403: Forbidden"}`},
		{4401, "Unauthorized", `{"server_error_msg":"4401: Unauthorized"}`},
		{4408, "Connection initialisation timeout", `{"server_error_msg":"4408: Connection initialisation timeout"}`},
		{4429, "Too many requests", `{"server_error_msg":"4429: Too many requests"}`},
		{4400, "Connection initialization failed: Could not verify JWT: JWTExpired",
			`{"server_error_msg":"4400: Connection initialization failed: Could not verify JWT: JWTExpired"}`},
		{4400, "a\"b\\c\nd\x01<&>\u2028", `{"server_error_msg":"4400: a\"b\\c\nd\u0001<&>` + "\u2028" + `"}`},
		// Cut on a character, never inside an escape, to fit 123 bytes.
		{4400, long, `{"server_error_msg":"4400: ` + strings.Repeat("é", 47) + `"}`},
		{4400, strings.Repeat(`"`, 60), `{"server_error_msg":"4400: ` + strings.Repeat(`\"`, 47) + `"}`},
		{4400, "bad \xff byte", `{"server_error_msg":"4400: bad ` + "\ufffd" + ` byte"}`},
	}
	for _, tt := range tests {
		got := hasuraCloseReason(tt.code, tt.text)
		if got != tt.want {
			t.Errorf("hasuraCloseReason(%d, %q) = %q; want %q", tt.code, tt.text, got, tt.want)
		}
		if len(got) > maxCloseReason || !utf8.ValidString(got) {
			t.Errorf("hasuraCloseReason(%d, %q) = %d bytes, valid UTF-8 %v; want at most %d, valid", tt.code, tt.text,
				len(got), utf8.ValidString(got), maxCloseReason)
		}
	}
}
