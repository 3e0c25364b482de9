// Package limits is Hasura EE's API limits and per-role introspection
// control, enforced by the proxy for every Hasura: depth, node, batch, time
// and rate limits configured with the very object Hasura EE's
// set_api_limits takes (`api_limits:`), and
// graphql_schema_introspection.disabled_for_roles.
//
// Limits apply to the role the proxy chose; the admin role (a client that
// presented the admin secret, or a token whose role is admin) is never
// limited, as in Hasura. A role's per_role entry overrides global;
// a role without one gets global. Documents are parsed with
// github.com/vektah/gqlparser/v2 (no schema), the operation selected by
// operationName, and the facts of each query text cached by its SHA-256.
//
// Rate limits count every operation (each element of a batch, each
// WebSocket subscribe/start) in a sliding one-minute window per (role,
// unique_params), in the process or, with `redis.url`, in Redis, so that
// replicas share one count. While Redis does not answer within
// redis.timeout, redis.on_error decides (allow or deny); the outage is
// logged once and counted, and readiness is unaffected.
//
// The operator's guide is docs/limits.md.
package limits

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/hasura-auth-proxy/hasura-auth-proxy/auth"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/metrics"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/proxy"
	"github.com/hasura-auth-proxy/hasura-auth-proxy/store"
)

// Codes of the refusals, in extensions.code.
const (
	CodeRateLimit     = "rate-limit-exceeded"
	CodeDepthLimit    = "depth-limit-exceeded"
	CodeNodeLimit     = "node-limit-exceeded"
	CodeBatchLimit    = "batch-limit-exceeded"
	CodeIntrospection = "introspection-disabled"
	// CodeInvalid is Hasura's code for a document it cannot parse or
	// validate.
	CodeInvalid = "validation-failed"
	// CodeBadRequest is a body that is not a GraphQL request.
	CodeBadRequest = "bad-request"
)

// DefaultCacheEntries is how many query texts' analyses are kept.
const DefaultCacheEntries = 4096

// Options configure New.
type Options struct {
	Config        Config
	Introspection IntrospectionConfig
	// Redis, when not nil, holds the rate counters (store.NewClient);
	// nil keeps them in the process. Run must then be running.
	Redis redis.Cmdable
	// Store is the redis: section (timeout, on_error).
	Store store.Config
	// TrustedProxies says whose X-Forwarded-For names the client, for
	// unique_params: IP.
	TrustedProxies proxy.TrustedProxies
	Logger         *zap.Logger
	Metrics        *metrics.Limits
	// Now is the clock of the in-memory windows; nil means time.Now.
	Now func() time.Time
	// RedisNow, when set (tests), replaces Redis's own clock.
	RedisNow func() time.Time
	// CacheEntries bounds the analysis cache; 0 means DefaultCacheEntries.
	CacheEntries int
}

// Limiter enforces the limits; it implements proxy.Limits. It is safe for
// concurrent use.
type Limiter struct {
	cfg      Config
	noIntro  map[string]bool
	counter  counter
	rc       *redisCounter // when the counters are in Redis
	redis    bool
	deny     bool
	trusted  proxy.TrustedProxies
	log      *zap.Logger
	metrics  *metrics.Limits
	cache    *cache
	any      bool // some limit is configured
	analysed bool // some limit needs the document parsed
	down     atomic.Bool
	// retryAt (unix nanoseconds) is when Redis is next tried after it
	// failed: until then on_error applies at once, so an outage costs
	// requests nothing rather than redis.timeout each.
	retryAt atomic.Int64
	clock   func() time.Time
}

// outageRetry is how long after a failed round trip Redis is tried again.
const outageRetry = time.Second

// errOutage is a check skipped because Redis failed within outageRetry.
var errOutage = errors.New("redis failed less than a second ago; not tried")

