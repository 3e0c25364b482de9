package proxy

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxCloseReason is the most a close frame's reason may hold (RFC 6455
// §5.5: 125 bytes of payload, two of them the code).
const maxCloseReason = 123

// hasuraCloseReason is the close reason Hasura sends with each of its
// ServerErrorCodes (encodeServerErrorMsg in
// server/src-lib/Hasura/GraphQL/Transport/WebSocket/Protocol.hs, sent by
// sendCloseWithMsg in .../WebSocket.hs): a ServerErrorMsg record encoded as
// JSON, {"server_error_msg":"<code>: <text>"}, on both subprotocols. The
// texts are Hasura's: "Unauthorized" (4401), "Forbidden" (4403), "Connection
// initialisation timeout" (4408), "Too many requests" (4429), and for 4400
// "Connection initialization failed: <message>" (legacy graphql-ws) or
// "Parsing client message failed: <message>" (graphql-transport-ws).
//
// Hasura sends the whole text; a close frame cannot carry more than 123
// bytes, so the text is cut (on a character) until the JSON fits.
func hasuraCloseReason(code int, text string) string {
	const prefix, suffix = `{"server_error_msg":"`, `"}`
	var b strings.Builder
	b.WriteString(prefix)
	budget := maxCloseReason - len(prefix) - len(suffix)
	write := func(s string) bool {
		if len(s) > budget {
			return false
		}
		b.WriteString(s)
		budget -= len(s)
		return true
	}
	write(strconv.Itoa(code) + ": ")
	for i, r := range text {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(text[i:]); n == 1 {
				r = '\ufffd' // aeson's text is valid UTF-8; so is this
			}
		}
		if !write(aesonEscape(r)) {
			break
		}
	}
	b.WriteString(suffix)
	return b.String()
}

// aesonEscape writes one character as aeson's JSON encoder does
// (Data/Aeson/Encoding/Builder.hs escapeAscii): backslash, double quote, \n,
// \r and \t escaped, other characters below U+0020 as \u00xx, everything
// else as it is.
func aesonEscape(r rune) string {
	switch r {
	case '\\':
		return `\\`
	case '"':
		return `\"`
	case '\n':
		return `\n`
	case '\r':
		return `\r`
	case '\t':
		return `\t`
	}
	if r < 0x20 {
		const hex = "0123456789abcdef"
		return `\u00` + string(hex[r>>4]) + string(hex[r&0xf])
	}
	return string(r)
}
