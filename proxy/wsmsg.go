package proxy

//lint:file-ignore ST1005 error texts are Hasura's exact (aeson) wording, capitals included.

// Messages of the two GraphQL-over-WebSocket protocols, as far as the proxy
// reads or writes them: the client messages before connection_init (parsed
// whole, at most maxInitBytes), the connection_init payload, the proxy's own
// answers, and typeScanner, which finds the top-level "type" of every
// relayed client message without holding the message.

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// clientMessage is a client message before connection_init. Member names
// are matched exactly, like Hasura's parser does (encoding/json's struct
// decoding would also match "TYPE").
type clientMessage struct {
	Type    string
	ID      json.RawMessage
	Payload json.RawMessage
}

// These texts are Hasura's (aeson's) parse errors, which clients may match
// on, hence the capital letters (the file-ignore below).
var (
	errNotObject      = errors.New("Error in $: expected Object")
	errNoType         = errors.New(`Error in $: key "type" not found`)
	errUnexpectedType = errors.New("Error in $: unexpected type for ClientMessage")
	errPayloadType    = errors.New("Error in $.payload: expected Object")
)

// parseClientMessage decodes one client message. When a member appears more
// than once the last one counts.
func parseClientMessage(data []byte) (clientMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil || m == nil {
		return clientMessage{}, errNotObject
	}
	raw, ok := m["type"]
	if !ok {
		return clientMessage{}, errNoType
	}
	var msg clientMessage
	if err := json.Unmarshal(raw, &msg.Type); err != nil {
		return clientMessage{}, errUnexpectedType
	}
	msg.ID, msg.Payload = m["id"], m["payload"]
	return msg, nil
}

// headerField is one string member of connection_init payload.headers, in
// document order.
type headerField struct {
	name, value string
}

// parseInitPayload returns the string members of payload.headers, in order.
// An absent or null payload has none; a payload that is not an object is an
// error. Non-object headers and non-string header values are ignored.
// A top-level payload.Authorization is not read, as in Hasura.
func parseInitPayload(payload json.RawMessage) ([]headerField, error) {
	p := bytes.TrimSpace(payload)
	if len(p) == 0 || string(p) == "null" {
		return nil, nil
	}
	if p[0] != '{' {
		return nil, errPayloadType
	}
	dec := json.NewDecoder(bytes.NewReader(p))
	if _, err := dec.Token(); err != nil {
		return nil, errPayloadType
	}
	var headers json.RawMessage
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, errPayloadType
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, errPayloadType
		}
		if key, _ := tok.(string); key == "headers" {
			headers = v
		}
	}
	return parseHeaderObject(headers)
}

// parseHeaderObject returns the string members of a JSON object in order;
// anything that is not an object yields none.
func parseHeaderObject(raw json.RawMessage) ([]headerField, error) {
	h := bytes.TrimSpace(raw)
	if len(h) == 0 || h[0] != '{' {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(h))
	if _, err := dec.Token(); err != nil {
		return nil, errPayloadType
	}
	var out []headerField
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, errPayloadType
		}
		name, _ := tok.(string)
		vt, err := dec.Token()
		if err != nil {
			return nil, errPayloadType
		}
		switch v := vt.(type) {
		case string:
			if name != "" {
				out = append(out, headerField{name: name, value: v})
			}
		case json.Delim:
			// An object or array value: skip it whole.
			if err := skipValue(dec); err != nil {
				return nil, errPayloadType
			}
		}
	}
	return out, nil
}

// skipValue consumes the rest of an object or array whose opening delimiter
// has just been read.
func skipValue(dec *json.Decoder) error {
	for depth := 1; depth > 0; {
		t, err := dec.Token()
		if err != nil {
			if err == io.EOF {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		if d, ok := t.(json.Delim); ok {
			switch d {
			case '{', '[':
				depth++
			default:
				depth--
			}
		}
	}
	return nil
}

// stringID returns a message id that is a JSON string.
func stringID(raw json.RawMessage) (string, bool) {
	var id string
	if len(raw) == 0 || json.Unmarshal(raw, &id) != nil {
		return "", false
	}
	return id, true
}

// marshal encodes a message of the proxy's own. Only strings and raw JSON
// that was already parsed are encoded, so it cannot fail; fallback keeps the
// answer well-formed if it ever did.
func marshal(v any, fallback string) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte(fallback)
	}
	return b
}