// New builds a Limiter from a validated configuration.
func New(o Options) *Limiter {
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	entries := o.CacheEntries
	if entries <= 0 {
		entries = DefaultCacheEntries
	}
	l := &Limiter{
		cfg:     o.Config,
		noIntro: map[string]bool{},
		trusted: o.TrustedProxies,
		log:     log,
		metrics: o.Metrics,
		cache:   newCache(entries),
		deny:    o.Store.OnError == store.OnErrorDeny,
		clock:   now,
	}
	for _, r := range o.Introspection.DisabledForRoles {
		l.noIntro[r] = true
	}
	if o.Redis != nil {
		l.rc = newRedisCounter(o.Redis, o.Store.Timeout, o.RedisNow)
		l.counter, l.redis = l.rc, true
	} else {
		l.counter = newMemCounter(now)
	}
	c := &l.cfg
	limits := !c.Disabled && (c.DepthLimit != nil || c.NodeLimit != nil || c.BatchLimit != nil || c.TimeLimit != nil || c.RateLimit != nil)
	l.analysed = len(l.noIntro) > 0 || (!c.Disabled && (c.DepthLimit != nil || c.NodeLimit != nil))
	l.any = limits || len(l.noIntro) > 0
	return l
}

// Run sends the rate-limit checks to Redis until ctx is done; it returns at
// once when the counters are in the process. Checks made while it is not
// running wait redis.timeout and get redis.on_error.
func (l *Limiter) Run(ctx context.Context) {
	if l.rc != nil {
		l.rc.run(ctx)
	}
}

// Enabled reports whether anything is configured at all; a Limiter that
// is not enabled need not be installed.
func (l *Limiter) Enabled() bool { return l.any }

// Applied is what limits apply to one role, for `verify` and docs.
type Applied struct {
	Role                 string    `json:"role"`
	DepthLimit           int       `json:"depth_limit,omitempty"`
	NodeLimit            int       `json:"node_limit,omitempty"`
	BatchLimit           int       `json:"batch_limit,omitempty"`
	TimeLimitSeconds     int       `json:"time_limit,omitempty"`
	RateLimit            *RateRule `json:"rate_limit,omitempty"`
	IntrospectionAllowed bool      `json:"introspection_allowed"`
	Exempt               bool      `json:"exempt,omitempty"`
}

// exempt reports the sessions Hasura never limits: the admin role, whether
// reached with the admin secret or a token whose role is admin.
func exempt(s *auth.Session) bool { return s.Result == auth.ResultAdmin || s.Role == "admin" }

// For is what applies to s. An admin session is exempt from everything.
func (l *Limiter) For(s *auth.Session) Applied {
	a := Applied{Role: s.Role, IntrospectionAllowed: true}
	if exempt(s) {
		a.Exempt = true
		return a
	}
	a.IntrospectionAllowed = !l.noIntro[s.Role]
	if l.cfg.Disabled {
		return a
	}
	a.DepthLimit = l.cfg.DepthLimit.forRole(s.Role)
	a.NodeLimit = l.cfg.NodeLimit.forRole(s.Role)
	a.BatchLimit = l.cfg.BatchLimit.forRole(s.Role)
	a.TimeLimitSeconds = l.cfg.TimeLimit.forRole(s.Role)
	a.RateLimit = l.cfg.RateLimit.forRole(s.Role)
	return a
}

// Applies implements proxy.Limits.
func (l *Limiter) Applies(s *auth.Session) bool {
	return l.any && s != nil && !exempt(s)
}

// TimeLimit implements proxy.Limits.
func (l *Limiter) TimeLimit(s *auth.Session) time.Duration {
	if l.cfg.Disabled || s == nil || exempt(s) {
		return 0
	}
	return time.Duration(l.cfg.TimeLimit.forRole(s.Role)) * time.Second
}

// request is one GraphQL request: Hasura reads exactly these member names
// (encoding/json's struct decoding would also take "QUERY").
type request struct {
	query, operationName string
	// unseen: the proxy does not see the document (a RESTified endpoint
	// runs one stored in Hasura's metadata).
	unseen bool
}

// parseRequest reads one GraphQL request object, member names matched
// exactly, the last of a repeated member winning, as Hasura's parser does.
func parseRequest(raw []byte) (request, bool) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return request{}, false
	}
	var req request
	if q, ok := m["query"]; ok && json.Unmarshal(q, &req.query) != nil {
		return request{}, false
	}
	if n, ok := m["operationName"]; ok && string(bytes.TrimSpace(n)) != "null" && json.Unmarshal(n, &req.operationName) != nil {
		return request{}, false
	}
	return req, true
}

