package proxy

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
)

// fakeLimits refuses every operation whose payload mentions "refuse me".
type fakeLimits struct {
	ops atomic.Int32
}

func (f *fakeLimits) Applies(s *auth.Session) bool { return s.Result != auth.ResultAdmin }

func (f *fakeLimits) AdmitHTTP(*http.Request, []byte, *auth.Session) *Refusal { return nil }

func (f *fakeLimits) AdmitOperation(_ *http.Request, _ *auth.Session, payload []byte) *Refusal {
	f.ops.Add(1)
	if strings.Contains(string(payload), "refuse me") {
		return &Refusal{Code: "depth-limit-exceeded", Message: "depth limit exceeded", Status: http.StatusBadRequest}
	}
	return nil
}

func (f *fakeLimits) TimeLimit(*auth.Session) time.Duration { return 0 }

func withLimits(l Limits) wsStageOpt { return func(c *wsStageConfig) { c.limits = l } }

// A refused subscribe gets the protocol's error for its id and never
// reaches Hasura; the socket and the next operation carry on.
func TestWebSocketLimits(t *testing.T) {
	for _, tt := range []struct {
		proto, subscribe, wantErr string
	}{
		{protoTransportWS, "subscribe", `{"id":"bad","type":"error","payload":[{"message":"depth limit exceeded","extensions":{"path":"$","code":"depth-limit-exceeded"}}]}`},
		{protoLegacy, "start", `{"id":"bad","type":"error","payload":{"message":"depth limit exceeded","extensions":{"path":"$","code":"depth-limit-exceeded"}}}`},
	} {
		t.Run(tt.proto, func(t *testing.T) {
			fl := &fakeLimits{}
			st := newWSStage(t, withLimits(fl))
			c := mustDial(t, st.url("/v1/graphql"), tt.proto, nil)
			send(t, c, initMsg(map[string]string{"Authorization": "Bearer " + wsToken(t, time.Now().Add(wsTokTTL), nil)}))
			up := st.hasura.next(t)
			up.next(t) // connection_init

			send(t, c, `{"id":"bad","type":"`+tt.subscribe+`","payload":{"query":"subscription { refuse me }"}}`)
			good := `{"id":"ok","type":"` + tt.subscribe + `","payload":{"query":"subscription { s }"}}`
			send(t, c, good)
			if got := up.next(t); string(got) != good {
				t.Errorf("Hasura got %s; want only the admitted operation, unchanged: %s", got, good)
			}
			var gotErr, gotComplete, gotData bool
			for i := 0; i < 20 && !(gotErr && gotData); i++ {
				b := recv(t, c)
				var m struct{ ID, Type string }
				_ = json.Unmarshal(b, &m)
				switch {
				case m.ID == "bad" && m.Type == "error":
					jsonEq(t, b, tt.wantErr)
					gotErr = true
				case m.ID == "bad" && m.Type == "complete":
					gotComplete = true
				case m.ID == "ok" && (m.Type == "next" || m.Type == "data"):
					gotData = true
				}
			}
			if !gotErr || !gotData {
				t.Errorf("client got error %t, data of the next operation %t; want both", gotErr, gotData)
			}
			// complete follows the error on the legacy protocol, written
			// before the next operation is even relayed.
			if tt.proto == protoLegacy && !gotComplete {
				t.Errorf("legacy: no complete for the refused operation")
			}
			if n := fl.ops.Load(); n != 2 {
				t.Errorf("limits asked about %d operations; want 2", n)
			}
		})
	}
}