// connectionErrorMessage is the legacy protocol's connection_error.
func connectionErrorMessage(msg string) []byte {
	return marshal(struct {
		Type    string `json:"type"`
		Payload string `json:"payload"`
	}{"connection_error", msg}, `{"type":"connection_error","payload":"internal error"}`)
}

// pongMessage answers a ping, echoing its payload.
func pongMessage(payload json.RawMessage) []byte {
	if p := bytes.TrimSpace(payload); len(p) > 0 && string(p) != "null" {
		return marshal(struct {
			Type    string          `json:"type"`
			Payload json.RawMessage `json:"payload"`
		}{"pong", p}, `{"type":"pong"}`)
	}
	return []byte(`{"type":"pong"}`)
}

// startErrorMessage is Hasura's answer to a legacy start it refuses: an
// error for the operation, shaped like the endpoint's errors.
func startErrorMessage(id string, f family, msg string) []byte {
	var payload any
	if f == familyGraphQLAlpha {
		payload = plainError{Error: msg, Path: "$", Code: "start-failed"}
	} else {
		payload = gqlErrorItem{Message: msg, Extensions: gqlExtensions{Path: "$", Code: "start-failed"}}
	}
	return marshal(struct {
		Type    string `json:"type"`
		ID      string `json:"id"`
		Payload any    `json:"payload"`
	}{"error", id, payload}, `{"type":"error","payload":{"message":"internal error"}}`)
}

// completeMessage ends a legacy operation.
func completeMessage(id string) []byte {
	return marshal(struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	}{"complete", id}, `{"type":"complete"}`)
}

// Kinds of the first top-level "type" member a typeScanner found.
const (
	typeUnknown = iota // not (yet) seen, or its value is not complete
	typeInit           // the string "connection_init"
	typeOther          // anything else, string or not
)

// Depth-1 positions of a typeScanner.
const (
	scanKey      = iota // before a member name, or '}'
	scanColon           // after a name
	scanValue           // after ':'
	scanScalar          // inside a number or literal value
	scanAfterVal        // after a value: ',' or '}'
)

// Roles of the string being read.
const (
	roleOther = iota
	roleKey
	roleTypeValue
)

// maxCapture bounds the decoded strings a typeScanner keeps: enough for
// "type" and "connection_init"; longer strings match neither.
const maxCapture = 32

// typeScanner finds the top-level "type" members of a JSON object fed to it
// in chunks, keeping a few bytes of state and never the document. It is a
// structural scanner, not a validator: on valid JSON it finds exactly the
// members a JSON parser finds (string escapes are decoded, nested values
// skipped, anything after the top-level value ignored); on invalid JSON its
// answer does not matter, because Hasura refuses to parse the message.
type typeScanner struct {
	started, ended bool
	depth          int
	pos            int  // depth-1 position (scan*)
	inStr          bool // inside a string
	esc            int  // 0: none; 1: after '\'; 2-5: reading \uXXXX digit esc-2
	hex            rune
	role           int
	keyIsType      bool // the current depth-1 member is named "type"
	capN           int
	capBad         bool // the captured string overflowed or held non-ASCII
	capBuf         [maxCapture]byte

	// nTypes counts top-level "type" members; first is the kind of the
	// first one's value.
	nTypes int
	first  int
}

func (s *typeScanner) reset() { *s = typeScanner{} }

func (s *typeScanner) capture(b byte) {
	if s.capN == maxCapture || b >= 0x80 {
		s.capBad = true
		return
	}
	s.capBuf[s.capN] = b
	s.capN++
}