// parseBody reads a POST body: one request object or a batch (array).
func parseBody(body []byte) (reqs []request, batch, ok bool) {
	b := bytes.TrimSpace(body)
	if len(b) > 0 && b[0] == '[' {
		var items []json.RawMessage
		if err := json.Unmarshal(b, &items); err != nil {
			return nil, true, false
		}
		reqs = make([]request, len(items))
		for i, it := range items {
			if reqs[i], ok = parseRequest(it); !ok {
				return nil, true, false
			}
		}
		return reqs, true, true
	}
	req, ok := parseRequest(b)
	if !ok {
		return nil, false, false
	}
	return []request{req}, false, true
}

// AdmitHTTP implements proxy.Limits.
func (l *Limiter) AdmitHTTP(r *http.Request, body []byte, s *auth.Session) *proxy.Refusal {
	var reqs []request
	batch := false
	switch {
	case strings.HasPrefix(r.URL.Path, "/api/rest/"):
		// A RESTified endpoint runs a document stored in Hasura's
		// metadata; its query parameters are variables.
		reqs = []request{{unseen: true}}
	case body != nil:
		var ok bool
		if reqs, batch, ok = parseBody(body); !ok {
			return l.refuse(s, metrics.LimitInvalid, CodeBadRequest, http.StatusBadRequest,
				"the request body is not a GraphQL request (a JSON object, or an array of them)", 0)
		}
	case r.Method == http.MethodGet && r.URL.Query().Has("query"):
		q := r.URL.Query()
		reqs = []request{{query: q.Get("query"), operationName: q.Get("operationName")}}
	default:
		// A RESTified endpoint, or a request Hasura will refuse: one
		// operation whose document the proxy does not see.
		reqs = []request{{unseen: true}}
	}
	return l.admit(r.Context(), r, s, reqs, batch)
}

// AdmitOperation implements proxy.Limits: payload is the payload of a
// subscribe or start message.
func (l *Limiter) AdmitOperation(r *http.Request, s *auth.Session, payload []byte) *proxy.Refusal {
	req, ok := parseRequest(payload)
	if !ok {
		return l.refuse(s, metrics.LimitInvalid, CodeBadRequest, http.StatusBadRequest,
			"the operation's payload is not a GraphQL request", 0)
	}
	return l.admit(context.Background(), r, s, []request{req}, false)
}

func (l *Limiter) admit(ctx context.Context, r *http.Request, s *auth.Session, reqs []request, batch bool) *proxy.Refusal {
	role := s.Role
	cfg := &l.cfg
	if !cfg.Disabled && batch {
		if max := cfg.BatchLimit.forRole(role); max > 0 && len(reqs) > max {
			return l.refuse(s, metrics.LimitBatch, CodeBatchLimit, http.StatusBadRequest,
				fmt.Sprintf("batch limit exceeded: the request holds %d operations, the limit for role %q is %d (api_limits.batch_limit)", len(reqs), role, max), 0)
		}
	}
	if l.analysed {
		depthMax, nodeMax := 0, 0
		if !cfg.Disabled {
			depthMax, nodeMax = cfg.DepthLimit.forRole(role), cfg.NodeLimit.forRole(role)
		}
		noIntro := l.noIntro[role]
		for i, req := range reqs {
			if depthMax == 0 && nodeMax == 0 && !noIntro || req.unseen {
				continue
			}
			where := ""
			if batch {
				where = fmt.Sprintf(" (operation %d of the batch)", i)
			}
			f, err := l.cache.get(req.query).operation(req.operationName)
			if err != nil {
				return l.refuse(s, metrics.LimitInvalid, CodeInvalid, http.StatusBadRequest, err.Error()+where, 0)
			}
			if noIntro && f.Introspection {
				return l.refuse(s, metrics.LimitIntrospection, CodeIntrospection, http.StatusForbidden,
					fmt.Sprintf("introspection is disabled for role %q (graphql_schema_introspection.disabled_for_roles)%s", role, where), 0)
			}
			if depthMax > 0 && f.Depth > depthMax {
				return l.refuse(s, metrics.LimitDepth, CodeDepthLimit, http.StatusBadRequest,
					fmt.Sprintf("depth limit exceeded: the operation's depth is %d, the limit for role %q is %d (api_limits.depth_limit)%s", f.Depth, role, depthMax, where), 0)
			}
			if nodeMax > 0 && f.Nodes > nodeMax {
				return l.refuse(s, metrics.LimitNode, CodeNodeLimit, http.StatusBadRequest,
					fmt.Sprintf("node limit exceeded: the operation has %d nodes, the limit for role %q is %d (api_limits.node_limit)%s", f.Nodes, role, nodeMax, where), 0)
			}
		}
	}
	if cfg.Disabled {
		return nil
	}
	rule := cfg.RateLimit.forRole(role)
	if rule == nil {
		return nil
	}
	return l.rate(ctx, r, s, rule, len(reqs))
}

