package web

// What the external tests (package web_test, which drive the server
// through web/webtest) may see of the package's insides.

// RouteInfo is one row of the route table as the tests see it.
type RouteInfo struct {
	Method, Path string
	Access       string // "public", "session", "bearer" or "metrics"
	Roles        []string
}

// RouteTable returns the server's route table.
func (s *Server) RouteTable() []RouteInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RouteInfo, 0, len(s.routes))
	for _, r := range s.routes {
		out = append(out, RouteInfo{Method: r.method, Path: r.path, Access: r.access.String(), Roles: r.roles})
	}
	return out
}

// The cookie names, the refusal text and the page size the tests check.
const (
	LoginFailed   = loginFailed
	AuditPageSize = auditPageSize
)

// HashToken is the hash the store keeps of a session or API token, so a
// test can look a cookie's session up in the store (never to forge one).
var HashToken = hashToken
