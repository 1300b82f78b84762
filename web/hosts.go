package web

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/gatehouse-net/gatehouse/web/httpx"
)

// hostCheck is the Host-header allow-list. A DNS-rebinding page makes a
// victim's browser send requests to the shell under the attacker's name;
// refusing names the school did not configure stops those requests before
// any handler (or cookie) sees them. IP addresses cannot be rebound, so an
// address is allowed when the shell listens on it.
type hostCheck struct {
	names  map[string]bool // lower case, no port
	anyIP  bool            // Listen's host is unspecified: every local address serves
	listen netip.Addr      // Listen's own address, when it has one
}

func newHostCheck(listen string, names []string) *hostCheck {
	h := &hostCheck{names: map[string]bool{"localhost": true}}
	for _, n := range names {
		if n = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(n), ".")); n != "" {
			h.names[n] = true
		}
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		host = listen
	}
	if a, err := netip.ParseAddr(host); err == nil {
		h.listen = a.Unmap()
		h.anyIP = a.IsUnspecified()
	} else if host == "" {
		h.anyIP = true
	} else {
		h.names[strings.ToLower(host)] = true
	}
	return h
}

// allowed reports whether a request's Host header names this shell.
func (h *hostCheck) allowed(hostport string) bool {
	host := hostport
	if hh, _, err := net.SplitHostPort(hostport); err == nil {
		host = hh
	}
	host = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(host, "]"), "["), ".")
	if host == "" {
		return false
	}
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap()
		return h.anyIP || a.IsLoopback() || a == h.listen
	}
	return h.names[strings.ToLower(host)]
}

// checkHost refuses requests whose Host header is not on the allow-list.
func (s *Server) checkHost(c *httpx.Context) {
	if s.hosts != nil && !s.hosts.allowed(c.Request.Host) {
		s.log.Warn("web: host not allowed", "host", truncate(c.Request.Host, 100), "client", clientAddr(c.Request).String())
		c.AbortWithStatus(http.StatusMisdirectedRequest)
		return
	}
	c.Next()
}

// truncate bounds client text before it reaches a log line.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