func (s *typeScanner) captured(want string) bool {
	return !s.capBad && string(s.capBuf[:s.capN]) == want
}

func (s *typeScanner) beginString(role int) {
	s.inStr, s.role, s.capN, s.capBad, s.esc = true, role, 0, false, 0
}

func (s *typeScanner) endString() {
	s.inStr = false
	if s.depth != 1 {
		return
	}
	switch s.role {
	case roleKey:
		s.keyIsType = s.captured("type")
		if s.keyIsType {
			s.nTypes++
		}
		s.pos = scanColon
	case roleTypeValue:
		if s.captured("connection_init") {
			s.foundType(typeInit)
		} else {
			s.foundType(typeOther)
		}
		s.pos = scanAfterVal
	default:
		s.pos = scanAfterVal
	}
}

func (s *typeScanner) foundType(kind int) {
	if s.first == typeUnknown {
		s.first = kind
	}
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

func hexVal(b byte) rune {
	switch {
	case '0' <= b && b <= '9':
		return rune(b - '0')
	case 'a' <= b && b <= 'f':
		return rune(b-'a') + 10
	case 'A' <= b && b <= 'F':
		return rune(b-'A') + 10
	}
	return -1
}

// feed scans the next chunk of the message.
func (s *typeScanner) feed(p []byte) {
	for _, b := range p {
		if s.ended {
			return
		}
		if s.inStr {
			s.stringByte(b)
			continue
		}
		if !s.started {
			switch {
			case isSpace(b):
			case b == '{':
				s.started, s.depth, s.pos = true, 1, scanKey
			default:
				// Not an object: Hasura refuses it; nothing to find.
				s.started, s.ended = true, true
			}
			continue
		}
		if s.depth > 1 {
			switch b {
			case '"':
				s.beginString(roleOther)
			case '{', '[':
				s.depth++
			case '}', ']':
				s.depth--
				if s.depth == 1 {
					s.pos = scanAfterVal
				}
			}
			continue
		}
		s.depth1Byte(b)
	}
}

func (s *typeScanner) depth1Byte(b byte) {
	switch s.pos {
	case scanKey:
		switch b {
		case '"':
			s.beginString(roleKey)
		case '}':
			s.depth, s.ended = 0, true
		}
	case scanColon:
		if b == ':' {
			s.pos = scanValue
		}
	case scanValue:
		switch {
		case isSpace(b):
		case b == '"':
			if s.keyIsType {
				s.beginString(roleTypeValue)
			} else {
				s.beginString(roleOther)
			}
		case b == '{' || b == '[':
			if s.keyIsType {
				s.foundType(typeOther)
			}
			s.depth = 2
		default:
			if s.keyIsType {
				s.foundType(typeOther)
			}
			s.pos = scanScalar
		}
	case scanScalar, scanAfterVal:
		switch b {
		case ',':
			s.pos = scanKey
		case '}':
			s.depth, s.ended = 0, true
		}
	}
}

func (s *typeScanner) stringByte(b byte) {
	switch {
	case s.esc == 1:
		s.esc = 0
		switch b {
		case '"', '\\', '/':
			s.capture(b)
		case 'b':
			s.capture('\b')
		case 'f':
			s.capture('\f')
		case 'n':
			s.capture('\n')
		case 'r':
			s.capture('\r')
		case 't':
			s.capture('\t')
		case 'u':
			s.esc, s.hex = 2, 0
		default:
			s.capBad = true
		}
	case s.esc >= 2:
		v := hexVal(b)
		if v < 0 {
			// Invalid JSON. Resume as if the escape had ended here.
			s.capBad, s.esc = true, 0
			if b == '"' {
				s.endString()
			}
			return
		}
		s.hex = s.hex<<4 | v
		s.esc++
		if s.esc == 6 {
			s.esc = 0
			if s.hex < 0x80 {
				s.capture(byte(s.hex))
			} else {
				s.capBad = true
			}
		}
	case b == '\\':
		s.esc = 1
	case b == '"':
		s.endString()
	default:
		s.capture(b)
	}
}
