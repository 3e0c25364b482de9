package fake

import "net/http"

// hasuraCORS is Hasura's default CORS policy (HASURA_GRAPHQL_CORS_DOMAIN
// "*") as Hasura's corsMiddleware applies it
// (server/src-lib/Hasura/Server/Middleware.hs): a request with an Origin
// gets it echoed with credentials allowed, and an OPTIONS request with an
// Origin is a preflight answered 204. The proxy's own policy (proxy.CORS)
// is tested to answer the same for "*".
func hasuraCORS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h["Access-Control-Allow-Origin"] = []string{origin}
		h["Access-Control-Allow-Credentials"] = []string{"true"}
		h["Access-Control-Allow-Methods"] = []string{"GET,POST,PUT,PATCH,DELETE,OPTIONS"}
		h.Add("Vary", "Origin")
		if r.Method != http.MethodOptions {
			next.ServeHTTP(w, r)
			return
		}
		h["Access-Control-Max-Age"] = []string{"1728000"}
		h["Access-Control-Allow-Headers"] = []string{r.Header.Get("Access-Control-Request-Headers")}
		h.Add("Vary", "Access-Control-Request-Headers")
		h["Content-Type"] = []string{"text/plain charset=UTF-8"} // sic, as Hasura sends it
		h["Content-Length"] = []string{"0"}
		w.WriteHeader(http.StatusNoContent)
	})
}