// rate counts n operations of s against rule.
func (l *Limiter) rate(ctx context.Context, r *http.Request, s *auth.Session, rule *RateRule, n int) *proxy.Refusal {
	key := l.key(r, s, rule)
	// A client that goes away must not look like a Redis outage: the
	// check runs to redis.timeout whatever the request does.
	ctx = context.WithoutCancel(ctx)
	var (
		ok    bool
		retry time.Duration
		err   error
	)
	if l.redis && l.clock().UnixNano() < l.retryAt.Load() {
		err = errOutage
	} else {
		start := time.Now()
		ok, retry, err = l.counter.take(ctx, key, n, rule.MaxReqsPerMin)
		if l.redis {
			l.metrics.ObserveRedis(time.Since(start))
			if err != nil {
				l.retryAt.Store(l.clock().Add(outageRetry).UnixNano())
			}
		}
	}
	if err != nil {
		l.metrics.RedisError(l.deny)
		if l.down.CompareAndSwap(false, true) {
			l.log.Warn("redis unreachable: rate limits follow redis.on_error until it answers again",
				zap.Bool("deny", l.deny), zap.Error(err))
		}
		if l.deny {
			return l.refuse(s, metrics.LimitStoreDown, CodeRateLimit, http.StatusServiceUnavailable,
				"the rate limit cannot be checked right now (redis.on_error: deny)", time.Second)
		}
		return nil
	}
	if l.down.CompareAndSwap(true, false) {
		l.log.Info("redis reachable again: rate limits are counted")
	}
	if ok {
		return nil
	}
	return l.refuse(s, metrics.LimitRate, CodeRateLimit, http.StatusTooManyRequests,
		fmt.Sprintf("rate limit exceeded: the limit for role %q is %d operations per minute per %s (api_limits.rate_limit)",
			s.Role, rule.MaxReqsPerMin, rule.UniqueParams), max(retry, time.Millisecond))
}

// key names the counter of (role, unique params). It is a hash: user ids
// and addresses are not written to Redis as they are.
func (l *Limiter) key(r *http.Request, s *auth.Session, rule *RateRule) string {
	h := sha256.New()
	h.Write([]byte(s.Role))
	h.Write([]byte{0})
	switch {
	case rule.UniqueParams.IP:
		h.Write([]byte("ip\x00"))
		h.Write([]byte(l.trusted.ClientIP(r).String()))
	case len(rule.UniqueParams.Vars) > 0:
		h.Write([]byte("vars"))
		for _, name := range rule.UniqueParams.Vars {
			i := slices.IndexFunc(s.Vars, func(v auth.Var) bool { return v.Name == name })
			if i < 0 {
				h.Write([]byte{0, 0})
				continue
			}
			v := s.Vars[i].Value
			h.Write([]byte{0, 1})
			h.Write([]byte(strconv.Itoa(len(v))))
			h.Write([]byte{0})
			h.Write([]byte(v))
		}
	default:
		h.Write([]byte("role"))
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}

func (l *Limiter) refuse(s *auth.Session, kind, code string, status int, msg string, retry time.Duration) *proxy.Refusal {
	l.metrics.Refused(kind, s.Role)
	return &proxy.Refusal{Code: code, Message: msg, Status: status, RetryAfter: retry}
}
